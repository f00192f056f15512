"""`linkage link`: output format, decisions, and refusal of incompatible encoded files."""

import csv

import pytest

from clients.encoding.secret import generate_secret_file

pytestmark = pytest.mark.cli

HEALTH = [
    "H1,Amelia,Smith,2015-03-07,F,SW1A 1AA,943 476 5919",
    "H2,Oliver,Jones,2014-03-07,M,M1 1AE,",
    "H3,Ava,Patel,2012-11-30,F,B33 8TH,",
]
POLICE = [
    "P1,AMELIA,SMITH,07/03/2015,F,SW1A 1AA,",  # same child, different format and case
    "P2,Jones,Oliver,07/03/2014,Male,M1 1AE,",  # given and family names swapped
    "P3,Harry,Wilson,2011-05-05,M,LS1 4AP,",  # nobody in health
]


def _encode(run_cli, write_csv, secret, agency, rows, tmp_path, schema=None):
    out = tmp_path / f"{agency}.enc"
    extra = ["--schema", schema] if schema else []
    result = run_cli(
        "encode",
        *extra,
        "--secret-file",
        secret,
        "--agency",
        agency,
        write_csv(f"{agency}.csv", rows),
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    return out


def test_link_writes_one_row_per_linked_pair(run_cli, write_csv, secret_file, tmp_path):
    health = _encode(run_cli, write_csv, secret_file, "health", HEALTH, tmp_path)
    police = _encode(run_cli, write_csv, secret_file, "police", POLICE, tmp_path)
    links, clusters = tmp_path / "links.csv", tmp_path / "clusters.csv"
    result = run_cli("link", health, police, "-o", links, "--clusters", clusters)
    assert result.exit_code == 0, result.output
    with open(links, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["agency_a", "record_a", "agency_b", "record_b", "score", "decision"]
    found = {(r["record_a"], r["record_b"], r["decision"]) for r in rows}
    assert found == {("H1", "P1", "match"), ("H2", "P2", "match")}
    assert all(0.8 <= float(r["score"]) <= 1.0 for r in rows)
    with open(clusters, newline="") as f:
        members = list(csv.DictReader(f))
    assert {m["record_id"] for m in members} == {"H1", "P1", "H2", "P2"}


def test_files_from_different_secrets_are_refused(run_cli, write_csv, secret_file, tmp_path):
    other = tmp_path / "other.key"
    generate_secret_file(other)
    health = _encode(run_cli, write_csv, secret_file, "health", HEALTH, tmp_path)
    police = _encode(run_cli, write_csv, other, "police", POLICE, tmp_path)
    result = run_cli("link", health, police, "-o", tmp_path / "l.csv")
    assert result.exit_code == 2
    assert "key check (encoded with a different secret)" in result.output
    assert not (tmp_path / "l.csv").exists()


def test_files_with_different_schemas_are_refused(run_cli, write_csv, secret_file, tmp_path):
    schema = tmp_path / "s.toml"
    schema.write_text(
        'schema_version = 1\nname = "children-lite"\n[[fields]]\n'
        'name = "family_name"\nnormaliser = "family_name"\ntokeniser = "qgrams"\n'
        "[rules]\nmin_fields_present = 1\n"
    )
    health = _encode(run_cli, write_csv, secret_file, "health", HEALTH, tmp_path)
    police = _encode(run_cli, write_csv, secret_file, "police", POLICE, tmp_path, schema)
    result = run_cli("link", health, police, "-o", tmp_path / "l.csv")
    assert result.exit_code == 2 and "differ in schema fingerprint" in result.output


def test_same_agency_twice_and_single_file_are_refused(run_cli, write_csv, secret_file, tmp_path):
    health = _encode(run_cli, write_csv, secret_file, "health", HEALTH, tmp_path)
    copy = tmp_path / "copy.enc"
    copy.write_bytes(health.read_bytes())
    twice = run_cli("link", health, copy, "-o", tmp_path / "l.csv")
    assert twice.exit_code == 2 and "both from agency 'health'" in twice.output
    single = run_cli("link", health, "-o", tmp_path / "l.csv")
    assert single.exit_code == 2 and "at least two" in single.output


def test_a_corrupt_encoded_file_is_refused(run_cli, write_csv, secret_file, tmp_path):
    health = _encode(run_cli, write_csv, secret_file, "health", HEALTH, tmp_path)
    junk = tmp_path / "junk.enc"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    result = run_cli("link", health, junk, "-o", tmp_path / "l.csv")
    assert result.exit_code == 2 and "not a linkage-encoded/1 file" in result.output


def test_a_failed_output_leaves_no_partial_files(run_cli, write_csv, secret_file, tmp_path):
    health = _encode(run_cli, write_csv, secret_file, "health", HEALTH, tmp_path)
    police = _encode(run_cli, write_csv, secret_file, "police", POLICE, tmp_path)
    links = tmp_path / "links.csv"
    result = run_cli(
        "link", health, police, "-o", links, "--clusters", tmp_path / "nodir" / "c.csv"
    )
    assert result.exit_code == 2 and "cannot write" in result.output
    assert not links.exists() and not list(tmp_path.glob("*.part"))


def test_record_references_cannot_become_spreadsheet_formulas(
    run_cli, write_csv, secret_file, tmp_path
):
    rows = [f"=HYPERLINK(1){r[2:]}" if r.startswith("H1") else r for r in HEALTH]
    health = _encode(run_cli, write_csv, secret_file, "health", rows, tmp_path)
    police = _encode(run_cli, write_csv, secret_file, "police", POLICE, tmp_path)
    links = tmp_path / "links.csv"
    assert run_cli("link", health, police, "-o", links).exit_code == 0
    assert "'=HYPERLINK(1)" in links.read_text()


def test_meta_of_the_wrong_type_is_refused(run_cli, write_csv, secret_file, tmp_path):
    import json

    import numpy as np

    health = _encode(run_cli, write_csv, secret_file, "health", HEALTH, tmp_path)
    with np.load(health) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"]))
    meta["filter_bits"] = "1024"
    arrays["meta"] = np.array(json.dumps(meta))
    bad = tmp_path / "bad.enc"
    with open(bad, "wb") as out:
        np.savez(out, **arrays)
    police = _encode(run_cli, write_csv, secret_file, "police", POLICE, tmp_path)
    result = run_cli("link", bad, police, "-o", tmp_path / "l.csv")
    assert result.exit_code == 2 and "meta filter_bits has the wrong type" in result.output
