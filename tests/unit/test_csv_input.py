"""Reading CSV extracts: every unusable row is reported with the line it starts on."""

import pytest

from clients.encoding.csv_input import read_csv_chunks
from clients.encoding.errors import InputError


def _read(tmp_path, text, chunk_rows=1000, columns=("name",)):
    path = tmp_path / "in.csv"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    _, chunks = read_csv_chunks(path, "record_id", columns, chunk_rows)
    chunks = list(chunks)
    ids = [i for c in chunks for i in c.record_ids]
    lines = [line for c in chunks for line in c.lines]
    problems = [(p.line, p.reason) for c in chunks for p in c.problems]
    return chunks, ids, lines, problems


@pytest.mark.parametrize("chunk_rows", [1, 2, 1000])
def test_lines_are_right_with_multiline_fields_blank_lines_and_chunks(tmp_path, chunk_rows):
    text = 'record_id,name\nA,"Amy\nRose"\n\nB,Bob\nC,"x""y"\nA,again\nD,"bad"quote\nE,Eve\n'
    _, ids, lines, problems = _read(tmp_path, text, chunk_rows)
    assert ids == ["A", "B", "C", "E"]
    assert lines == [2, 5, 6, 9]
    assert (7, "duplicate record id 'A' (first on line 2)") in problems
    assert any(line == 8 and "not valid CSV" in reason for line, reason in problems)


def test_values_follow_the_requested_columns_and_absent_columns_are_none(tmp_path):
    chunks, *_ = _read(tmp_path, "name,record_id,extra\nAmy,A,x\n", columns=("name", "dob"))
    assert chunks[0].columns == [["Amy"], None]


def test_wrong_width_and_undecodable_rows(tmp_path):
    text = b"record_id,name\nA,Amy\nB\nC,Zo\xeb\nD,Dan,extra\n"
    _, ids, _, problems = _read(tmp_path, text)
    assert ids == ["A"]
    assert problems == [
        (3, "expected 2 columns, found 1"),
        (4, "contains bytes that are not valid UTF-8"),
        (5, "expected 2 columns, found 3"),
    ]


def test_record_id_rules(tmp_path):
    long_id = "X" * 200
    _, ids, _, problems = _read(tmp_path, f"record_id,name\n ,a\n{long_id},b\nok ,c\n")
    assert ids == ["ok"]
    assert problems[0] == (2, "empty record id")
    assert "longer than 128" in problems[1][1]


def test_bom_is_ignored(tmp_path):
    _, ids, _, _ = _read(tmp_path, "\ufeffrecord_id,name\nA,Amy\n")
    assert ids == ["A"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("id,name\nA,b\n", "no 'record_id' column"),
    ],
)
def test_files_without_a_usable_header(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        _read(tmp_path, text)


def test_lone_carriage_returns_inside_fields_count_as_line_breaks(tmp_path):
    _, ids, lines, _ = _read(tmp_path, 'record_id,name\nA,"x\ry"\nB,b\n')
    assert ids == ["A", "B"] and lines == [2, 4]


def test_a_header_naming_a_column_twice_is_refused(tmp_path):
    with pytest.raises(InputError, match="more than once: name"):
        _read(tmp_path, "record_id,name,name\nA,a,b\n")
