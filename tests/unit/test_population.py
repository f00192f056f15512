"""Tests for the synthetic multi-agency population (benchmarks.population)."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import replace
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from benchmarks.population import (
    AGENCIES,
    RECORD_COLUMNS,
    Population,
    PopulationConfig,
    generate_population,
    is_valid_nhs_number,
    nhs_check_digit,
    population_command,
    true_cross_agency_pairs,
    true_within_agency_duplicates,
    write_agency_csvs,
)
from benchmarks.population_names import NAME_VARIANTS
from benchmarks.population_noise import mistyped_nhs_number, valid_nhs_numbers

pytestmark = pytest.mark.unit

# Outward code, space optional, then sector digit and two unit letters (never C I K M O V).
POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][0-9A-Z]? ?[0-9][ABD-HJLNP-UW-Z]{2}$")
ID_FORMATS = {
    "social_care": r"SC-\d{6}",
    "police": r"P/20\d\d/\d{5}",
    "health": r"MRN\d{7}",
    "school": r"\d{6}-\d{4}",
    "housing": r"HOU/\d{6}",
}
DATE_FORMATS = {
    "iso": r"\d{4}-\d\d-\d\d",
    "dmy": r"\d\d/\d\d/\d{4}",
    "dmy_short": r"\d{1,2}/\d{1,2}/\d\d",
    "compact": r"\d{8}",
}


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


@pytest.fixture(scope="module")
def big() -> Population:
    return generate_population(20000, seed=11)


@pytest.fixture(scope="module")
def joined(big: Population) -> pd.DataFrame:
    """Every record next to its child's true values (columns suffixed _true)."""
    frames = [table.assign(agency=agency) for agency, table in big.agencies.items()]
    records = pd.concat(frames, ignore_index=True).merge(big.truth, on=["agency", "record_id"])
    return records.merge(big.children, on="child_id", suffixes=("", "_true"))


def test_generation_is_deterministic_for_a_seed() -> None:
    first, second = generate_population(1500, seed=3), generate_population(1500, seed=3)
    for agency in AGENCIES:
        pd.testing.assert_frame_equal(first.agencies[agency], second.agencies[agency])
    pd.testing.assert_frame_equal(first.truth, second.truth)
    pd.testing.assert_frame_equal(first.children, second.children)
    other = generate_population(1500, seed=4)
    assert not first.children["nhs_number"].equals(other.children["nhs_number"])


def test_changing_an_error_rate_keeps_children_and_truth() -> None:
    base = generate_population(1500, seed=5)
    noisier = generate_population(
        1500, seed=5, config=replace(PopulationConfig(), nickname_rate=0.5)
    )
    pd.testing.assert_frame_equal(base.children, noisier.children)
    pd.testing.assert_frame_equal(base.truth, noisier.truth)
    assert not base.agencies["health"].equals(noisier.agencies["health"])


def test_nhs_check_digit_follows_the_modulus_11_rule() -> None:
    assert is_valid_nhs_number("943 476 5919")
    assert is_valid_nhs_number("9434765919")
    assert not is_valid_nhs_number("9434765918")
    assert not is_valid_nhs_number("943476591")
    assert not is_valid_nhs_number("94347659x9")
    assert nhs_check_digit("943476591") == 9
    # Weighted sum 10 gives check 1; a sum of 12 (1 mod 11) would need 10, so none exists.
    assert nhs_check_digit("100000000") == 1
    assert nhs_check_digit("000000006") is None


def test_generated_numbers_are_valid_distinct_and_in_the_test_range() -> None:
    numbers = valid_nhs_numbers(5000, np.random.default_rng(0), "999")
    assert len(set(numbers)) == 5000
    assert all(n.startswith("999") and is_valid_nhs_number(n) for n in numbers)


def test_every_mistyped_number_fails_the_check_and_keeps_its_prefix() -> None:
    rng = random.Random(1)
    numbers = valid_nhs_numbers(2000, np.random.default_rng(1), "999")
    for number in numbers:
        wrong = mistyped_nhs_number(number, rng, fixed_prefix=3)
        assert wrong != number and wrong.startswith("999")
        assert not is_valid_nhs_number(wrong)


def test_children_have_valid_unique_nhs_numbers(big: Population) -> None:
    nhs = big.children["nhs_number"]
    assert nhs.is_unique
    assert nhs.map(is_valid_nhs_number).all()


def test_record_nhs_numbers_are_valid_unless_mistyped(joined: pd.DataFrame) -> None:
    held = joined[joined["nhs_number"] != ""]
    digits = held["nhs_number"].str.replace(" ", "").str.strip()
    correct = digits == held["nhs_number_true"]
    assert digits[correct].map(is_valid_nhs_number).all()
    wrong = digits[~correct]
    assert 0.005 < len(wrong) / len(held) < 0.03
    # Keying errors always fail mod-11; only a sibling's number, valid but wrong, passes.
    assert (~wrong.map(is_valid_nhs_number)).mean() > 0.7
    assert (held["nhs_number"].str.contains(" ")).mean() > 0.05


def test_tables_have_the_standard_columns_and_agency_id_formats(big: Population) -> None:
    assert list(big.agencies) == list(AGENCIES)
    for agency, table in big.agencies.items():
        assert tuple(table.columns) == RECORD_COLUMNS
        assert table.map(lambda v: isinstance(v, str)).all().all()
        assert table["record_id"].is_unique
        assert table["record_id"].str.fullmatch(ID_FORMATS[agency]).all(), agency
    assert list(big.truth.columns) == ["agency", "record_id", "child_id"]
    assert big.n_records == sum(len(t) for t in big.agencies.values())
    assert 35_000 < big.n_records < 55_000


def test_values_look_like_real_identifiers(joined: pd.DataFrame, big: Population) -> None:
    # Stray spaces are part of the error model; the shape underneath must still be valid.
    postcodes = joined["postcode"].map(lambda v: " ".join(v.split()).upper())
    assert postcodes[postcodes != ""].str.fullmatch(POSTCODE).all()
    assert big.children["postcode"].str.fullmatch(POSTCODE).all()
    for agency, style in big.config.date_format.items():
        dates = big.agencies[agency]["date_of_birth"]
        assert dates.str.fullmatch(DATE_FORMATS[style]).mean() > 0.9, agency
    police = big.agencies["police"]
    assert (police["family_name"] == police["family_name"].str.upper()).all()
    assert set(big.agencies["health"]["sex"]) <= {"1", "2", "9"}
    assert set(big.agencies["social_care"]["sex"]) <= {"Male", "Female", "Unknown"}
    children = big.children
    accented = ~(children["given_name"] + children["family_name"]).map(str.isascii)
    assert 0.01 < accented.mean() < 0.15
    assert children["family_name"].str.contains("-").mean() > 0.02
    assert children["family_name"].str.contains("'|^Mc|^Mac").any()
    assert children["age"].min() == 0 and children["age"].max() == 17
    top = Counter(children["given_name"]).most_common(1)[0][1] / len(children)
    assert 0.003 < top < 0.05  # common names are common, but no name dominates


def test_twins_share_birth_and_home_but_not_name_or_number(big: Population) -> None:
    kids = big.children.set_index("child_id")
    twins = kids[kids["twin_of"] != ""]
    assert 0.01 < len(twins) / len(kids) < 0.02
    same_sex = 0
    for child_id, row in twins.iterrows():
        other = kids.loc[row["twin_of"]]
        assert other["twin_of"] == child_id
        assert other["date_of_birth"] == row["date_of_birth"]
        assert other["postcode"] == row["postcode"]
        assert other["household_id"] == row["household_id"]
        # Polish surnames take a feminine ending, so compare the stem.
        assert other["family_name"][:-1] == row["family_name"][:-1]
        assert other["given_name"] != row["given_name"]
        assert other["given_name"] not in NAME_VARIANTS.get(row["given_name"], ())
        assert other["nhs_number"] != row["nhs_number"]
        same_sex += other["sex"] == row["sex"]
    assert 0.4 < same_sex / len(twins) < 0.9


def test_coverage_and_error_rates_are_roughly_as_configured(
    big: Population, joined: pd.DataFrame
) -> None:
    cfg = big.config
    kids = big.children
    low, high = cfg.school_ages
    school_age = kids["age"].between(low, high)
    for agency in AGENCIES:
        known = set(big.truth.loc[big.truth["agency"] == agency, "child_id"])
        base = kids[school_age] if agency == "school" else kids
        assert abs(base["child_id"].isin(known).mean() - cfg.coverage[agency]) < 0.03, agency
        records = joined[joined["agency"] == agency]
        missing = (records["nhs_number"] == "").mean()
        assert abs(missing - cfg.nhs_missing_rate[agency]) < 0.04, agency
    at_school = joined.loc[joined["agency"] == "school", "age"]
    assert at_school.between(low, high).all()

    babies = joined[joined["given_name"].str.casefold().str.startswith("baby")]
    assert len(babies) > 0
    assert (babies["age"] == 0).all()
    assert set(babies["agency"]) <= {"health", "social_care"}

    moved = joined["postcode"].str.replace(" ", "").str.upper() == joined[
        "previous_postcode"
    ].str.replace(" ", "")
    assert 0.08 < moved.mean() < 0.25
    per_agency = big.truth.groupby(["agency", "child_id"]).size()
    assert 0.01 < (per_agency > 1).mean() < 0.05


def test_name_disagreement_is_near_the_published_rates(big: Population) -> None:
    # [40]: 12% of forenames and 18% of surnames disagree between two collections.
    records = {
        (agency, row.record_id): row
        for agency, table in big.agencies.items()
        for row in table.itertuples(index=False)
    }
    pairs = sorted(true_cross_agency_pairs(big))
    sample = random.Random(0).sample(pairs, 5000)
    given = sum(
        _norm(records[a, ra].given_name) != _norm(records[b, rb].given_name)
        for a, ra, b, rb in sample
    ) / len(sample)
    family = sum(
        _norm(records[a, ra].family_name) != _norm(records[b, rb].family_name)
        for a, ra, b, rb in sample
    ) / len(sample)
    assert 0.08 < given < 0.2
    assert 0.12 < family < 0.25


def test_true_pairs_are_consistent_with_truth(big: Population) -> None:
    pairs = true_cross_agency_pairs(big)
    child_of = big.child_of
    order = {agency: i for i, agency in enumerate(AGENCIES)}
    for a, ra, b, rb in pairs:
        assert order[a] < order[b]
        assert child_of[a, ra] == child_of[b, rb]
    counts = big.truth.groupby(["child_id", "agency"]).size().unstack(fill_value=0)
    expected = sum(int((counts[a] * counts[b]).sum()) for a, b in combinations(AGENCIES, 2))
    assert len(pairs) == expected

    dupes = true_within_agency_duplicates(big)
    assert len(dupes) == int((counts * (counts - 1) // 2).to_numpy().sum())
    for agency, ra, rb in dupes:
        assert ra < rb and child_of[agency, ra] == child_of[agency, rb]


def test_csvs_round_trip_in_utf8(tmp_path) -> None:
    population = generate_population(800, seed=2)
    paths = write_agency_csvs(population, tmp_path / "out")
    assert set(paths) == set(AGENCIES)
    for agency, path in paths.items():
        back = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        pd.testing.assert_frame_equal(back, population.agencies[agency], check_dtype=False)


def test_population_command_writes_csvs_and_truth(tmp_path) -> None:
    out = tmp_path / "pop"
    result = CliRunner().invoke(
        population_command, ["--children", "300", "--seed", "1", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {f"{a}.csv" for a in AGENCIES} | {"truth.csv"}
    truth = pd.read_csv(out / "truth.csv", dtype=str)
    assert list(truth.columns) == ["agency", "record_id", "child_id"]
    assert truth["child_id"].nunique() <= 300


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="nickname_rate"):
        PopulationConfig(nickname_rate=1.5)
    with pytest.raises(ValueError, match="coverage"):
        PopulationConfig(coverage={"health": 0.9})


def test_twenty_thousand_children_generate_quickly() -> None:
    started = time.perf_counter()
    population = generate_population(20000, seed=0)
    assert time.perf_counter() - started < 20
    assert population.children["child_id"].is_unique
