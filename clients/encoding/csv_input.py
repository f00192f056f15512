"""Reading an agency's CSV extract in column chunks, with problems reported by line number.

Rows are never silently dropped: a row that cannot be used becomes a :class:`RowProblem` naming
its physical line and the reason (wrong number of columns, bytes that are not UTF-8, no record
id, a record id seen before). Blank lines are not records and are skipped. Extra columns are
ignored; a column that a schema field names but the file lacks is missing on every row.

Rows are read with the C csv parser and handed on as columns, so the per-row Python work is a
few list operations; the checks run per column, falling back to a per-row scan only where a
column has a problem.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, NamedTuple

from .errors import InputError

__all__ = ["ColumnChunk", "RowProblem", "read_csv_chunks"]

MAX_RECORD_ID_CHARS = 128
# Python's csv module refuses fields over 128 KiB by default; no real identifier is that long,
# but a corrupt file might be, and that should be a row problem, not a crash.
_FIELD_LIMIT = 1 << 20
# surrogateescape maps each undecodable byte to a lone surrogate U+DC80..U+DCFF.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
# What the text layer (newline="") counts as one line break inside a quoted field.
_LINE_BREAK = re.compile("\r\n|\r|\n")


class RowProblem(NamedTuple):
    line: int
    reason: str


class ColumnChunk(NamedTuple):
    """Usable rows of one chunk, by column. ``columns[k]`` follows the requested column order
    and is None where the file has no such column (missing on every row)."""

    lines: list[int]
    record_ids: list[str]
    columns: list[list[str] | None]
    problems: list[RowProblem]
    rows_read: int


def read_csv_chunks(
    path: str | Path,
    id_column: str,
    columns: tuple[str, ...],
    chunk_rows: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[str], Iterator[ColumnChunk]]:
    """The header and an iterator over the file's rows in chunks; raises InputError at once if
    the file has no usable header."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the generator below
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
    csv.field_size_limit(_FIELD_LIMIT)
    reader = csv.reader(text, strict=True)
    header = _header(reader, raw, path, id_column)
    return header, _chunks(reader, raw, header, id_column, columns, chunk_rows, progress)


def _header(reader, raw: IO[bytes], path: str | Path, id_column: str) -> list[str]:  # type: ignore[no-untyped-def]
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raw.close()
        raise InputError(f"{path} is empty: expected a header row naming the columns") from None
    except csv.Error as e:
        raw.close()
        raise InputError(f"{path}: header row is not valid CSV ({e})") from e
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raw.close()
        raise InputError(f"{path}: the header names a column more than once: {', '.join(repeated)}")
    if id_column not in header:
        raw.close()
        raise InputError(
            f"{path}: no {id_column!r} column in the header (found: {', '.join(header)})"
        )
    return header


def _chunks(reader, raw, header, id_column, columns, chunk_rows, progress):  # type: ignore[no-untyped-def]
    position = {name: i for i, name in enumerate(header)}
    picks = [position.get(c) for c in columns]
    first_seen: dict[str, int] = {}
    with raw:
        exhausted = False
        while not exhausted:
            rows, lines, problems, exhausted = _read_rows(reader, chunk_rows)
            if progress is not None:
                progress(raw.tell())
            if rows or problems:
                yield _to_columns(
                    rows, lines, problems, len(header), position[id_column], picks, first_seen
                )


def _read_rows(reader, limit: int):  # type: ignore[no-untyped-def]
    """Up to ``limit`` rows with the line each starts on, the problems met, and whether the
    file is exhausted. Rows are pulled by the C parser in bulk; their lines are recovered
    afterwards from the parser's line count (a quoted field may span lines), so the Python cost
    per row stays near zero."""
    rows: list[list[str]] = []
    lines: list[int] = []
    problems: list[RowProblem] = []
    exhausted = False
    while len(rows) + len(problems) < limit:
        first_line, before = reader.line_num + 1, len(rows)
        wanted = limit - len(rows) - len(problems)
        error = None
        try:
            rows.extend(islice(reader, wanted))
        except csv.Error as e:
            error = e
        next_line = _assign_lines(rows, before, first_line, reader.line_num, lines, error)
        if error is None:
            exhausted = len(rows) - before < wanted
            break
        problems.append(RowProblem(next_line, f"not valid CSV ({error})"))
    blank = [i for i, row in enumerate(rows) if not row] if [] in rows else []
    if blank:
        skip = set(blank)
        rows = [r for i, r in enumerate(rows) if i not in skip]
        lines = [line for i, line in enumerate(lines) if i not in skip]
    return rows, lines, problems, exhausted


def _assign_lines(
    rows: list[list[str]],
    before: int,
    first_line: int,
    last_line: int,
    lines: list[int],
    error: Exception | None,
) -> int:
    """Append the start line of rows[before:]; return the line after the last of them."""
    count = len(rows) - before
    if error is None and last_line - first_line + 1 == count:
        lines.extend(range(first_line, first_line + count))
        return first_line + count
    line = first_line
    for row in rows[before:]:
        lines.append(line)
        line += 1 + sum(len(_LINE_BREAK.findall(field)) for field in row)
    return line


def _to_columns(rows, lines, problems, width, id_at, picks, first_seen) -> ColumnChunk:  # type: ignore[no-untyped-def]
    rows_read = len(rows) + len(problems)
    widths = set(map(len, rows))
    bad = (
        {}
        if widths <= {width}
        else {
            i: f"expected {width} columns, found {len(r)}"
            for i, r in enumerate(rows)
            if len(r) != width
        }
    )
    good = [i for i in range(len(rows)) if i not in bad] if bad else range(len(rows))
    usable = rows if not bad else [rows[i] for i in good]
    by_column = list(zip(*usable, strict=True)) or [()] * width
    for column in by_column:
        if _has_undecodable(column):
            for k, value in enumerate(column):
                if _UNDECODABLE.search(value):
                    bad.setdefault(good[k], "contains bytes that are not valid UTF-8")
    ids = [v.strip() for v in by_column[id_at]]
    if _ids_all_fine(ids, first_seen):
        if bad:
            first_seen.update((ids[k], lines[g]) for k, g in enumerate(good) if g not in bad)
        else:  # good is every row, in order
            first_seen.update(zip(ids, lines, strict=True))
    else:
        _check_ids_one_by_one(ids, good, lines, bad, first_seen)
    problems.extend(RowProblem(lines[i], reason) for i, reason in bad.items())
    problems.sort()
    keep = [k for k in range(len(good)) if good[k] not in bad] if bad else range(len(good))
    return ColumnChunk(
        lines=[lines[good[k]] for k in keep],
        record_ids=[ids[k] for k in keep],
        columns=[None if p is None else _select(by_column[p], keep, bad) for p in picks],
        problems=problems,
        rows_read=rows_read,
    )


def _has_undecodable(column: tuple[str, ...]) -> bool:
    joined = "".join(column)
    return not joined.isascii() and _UNDECODABLE.search(joined) is not None


def _select(column: tuple[str, ...], keep, bad) -> list[str]:  # type: ignore[no-untyped-def]
    return [column[k] for k in keep] if bad else list(column)


def _ids_all_fine(ids: list[str], first_seen: dict[str, int]) -> bool:
    """The common case, checked at C speed: every id non-empty, short, printable and new."""
    if not ids:
        return True
    lengths = list(map(len, ids))
    return (
        min(lengths) > 0
        and max(lengths) <= MAX_RECORD_ID_CHARS
        and "".join(ids).isprintable()
        and len(set(ids)) == len(ids)
        and first_seen.keys().isdisjoint(ids)
    )


def _check_ids_one_by_one(ids, good, lines, bad, first_seen) -> None:  # type: ignore[no-untyped-def]
    for k, record_id in enumerate(ids):
        reason = _id_problem(record_id, first_seen)
        if reason:
            bad.setdefault(good[k], reason)
        elif good[k] not in bad:
            first_seen[record_id] = lines[good[k]]


def _id_problem(record_id: str, first_seen: dict[str, int]) -> str:
    if not record_id:
        return "empty record id"
    if len(record_id) > MAX_RECORD_ID_CHARS or not record_id.isprintable():
        return f"record id is not printable or longer than {MAX_RECORD_ID_CHARS} characters"
    if record_id in first_seen:
        return f"duplicate record id {record_id!r} (first on line {first_seen[record_id]})"
    return ""
