"""Settings declared once: a config dataclass field carries its help text, and the command line is built
from the fields (flag, type, choices, help with the default), so a setting has one home.

A field made with :func:`option` becomes ``--field-name`` (or its ``flag``); a field whose type is
itself such a dataclass (``TrainConfig.model``) contributes its own fields as flags, so the command
line stays flat while the config nests.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from genmodels.core.paths import SHIPPED_TEXT_MODELS


def text_measurement_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The parser of a ``python -m genmodels.X`` measurement over text checkpoints (the shipped two unless
    named); the command adds its own flags."""

    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("checkpoints", nargs="*", default=list(SHIPPED_TEXT_MODELS), help="text checkpoints to measure")
    return p


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    flag: str | None = None,
    choices: tuple | None = None,
    shown: str | None = None,
    required: bool = False,
) -> Any:
    """A dataclass field with its command-line help (``flag`` defaults to ``--name-with-dashes``).
    A boolean whose default is True gets ``flag="--no-..."`` and is switched off by it. ``shown``: the
    default as the help states it, where the value itself says little (an empty string); ``required``:
    the command line must give it (the dataclass default serves library callers)."""
    meta = {"help": help, "flag": flag, "choices": choices, "shown": shown, "required": required}
    return dataclasses.field(default=default, metadata=meta)


def _is_config(f: dataclasses.Field) -> bool:
    return f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory)


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else None


def leaf_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of ``cls`` with nested config dataclasses replaced by their own fields."""
    out = []
    for f in dataclasses.fields(cls):
        out += leaf_fields(f.default_factory) if _is_config(f) else [f]
    return out


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_options(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One option per leaf field of ``cls``. Every option's parsed default is None, so a caller can
    tell the options given on the command line from the rest (``--resume`` changes only those)."""
    for f in leaf_fields(cls):
        if f.name in skip:
            continue
        default = _default(f)
        shown = "required" if f.metadata.get("required") else f"default: {f.metadata.get('shown') or default}"
        kw: dict[str, Any] = {
            "dest": f.name,
            "default": None,
            "help": f"{f.metadata.get('help', '')} ({shown})",
            "required": f.metadata.get("required", False),
        }
        if isinstance(default, bool):
            kw["action"] = "store_false" if default else "store_true"
        else:
            kw["type"] = type(default)
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
            else:
                kw["metavar"] = f.name.upper()
        parser.add_argument(flag_of(f), **kw)


def command_args(cfg: Any) -> list[str]:
    """The flags that rebuild ``cfg`` (defaults included), for a command line in a model card."""
    args = []
    for f in leaf_fields(type(cfg)):
        value = _value(cfg, f.name)
        if isinstance(value, bool):
            if value != _default(f):
                args.append(flag_of(f))
        else:
            args.append(f"{flag_of(f)} {value}")
    return args


def _value(cfg: Any, name: str) -> Any:
    for f in dataclasses.fields(cfg):
        if f.name == name:
            return getattr(cfg, name)
        if _is_config(f):
            inner = getattr(cfg, f.name)
            if name in {g.name for g in dataclasses.fields(inner)}:
                return getattr(inner, name)
    raise KeyError(name)


def flatten(d: dict) -> dict:
    """A config dict with nested sections merged into the top level (the layout of older saves)."""
    out = {}
    for k, v in d.items():
        out.update(flatten(v) if isinstance(v, dict) else {k: v})
    return out


def from_flat(cls: type, values: dict) -> Any:
    """``cls`` built from a flat or nested dict; unknown keys are ignored (older or newer saves)."""
    flat = flatten(values)
    kw = {}
    for f in dataclasses.fields(cls):
        if _is_config(f):
            kw[f.name] = from_flat(f.default_factory, flat)
        elif f.name in flat:
            kw[f.name] = flat[f.name]
    return cls(**kw)
