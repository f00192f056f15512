"""`linkage audit verify` and `linkage audit export` on a real WAL-mode database."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkage_service.audit.chain import AUDIT_DDL, append, verify_export

pytestmark = pytest.mark.cli


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def db(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """The service's database, still open (as while the service runs), with five entries."""
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / "linkage.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    for statement in AUDIT_DDL:
        conn.execute(statement)
    for i in range(5):
        conn.execute("BEGIN IMMEDIATE")
        append(conn, "service", "batch committed", {"batch_id": i + 1})
        conn.execute("COMMIT")
    yield conn
    conn.close()


def head_hash(conn: sqlite3.Connection) -> str:
    return str(conn.execute("SELECT hash FROM audit_head").fetchone()[0])


def test_verify_reports_an_intact_log(run_cli, db, data_dir):
    result = run_cli("audit", "verify", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"audit log intact: 5 entries, head {head_hash(db)}"


def test_verify_json(run_cli, db, data_dir):
    result = run_cli("audit", "verify", "--data-dir", data_dir, "--json")
    assert result.exit_code == 0
    assert json.loads(result.output) == {
        "ok": True,
        "entries": 5,
        "head_seq": 5,
        "head_hash": head_hash(db),
        "first_bad_seq": None,
        "problem": None,
    }


def test_verify_names_the_first_bad_entry(run_cli, db, data_dir):
    db.execute("UPDATE audit SET detail = '{\"batch_id\":99}' WHERE seq = 3")
    result = run_cli("audit", "verify", "--data-dir", data_dir)
    assert result.exit_code == 1
    assert "audit log BROKEN: entry 3: hash does not match its contents" in result.output
    as_json = run_cli("audit", "verify", "--data-dir", data_dir, "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.output)["first_bad_seq"] == 3


def test_verify_against_a_noted_head_finds_a_rewound_log(run_cli, db, data_dir):
    noted = head_hash(db)
    db.execute("DELETE FROM audit WHERE seq >= 4")
    db.execute("UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit WHERE seq = 3)")
    assert run_cli("audit", "verify", "--data-dir", data_dir).exit_code == 0
    result = run_cli("audit", "verify", "--data-dir", data_dir, "--expect-head", noted)
    assert result.exit_code == 1 and "entry 4 onwards missing" in result.output


def test_verify_accepts_an_earlier_head_and_rejects_a_malformed_one(run_cli, db, data_dir):
    earlier = str(db.execute("SELECT hash FROM audit WHERE seq = 2").fetchone()[0])
    ok = run_cli("audit", "verify", "--data-dir", data_dir, "--expect-head", earlier)
    assert ok.exit_code == 0
    bad = run_cli("audit", "verify", "--data-dir", data_dir, "--expect-head", "xyz")
    assert bad.exit_code == 2 and "not a SHA-256 hash" in bad.output


def test_verify_never_writes_the_database(run_cli, db, data_dir):
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = (data_dir / "linkage.sqlite3").read_bytes()
    assert run_cli("audit", "verify", "--data-dir", data_dir).exit_code == 0
    assert (data_dir / "linkage.sqlite3").read_bytes() == before


@pytest.mark.parametrize("command", [["verify"], ["export", "-o", "out.jsonl"]])
def test_a_missing_database_is_an_error(run_cli, data_dir, command):
    result = run_cli("audit", *command, "--data-dir", data_dir)
    assert result.exit_code == 2
    assert "no database at" in result.output and "Traceback" not in result.output
    assert not (data_dir / "linkage.sqlite3").exists()


def test_a_database_without_an_audit_table_is_an_error(run_cli, data_dir):
    data_dir.mkdir()
    sqlite3.connect(data_dir / "linkage.sqlite3").execute("CREATE TABLE meta (k TEXT)").close()
    result = run_cli("audit", "verify", "--data-dir", data_dir)
    assert result.exit_code == 2 and "no audit table" in result.output


def test_a_file_that_is_not_a_database_is_an_error(run_cli, data_dir):
    data_dir.mkdir()
    (data_dir / "linkage.sqlite3").write_bytes(b"not a database, just some bytes " * 100)
    result = run_cli("audit", "verify", "--data-dir", data_dir)
    assert result.exit_code == 2 and "linkage.sqlite3" in result.output


def test_export_writes_a_checkable_file(run_cli, db, data_dir, tmp_path):
    out = tmp_path / "audit.jsonl"
    out.write_text("old contents\n")
    result = run_cli("audit", "export", "--data-dir", data_dir, "-o", out)
    assert result.exit_code == 0, result.output
    assert "exported 5 audit entries" in result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["detail"] for line in lines] == [{"batch_id": i} for i in range(1, 6)]
    checked = verify_export(lines, expect_head=head_hash(db))
    assert checked.ok and checked.entries == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.jsonl", "data"]  # no temp file


def test_export_to_a_missing_directory_is_an_error(run_cli, db, data_dir, tmp_path):
    result = run_cli("audit", "export", "--data-dir", data_dir, "-o", tmp_path / "no" / "x.jsonl")
    assert result.exit_code == 2 and "cannot write" in result.output


def test_a_failed_export_leaves_the_old_file(run_cli, data_dir, tmp_path):
    data_dir.mkdir()
    sqlite3.connect(data_dir / "linkage.sqlite3").execute("CREATE TABLE meta (k TEXT)").close()
    out = tmp_path / "audit.jsonl"
    out.write_text("old contents\n")
    result = run_cli("audit", "export", "--data-dir", data_dir, "-o", out)
    assert result.exit_code == 2 and "no audit table" in result.output
    assert out.read_text() == "old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.jsonl", "data"]
