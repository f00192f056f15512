"""Real servers on loopback port 0 over mutual TLS, a local CA, and real encodings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from clients.encoding.encode_file import encode_csv
from clients.encoding.secret import Secret
from linkage_service.security.certs import init_ca, issue
from linkage_service.service.config import ServiceConfig, TlsPaths
from linkage_service.service.server import LinkageServer, create_server
from linkage_service.wire.encoded_file import EncodedBatch
from linkage_service.wire.schema import load_schema

AGENCIES = ("social_care", "police", "health", "school", "housing")
CALLERS = {
    **{name: f"agency:{name}" for name in AGENCIES},
    "mash-1": "coordinator",
    "dpo": "auditor",
    "ops": "admin",
}
SECRET = Secret(bytes(range(32)))


@dataclasses.dataclass(frozen=True)
class Pki:
    directory: Path
    foreign: Path  # a second CA whose certificates the service must refuse

    def files(self, name: str) -> tuple[Path, Path]:
        role = CALLERS.get(name, "agency:stranger").partition(":")[0]
        stem = f"{role}-{name}"
        return self.directory / f"{stem}.crt", self.directory / f"{stem}.key"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("pki")
    init_ca(base)
    issue(base, "server", "localhost", base, hosts=("localhost", "127.0.0.1"))
    for name, role in CALLERS.items():
        issue(base, role.partition(":")[0], name, base)
    issue(base, "agency", "stranger", base)  # signed by our CA, but has no role
    foreign = tmp_path_factory.mktemp("foreign-pki")
    init_ca(foreign, name="Someone else's CA")
    issue(foreign, "agency", "police", foreign)
    return Pki(base, foreign)


def server_config(pki: Pki, data_dir: Path, **overrides: object) -> ServiceConfig:
    d = pki.directory
    config = ServiceConfig(
        listen="127.0.0.1:0",
        data_dir=data_dir,
        schema="children-v1",
        tls=TlsPaths(d / "server.crt", d / "server.key", d / "ca.crt"),
        callers=dict(CALLERS),
        grace_seconds=2.0,
        threads=1,
    )
    return dataclasses.replace(config, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def start_server(pki: Pki, tmp_path: Path) -> Iterator[Callable[..., LinkageServer]]:
    running: list[LinkageServer] = []

    def start(data_dir: Path | None = None, **overrides: object) -> LinkageServer:
        server = create_server(server_config(pki, data_dir or tmp_path / "data", **overrides))
        running.append(server)
        return server

    yield start
    for server in running:
        try:
            server.stop(0.5)
        except Exception:  # already stopped by the test
            pass


def open_channel(pki: Pki, port: int, name: str, ca_dir: Path | None = None) -> grpc.Channel:
    base = ca_dir or pki.directory
    if ca_dir is None:
        cert, key = pki.files(name)
    else:
        cert, key = base / f"agency-{name}.crt", base / f"agency-{name}.key"
    creds = grpc.ssl_channel_credentials(
        root_certificates=(pki.directory / "ca.crt").read_bytes(),
        private_key=key.read_bytes(),
        certificate_chain=cert.read_bytes(),
    )
    return grpc.secure_channel(f"localhost:{port}", creds)


@pytest.fixture
def channel(pki: Pki) -> Iterator[Callable[[int, str], grpc.Channel]]:
    opened: list[grpc.Channel] = []

    def make(port: int, name: str) -> grpc.Channel:
        ch = open_channel(pki, port, name)
        opened.append(ch)
        return ch

    yield make
    for ch in opened:
        ch.close()


@pytest.fixture(scope="session")
def population_batches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, EncodedBatch]:
    """The synthetic population (400 children) encoded as five agencies."""
    from benchmarks.population import generate_population

    base = tmp_path_factory.mktemp("population")
    population = generate_population(400, seed=3)
    schema = load_schema("children-v1")
    out = {}
    for agency, table in population.agencies.items():
        path = base / f"{agency}.csv"
        table.to_csv(path, index=False)
        out[agency] = encode_csv(path, schema, SECRET, agency)
    return out
