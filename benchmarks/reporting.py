"""How every benchmark command hands over its report: JSON file, JSON on stdout, or a table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

__all__ = ["emit", "progress_log"]


def progress_log(as_json: bool) -> Callable[[str], None]:
    """Progress lines go to stderr, and not at all when stdout must be one JSON object."""
    if as_json:
        return lambda message: None
    return Console(stderr=True).log


def emit(
    report: dict[str, Any],
    as_json: bool,
    out: Path | None,
    print_table: Callable[[dict[str, Any], Console], None],
) -> None:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    if as_json:
        click.echo(json.dumps(report))
    else:
        print_table(report, Console())
