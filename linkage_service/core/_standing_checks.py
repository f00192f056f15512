"""Input checks of the standing index; every error names the problem."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .arrays import INT64_MAX
from .bitmatrix import BitMatrix
from .errors import BitLengthError, CoreError

__all__ = ["as_keys", "check_saved_state", "checked_records"]


def as_keys(keys: np.ndarray, name: str = "keys") -> np.ndarray:
    """``keys`` as a 1-D int64 array (any integer dtype that fits)."""
    arr = np.asarray(keys)
    if arr.ndim != 1:
        raise CoreError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind not in "iu":
        raise CoreError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.max() > INT64_MAX:
        raise CoreError(f"{name}: {arr.max()} is above the int64 range")
    return arr.astype(np.int64, copy=False)


def checked_records(
    keys: np.ndarray,
    matrix: BitMatrix,
    identifiers: np.ndarray,
    n_bits: int,
    n_identifiers: int,
    last_key: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(keys int64 (n,), identifiers uint64 (n, k)) of a batch, after checking the filters'
    length is the index's, the shapes agree and the keys are new and strictly increasing."""
    if not isinstance(matrix, BitMatrix):
        raise CoreError(f"matrix must be a BitMatrix, got {type(matrix).__name__}")
    if matrix.n_bits != n_bits:
        raise BitLengthError(
            f"batch filters have {matrix.n_bits} bits but the index holds {n_bits}-bit filters"
        )
    ids = np.asarray(identifiers)
    if ids.dtype != np.uint64 or ids.shape != (matrix.n, n_identifiers):
        raise CoreError(
            f"identifiers must be uint64 of shape ({matrix.n}, {n_identifiers}), "
            f"got {ids.dtype} of shape {ids.shape}"
        )
    arr = as_keys(keys)
    if arr.shape != (matrix.n,):
        raise CoreError(f"{matrix.n} filters but {arr.size} keys")
    if arr.size and (np.diff(arr) <= 0).any():
        i = int(np.argmax(np.diff(arr) <= 0))
        raise CoreError(
            f"keys must be unique and strictly increasing: key {arr[i + 1]} follows {arr[i]}"
        )
    if arr.size and last_key is not None and arr[0] <= last_key:
        raise CoreError(
            f"keys must be unique and increase over time: key {arr[0]} is not above the "
            f"last key added ({last_key})"
        )
    return arr, ids


def check_saved_state(
    names: Sequence[str],
    keys: np.ndarray,
    labels: np.ndarray,
    links: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    n_named: int,
) -> np.ndarray:
    """Labels int64 (n,) of a state to restore, after checking that the first ``n_named`` of
    ``names`` (the records' agencies; the rest: the saved order) are one per record, every name
    is a non-empty str, there is one label per record and every link joins two of the records
    with the same label."""
    labels = as_keys(labels, "labels")
    if n_named != keys.size or labels.size != keys.size:
        raise CoreError(f"{keys.size} records but {n_named} agencies and {labels.size} labels")
    if not all(isinstance(a, str) and a for a in names):
        raise CoreError("agency names must be non-empty str")
    if len(links) != 4 or len({np.shape(col) for col in links}) != 1:
        raise CoreError("links must be four arrays of one shape: key_a, key_b, decision, score")
    ends = [as_keys(links[0], "key_a"), as_keys(links[1], "key_b")]
    at = [np.minimum(np.searchsorted(keys, e), max(keys.size - 1, 0)) for e in ends]
    for e, pos in zip(ends, at, strict=True):
        if e.size and (keys.size == 0 or (keys[pos] != e).any()):
            raise CoreError("a restored link names a key that is not among the records")
    if (labels[at[0]] != labels[at[1]]).any():
        raise CoreError("a restored link joins records with different component labels")
    return labels
