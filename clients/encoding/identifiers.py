"""Keyed exact tokens for identifier fields (NHS number), computed a column at a time.

A valid identifier becomes a 64-bit keyed BLAKE3 token (0 = absent); only numbers that pass their
check are used, so a typo cannot claim a disagreement. NHS numbers in the common shapes (ten
digits, possibly spaced or hyphenated) are validated with numpy; anything else goes through the
scalar :func:`clients.encoding.normalise.normalise_nhs_number`, which is also the reference the
vectorised check is tested against.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import blake3
import numpy as np

from .normalise import normalise_nhs_number

__all__ = ["IdentifierColumn", "nhs_numbers_vectorised"]

_NHS_WEIGHTS = np.arange(10, 1, -1, dtype=np.int64)
_STATUS = ("missing", "invalid", "valid")
MISSING, INVALID, VALID = 0, 1, 2


def nhs_numbers_vectorised(raws: Sequence[str]) -> tuple[list[str | None], np.ndarray]:
    """(normalised value or None, status code int8) for each raw NHS number."""
    cleaned = [r.replace(" ", "").replace("-", "") for r in raws]
    fast = [i for i, c in enumerate(cleaned) if len(c) == 10 and c.isascii() and c.isdigit()]
    values: list[str | None] = [None] * len(raws)
    status = np.full(len(raws), -1, dtype=np.int8)
    if fast:
        digits = (
            np.frombuffer("".join(cleaned[i] for i in fast).encode(), dtype=np.uint8)
            .reshape(-1, 10)
            .astype(np.int64)
            - 48
        )
        check = 11 - (digits[:, :9] @ _NHS_WEIGHTS) % 11
        check = np.where(check == 11, 0, check)
        same = (digits == digits[:, :1]).all(axis=1)
        ok = (check != 10) & (check == digits[:, 9]) & ~same
        status[fast] = np.where(ok, VALID, INVALID)
        for i in np.asarray(fast)[ok].tolist():
            values[i] = cleaned[i]
    for i in np.flatnonzero(status < 0).tolist():
        result = normalise_nhs_number(raws[i])
        status[i] = _STATUS.index(result.status)
        values[i] = result.value
    return values, status


class IdentifierColumn:
    """Tokens for one identifier field, with each distinct raw value handled once per run."""

    def __init__(
        self, key: bytes, validate: Callable[[Sequence[str]], tuple[list[str | None], np.ndarray]]
    ) -> None:
        self._key, self._validate = key, validate
        self._index: dict[str, int] = {"": 0}
        self._tokens = np.zeros(1, dtype=np.uint64)
        self._status = np.full(1, MISSING, dtype=np.int64)

    def tokens(self, column: Sequence[str] | None, n: int, counts: Counter[str]) -> np.ndarray:
        """uint64 (n,) tokens; ``counts`` gains the valid / invalid / missing tally."""
        if column is None:
            counts["missing"] += n
            return np.zeros(n, dtype=np.uint64)
        index = self._index
        try:
            rows = np.fromiter(map(index.__getitem__, column), dtype=np.int64, count=n)
        except KeyError:
            self._add([v for v in dict.fromkeys(column) if v not in index])
            rows = np.fromiter(map(index.__getitem__, column), dtype=np.int64, count=n)
        tally = np.bincount(self._status[rows], minlength=3)
        for code, name in enumerate(_STATUS):
            counts[name] += int(tally[code])
        return self._tokens[rows]

    def _add(self, raws: list[str]) -> None:
        values, status = self._validate(raws)
        start = len(self._tokens)
        self._index.update(zip(raws, range(start, start + len(raws)), strict=True))
        fresh = np.zeros(len(values), dtype=np.uint64)
        valid = [i for i, v in enumerate(values) if v is not None]
        if valid:
            key = self._key
            digests = b"".join(
                [blake3.blake3(values[i].encode(), key=key).digest(length=8) for i in valid]  # type: ignore[union-attr]
            )
            tokens = np.frombuffer(digests, dtype="<u8").astype(np.uint64)
            tokens[tokens == 0] = 1  # 0 is reserved for "absent"
            fresh[valid] = tokens
        self._tokens = np.concatenate([self._tokens, fresh])
        self._status = np.concatenate([self._status, status.astype(np.int64)])
