import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from clients.encoding.secret import ENV_VAR, generate_secret_file

CHILDREN_HEADER = "record_id,given_name,family_name,date_of_birth,sex,postcode,nhs_number\n"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.key"
    generate_secret_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path


@pytest.fixture
def run_cli(monkeypatch):
    """Run `linkage ARGS...` in-process; the secret never comes from the test's environment."""
    monkeypatch.delenv(ENV_VAR, raising=False)

    from linkage_cli.main import main

    def run(*args: str, env: dict[str, str] | None = None):
        runner = CliRunner()
        return runner.invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)

    return run


@pytest.fixture
def write_csv(tmp_path: Path):
    def write(name: str, rows: list[str], header: str = CHILDREN_HEADER) -> Path:
        path = tmp_path / name
        path.write_text(header + "".join(r + "\n" for r in rows), encoding="utf-8")
        return path

    return write
