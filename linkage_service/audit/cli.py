"""`linkage audit verify` and `linkage audit export`: read the audit log, never write it."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click

from .chain import export, verify
from .errors import AuditError

__all__ = ["DATABASE_NAME", "audit"]

DATABASE_NAME = "linkage.sqlite3"

_data_dir = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help=f"The service's data directory (holding {DATABASE_NAME}).",
)


@click.group()
def audit() -> None:
    """Check or export the service's tamper-evident audit log."""


@audit.command("verify")
@_data_dir
@click.option(
    "--expect-head",
    metavar="HASH",
    help="A head hash noted earlier: it must still be in the log (detects a rewound head).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_context
def verify_command(
    ctx: click.Context, data_dir: Path, expect_head: str | None, as_json: bool
) -> None:
    """Check every entry of the audit log and its head; exit status 1 if anything is wrong.

    Note the head hash it prints and pass it as --expect-head next time: a log whose tail was
    cut and whose head was rewound consistently is detected only that way.
    """
    with _open_readonly(data_dir) as conn:
        result = verify(conn, expect_head)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(result)))
    elif result.ok:
        click.echo(f"audit log intact: {result.entries} entries, head {result.head_hash}")
    else:
        click.echo(f"audit log BROKEN: {result.problem}")
    if not result.ok:
        ctx.exit(1)


@audit.command("export")
@_data_dir
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON Lines file to write (replaced atomically; mode 0600, as it names actors).",
)
def export_command(data_dir: Path, output: Path) -> None:
    """Write the audit log as JSON Lines, one entry per line, checkable on its own."""
    with _open_readonly(data_dir) as conn, _atomic_text(output) as out:
        count = export(conn, out)
    click.echo(f"exported {count} audit entries -> {output}", err=True)


@contextmanager
def _open_readonly(data_dir: Path) -> Iterator[sqlite3.Connection]:
    path = data_dir / DATABASE_NAME
    if not path.is_file():
        raise AuditError(f"no database at {path} (is --data-dir the service's data directory?)")
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise AuditError(f"{path}: cannot open: {e}") from e
    try:
        tables = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'"
        if conn.execute(tables).fetchone() is None:
            raise AuditError(f"{path} has no audit table (not the service's database?)")
        yield conn
    except sqlite3.Error as e:  # not a database, or damaged
        raise AuditError(f"{path}: {e}") from e
    finally:
        conn.close()


@contextmanager
def _atomic_text(target: Path) -> Iterator[IO[str]]:
    """A new file (mode 0600) that replaces TARGET only once the block has completed."""
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as e:
        raise AuditError(f"cannot write {target}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except OSError as e:
        raise AuditError(f"cannot write {target}: {e.strerror or e}") from e
    finally:
        Path(tmp).unlink(missing_ok=True)
