"""Bloom-filter encodings held in memory as packed ``uint64`` words with their popcounts.

The wire and storage layout is bytes packed big-endian by byte (``np.packbits`` order), row-major:
record ``i`` is bytes ``[i*L/8, (i+1)*L/8)``. In memory each record becomes ``L/64`` ``uint64``
words. The byte order inside a word is whatever the machine uses: every consumer only ANDs words
of two records with the same layout and counts bits, which no byte permutation changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linkage_service.core.errors import BitLengthError, CoreError

__all__ = ["WORD_BITS", "BitMatrix", "from_packed"]

WORD_BITS = 64
BYTE_BITS = 8


@dataclass(frozen=True, eq=False)
class BitMatrix:
    """``n`` bit vectors of ``n_bits`` bits each.

    Attributes:
        words: ``np.uint64``, shape ``(n, n_bits // 64)``, C-contiguous, read-only.
        popcounts: ``np.int64``, shape ``(n,)``: the number of set bits of each row.
        n_bits: the filter length ``L`` in bits, a positive multiple of 64.
    """

    words: np.ndarray
    popcounts: np.ndarray
    n_bits: int

    def __post_init__(self) -> None:
        check_n_bits(self.n_bits)
        n_words = self.n_bits // WORD_BITS
        if self.words.dtype != np.uint64 or self.words.ndim != 2:
            raise CoreError(
                f"words must be a 2-D uint64 array, got {self.words.dtype} "
                f"with {self.words.ndim} dimensions"
            )
        if self.words.shape[1] != n_words or not self.words.flags.c_contiguous:
            raise BitLengthError(
                f"words must be C-contiguous with {n_words} columns for "
                f"{self.n_bits}-bit filters, got shape {self.words.shape}"
            )
        if self.popcounts.shape != (self.words.shape[0],):
            raise CoreError(
                f"popcounts has shape {self.popcounts.shape}, expected ({self.words.shape[0]},)"
            )

    @property
    def n(self) -> int:
        """The number of records (rows)."""
        return int(self.words.shape[0])


def check_n_bits(n_bits: int) -> None:
    """Raise ``BitLengthError`` unless ``n_bits`` is a positive multiple of 64."""
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)):
        raise BitLengthError(
            f"filter length must be an int, a positive multiple of {WORD_BITS} bits, got {n_bits!r}"
        )
    if n_bits <= 0 or n_bits % WORD_BITS:
        raise BitLengthError(
            f"filter length must be a positive multiple of {WORD_BITS} bits, got {n_bits}"
        )


def from_packed(packed: np.ndarray, n_bits: int) -> BitMatrix:
    """Build a ``BitMatrix`` from packed bytes.

    Args:
        packed: ``np.uint8`` of shape ``(n, n_bits // 8)``, or a flat 1-D ``np.uint8`` buffer of
            ``n * n_bits // 8`` bytes; big-endian by byte, row-major. ``n`` may be 0.
        n_bits: filter length in bits, a positive multiple of 64.

    Raises:
        BitLengthError: ``n_bits`` is not a positive multiple of 64, or the byte count does not
            match it.
        CoreError: ``packed`` is not a 1-D or 2-D ``uint8`` array.
    """
    check_n_bits(n_bits)
    packed = np.asarray(packed)
    if packed.dtype != np.uint8:
        raise CoreError(f"packed encodings must be uint8, got {packed.dtype}")
    n_bytes = int(n_bits) // BYTE_BITS
    if packed.ndim == 2:
        if packed.shape[1] != n_bytes:
            raise BitLengthError(
                f"each row has {packed.shape[1]} bytes "
                f"({packed.shape[1] * BYTE_BITS} bits) but n_bits is {n_bits} "
                f"({n_bytes} bytes)"
            )
        n = packed.shape[0]
    elif packed.ndim == 1:
        if packed.size % n_bytes:
            raise BitLengthError(
                f"a buffer of {packed.size} bytes is not a whole number of "
                f"{n_bits}-bit ({n_bytes}-byte) records"
            )
        n = packed.size // n_bytes
    else:
        raise CoreError(f"packed encodings must be 1-D or 2-D, got {packed.ndim} dimensions")
    # A fresh, aligned, owned array: the caller's buffer may be unaligned (wire data) or mutable.
    words = np.empty((n, n_bytes // 8), dtype=np.uint64)
    words.view(np.uint8).reshape(n, n_bytes)[...] = packed.reshape(n, n_bytes)
    popcounts = np.bitwise_count(words).sum(axis=1, dtype=np.int64)
    words.flags.writeable = False
    popcounts.flags.writeable = False
    return BitMatrix(words=words, popcounts=popcounts, n_bits=int(n_bits))
