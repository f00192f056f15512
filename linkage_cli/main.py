"""The `linkage` command: the one place where agency-side and service-side commands meet.

Neither side imports the other; this composition root registers both, and turns the project's
own errors into a one-line message and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from clients.cli import encode, keygen, schema
from clients.encoding.errors import EncodingError
from linkage_service.audit.errors import AuditError
from linkage_service.cli import link
from linkage_service.core.errors import CoreError
from linkage_service.security.errors import SecurityError
from linkage_service.service.errors import ServiceError
from linkage_service.store.errors import StoreError
from linkage_service.wire.errors import WireError

__all__ = ["main"]

PROJECT_ERRORS = (
    EncodingError,
    WireError,
    CoreError,
    AuditError,
    SecurityError,
    ServiceError,
    StoreError,
)


class _ProjectGroup(click.Group):
    # Loaded on first use: they pull in pandas and the benchmark code, which plain encoding and
    # linking never need (halves the command's start-up time).
    lazy = {
        "bench": "benchmarks.cli:bench",
        "demo": "linkage_cli.demo:demo",
        "serve": "linkage_service.service.cli:serve",
        "submit": "clients.service_cli:submit",
        "alerts": "clients.service_cli:alerts",
        "certs": "linkage_service.security.cli:certs",
        "audit": "linkage_service.audit.cli:audit",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attr = self.lazy[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PROJECT_ERRORS as e:
            raise _UsageFailure(str(e)) from e
        except OSError as e:  # a file the user named cannot be read or written
            where = f"{e.filename}: " if e.filename else ""
            raise _UsageFailure(f"{where}{e.strerror or e}") from e


class _UsageFailure(click.ClickException):
    exit_code = 2


@click.group(cls=_ProjectGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mash-linkage")
def main() -> None:
    """Privacy-preserving record linkage for multi-agency child safeguarding."""


main.add_command(keygen)
main.add_command(schema)
main.add_command(encode)
main.add_command(link)

if __name__ == "__main__":
    main()
