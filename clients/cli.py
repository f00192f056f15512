"""Agency-side commands: make a secret, inspect schemas, encode a CSV extract.

Nothing here talks to the service or sees another agency's data. The secret is read from a file
or the environment, never from an option value, so it never appears in argv or shell history.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from linkage_service.wire.encoded_file import write_encoded
from linkage_service.wire.schema import BUILTIN_SCHEMAS, load_schema

from .encoding.encode_file import encode_csv
from .encoding.secret import ENV_VAR, generate_secret_file, read_secret

__all__ = ["encode", "keygen", "schema"]

_PROGRESS_MIN_BYTES = 8 << 20
_schema_option = click.option(
    "--schema",
    "schema_ref",
    default="children-v1",
    show_default=True,
    help=f"Built-in schema ({', '.join(sorted(BUILTIN_SCHEMAS))}) or a schema TOML file.",
)


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to create (mode 0600); an existing file is never overwritten.",
)
def keygen(output: Path) -> None:
    """Write a new random 256-bit linkage secret to a file readable only by you.

    Share it with the other agencies over a secure channel; never with the linkage service.
    """
    generate_secret_file(output)
    click.echo(f"wrote a new 256-bit secret to {output} (mode 0600)", err=True)


@click.group()
def schema() -> None:
    """Show or check linkage schemas."""


@schema.command("show")
@_schema_option
@click.option("--canonical", is_flag=True, help="Print the canonical JSON form only.")
def schema_show(schema_ref: str, canonical: bool) -> None:
    """Print a schema's fields, thresholds and fingerprint."""
    linkage_schema = load_schema(schema_ref)
    if canonical:
        click.echo(linkage_schema.canonical())
        return
    click.echo(f"schema      {linkage_schema.name} (format {linkage_schema.schema_version})")
    click.echo(f"fingerprint {linkage_schema.fingerprint}")
    click.echo(f"filter      {linkage_schema.filter_bits} bits")
    t = linkage_schema.thresholds
    click.echo(
        f"thresholds  match >= {t.match}, possible >= {t.possible}, "
        f"identifier floor {t.identifier_floor}"
    )
    click.echo(f"record id   column {linkage_schema.record_id_column!r}")
    for f in linkage_schema.fields:
        where = "beside filter" if f.is_identifier else f"weight {f.weight}, slot {f.slot}"
        click.echo(
            f"  {f.name:<15} column {f.column!r:<17} {f.normaliser:>11} -> "
            f"{f.tokeniser:<10} ({where}; missing: {f.missing})"
        )


@schema.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def schema_check(file: Path) -> None:
    """Validate a schema file and print its fingerprint."""
    linkage_schema = load_schema(file)
    click.echo(
        f"{file}: valid schema {linkage_schema.name}, fingerprint {linkage_schema.fingerprint}"
    )


@click.command()
@_schema_option
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"File holding the shared secret (else the {ENV_VAR} environment variable).",
)
@click.option("--agency", required=True, help="Name of the agency whose records these are.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Encoded file to write.",
)
@click.option(
    "--strict", is_flag=True, help="If any row is rejected, write nothing and exit with status 3."
)
@click.argument("input_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def encode(
    schema_ref: str,
    secret_file: Path | None,
    agency: str,
    output: Path,
    strict: bool,
    input_csv: Path,
) -> None:
    """Encode INPUT_CSV into keyed Bloom filters, on this machine, for one agency.

    Rows that cannot be encoded are listed with their line numbers and reasons; none is dropped
    silently. Invalid NHS numbers are not encoded as identifiers and are counted.
    """
    linkage_schema = load_schema(schema_ref)
    secret, warning = read_secret(secret_file, os.environ)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    size = input_csv.stat().st_size
    console = Console(stderr=True)
    problems: list[tuple[int, str]] = []
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=size < _PROGRESS_MIN_BYTES,
    ) as bar:
        task = bar.add_task(f"encoding {input_csv.name}", total=size)
        batch = encode_csv(
            input_csv,
            linkage_schema,
            secret,
            agency,
            progress=lambda done: bar.update(task, completed=done),
            problems=problems,
        )
    del secret
    rejected_file = output.with_name(output.name + ".rejected.csv")
    if strict and problems:
        _print_report(batch.report, None, batch.record_count)
        click.echo(
            f"error: {len(problems)} rows rejected and --strict given; nothing written", err=True
        )
        raise SystemExit(3)
    write_encoded(output, batch)
    if problems:
        _write_problems(rejected_file, problems)
    else:
        rejected_file.unlink(missing_ok=True)
    _print_report(batch.report, output, batch.record_count)
    if problems:
        click.echo(f"  every rejected row, with its line and reason: {rejected_file}", err=True)


def _write_problems(path: Path, problems: list[tuple[int, str]]) -> None:
    """All rejected rows as CSV (line, reason), written whole or not at all."""
    part = path.with_name(path.name + ".part")
    try:
        with open(part, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(("line", "reason"))
            writer.writerows(problems)
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)


def _print_report(report: dict, output: Path | None, count: int) -> None:  # type: ignore[type-arg]
    target = f" -> {output}" if output else ""
    click.echo(f"encoded {count} of {report['rows_read']} rows{target}", err=True)
    if report["absent_columns"]:
        click.echo(
            "warning: the file has no column "
            + ", ".join(repr(c) for c in report["absent_columns"])
            + "; those fields are missing on every row (check the column names)",
            err=True,
        )
    for reason, n in sorted(report["rejected"].items()):
        click.echo(f"  rejected {n} rows: {reason}", err=True)
    for problem in report["problems"][:20]:
        click.echo(f"    line {problem['line']}: {problem['reason']}", err=True)
    hidden = sum(report["rejected"].values()) - min(len(report["problems"]), 20)
    if hidden > 0:
        click.echo(f"    ... {hidden} more", err=True)
    for name, statuses in report["identifiers"].items():
        click.echo(f"  {name}: " + json.dumps(statuses, sort_keys=True), err=True)
