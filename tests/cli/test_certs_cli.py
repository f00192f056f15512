"""`linkage certs init / issue`: files, the [callers] line to paste, and one-line errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509

from linkage_service.security.certs import certificate_common_name, load_tls_files

pytestmark = pytest.mark.cli


@pytest.fixture
def ca_dir(run_cli, tmp_path: Path) -> Path:
    result = run_cli("certs", "init", "--dir", tmp_path / "ca")
    assert result.exit_code == 0, result.output
    return tmp_path / "ca"


def test_init_writes_the_ca_into_certs_by_default(run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("certs", "init")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == ["ca.crt", "ca.key"]
    assert stat.S_IMODE((tmp_path / "certs" / "ca.key").stat().st_mode) == 0o600
    assert "mode 0600" in result.stderr
    assert result.stdout == ""


def test_init_twice_is_a_one_line_error_and_keeps_the_ca(run_cli, ca_dir: Path) -> None:
    key = (ca_dir / "ca.key").read_bytes()
    result = run_cli("certs", "init", "--dir", ca_dir)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "ca.crt already exists; refusing to overwrite it" in result.stderr
    assert (ca_dir / "ca.key").read_bytes() == key


@pytest.mark.parametrize(
    ("role", "name", "line"),
    [
        ("agency", "police", '"police" = "agency:police"'),
        ("coordinator", "mash-1", '"mash-1" = "coordinator"'),
        ("auditor", "audit.team", '"audit.team" = "auditor"'),
        ("admin", "ops_1", '"ops_1" = "admin"'),
    ],
)
def test_issue_prints_the_callers_line_for_the_servers_config(
    run_cli, ca_dir: Path, role: str, name: str, line: str
) -> None:
    result = run_cli("certs", "issue", "--role", role, "--name", name, "--dir", ca_dir)
    assert result.exit_code == 0, result.output
    assert result.stdout == line + "\n"
    assert "[callers]" in result.stderr
    cert, key = ca_dir / f"{role}-{name}.crt", ca_dir / f"{role}-{name}.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert certificate_common_name(cert.read_bytes()) == name
    load_tls_files(cert, key, ca_dir / "ca.crt")


def test_issue_server_with_hosts_into_another_directory(run_cli, ca_dir, tmp_path) -> None:
    out = tmp_path / "deploy"
    result = run_cli(
        "certs", "issue", "--role", "server", "--name", "linkage", "--dir", ca_dir,
        "--host", "linkage.mash.example", "--host", "10.1.2.3", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "valid for: linkage.mash.example, 10.1.2.3" in result.stderr
    cert = x509.load_pem_x509_certificate((out / "server.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["linkage.mash.example"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    assert sorted(p.name for p in out.iterdir()) == ["server.crt", "server.key"]
    assert not (ca_dir / "server.crt").exists()


def test_issue_server_defaults_to_the_loopback_names(run_cli, ca_dir: Path) -> None:
    result = run_cli("certs", "issue", "--role", "server", "--name", "linkage", "--dir", ca_dir)
    assert result.exit_code == 0, result.output
    assert "valid for: localhost, 127.0.0.1, ::1" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "agency", "--name", "po lice"], "name 'po lice' is not allowed: use 1-64"),
        (["--role", "agency", "--name", "x", "--host", "h"], "hosts are for server certificates"),
        (["--role", "server", "--name", "s", "--host", "a..b"], "neither an IP address nor"),
    ],
)
def test_issue_errors_are_one_line_with_status_2(run_cli, ca_dir: Path, args, message) -> None:
    result = run_cli("certs", "issue", "--dir", ca_dir, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert sorted(p.name for p in ca_dir.iterdir()) == ["ca.crt", "ca.key"]


def test_issue_refuses_to_overwrite(run_cli, ca_dir: Path) -> None:
    args = ("certs", "issue", "--role", "agency", "--name", "police", "--dir", ca_dir)
    assert run_cli(*args).exit_code == 0
    before = (ca_dir / "agency-police.key").read_bytes()
    result = run_cli(*args)
    assert result.exit_code == 2
    assert "agency-police.crt already exists; refusing to overwrite it" in result.stderr
    assert (ca_dir / "agency-police.key").read_bytes() == before


def test_issue_without_a_ca_says_so(run_cli, tmp_path: Path) -> None:
    result = run_cli("certs", "issue", "--role", "agency", "--name", "x", "--dir", tmp_path)
    assert result.exit_code == 2
    assert "ca.crt is missing (make one: linkage certs init)" in result.stderr


def test_an_unknown_role_is_a_usage_error_listing_the_roles(run_cli, ca_dir: Path) -> None:
    result = run_cli("certs", "issue", "--role", "police", "--name", "x", "--dir", ca_dir)
    assert result.exit_code == 2
    assert "'police' is not one of 'server', 'agency', 'coordinator', 'auditor', 'admin'" in (
        result.stderr
    )


def test_help_says_this_ca_is_for_demos_and_production_uses_the_organisations_pki(
    run_cli,
) -> None:
    result = run_cli("certs", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "demo / local certificate authority" in text
    assert "Production deployments use the organisation's own PKI" in text
    for command in ("init", "issue"):
        assert run_cli("certs", command, "--help").exit_code == 0
