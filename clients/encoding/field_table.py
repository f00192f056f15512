"""Per-field tables of distinct values and their Bloom-filter bits.

Each distinct raw value of a field is normalised, tokenised and hashed once per run; its bits are
kept as one packed row. A record's filter is then the OR of one row per field, gathered with
numpy: the per-record cost is a dictionary lookup per field and a few vector operations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import blake3
import numpy as np

__all__ = ["FieldTable", "SlotHasher", "pack_positions"]

_POSITION_BYTES = 4
_PACK_BLOCK_ROWS = 2048  # 2 MiB of bools at 1024 bits: fits in cache, amortises the loop
MISSING = 0  # row 0 of every table is the empty filter: the value was missing or unusable


def pack_positions(
    owner: np.ndarray, positions: np.ndarray, n_rows: int, n_bits: int
) -> np.ndarray:
    """uint64 (n_rows, n_bits // 64), bytes big-endian by bit: row ``owner[t]`` has the bits
    ``positions[t, :]`` set, for every token t.

    ``owner`` is int64 (n_tokens,), non-decreasing; ``positions`` uint32 (n_tokens, weight).
    Rows are set in a bool buffer of _PACK_BLOCK_ROWS rows that stays in cache and is packed
    block by block (measured: 2-5x faster than ``bitwise_or.at`` on packed bytes, and than
    OR-ing gathered per-token rows, for 6k-41k values)."""
    out = np.empty((n_rows, n_bits // 8), dtype=np.uint8)
    block = min(_PACK_BLOCK_ROWS, max(n_rows, 1))
    buffer = np.zeros(block * n_bits, dtype=bool)
    bounds = np.searchsorted(owner, np.arange(0, n_rows + block, block))
    for first in range(0, n_rows, block):
        rows = min(block, n_rows - first)
        lo, hi = bounds[first // block], bounds[first // block + 1]
        buffer[: rows * n_bits] = False
        buffer[((owner[lo:hi] - first)[:, None] * n_bits + positions[lo:hi]).ravel()] = True
        out[first : first + rows] = np.packbits(buffer[: rows * n_bits].reshape(rows, n_bits), 1)
    return out.view(np.uint64)


class SlotHasher:
    """Token -> bit positions under one slot key; every distinct token is hashed once.

    A token's positions are the first ``weight`` little-endian 32-bit words of its keyed BLAKE3
    output, each modulo the filter length, so fields that share a slot with different weights
    agree on a prefix of positions."""

    def __init__(self, key: bytes, weight: int, n_bits: int) -> None:
        self._key, self._weight, self._n_bits = key, weight, n_bits
        self._length = weight * _POSITION_BYTES
        self._ids: dict[str, int] = {}
        self._pending = bytearray()
        self._table = np.zeros((0, weight), dtype=np.uint32)  # capacity; rows past _hashed unused
        self._hashed = 0

    @property
    def distinct_tokens(self) -> int:
        return len(self._ids)

    def ids_of(self, tokens: list[str]) -> np.ndarray:
        """int64 ids of a flat token list, hashing each token not seen before.

        Distinct tokens are found with a C-level dict pass, so the Python loop runs once per
        new distinct token, not once per occurrence."""
        ids = self._ids
        fresh = [t for t in dict.fromkeys(tokens) if t not in ids]
        if fresh:
            start = len(ids)
            ids.update(zip(fresh, range(start, start + len(fresh)), strict=True))
            key, length = self._key, self._length
            self._pending += b"".join(
                [blake3.blake3(t.encode(), key=key).digest(length=length) for t in fresh]
            )
        return np.fromiter(map(ids.__getitem__, tokens), dtype=np.int64, count=len(tokens))

    def positions(self) -> np.ndarray:
        """uint32 (n_tokens, weight): positions of every token seen so far."""
        if self._pending:
            fresh = np.frombuffer(bytes(self._pending), dtype="<u4").reshape(-1, self._weight)
            self._pending.clear()
            needed = self._hashed + len(fresh)
            if needed > len(self._table):  # grow by doubling: one chunk's tokens must not copy all
                grown = np.empty((max(needed, 2 * len(self._table)), self._weight), np.uint32)
                grown[: self._hashed] = self._table[: self._hashed]
                self._table = grown
            self._table[self._hashed : needed] = fresh % np.uint32(self._n_bits)
            self._hashed = needed
        return self._table[: self._hashed]


class FieldTable:
    """Distinct raw values of one field -> row index; row -> packed filter bits (uint64 words)."""

    def __init__(
        self,
        tokenise: Callable[[str], tuple[str, ...] | None],
        hasher: SlotHasher,
        weight: int,
        n_bits: int,
    ) -> None:
        self._tokenise, self._hasher, self._weight, self._n_bits = tokenise, hasher, weight, n_bits
        self._index: dict[str, int] = {}
        self._rows = np.zeros((1, n_bits // 64), dtype=np.uint64)
        self._used = 1
        self._saturated = False

    @property
    def distinct_values(self) -> int:
        return len(self._index)

    def lookup(self, column: Sequence[str] | None, n: int) -> np.ndarray:
        """int64 (n,): the row of each value (MISSING for blank or unusable values)."""
        if column is None:
            return np.zeros(n, dtype=np.int64)
        index = self._index
        if self._saturated:  # the last chunk brought nothing new: try one C-level pass
            try:
                return np.fromiter(map(index.__getitem__, column), dtype=np.int64, count=n)
            except KeyError:
                pass
        new = [v for v in dict.fromkeys(column) if v not in index]
        self._saturated = not new
        self._add(new)
        return np.fromiter(map(index.__getitem__, column), dtype=np.int64, count=n)

    def bits(self, rows: np.ndarray) -> np.ndarray:
        """uint64 (len(rows), n_bits // 64)."""
        return self._rows[rows]

    def _add(self, raws: Sequence[str]) -> None:
        tokenise = self._tokenise
        tokenised = [tokenise(raw) if raw and not raw.isspace() else None for raw in raws]
        present = np.fromiter(map(bool, tokenised), dtype=bool, count=len(tokenised))
        rows = np.where(present, self._used - 1 + np.cumsum(present), MISSING)
        self._index.update(zip(raws, rows.tolist(), strict=True))
        token_lists = [tokens for tokens in tokenised if tokens]
        if token_lists:
            self._append(token_lists)  # type: ignore[arg-type]

    def _append(self, token_lists: list[tuple[str, ...]]) -> None:
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        ids = self._hasher.ids_of([t for tokens in token_lists for t in tokens])
        positions = self._hasher.positions()[ids, : self._weight]
        owner = np.repeat(np.arange(len(token_lists)), lengths)
        packed = pack_positions(owner, positions, len(token_lists), self._n_bits)
        needed = self._used + len(token_lists)
        if needed > self._rows.shape[0]:
            grown = np.zeros(
                (max(needed, 2 * self._rows.shape[0]), self._rows.shape[1]), dtype=np.uint64
            )
            grown[: self._used] = self._rows[: self._used]
            self._rows = grown
        self._rows[self._used : needed] = packed
        self._used = needed
