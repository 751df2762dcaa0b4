"""``python -m genmodels fit-cache CK``: fit a melody checkpoint's cache weights (``genmodels.nn.cache``) on
its validation split and save them in its config, so sampling and evaluation use them. Training a melody
model fits them at its end; this refits a checkpoint (e.g. on another corpus's validation split)."""

from __future__ import annotations

from genmodels.core.errors import SettingsError
from genmodels.eval.evaluate import _data_path, data_dir
from genmodels.io.checkpoint import load_checkpoint
from genmodels.learn.cache_fit import fit_checkpoint_cache


def fit_cache(path: str, data: str | None = None) -> dict:
    """Fit, save and report: validation nats per note by the network alone and with the fitted copies."""
    c = load_checkpoint(path)
    if c.domain.name != "melody":
        raise SettingsError(f"{c.name} is a {c.domain.name} model; the cache is fitted for melody models")
    d = c.domain.load_data(_data_path(c, data), tokenizer=c.tokenizer, augment=False)
    return fit_checkpoint_cache(c, d, f"{data_dir(c, data)} (validation split)")
