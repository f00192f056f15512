"""`linkage demo`: the story end to end, on a synthetic multi-agency population.

By default the service story (:mod:`linkage_cli.service_demo`): certificates, the service on
loopback with mutual TLS, agencies submitting, a coordinator watching. With ``--offline``, the
encoding and linkage alone: five agencies' registers are generated with ground truth; each
agency encodes its own CSV with the shared secret (as it would on its own machine); the encoded
files are linked; the report gives records, links, precision/recall/F1 and timings.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.metrics import pair_metrics
from benchmarks.offline_run import OfflineRun, encode_agencies, link_batches, rule_for
from benchmarks.population import generate_population, true_cross_agency_pairs, write_agency_csvs
from clients.encoding.secret import generate_secret_file, read_secret
from linkage_service.cli import as_agency_records, write_clusters, write_links
from linkage_service.core.linking import match_clusters
from linkage_service.wire.encoded_file import write_encoded
from linkage_service.wire.schema import load_schema

__all__ = ["demo"]


@click.command()
@click.option(
    "--children",
    default=20000,
    show_default=True,
    type=click.IntRange(100, 2_000_000),
    help="Children in the synthetic population.",
)
@click.option("--seed", default=2026, show_default=True, help="Population seed.")
@click.option(
    "--out-dir",
    default="demo-output",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where files are written.",
)
@click.option(
    "--offline", is_flag=True, help="Encode and link files only: no service, no certificates."
)
def demo(children: int, seed: int, out_dir: Path, offline: bool) -> None:
    """Run the service on loopback with mutual TLS, submit five synthetic agencies while a
    coordinator watches, and report what it saw, its quality and timings (--offline: files)."""
    console = Console()
    if not offline:
        from .service_demo import run_service_demo

        run_service_demo(children, seed, out_dir, console)
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    schema = load_schema("children-v1")
    t0 = time.perf_counter()
    population = generate_population(children, seed=seed)
    csv_paths = write_agency_csvs(population, out_dir)
    truth = true_cross_agency_pairs(population)
    t1 = time.perf_counter()
    secret_path = out_dir / "shared-secret.key"
    secret_path.unlink(missing_ok=True)
    generate_secret_file(secret_path)
    secret, _ = read_secret(secret_path, {})
    batches, encode_s = encode_agencies(csv_paths, schema, secret)
    del secret
    for batch in batches:
        write_encoded(out_dir / f"{batch.agency}.enc", batch)
    links, link_s = link_batches(batches, rule_for(schema))
    write_links(out_dir / "links.csv", batches, links)
    clusters = match_clusters([as_agency_records(b) for b in batches], links)
    write_clusters(out_dir / "clusters.csv", batches, clusters)
    known_to = np.bincount(np.unique(clusters.cluster_id, return_inverse=True)[1])
    run = OfflineRun(batches, links)
    match = pair_metrics(run.pairs(), truth)
    with_possible = pair_metrics(run.match_and_possible(), truth)
    n_records = sum(b.record_count for b in batches)
    _print_report(
        console,
        batches,
        match,
        with_possible,
        n_records,
        out_dir,
        {"generate": t1 - t0, "encode": encode_s, "link": link_s},
    )
    console.print(
        f"{len(known_to):,} children are known to two or more agencies (multi-agency clusters "
        f"of match links; largest holds {int(known_to.max(initial=0))} records) -> clusters.csv"
    )


def _print_report(console, batches, match, with_possible, n_records, out_dir, seconds) -> None:  # type: ignore[no-untyped-def]
    table = Table(title="Agencies (each encoded on its own side with the shared secret)")
    for column in ("agency", "records", "rejected rows", "valid NHS numbers"):
        table.add_column(column, justify="right")
    for b in batches:
        nhs = b.report["identifiers"].get("nhs_number", {})
        table.add_row(
            b.agency,
            f"{b.record_count:,}",
            f"{sum(b.report['rejected'].values()):,}",
            f"{nhs.get('valid', 0):,}",
        )
    console.print(table)
    quality = Table(title="Linkage quality against the ground truth (cross-agency pairs)")
    for column in ("links", "predicted", "true", "precision", "recall", "F1"):
        quality.add_column(column, justify="right")
    for label, m in (("match", match), ("match + possible", with_possible)):
        quality.add_row(
            label,
            f"{m['predicted']:,}",
            f"{m['true']:,}",
            f"{m['precision']:.4f}",
            f"{m['recall']:.4f}",
            f"{m['f1']:.4f}",
        )
    console.print(quality)
    console.print(
        f"records {n_records:,}; generate {seconds['generate']:.1f}s, encode "
        f"{seconds['encode']:.1f}s ({n_records / seconds['encode']:,.0f} records/s), link "
        f"{seconds['link']:.1f}s. Files in {out_dir}/ (links.csv, *.enc, agency CSVs)."
    )
