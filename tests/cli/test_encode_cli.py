"""`linkage keygen`, `linkage schema` and `linkage encode`, including every bad-input path."""

import stat

import numpy as np
import pytest

from linkage_service.wire.encoded_file import read_encoded
from linkage_service.wire.schema import load_schema

pytestmark = pytest.mark.cli

ROWS = [
    "SC-1,Amelia,Smith,2015-03-07,F,SW1A 1AA,943 476 5919",
    "SC-2,Oliver,Jones,07/03/2014,M,M1 1AE,",
    "SC-3,Zoë,O'Brien,20130101,2,B33 8TH,9434765918",
]


def test_keygen_creates_a_private_secret_and_refuses_to_overwrite(run_cli, tmp_path):
    path = tmp_path / "k"
    result = run_cli("keygen", "-o", path)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() not in result.output
    again = run_cli("keygen", "-o", path)
    assert again.exit_code == 2 and "refusing to overwrite" in again.output


def test_schema_show_and_check(run_cli, tmp_path):
    shown = run_cli("schema", "show")
    assert shown.exit_code == 0
    assert load_schema("children-v1").fingerprint in shown.output
    custom = tmp_path / "s.toml"
    custom.write_text(
        'schema_version = 1\nname = "x"\n[[fields]]\nname = "family_name"\n'
        'normaliser = "family_name"\ntokeniser = "qgrams"\n'
    )
    checked = run_cli("schema", "check", custom)
    assert checked.exit_code == 0 and "valid schema x" in checked.output


def test_schema_check_names_an_unknown_key(run_cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'schema_version = 1\nname = "x"\nthreshold = 0.8\n[[fields]]\n'
        'name = "f"\nnormaliser = "text"\ntokeniser = "exact"\n'
    )
    result = run_cli("schema", "check", bad)
    assert result.exit_code == 2
    assert "unknown schema key threshold" in result.output


def test_encode_writes_a_documented_file(run_cli, write_csv, secret_file, tmp_path):
    out = tmp_path / "sc.enc"
    result = run_cli(
        "encode",
        "--secret-file",
        secret_file,
        "--agency",
        "social_care",
        write_csv("sc.csv", ROWS),
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    batch = read_encoded(out)
    assert batch.agency == "social_care"
    assert batch.record_ids.tolist() == ["SC-1", "SC-2", "SC-3"]
    assert batch.bits.shape == (3, 128) and batch.bits.dtype == np.uint8
    assert batch.schema_fingerprint == load_schema("children-v1").fingerprint
    # SC-1 valid NHS number, SC-2 none, SC-3 fails the modulus-11 check
    assert (batch.identifiers[:, 0] != 0).tolist() == [True, False, False]
    assert batch.report["identifiers"]["nhs_number"] == {"valid": 1, "missing": 1, "invalid": 1}
    assert "invalid" in result.output


def test_encode_takes_the_secret_from_the_environment(run_cli, write_csv, secret_file, tmp_path):
    csv_path = write_csv("sc.csv", ROWS)
    by_file, by_env = tmp_path / "a.enc", tmp_path / "b.enc"
    run_cli("encode", "--secret-file", secret_file, "--agency", "x", csv_path, "-o", by_file)
    result = run_cli(
        "encode",
        "--agency",
        "x",
        csv_path,
        "-o",
        by_env,
        env={"LINKAGE_SECRET": secret_file.read_text().strip()},
    )
    assert result.exit_code == 0, result.output
    assert np.array_equal(read_encoded(by_file).bits, read_encoded(by_env).bits)


@pytest.mark.parametrize("problem", ["missing", "unreadable", "malformed"])
def test_encode_without_a_usable_secret_fails_and_writes_nothing(
    run_cli, write_csv, tmp_path, problem
):
    secret = tmp_path / "k"
    if problem == "unreadable":
        secret.mkdir()
    elif problem == "malformed":
        secret.write_text("not-a-secret")
    args = [] if problem == "missing" else ["--secret-file", secret]
    out = tmp_path / "out.enc"
    result = run_cli("encode", *args, "--agency", "x", write_csv("sc.csv", ROWS), "-o", out)
    assert result.exit_code == 2
    expected = {
        "missing": "no secret given",
        "unreadable": "is a directory",
        "malformed": "64 hex characters",
    }[problem]
    assert expected in result.output
    assert not out.exists()


def test_malformed_rows_are_reported_with_line_numbers(run_cli, write_csv, secret_file, tmp_path):
    rows = [
        ROWS[0],
        "SC-2,Oliver,Jones",  # line 3: too few columns
        ",Mia,Khan,2016-01-02,F,E1 6AN,",  # line 4: no record id
        "SC-1,Amelia,Smith,2015-03-07,F,SW1A 1AA,",  # line 5: duplicate id
        "SC-5,,,,U,,",  # line 6: nothing to link on
        ROWS[2],
    ]
    out = tmp_path / "sc.enc"
    result = run_cli(
        "encode",
        "--secret-file",
        secret_file,
        "--agency",
        "sc",
        write_csv("sc.csv", rows),
        "-o",
        out,
    )
    assert result.exit_code == 0
    for expected in [
        "line 3: expected 7 columns, found 3",
        "line 4: empty record id",
        "line 5: duplicate record id 'SC-1' (first on line 2)",
        "line 6: only",
    ]:
        assert expected in result.output
    batch = read_encoded(out)
    assert batch.record_ids.tolist() == ["SC-1", "SC-3"]
    assert batch.report["rows_read"] == 6
    rejected = (tmp_path / "sc.enc.rejected.csv").read_text().splitlines()
    assert rejected[0] == "line,reason" and len(rejected) == 1 + 4
    assert rejected[1] == '3,"expected 7 columns, found 3"'
    strict = run_cli(
        "encode",
        "--strict",
        "--secret-file",
        secret_file,
        "--agency",
        "sc",
        write_csv("sc2.csv", rows),
        "-o",
        tmp_path / "sc2.enc",
    )
    assert strict.exit_code == 3
    assert not (tmp_path / "sc2.enc").exists()


def test_a_file_whose_rows_are_all_rejected_is_an_error(run_cli, write_csv, secret_file, tmp_path):
    out = tmp_path / "o.enc"
    result = run_cli(
        "encode",
        "--secret-file",
        secret_file,
        "--agency",
        "a",
        write_csv("bad.csv", ["A1,,,,U,,", "A2,x"]),
        "-o",
        out,
    )
    assert result.exit_code == 2 and "none of its 2 rows could be encoded" in result.output
    assert not out.exists()


def test_a_missing_schema_column_is_warned_about(run_cli, secret_file, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("record_id,forename,family_name,date_of_birth\nA1,Amy,Smith,2015-01-02\n")
    result = run_cli(
        "encode", "--secret-file", secret_file, "--agency", "a", path, "-o", tmp_path / "o.enc"
    )
    assert result.exit_code == 0
    assert "no column 'given_name'" in result.output


def test_an_unwritable_output_is_a_clear_error(run_cli, write_csv, secret_file, tmp_path):
    out = tmp_path / "no-such-dir" / "o.enc"
    result = run_cli(
        "encode",
        "--secret-file",
        secret_file,
        "--agency",
        "a",
        write_csv("a.csv", ROWS),
        "-o",
        out,
    )
    assert result.exit_code == 2 and "no-such-dir" in result.output
    assert not out.parent.exists()


def test_undecodable_bytes_are_a_row_problem(run_cli, secret_file, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        (
            "record_id,given_name,family_name,date_of_birth\n"
            "A1,Zo\xeb,Smith,2015-01-02\nA2,Amy,Jones,2014-02-03\n"
        ).encode("latin-1")
    )
    result = run_cli(
        "encode", "--secret-file", secret_file, "--agency", "a", path, "-o", tmp_path / "o.enc"
    )
    assert "line 2: contains bytes that are not valid UTF-8" in result.output
    assert read_encoded(tmp_path / "o.enc").record_ids.tolist() == ["A2"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("record_id,given_name\n", "no data rows"),
        ("id,given_name\nA,Amy\n", "no 'record_id' column"),
    ],
)
def test_unusable_inputs_are_refused(run_cli, secret_file, tmp_path, content, message):
    path = tmp_path / "in.csv"
    path.write_text(content)
    out = tmp_path / "o.enc"
    result = run_cli("encode", "--secret-file", secret_file, "--agency", "a", path, "-o", out)
    assert result.exit_code == 2 and message in result.output
    assert not out.exists()


def test_unknown_schema_file_is_refused(run_cli, write_csv, secret_file, tmp_path):
    result = run_cli(
        "encode",
        "--schema",
        tmp_path / "nope.toml",
        "--secret-file",
        secret_file,
        "--agency",
        "a",
        write_csv("a.csv", ROWS),
        "-o",
        tmp_path / "o.enc",
    )
    assert result.exit_code == 2 and "cannot read schema" in result.output
