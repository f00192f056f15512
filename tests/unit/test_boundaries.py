"""The import rules of the architecture, checked on the source (ARCHITECTURE.md, layers)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The core is a pure function of arrays: no transport, storage, files, logging set-up or plaintext.
CORE_FORBIDDEN = (
    "grpc",
    "google",
    "sqlite3",
    "socket",
    "logging",
    "http",
    "urllib",
    "asyncio",
    "pathlib",
    "io",
    "json",
    "tomllib",
    "csv",
    "pickle",
    "blake3",
    "click",
    "rich",
    "pandas",
    "clients",
    "linkage_service.wire",
    "linkage_service.cli",
    "linkage_service.store",
    "linkage_service.service",
)


def _imports(package: str) -> dict[Path, set[str]]:
    out = {}
    for path in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        out[path] = names
    return out


def test_core_imports_no_io_transport_or_encoder():
    for path, names in _imports("linkage_service/core").items():
        bad = {n for n in names for f in CORE_FORBIDDEN if n == f or n.startswith(f + ".")}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_service_never_imports_the_encoder():
    for path, names in _imports("linkage_service").items():
        assert not {n for n in names if n.startswith("clients")}, path.name


@pytest.mark.parametrize("forbidden", ["linkage_service.core", "linkage_service.cli"])
def test_clients_reach_the_service_only_through_the_wire(forbidden):
    for path, names in _imports("clients").items():
        assert not {n for n in names if n.startswith(forbidden)}, path.name
