"""`linkage certs`: a local certificate authority for mutual TLS between the service and callers.

For demonstrations and local deployments. The service knows a caller by its client certificate's
common name and maps that name to a role in the `[callers]` table of its config file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from .certs import CA_CERT, DEFAULT_SERVER_HOSTS, MAX_DAYS, NAME_RULE, ROLES, init_ca, issue
from .errors import SecurityError

__all__ = ["callers_line", "certs"]


class _CertsFailure(click.ClickException):
    exit_code = 2


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except SecurityError as e:
        raise _CertsFailure(str(e)) from e


def callers_line(role: str, name: str) -> str:
    """The `[callers]` entry that gives the subject with common name `name` its role."""
    granted = f"agency:{name}" if role == "agency" else role
    return f'"{name}" = "{granted}"'


_dir_option = click.option(
    "--dir",
    "ca_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("certs"),
    show_default=True,
    help=f"Directory of the CA ({CA_CERT} and its key).",
)

_DAYS = click.IntRange(1, MAX_DAYS)


@click.group()
def certs() -> None:
    """A demo / local certificate authority for mutual TLS.

    It makes a CA, then a server certificate for the linkage service and a client certificate for
    each caller (agency, coordinator, auditor, admin). Production deployments use the
    organisation's own PKI instead; this CA is for demonstrations and local use.
    """


@certs.command("init")
@_dir_option
@click.option("--days", type=_DAYS, default=825, show_default=True, help="Validity in days.")
def certs_init(ca_dir: Path, days: int) -> None:
    """Create a new CA: its key (mode 0600) and self-signed certificate. Never overwrites."""
    with _one_line_errors():
        files = init_ca(ca_dir, days=days)
    click.echo(f"wrote CA certificate {files.cert} and key {files.key} (mode 0600)", err=True)
    click.echo(f"keep {files.key} secret: whoever holds it can issue any identity", err=True)


@certs.command("issue")
@click.option(
    "--role", type=click.Choice(ROLES), required=True, help="What the certificate is for."
)
@click.option(
    "--name",
    required=True,
    help=f"Common name: the caller's identity, or the server's name ({NAME_RULE}).",
)
@_dir_option
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="DNS name or IP address the server is reached by; repeatable. Server only; default "
    + ", ".join(DEFAULT_SERVER_HOSTS)
    + ".",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the new certificate and key (default: the CA directory).",
)
@click.option("--days", type=_DAYS, default=397, show_default=True, help="Validity in days.")
def certs_issue(
    role: str, name: str, ca_dir: Path, hosts: tuple[str, ...], out_dir: Path | None, days: int
) -> None:
    """Issue a certificate and key (mode 0600) signed by the CA. Never overwrites.

    Files are server.crt / server.key for the server and ROLE-NAME.crt / .key for a caller. For
    a caller, prints the line that gives it its role in the server's config file.
    """
    with _one_line_errors():
        files = issue(ca_dir, role, name, out_dir or ca_dir, hosts=hosts, days=days)
    click.echo(f"wrote {files.cert} and key {files.key} (mode 0600)", err=True)
    if role == "server":
        names = ", ".join(hosts or DEFAULT_SERVER_HOSTS)
        click.echo(f"server certificate {name!r}, valid for: {names}", err=True)
        return
    click.echo(
        f"the server will see this caller as {name!r}; add this line to the [callers] table "
        "of its config file:",
        err=True,
    )
    click.echo(callers_line(role, name))
