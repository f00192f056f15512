"""The encoded-batch file: what an agency's `linkage encode` writes and `linkage link` reads.

Format ``linkage-encoded/1`` is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, read with
``allow_pickle=False`` so loading it cannot run code) holding exactly these members:

``meta``
    0-d unicode array holding a JSON object: ``format``, ``agency``, ``schema_name``,
    ``schema_fingerprint``, ``key_check`` (hex), ``filter_bits``, ``record_count``,
    ``identifier_names`` (list) and ``report`` (the encode report: rows read, encoded,
    rows skipped by reason, invalid identifiers, the first 1,000 problems as line and reason;
    no field values but a duplicated record reference).
``record_ids``
    unicode array, shape (n,): the agency's opaque record references, unique.
``bits``
    uint8 array, shape (n, filter_bits / 8): Bloom filters packed big-endian by byte, row-major
    (record i is bytes [i*L/8, (i+1)*L/8) of the flattened array). This is the wire layout.
``identifiers``
    uint64 array, shape (n, len(identifier_names)): keyed exact tokens of validated identifiers
    (e.g. NHS number); 0 means absent or invalid.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EncodedFileError

__all__ = [
    "FORMAT",
    "EncodedBatch",
    "check_compatible",
    "read_encoded",
    "valid_agency_name",
    "write_encoded",
]

FORMAT = "linkage-encoded/1"
_MEMBERS = {"meta", "record_ids", "bits", "identifiers"}
_META_TYPES: dict[str, type | tuple[type, ...]] = {
    "agency": str,
    "schema_name": str,
    "schema_fingerprint": str,
    "key_check": str,
    "filter_bits": int,
    "record_count": int,
    "identifier_names": list,
    "report": dict,
}
_META_KEYS = {
    "format",
    "agency",
    "schema_name",
    "schema_fingerprint",
    "key_check",
    "filter_bits",
    "record_count",
    "identifier_names",
    "report",
}


@dataclass(frozen=True)
class EncodedBatch:
    """One agency's encoded records (shapes as in the module docstring)."""

    agency: str
    schema_name: str
    schema_fingerprint: str
    key_check: str
    filter_bits: int
    record_ids: np.ndarray
    bits: np.ndarray
    identifiers: np.ndarray
    identifier_names: tuple[str, ...]
    report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def record_count(self) -> int:
        return int(self.record_ids.shape[0])


def write_encoded(path: str | Path, batch: EncodedBatch) -> None:
    """Write atomically: a reader never sees a half-written file."""
    meta = {
        "format": FORMAT,
        "agency": batch.agency,
        "schema_name": batch.schema_name,
        "schema_fingerprint": batch.schema_fingerprint,
        "key_check": batch.key_check,
        "filter_bits": batch.filter_bits,
        "record_count": batch.record_count,
        "identifier_names": list(batch.identifier_names),
        "report": batch.report,
    }
    target = Path(path)
    tmp = target.with_name(target.name + ".part")
    try:
        with open(tmp, "wb") as out:
            np.savez(
                out,
                meta=np.array(json.dumps(meta)),
                record_ids=batch.record_ids,
                bits=batch.bits,
                identifiers=batch.identifiers,
            )
        tmp.replace(target)
    except OSError as e:
        raise EncodedFileError(f"cannot write {target}: {e.strerror or e}") from e
    finally:
        tmp.unlink(missing_ok=True)


def read_encoded(path: str | Path) -> EncodedBatch:
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise EncodedFileError(f"cannot read encoded file {str(path)!r}: {e.strerror or e}") from e
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            members = set(npz.files)
            if members != _MEMBERS:
                raise EncodedFileError(
                    f"{path}: not a {FORMAT} file (members {sorted(members)}, "
                    f"expected {sorted(_MEMBERS)})"
                )
            arrays = {name: npz[name] for name in _MEMBERS}
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        if isinstance(e, EncodedFileError):
            raise
        raise EncodedFileError(f"{path}: not a {FORMAT} file ({e})") from e
    meta = _parse_meta(arrays["meta"], path)
    if meta["record_count"] != arrays["record_ids"].shape[0]:
        raise EncodedFileError(
            f"{path}: meta says {meta['record_count']} records but the file holds "
            f"{arrays['record_ids'].shape[0]}"
        )
    return EncodedBatch(
        agency=meta["agency"],
        schema_name=meta["schema_name"],
        schema_fingerprint=meta["schema_fingerprint"],
        key_check=meta["key_check"],
        filter_bits=int(meta["filter_bits"]),
        record_ids=arrays["record_ids"],
        bits=arrays["bits"],
        identifiers=arrays["identifiers"],
        identifier_names=tuple(meta["identifier_names"]),
        report=meta["report"],
    )


def check_compatible(batches: list[tuple[str, EncodedBatch]]) -> None:
    """Refuse to compare batches made with different schemas, keys or lengths, or two files
    claiming the same agency; the message names the files and the difference."""
    (first_name, first), rest = batches[0], batches[1:]
    seen = {first.agency: first_name}
    for name, batch in rest:
        for attr, what in (
            ("schema_fingerprint", "schema fingerprint"),
            ("key_check", "key check (encoded with a different secret)"),
            ("filter_bits", "filter length"),
        ):
            mine, theirs = getattr(first, attr), getattr(batch, attr)
            if mine != theirs:
                raise EncodedFileError(
                    f"{name} and {first_name} differ in {what}: {theirs} vs {mine}"
                )
        if batch.agency in seen:
            raise EncodedFileError(
                f"{name} and {seen[batch.agency]} are both from agency {batch.agency!r}; "
                "merge them into one batch"
            )
        seen[batch.agency] = name


def _parse_meta(array: np.ndarray, path: str | Path) -> dict[str, Any]:
    try:
        meta = json.loads(str(array))
    except json.JSONDecodeError as e:
        raise EncodedFileError(f"{path}: meta is not JSON ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise EncodedFileError(f"{path}: format is {found!r}, expected {FORMAT!r}")
    missing = sorted(_META_KEYS - set(meta))
    if missing:
        raise EncodedFileError(f"{path}: meta lacks {', '.join(missing)}")
    for key, kind in _META_TYPES.items():
        value = meta[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise EncodedFileError(f"{path}: meta {key} has the wrong type ({value!r})")
    if not all(isinstance(name, str) for name in meta["identifier_names"]):
        raise EncodedFileError(f"{path}: meta identifier_names must be strings")
    return meta


def valid_agency_name(name: str) -> bool:
    """1-64 printable characters: the rule `linkage encode` applies and readers re-check."""
    return isinstance(name, str) and 0 < len(name) <= 64 and name.isprintable()


def _validate(batch: EncodedBatch) -> None:
    if not valid_agency_name(batch.agency):
        raise EncodedFileError(f"agency name must be 1-64 printable characters: {batch.agency!r}")
    n = batch.record_ids.shape[0] if batch.record_ids.ndim == 1 else -1
    if batch.record_ids.ndim != 1 or batch.record_ids.dtype.kind != "U":
        raise EncodedFileError("record_ids must be a 1-D unicode array")
    if batch.filter_bits <= 0 or batch.filter_bits % 64:
        raise EncodedFileError(
            f"filter_bits must be a positive multiple of 64, got {batch.filter_bits}"
        )
    if batch.bits.dtype != np.uint8 or batch.bits.shape != (n, batch.filter_bits // 8):
        raise EncodedFileError(
            f"bits must be uint8 of shape ({n}, {batch.filter_bits // 8}); got "
            f"{batch.bits.dtype} {batch.bits.shape}"
        )
    width = len(batch.identifier_names)
    if batch.identifiers.dtype != np.uint64 or batch.identifiers.shape != (n, width):
        raise EncodedFileError(
            f"identifiers must be uint64 of shape ({n}, {width}); got "
            f"{batch.identifiers.dtype} {batch.identifiers.shape}"
        )
    if len(set(batch.record_ids.tolist())) != n:
        raise EncodedFileError("record_ids must be unique within a batch")
