"""Fitting an interpolated Kneser-Ney model: the n-gram counts of every order, their continuation counts and
discounts, kept as sorted integer codes for fast look-ups."""

from __future__ import annotations

import sys
import time
from collections.abc import Hashable, Iterable, Sequence
from typing import Self

import numpy as np

from genmodels.core.errors import DataError, SettingsError

_M64 = (1 << 64) - 1


_HASH_BASE = np.uint64(0x100000001B3)  # FNV-1 64-bit prime, used when n-grams do not fit exactly


def _log(msg: str, verbose: bool) -> None:
    if verbose:
        print(msg, file=sys.stderr, flush=True)


def _as_list(seq) -> list:
    if isinstance(seq, str):
        return list(seq)
    if hasattr(seq, "tolist"):  # numpy arrays, torch tensors
        return list(seq.tolist())
    return list(seq)


def _as_list_or_str(seq):
    return seq if isinstance(seq, str) else _as_list(seq)


class KneserNeyCounts:
    """Counting and discounting: the half of ``KneserNey`` that fits it."""

    # ----- packing n-grams into uint64 ----------------------------------------------------------
    def _setup_codes(self) -> None:
        n_ids = len(self.symbols) + 1  # + unknown
        self._exact = n_ids**self.order <= _M64 + 1
        if self._exact:
            self._base = np.uint64(n_ids)
            self._sym_code = np.arange(n_ids, dtype=np.uint64)
        else:  # hash: pseudo-random 64-bit code per symbol, polynomial rolling hash (collisions ~n²/2^64)
            rng = np.random.default_rng(12345)
            self._base = _HASH_BASE
            self._sym_code = rng.integers(1, 2**63, size=n_ids, dtype=np.int64).astype(np.uint64)

    def _grams(self, ids: np.ndarray, starts: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """codes[n][i] = code of the n-gram ids[i:i+n] (n = 1..order, index 0 unused) for the whole
        concatenated array, and hist[i] = how many symbols of the same sequence precede position i."""
        L = len(ids)
        seq_of = np.zeros(L, dtype=np.int64)
        if len(starts) > 1:
            marks = np.zeros(L, dtype=np.int64)
            marks[starts[1:]] = 1
            seq_of = np.cumsum(marks)
        hist = np.arange(L, dtype=np.int64) - starts[seq_of]
        codes: list[np.ndarray] = [np.empty(0, dtype=np.uint64)]
        cur = self._sym_code[ids]
        codes.append(cur)
        with np.errstate(over="ignore"):
            for n in range(2, self.order + 1):
                nxt = np.zeros(L, dtype=np.uint64)
                if L >= n:
                    nxt[: L - n + 1] = cur[: L - n + 1] * self._base + self._sym_code[ids[n - 1 :]]
                codes.append(nxt)
                cur = nxt
        return codes, hist

    def _concat(self, seqs: Iterable[Sequence[Hashable]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = [self._ids(s) for s in seqs]
        lens = np.array([len(p) for p in parts], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64) if len(parts) else np.zeros(0, np.int64)
        ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return ids, starts, lens

    # ----- training -----------------------------------------------------------------------------
    def fit(self, seqs: Iterable[Sequence[Hashable]]) -> Self:
        """Count every n-gram of ``seqs`` (n-grams never cross from one sequence into the next)."""
        t0 = time.time()
        seqs = [s for s in (_as_list_or_str(x) for x in seqs) if len(s)]
        if not seqs:
            raise DataError("Cannot fit an n-gram model on no data (all sequences are empty)")
        self._learn_symbols(seqs)
        self._setup_codes()
        ids, starts, lens = self._concat(seqs)
        codes, _ = self._grams(ids, starts)
        _log(
            f"[kn] {len(ids):,} symbols in {len(seqs)} sequences, {len(self.symbols)} distinct; order {self.order}"
            f" ({'exact' if self._exact else 'hashed'} n-gram codes)",
            self.verbose,
        )
        # Tables per order n: sorted n-gram codes + counts, sorted context codes + totals/types.
        self._keys: list[np.ndarray] = [np.empty(0, np.uint64)] * (self.order + 1)
        self._counts: list[np.ndarray] = [np.empty(0, np.int64)] * (self.order + 1)
        self._ctx_keys: list[np.ndarray] = [np.empty(0, np.uint64)] * (self.order + 1)
        self._ctx_tot: list[np.ndarray] = [np.empty(0, np.int64)] * (self.order + 1)
        self._ctx_mass: list[np.ndarray] = [np.empty(0, np.float64)] * (self.order + 1)
        self.discounts = [0.0] * (self.order + 1)
        self.discounts3: list[np.ndarray] = [np.zeros(4)] * (self.order + 1)
        for n in range(self.order, 0, -1):
            keys, counts, rep = self._order_counts(n, codes, starts, lens)
            self._store_order(n, keys, counts, rep, codes)
            _log(
                f"[kn] order {n}: {len(keys):,} n-grams, {len(self._ctx_keys[n]):,} contexts, "
                f"D={np.round(self.discounts3[n][1:], 3)} ({time.time() - t0:.1f}s)",
                self.verbose,
            )
        self._fitted = True
        return self

    def _learn_symbols(self, seqs: list) -> None:
        """The training symbols in a fixed order, and the fast lookup for single characters."""
        if all(isinstance(s, str) for s in seqs):
            self.symbols = sorted(set().union(*(set(s) for s in seqs)))
        else:
            syms: set = set()
            for s in seqs:
                syms.update(_as_list(s))
            try:
                self.symbols = sorted(syms)
            except TypeError:  # mixed types: any fixed order will do
                self.symbols = sorted(syms, key=repr)
        self._char_cps = None
        self._char_ids = None
        if all(isinstance(x, str) and len(x) == 1 for x in self.symbols):
            self._char_cps = np.array([ord(c) for c in self.symbols], dtype=np.int64)
            self._char_ids = np.arange(len(self.symbols), dtype=np.int64)
        self._index = {x: i for i, x in enumerate(self.symbols)}
        if self._vocab_size is not None and self._vocab_size < len(self.symbols):
            raise SettingsError(
                f"vocab_size {self._vocab_size} is smaller than the {len(self.symbols)} symbols seen in training"
            )

    def _order_counts(
        self, n: int, codes: list[np.ndarray], starts: np.ndarray, lens: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sorted n-gram codes, their counts, a position where each starts) for order ``n``: raw
        counts at the highest order, continuation counts below it (distinct left neighbours, +1 for
        "starts a sequence")."""
        pos = np.arange(len(codes[1]), dtype=np.int64)
        end_of = np.repeat(starts + lens, lens)  # end index of each position's sequence
        if n == self.order:
            valid = pos + n <= end_of
            keys, first, counts = np.unique(codes[n][valid], return_index=True, return_counts=True)
            return keys, counts.astype(np.int64), pos[valid][first]
        valid_up = pos + n + 1 <= end_of
        _, first_up = np.unique(codes[n + 1][valid_up], return_index=True)
        left_pos = pos[valid_up][first_up] + 1  # where the suffix n-gram starts
        bos_pos = starts[lens >= n]
        _, first_bos = np.unique(codes[n][bos_pos], return_index=True)
        all_pos = np.concatenate([left_pos, bos_pos[first_bos]])
        keys, first, counts = np.unique(codes[n][all_pos], return_index=True, return_counts=True)
        return keys, counts.astype(np.int64), all_pos[first]

    def _order_discounts(self, counts: np.ndarray) -> tuple[float, np.ndarray]:
        """D for an order from its count-of-counts, and the discount by count (0, 1, 2, 3+)."""
        nk = [int((counts == k).sum()) for k in range(5)]
        if self.fixed_discount is not None:
            d = self.fixed_discount
        else:
            d = nk[1] / (nk[1] + 2 * nk[2]) if nk[1] > 0 and nk[2] > 0 else 0.5
            d = min(max(d, 0.05), 0.95)
        d3 = np.array([0.0, d, d, d])
        if self.modified and nk[1] and nk[2] and nk[3] and nk[4]:  # Chen & Goodman's D1, D2, D3+
            d3 = np.array([0.0, 1 - 2 * d * nk[2] / nk[1], 2 - 3 * d * nk[3] / nk[2], 3 - 4 * d * nk[4] / nk[3]])
            d3 = np.clip(d3, [0.0, 0.05, 0.05, 0.05], [0.0, 0.95, 1.95, 2.95])
        return d, d3

    def _store_order(
        self, n: int, keys: np.ndarray, counts: np.ndarray, rep: np.ndarray, codes: list[np.ndarray]
    ) -> None:
        """The tables of order ``n``: n-grams, their contexts' totals and backoff mass, discounts."""
        self._keys[n], self._counts[n] = keys, counts
        # contexts: the (n-1)-gram in front of each n-gram (one empty context at n = 1)
        ctx = codes[n - 1][rep] if n > 1 else np.zeros(len(keys), dtype=np.uint64)
        ck, inv = np.unique(ctx, return_inverse=True)
        self._ctx_keys[n] = ck
        self._ctx_tot[n] = np.bincount(inv, weights=counts, minlength=len(ck)).astype(np.int64)
        self.discounts[n], self.discounts3[n] = self._order_discounts(counts)
        # backoff mass numerator per context: sum over its continuations of the discount taken off
        self._ctx_mass[n] = np.bincount(inv, weights=self.discounts3[n][np.minimum(counts, 3)], minlength=len(ck))
