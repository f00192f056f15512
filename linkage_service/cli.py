"""Service-side commands. For now: offline linkage of encoded files (`linkage link`)."""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from .core.bitmatrix import from_packed
from .core.decisions import DECISION_NAMES, MATCH, DecisionRule
from .core.linking import AgencyRecords, link_agencies, match_clusters
from .wire.encoded_file import EncodedBatch, check_compatible, read_encoded
from .wire.errors import EncodedFileError, SchemaError
from .wire.schema import BUILTIN_SCHEMAS, LinkageSchema, load_schema

__all__ = ["as_agency_records", "link", "resolve_schema", "rule_from_schema"]

LINKS_HEADER = ("agency_a", "record_a", "agency_b", "record_b", "score", "decision")


def resolve_schema(batch: EncodedBatch, schema_ref: str | None) -> LinkageSchema:
    """The schema the batch was encoded with: the named file, or the built-in of that name.
    Its fingerprint must equal the batch's, so thresholds always belong to the encoding."""
    ref = schema_ref or batch.schema_name
    if schema_ref is None and ref not in BUILTIN_SCHEMAS:
        raise SchemaError(
            f"files were encoded with schema {ref!r}, which is not built in; "
            "give its file with --schema"
        )
    schema = load_schema(ref)
    if schema.fingerprint != batch.schema_fingerprint:
        raise SchemaError(
            f"schema {ref} has fingerprint {schema.fingerprint} but the files were "
            f"encoded with {batch.schema_fingerprint}"
        )
    return schema


def rule_from_schema(
    schema: LinkageSchema, match: float | None = None, possible: float | None = None
) -> DecisionRule:
    """The schema's decision rule; an overridden match threshold caps the possible one."""
    t = schema.thresholds
    match = match or t.match
    return DecisionRule(match, possible or min(t.possible, match), t.identifier_floor, t.duplicate)


def as_agency_records(batch: EncodedBatch) -> AgencyRecords:
    return AgencyRecords(
        batch.agency, from_packed(batch.bits, batch.filter_bits), batch.identifiers
    )


@click.command()
@click.argument(
    "encoded", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Links CSV to write.",
)
@click.option(
    "--clusters",
    "clusters_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write multi-agency clusters (cluster_id,agency,record_id,duplicate_within_agency).",
)
@click.option("--schema", "schema_ref", help="Schema file, if not a built-in schema.")
@click.option(
    "--match",
    "match_t",
    type=click.FloatRange(0, 1, min_open=True),
    help="Override the schema's match threshold (for experiments).",
)
@click.option(
    "--possible",
    "possible_t",
    type=click.FloatRange(0, 1, min_open=True),
    help="Override the schema's possible threshold (for experiments).",
)
@click.option("--threads", type=click.IntRange(1, 256), help="Threads for Dice (default: all).")
def link(
    encoded: tuple[Path, ...],
    output: Path,
    clusters_out: Path | None,
    schema_ref: str | None,
    match_t: float | None,
    possible_t: float | None,
    threads: int | None,
) -> None:
    """Link two or more agencies' ENCODED files; one row per linked cross-agency pair.

    Files must share schema fingerprint, key check and filter length; otherwise nothing is
    linked and the message names the difference.
    """
    if len(encoded) < 2:
        raise click.UsageError("give at least two encoded files (one per agency)")
    started = time.perf_counter()
    batches = [(str(p), read_encoded(p)) for p in encoded]
    check_compatible(batches)
    schema = resolve_schema(batches[0][1], schema_ref)
    rule = rule_from_schema(schema, match_t, possible_t)
    agencies = [as_agency_records(b) for _, b in batches]
    loaded = time.perf_counter()
    links = link_agencies(agencies, rule, threads=threads)
    linked = time.perf_counter()
    plain = [b for _, b in batches]
    clusters = match_clusters(agencies, links) if clusters_out is not None else None
    with _all_or_nothing(output, clusters_out) as (links_part, clusters_part):
        rows = write_links(links_part, plain, links)
        if clusters is not None:
            write_clusters(clusters_part, plain, clusters)
    matches = sum(int((p.decisions == MATCH).sum()) for p in links)
    click.echo(
        f"linked {len(batches)} agencies ({sum(a.matrix.n for a in agencies)} records): "
        f"{matches} match and {rows - matches} possible links -> {output} "
        f"[load {loaded - started:.2f}s, link {linked - loaded:.2f}s]",
        err=True,
    )
    if clusters is not None:
        click.echo(
            f"{len(set(clusters.cluster_id.tolist()))} multi-agency clusters -> {clusters_out}",
            err=True,
        )


@contextmanager
def _all_or_nothing(*targets: Path | None) -> Iterator[list[Path]]:
    """Temporary paths for the outputs; all are renamed into place only if every write
    succeeded, so a failure leaves no partial or mismatched files."""
    parts = [Path(str(t) + ".part") for t in targets if t is not None]
    try:
        yield parts + [Path(os.devnull)] * (len(targets) - len(parts))
        for part, target in zip(parts, [t for t in targets if t is not None], strict=True):
            part.replace(target)
    except OSError as e:
        raise EncodedFileError(f"cannot write {e.filename or 'output'}: {e.strerror or e}") from e
    finally:
        for part in parts:
            part.unlink(missing_ok=True)


def spreadsheet_safe(value: str) -> str:
    """A record reference as a CSV cell that spreadsheets will not run as a formula (OWASP CSV
    injection): a leading =, +, -, @, tab or carriage return gets a leading apostrophe."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def write_links(path: Path, batches: list[EncodedBatch], links: list) -> int:  # type: ignore[type-arg]
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(LINKS_HEADER)
        for pair in links:
            a, b = batches[pair.a], batches[pair.b]
            for i, j, s, d in zip(
                pair.left.tolist(),
                pair.right.tolist(),
                pair.scores.tolist(),
                pair.decisions.tolist(),
                strict=True,
            ):
                writer.writerow(
                    (
                        spreadsheet_safe(a.agency),
                        spreadsheet_safe(str(a.record_ids[i])),
                        spreadsheet_safe(b.agency),
                        spreadsheet_safe(str(b.record_ids[j])),
                        f"{s:.4f}",
                        DECISION_NAMES[d],
                    )
                )
                count += 1
    return count


def write_clusters(path: Path, batches: list[EncodedBatch], clusters) -> None:  # type: ignore[no-untyped-def]
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("cluster_id", "agency", "record_id", "duplicate_within_agency"))
        for c, a, r, dup in zip(
            clusters.cluster_id.tolist(),
            clusters.agency.tolist(),
            clusters.record.tolist(),
            clusters.duplicate_within_agency.tolist(),
            strict=True,
        ):
            agency, record = batches[a].agency, str(batches[a].record_ids[r])
            writer.writerow((c, spreadsheet_safe(agency), spreadsheet_safe(record), int(dup)))
