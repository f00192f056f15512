"""`linkage bench ...`: benchmarks and the synthetic data generator.

Benchmark-only packages (anonlink, clkhash) are imported inside the commands that need them, so
this group loads without them; `make bench` installs them in a separate environment.
"""

from __future__ import annotations

import click

from .accuracy import accuracy_command
from .encode_speed import encode_command
from .match_speed import match_command
from .population import population_command
from .service_speed import service_command

__all__ = ["bench"]


@click.group()
def bench() -> None:
    """Measure speed and linkage quality side by side with anonlink and clkhash."""


bench.add_command(match_command, "match")
bench.add_command(encode_command, "encode")
bench.add_command(accuracy_command, "accuracy")
bench.add_command(population_command, "population")
bench.add_command(service_command, "service")
