"""Named arrays sharing one growable leading axis, for the standing index.

Appending ``m`` rows costs amortised O(m): capacity doubles when it runs out, so a stream of
single-record appends copies each row a constant number of times on average. ``column(name)``
is a view of the filled prefix, valid until the next append or compaction.
"""

from __future__ import annotations

import numpy as np

from .errors import CoreError

__all__ = ["Columns"]

MIN_CAPACITY = 16


class Columns:
    """Arrays of shapes ``(n, *tail)`` that grow together; ``n`` is the number of rows filled."""

    def __init__(self, specs: dict[str, tuple[tuple[int, ...], type]]) -> None:
        self.n = 0
        self._arrays: dict[str, np.ndarray] = {
            name: np.zeros((0, *tail), dtype=dtype) for name, (tail, dtype) in specs.items()
        }

    def column(self, name: str) -> np.ndarray:
        """The filled rows of ``name`` (a writable view)."""
        return self._arrays[name][: self.n]

    def append(self, **values: np.ndarray) -> slice:
        """Append rows (every column given, equal lengths); returns the new rows' span."""
        if set(values) != set(self._arrays):
            raise CoreError(f"append needs exactly the columns {sorted(self._arrays)}")
        m = len(next(iter(values.values())))
        need = self.n + m
        capacity = len(next(iter(self._arrays.values())))
        if need > capacity:
            capacity = max(need, 2 * capacity, MIN_CAPACITY)
            for name, old in self._arrays.items():
                new = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
                new[: self.n] = old[: self.n]
                self._arrays[name] = new
        span = slice(self.n, need)
        for name, arr in self._arrays.items():
            arr[span] = values[name]
        self.n = need
        return span

    def keep(self, mask: np.ndarray) -> None:
        """Compact in place to the rows where ``mask`` (bool, shape (n,)) is True, in order."""
        m = int(np.count_nonzero(mask))
        for arr in self._arrays.values():
            arr[:m] = arr[: self.n][mask]
        self.n = m
