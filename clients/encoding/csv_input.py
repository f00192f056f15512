"""Reading an agency's CSV extract: one record per row, problems reported with line numbers.

Rows are never silently dropped: a row that cannot be used becomes a :class:`RowProblem` naming
its physical line and the reason (wrong number of columns, bytes that are not UTF-8, no record
id, a record id seen before). Extra columns are ignored; a column that a schema field names but
the file lacks counts as missing on every row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from .errors import InputError

__all__ = ["CsvRow", "RowProblem", "read_csv_rows"]

MAX_RECORD_ID_CHARS = 128
# Python's csv module refuses fields over 128 KiB by default; no real identifier is that long,
# but a corrupt file might be, and that should be a row problem, not a crash.
_FIELD_LIMIT = 1 << 20


# surrogateescape maps each undecodable byte to a lone surrogate U+DC80..U+DCFF.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


class CsvRow(NamedTuple):
    line: int
    record_id: str
    values: tuple[str | None, ...]


class RowProblem(NamedTuple):
    line: int
    reason: str


def read_csv_rows(
    path: str | Path,
    id_column: str,
    columns: tuple[str, ...],
    progress: Callable[[int], None] | None = None,
) -> tuple[list[str], Iterator[CsvRow | RowProblem]]:
    """Open ``path`` and return (header, rows). ``values`` follow ``columns`` (None = absent)."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the generator below
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
    csv.field_size_limit(_FIELD_LIMIT)
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raw.close()
        raise InputError(f"{path} is empty: expected a header row naming the columns") from None
    except csv.Error as e:
        raw.close()
        raise InputError(f"{path}: header row is not valid CSV ({e})") from e
    header = [h.strip() for h in header]
    if id_column not in header:
        raw.close()
        raise InputError(
            f"{path}: no {id_column!r} column in the header (found: {', '.join(header)})"
        )
    return header, _rows(reader, raw, header, id_column, columns, progress)


def _rows(reader, raw, header, id_column, columns, progress) -> Iterator[CsvRow | RowProblem]:  # type: ignore[no-untyped-def]
    position = {name: i for i, name in enumerate(header)}
    id_at = position[id_column]
    picks = [position.get(c) for c in columns]
    first_seen: dict[str, int] = {}
    width = len(header)
    with raw:
        line = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                yield RowProblem(reader.line_num, f"not valid CSV ({e})")
                continue
            start, line = line + 1, reader.line_num
            if progress is not None and line % 4096 == 0:
                progress(raw.tell())
            if not row:
                continue
            problem = _row_problem(row, width, id_at, first_seen, start)
            if problem:
                yield RowProblem(start, problem)
                continue
            record_id = row[id_at].strip()
            first_seen[record_id] = start
            yield CsvRow(start, record_id, tuple(
                None if i is None else (row[i].strip() or None) for i in picks
            ))
        if progress is not None:
            progress(raw.tell())


def _row_problem(row: list[str], width: int, id_at: int, first_seen: dict[str, int],
                 line: int) -> str:
    if len(row) != width:
        return f"expected {width} columns, found {len(row)}"
    if _UNDECODABLE.search("".join(row)):
        return "contains bytes that are not valid UTF-8"
    record_id = row[id_at].strip()
    if not record_id:
        return "empty record id"
    if len(record_id) > MAX_RECORD_ID_CHARS or not record_id.isprintable():
        return f"record id is not printable or longer than {MAX_RECORD_ID_CHARS} characters"
    if record_id in first_seen:
        return f"duplicate record id {record_id!r} (first on line {first_seen[record_id]})"
    return ""
