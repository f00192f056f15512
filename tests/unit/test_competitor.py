"""The clkhash + anonlink baseline: data preparation and pair extraction from anonlink groups."""

from __future__ import annotations

import pytest

pytest.importorskip("clkhash")
pytest.importorskip("anonlink")

import pandas as pd  # noqa: E402
from bitarray import bitarray  # noqa: E402

from benchmarks.competitor import (  # noqa: E402
    anonlink_link,
    children_schema,
    competent_prep,
    encode_clkhash,
    febrl_schema,
    run_competitor,
)


def _children(**columns: list[str]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        c: [""] * n
        for c in (
            "record_id",
            "given_name",
            "family_name",
            "date_of_birth",
            "sex",
            "postcode",
            "nhs_number",
        )
    }
    base["record_id"] = [f"r{i}" for i in range(n)]
    base.update(columns)
    return pd.DataFrame(base, dtype=object)


def test_dates_parsed_day_first_to_one_format() -> None:
    raw = [
        "2015-03-07",
        "07/03/2015",
        "7/3/15",
        "20150307",
        "2015",
        "31/02/2015",
        "",
        "junk",
        "1/1/99",
    ]
    rows = competent_prep(_children(date_of_birth=raw), "children")
    assert [r[3] for r in rows] == ["2015-03-07"] * 4 + ["", "", "", "", "1999-01-01"]


def test_sex_codes_mapped() -> None:
    raw = ["M", "Male", "1", "F", "Female", "2", "U", "", "9", "Unknown", " male "]
    rows = competent_prep(_children(sex=raw), "children")
    assert [r[4] for r in rows] == ["m", "m", "m", "f", "f", "f", "", "", "", "", "m"]


def test_names_postcode_and_nhs_cleaned() -> None:
    df = _children(
        given_name=["  Zoë ", "JEAN-LUC"],
        family_name=["O'Brien", "Da Silva"],
        postcode=["b25 6ap", " EC1V  9YH"],
        nhs_number=["999 071 0120", "9991244964"],
    )
    rows = competent_prep(df, "children")
    assert [r[1:3] for r in rows] == [["zoe", "obrien"], ["jeanluc", "dasilva"]]
    assert [r[5] for r in rows] == ["B256AP", "EC1V9YH"]
    assert [r[6] for r in rows] == ["9990710120", "9991244964"]


def test_febrl_prep_lowercases_and_blanks_missing() -> None:
    df = pd.DataFrame(
        {
            "rec_id": ["rec-1-org"],
            "given_name": ["Anna"],
            "surname": [None],
            "street_number": ["12"],
            "address_1": [float("nan")],
            "address_2": [""],
            "suburb": ["Dapto"],
            "postcode": ["4566"],
            "state": ["NSW"],
            "date_of_birth": ["19480930"],
            "soc_sec_id": ["4365168"],
        }
    )
    assert competent_prep(df, "febrl") == [
        ["rec-1-org", "anna", "", "12", "", "", "dapto", "4566", "nsw", "19480930", "4365168"]
    ]


def test_prepared_rows_encode_with_both_schemas() -> None:
    children = competent_prep(
        _children(given_name=["Amy", ""], date_of_birth=["7/3/15", "x"], sex=["F", "U"]), "children"
    )
    clks = encode_clkhash(children, children_schema(), b"k" * 32)
    assert len(clks) == 2 and all(len(c) == 1024 for c in clks)
    assert clks[0].count() > clks[1].count() == 0
    febrl = [
        ["rec-0", "anna", "smith", "12", "main road", "", "dapto", "4566", "nsw", "19480930", "1"]
    ]
    assert len(encode_clkhash(febrl, febrl_schema(), b"k" * 32)[0]) == 1024


def _filter(ones: range) -> bitarray:
    bits = bitarray(64)
    bits.setall(0)
    for i in ones:
        bits[i] = 1
    return bits


def test_anonlink_link_pairs_from_groups() -> None:
    x, y, z = _filter(range(0, 20)), _filter(range(20, 40)), _filter(range(40, 60))
    x_close = _filter(range(0, 19))  # Dice with x: 38/39
    datasets = [[x, y], [z, x_close], [y, _filter(range(60, 64))]]
    pairs = anonlink_link(datasets, 0.8)
    # x (0,0) ~ x_close (1,1); y (0,1) ~ y (2,0); z and the last filter stay alone.
    assert pairs == [(0, 0, 1, 1), (0, 1, 2, 0)]
    assert anonlink_link(datasets, 0.99) == [(0, 1, 2, 0)]


def test_anonlink_link_expands_three_way_group() -> None:
    a = _filter(range(0, 30))
    pairs = anonlink_link([[a], [a], [a]], 0.9)
    assert pairs == [(0, 0, 1, 0), (0, 0, 2, 0), (1, 0, 2, 0)]


def test_run_competitor_scores_against_truth() -> None:
    frames = {
        "x": _children(
            given_name=["Amelia", "Oliver"],
            family_name=["Cox", "Hall"],
            date_of_birth=["2012-12-01", "2010-05-02"],
            sex=["Female", "Male"],
            postcode=["B25 6AP", "B1 3ZG"],
        ),
        "y": _children(
            given_name=["AMELIA", "Noah"],
            family_name=["COX", "Khan"],
            date_of_birth=["01/12/2012", "03/04/2016"],
            sex=["F", "M"],
            postcode=["B256AP", "B9 6HY"],
        ),
    }
    result = run_competitor(
        frames, "children", {("x", "r0", "y", "r0")}, thresholds=(0.8,), secret=b"s" * 32
    )
    assert result["records"] == 4
    assert result["best"]["threshold"] == 0.8
    assert result["best"]["metrics"]["true_positives"] == 1
    assert result["best"]["metrics"]["false_positives"] == 0
