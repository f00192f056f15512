"""`linkage serve --config FILE`: run the linkage service until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import click

from .config import load_config
from .server import create_server

__all__ = ["serve"]


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Server config (TOML): listen address, data directory, schema, TLS files, callers.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Plain-text transport, for development on a loopback address only.",
)
def serve(config_path: Path, insecure: bool) -> None:
    """Run the linkage service. Stops gracefully on SIGTERM / SIGINT: new calls are refused,
    calls in flight finish within the grace period, committed matching is completed."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = load_config(config_path, insecure_flag=insecure)
    running = create_server(config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    transport = "plain text (loopback only)" if config.insecure else "mutual TLS"
    click.echo(
        f"linkage service on port {running.port} ({transport}); "
        f"{running.matcher.record_count} records rebuilt in {running.rebuild_seconds:.2f} s",
        err=True,
    )
    stop.wait()
    click.echo("stopping: finishing calls in flight ...", err=True)
    running.stop()
    click.echo("stopped", err=True)
