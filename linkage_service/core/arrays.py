"""Validation shared by the core's public functions: one place for index-array rules."""

from __future__ import annotations

import numpy as np

from .errors import CoreError

__all__ = ["INT64_MAX", "as_index_array"]

INT64_MAX = np.iinfo(np.int64).max


def as_index_array(name: str, values: np.ndarray, upper: int | None = None) -> np.ndarray:
    """``values`` as a 1-D int64 array of indices >= 0 (and < ``upper`` if given).

    Raises CoreError naming ``name`` for another shape, a non-integer dtype, a negative value,
    a value at or above ``upper``, or a uint64 value that would wrap when cast to int64."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise CoreError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise CoreError(f"{name} must hold integers (indices), got dtype {arr.dtype}")
    if arr.min() < 0:
        raise CoreError(f"{name} holds a negative index ({arr.min()})")
    if upper is not None and arr.max() >= upper:
        raise CoreError(f"{name} holds index {arr.max()}, but there are only {upper} nodes")
    if arr.max() > INT64_MAX:
        raise CoreError(f"{name} holds an index above the int64 range ({arr.max()})")
    return arr.astype(np.int64, copy=False)
