"""N-gram floors the neural models must beat: interpolated Kneser-Ney over characters and melody tokens.

One model, :class:`KneserNey`, works on sequences of any hashable symbols (characters of a string,
token ids). N-grams are packed into 64-bit integers and counted with numpy (sort + unique), so 4.4M
training characters at order 7 train in seconds and need a few hundred MB; scoring is vectorised.

The estimator is plain interpolated Kneser-Ney (Chen & Goodman 1998, eq. 14 with one discount per
order): the highest order uses raw counts, every lower order uses continuation counts (the number of
distinct symbols seen to the left of the n-gram; the start of a sequence counts as one more left
symbol), each order n has an absolute discount ``D_n = n1 / (n1 + 2 n2)`` from its own count-of-counts,
and the recursion ends in a uniform distribution over ``vocab_size`` symbols, so a symbol never seen in
training still gets probability through that floor.

    p_n(w | h) = max(c_n(h w) - D_n, 0) / T_n(h) + D_n * U_n(h) / T_n(h) * p_{n-1}(w | h')
    p_0(w)     = 1 / vocab_size

with T_n(h) = sum_w c_n(h w), U_n(h) = number of w with c_n(h w) > 0, h' = h without its first symbol;
an unseen context (T_n(h) = 0) passes p_{n-1} through unchanged. ``modified=True`` gives modified KN
(three discounts D1, D2, D3+ per order, from n1..n4; the backoff weight becomes sum_w D(c(h w)) / T).
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path

import numpy as np

from genmodels.core.errors import DataError, SettingsError
from genmodels.core.paths import repo_path
from genmodels.core.registry import all_domains, get_domain
from genmodels.eval.kneser_ney_counts import KneserNeyCounts, _as_list, _as_list_or_str, _log
from genmodels.io.checkpoint import domain_of, read_card, read_config
from genmodels.learn.melody_data import melody_data
from genmodels.nn.losses import split_tunes

TEXT_DIR = repo_path("data/text")
MELODY_DIR = repo_path("data/melody")


class KneserNey(KneserNeyCounts):
    """Interpolated Kneser-Ney n-gram model over sequences of hashable symbols.

    ``order`` is the n of the n-gram (each symbol is predicted from up to order-1 previous symbols of
    the same sequence); ``discount`` fixes D for every order instead of estimating it;
    ``vocab_size`` is the size of the uniform floor (default: training symbols + 1, one slot standing
    for every symbol not seen in training). Strings are sequences of characters.
    """

    def __init__(
        self,
        order: int = 7,
        discount: float | None = None,
        vocab_size: int | None = None,
        modified: bool = False,
        verbose: bool = False,
    ) -> None:
        if not isinstance(order, int) or isinstance(order, bool) or not (1 <= order <= 32):
            raise SettingsError(f"n-gram order must be an integer from 1 to 32, got {order!r}")
        if discount is not None and not (0.0 < float(discount) < 1.0):
            raise SettingsError(f"discount must be strictly between 0 and 1, got {discount!r}")
        if vocab_size is not None and int(vocab_size) < 1:
            raise SettingsError(f"vocab_size must be positive, got {vocab_size!r}")
        self.order = order
        self.fixed_discount = None if discount is None else float(discount)
        self._vocab_size = None if vocab_size is None else int(vocab_size)
        self.modified = bool(modified)
        if self.modified and discount is not None:
            raise SettingsError("modified Kneser-Ney estimates its three discounts per order: give no discount")
        self.verbose = verbose
        self.symbols: list[Hashable] = []
        self.discounts: list[float] = []
        self._fitted = False

    # ----- vocabulary ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Size of the uniform floor distribution."""
        if self._vocab_size is not None:
            return self._vocab_size
        return len(self.symbols) + 1

    @vocab_size.setter
    def vocab_size(self, v: int) -> None:
        if int(v) < len(self.symbols):
            raise SettingsError(f"vocab_size {v} is smaller than the {len(self.symbols)} training symbols")
        self._vocab_size = int(v)

    def extend_vocab(self, seqs: Iterable[Sequence[Hashable]]) -> int:
        """Set the floor to (training symbols ∪ symbols of ``seqs``) + 1 and return it, so every symbol
        of an evaluation set has its own share of the uniform mass (plus one slot for anything else)."""
        self._check_fitted()
        extra: set = set()
        known = self._index
        for s in seqs:
            extra.update(x for x in set(_as_list(s)) if x not in known)
        self._vocab_size = len(self.symbols) + len(extra) + 1
        return self._vocab_size

    def _ids(self, seq: Sequence[Hashable]) -> np.ndarray:
        """Symbol ids (0..S-1 for training symbols, S for anything unknown)."""
        unk = len(self.symbols)
        if isinstance(seq, str):
            cps = np.frombuffer(seq.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
            if self._char_cps is None:
                return np.full(len(cps), unk, dtype=np.int64)
            pos = np.searchsorted(self._char_cps, cps)
            pos = np.minimum(pos, len(self._char_cps) - 1)
            hit = self._char_cps[pos] == cps
            return np.where(hit, self._char_ids[pos], unk)
        index = self._index
        return np.fromiter((index.get(x, unk) for x in _as_list(seq)), dtype=np.int64)

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise SettingsError("The n-gram model is not fitted: call fit() first")

    # ----- scoring ------------------------------------------------------------------------------
    def _position_probs(self, seqs: Sequence[Sequence[Hashable]]) -> tuple[np.ndarray, np.ndarray]:
        """Probability of every symbol of every sequence given up to order-1 previous symbols of the same
        sequence; returns (probs over the concatenation, start index of each sequence)."""
        self._check_fitted()
        ids, starts, _ = self._concat(seqs)
        L = len(ids)
        if L == 0:
            return np.zeros(0), starts
        codes, hist = self._grams(ids, starts)
        pos = np.arange(L, dtype=np.int64)
        p = np.full(L, 1.0 / self.vocab_size)
        for n in range(1, self.order + 1):
            sel = np.nonzero(hist >= n - 1)[0]  # positions with n-1 symbols of history
            if len(sel) == 0:
                break
            i0 = pos[sel] - (n - 1)  # where the n-gram ending at the target starts
            cctx = codes[n - 1][i0] if n > 1 else np.zeros(len(sel), dtype=np.uint64)
            ck = self._ctx_keys[n]
            j = np.minimum(np.searchsorted(ck, cctx), len(ck) - 1)
            found = ck[j] == cctx
            sel, i0, j = sel[found], i0[found], j[found]
            tot = self._ctx_tot[n][j].astype(np.float64)
            mass = self._ctx_mass[n][j]
            g = codes[n][i0]
            keys = self._keys[n]
            k = np.minimum(np.searchsorted(keys, g), len(keys) - 1)
            c = np.where(keys[k] == g, self._counts[n][k], 0)
            d = self.discounts3[n][np.minimum(c, 3)]
            p[sel] = np.maximum(c - d, 0.0) / tot + mass / tot * p[sel]
        return p, starts

    def logprob_many(self, seqs: Sequence[Sequence[Hashable]], skip_first: int = 0) -> float:
        """Sum of :meth:`logprob` over ``seqs``, leaving out the first ``skip_first`` symbols of each."""
        seqs = [_as_list_or_str(s) for s in seqs]
        p, starts = self._position_probs(seqs)
        if len(p) == 0:
            return 0.0
        lp = np.log(p)
        if skip_first:
            keep = np.ones(len(p), dtype=bool)
            for s, q in zip(starts, seqs, strict=False):
                keep[s : s + min(skip_first, len(q))] = False
            lp = lp[keep]
        return float(lp.sum())


class CharKneserNey(KneserNey):
    """Interpolated Kneser-Ney character n-gram model for text."""

    def __init__(
        self, order: int = 7, discount: float | None = None, modified: bool = False, verbose: bool = False
    ) -> None:
        super().__init__(order=order, discount=discount, modified=modified, verbose=verbose)

    def fit(self, texts: list[str]) -> CharKneserNey:
        if isinstance(texts, str):
            texts = [texts]
        super().fit([str(t) for t in texts])
        return self

    def bits_per_char(self, texts: list[str]) -> float:
        """Total nats over ``texts`` ÷ characters ÷ ln 2 (each text scored from its own start)."""
        if isinstance(texts, str):
            texts = [texts]
        chars = sum(len(t) for t in texts)
        if chars == 0:
            raise DataError("No characters to score")
        return -self.logprob_many(texts) / chars / math.log(2)


# --------------------------------------------------------------------------------------------
# Baselines on the prepared corpora
# --------------------------------------------------------------------------------------------


def _read_split(folder: Path, split: str) -> list[str]:
    files = sorted((folder / split).glob("*.txt"))
    texts = [f.read_text(encoding="utf-8") for f in files]
    texts = [t for t in texts if t]
    if not texts:
        raise DataError(f"No non-empty .txt files in {folder / split}")
    return texts


def text_baseline(
    data_dir: str | Path = TEXT_DIR, order: int = 7, verbose: bool = True, modified: bool = False
) -> dict:
    """Character KN n-gram trained on ``data_dir/train/*.txt``, scored in bits/char on valid and test.

    The uniform floor covers the characters of all three splits + 1."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataError(f"Text folder not found: {folder}")
    t0 = time.time()
    train, valid = _read_split(folder, "train"), _read_split(folder, "valid")
    test = _read_split(folder, "test") if (folder / "test").is_dir() else valid
    model = CharKneserNey(order=order, modified=modified, verbose=verbose).fit(train)
    model.extend_vocab(valid + test)
    t1 = time.time()
    test_bpc = model.bits_per_char(test)
    valid_bpc = model.bits_per_char(valid)
    _log(
        f"[kn] order {order}: test {test_bpc:.4f} bits/char, valid {valid_bpc:.4f} "
        f"(fit {t1 - t0:.1f}s, score {time.time() - t1:.1f}s)",
        verbose,
    )
    return {
        "model": f"interpolated {'modified ' if modified else ''}Kneser-Ney character {order}-gram",
        "order": order,
        "test_bits_per_char": test_bpc,
        "valid_bits_per_char": valid_bpc,
        "train_chars": sum(map(len, train)),
        "test_chars": sum(map(len, test)),
        "valid_chars": sum(map(len, valid)),
        "vocab_size": model.vocab_size,
        "discounts": {n: [round(float(x), 4) for x in model.discounts3[n][1:]] for n in range(1, order + 1)},
        "seconds": round(time.time() - t0, 1),
    }


def melody_nats_per_note(model: KneserNey, tunes: list[list[int]], notes: int) -> float:
    """Nats of every token after each tune's first (``<bos>``) token ÷ notes."""
    if notes <= 0:
        raise DataError("No notes to score")
    return -model.logprob_many(tunes, skip_first=1) / notes


def melody_baseline(
    data_dir: str | Path = MELODY_DIR,
    orders: Iterable[int] = range(2, 9),
    verbose: bool = True,
    cache_dir: str | Path | None = None,
) -> dict:
    """Token KN n-gram on the melody tokens (no transposition augmentation), order chosen on valid."""

    t0 = time.time()
    data = melody_data(data_dir, augment=False, cache_dir=cache_dir)
    tok = data.tokenizer
    train = split_tunes(data.train_stream(0), tok.start_ids)
    valid = split_tunes(data.valid, tok.start_ids)
    test = split_tunes(data.test, tok.start_ids)
    orders = list(orders)
    if not orders:
        raise SettingsError("orders must not be empty")
    scores: dict[int, float] = {}
    models: dict[int, KneserNey] = {}
    for n in orders:
        m = KneserNey(order=int(n), vocab_size=tok.vocab_size).fit(train)
        scores[int(n)] = melody_nats_per_note(m, valid, data.valid_units)
        models[int(n)] = m
        _log(f"[kn] melody order {n}: valid {scores[int(n)]:.4f} nats/note", verbose)
    best = min(scores, key=lambda k: (scores[k], k))
    test_npn = melody_nats_per_note(models[best], test, data.test_units)
    _log(f"[kn] melody best order {best}: test {test_npn:.4f} nats/note ({time.time() - t0:.1f}s)", verbose)
    return {
        "model": "interpolated Kneser-Ney token n-gram",
        "order": best,
        "valid_nats_per_note": scores,
        "test_nats_per_note": test_npn,
        "train_tunes": len(train),
        "valid_notes": data.valid_units,
        "test_notes": data.test_units,
        "train_tokens": sum(map(len, train)),
        "seconds": round(time.time() - t0, 1),
    }


def baseline_report(what: str, order: int | None = None, data: str | None = None) -> dict:
    """The n-gram floor for ``what``: a domain name, or a checkpoint directory (its config.json
    domain, and its card.json's data folder unless ``data`` is given)."""
    DOMAINS = all_domains()
    what = str(what)
    if what in DOMAINS:
        return get_domain(what).baseline(data, order)

    if not (Path(what) / "config.json").is_file():
        raise SettingsError(
            f"{what!r} is neither a domain ({', '.join(DOMAINS)}) nor a checkpoint directory with a config.json"
        )
    domain = domain_of(read_config(what), Path(what))
    if data is None:
        recorded = (read_card(what).get("data") or {}).get("data")
        data = repo_path(recorded) if recorded else None  # cards record folders relative to the repository
    return domain.baseline(data, order)
