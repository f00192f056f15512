"""Dates, postcodes, NHS numbers and sex codes."""

import datetime as dt
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.encoding.normalise import (
    DateValue,
    NhsResult,
    Postcode,
    is_default_date,
    nhs_check_digit,
    normalise_date,
    normalise_nhs_number,
    normalise_postcode,
    normalise_sex,
)

pytestmark = pytest.mark.unit

# ------------------------------------------------------------------------------------------ dates


@pytest.mark.parametrize(
    "raw",
    [
        "2015-03-04",
        "2015-3-4",
        "2015/03/04",
        "04/03/2015",
        "4/3/2015",
        "04-03-2015",
        "04.03.2015",
        "04 03 2015",
        "04 / 03 / 2015",
        "20150304",
        "4/3/15",
        "04-03-15",
        "  04/03/2015  ",
        "2015-03-04T00:00:00",
        "2015-03-04T10:20:30.123Z",
        "2015-03-04 00:00:00",
        "04/03/2015 00:00",
        "4 Mar 2015",
        "04-MAR-15",
        "4th March 2015",
        "4 march, 2015",
        "04-Mar-2015",
    ],
)
def test_normalise_date_formats_day_first(raw):
    assert normalise_date(raw, reference_year=2026) == DateValue(2015, 3, 4)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1/2/26", DateValue(2026, 2, 1)),
        ("1/2/00", DateValue(2000, 2, 1)),
        ("1/2/27", DateValue(1927, 2, 1)),
        ("1/2/99", DateValue(1999, 2, 1)),
        ("13/12/09", DateValue(2009, 12, 13)),
        ("5 Sept 21", DateValue(2021, 9, 5)),
    ],
)
def test_normalise_date_two_digit_year_pivot(raw, expected):
    assert normalise_date(raw, reference_year=2026) == expected


def test_two_digit_pivot_follows_reference_year():
    assert normalise_date("1/2/30", reference_year=2031) == DateValue(2030, 2, 1)
    assert normalise_date("1/2/30", reference_year=2026) == DateValue(1930, 2, 1)


def test_two_digit_pivot_defaults_to_today():
    yy = dt.date.today().year % 100
    assert normalise_date(f"01/06/{yy:02d}").year == dt.date.today().year


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "garbage",
        "31/02/2015",
        "29/02/2015",
        "32/01/2015",
        "15/13/2015",
        "00/01/2015",
        "2015-02-30",
        "20150230",
        "04032015",
        "2015",
        "03/2015",
        "04/03",
        "04/03-2015",
        "4/3/015",
        "1900-01-01",
        "0001-01-01",
        "9999-12-31",
        "31 Foo 2015",
        "4 ma 2015",
        "12/31/2015",
        20150304,
    ],
)
def test_normalise_date_invalid(raw):
    assert normalise_date(raw, reference_year=2026) is None


def test_normalise_date_accepts_leap_day_and_date_objects():
    assert normalise_date("29/02/2016") == DateValue(2016, 2, 29)
    assert normalise_date(dt.date(2015, 3, 4)) == DateValue(2015, 3, 4)
    assert normalise_date(dt.datetime(2015, 3, 4, 12, 0)) == DateValue(2015, 3, 4)


def test_date_value_iso_and_validation():
    assert DateValue(2015, 3, 4).iso() == "2015-03-04"
    assert DateValue(2015, 3, 4) < DateValue(2015, 3, 5)
    with pytest.raises(ValueError):
        DateValue(2015, 2, 31)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("01/01/2015", True), ("2015-01-01", True), ("02/01/2015", False), ("01/02/2015", False)],
)
def test_is_default_date(raw, expected):
    assert is_default_date(normalise_date(raw)) is expected


def test_is_default_date_of_missing_is_false():
    assert is_default_date(None) is False


# -------------------------------------------------------------------------------------- postcodes


@pytest.mark.parametrize(
    ("raw", "full", "outward"),
    [
        ("SW1A 1AA", "SW1A 1AA", "SW1A"),
        ("sw1a1aa", "SW1A 1AA", "SW1A"),
        ("  sw1a   1aa ", "SW1A 1AA", "SW1A"),
        ("S W1A1 AA", "SW1A 1AA", "SW1A"),
        ("sw1a-1aa", "SW1A 1AA", "SW1A"),
        ("M1 1AE", "M1 1AE", "M1"),
        ("m11ae", "M1 1AE", "M1"),
        ("B33 8TH", "B33 8TH", "B33"),
        ("CR2 6XH", "CR2 6XH", "CR2"),
        ("DN55 1PT", "DN55 1PT", "DN55"),
        ("W1A 0AX", "W1A 0AX", "W1A"),
        ("EC1A 1BB", "EC1A 1BB", "EC1A"),
        ("gir0aa", "GIR 0AA", "GIR"),
        ("GIR 0AA", "GIR 0AA", "GIR"),
    ],
)
def test_normalise_postcode_full(raw, full, outward):
    result = normalise_postcode(raw)
    assert result == Postcode(full=full, outward=outward)
    assert result.inward == full.split()[1]
    assert result.sector == full[:-2]


@pytest.mark.parametrize(
    ("raw", "outward"),
    [
        ("SW1A", "SW1A"),
        ("sw1a ", "SW1A"),
        ("M1", "M1"),
        ("b33", "B33"),
        ("DN55", "DN55"),
        ("SW1A 1", "SW1A"),
        ("SW1 1", "SW1"),
        ("SW11", "SW11"),
        ("SW1A 1A", "SW1A"),
    ],
)
def test_normalise_postcode_outward_only(raw, outward):
    result = normalise_postcode(raw)
    assert result == Postcode(full=None, outward=outward)
    assert result.inward is None and result.sector is None


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "N/A",
        "unknown",
        "NFA",
        "XX",
        "1AA",
        "S 1AA",
        "123 4AB",
        "ABC1 1AA",
        "SWA1 1AA",
        "SW1A 1AAA",
        "SW1A1A1",
        "SW1A XYZ",
        "SW1A OAA",
        "M1 AA1",
        "SW1A 1AA SW1A 1AA",
        "Postcode: SW1A 1AA",
    ],
)
def test_normalise_postcode_invalid(raw):
    assert normalise_postcode(raw) is None


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.from_regex(r" ?[A-Za-z]{1,2}[0-9][0-9A-Za-z]? *([0-9][A-Za-z]{0,2})? ?", fullmatch=True),
        st.text(max_size=12),
    )
)
def test_normalise_postcode_idempotent(raw):
    result = normalise_postcode(raw)
    if result is not None:
        assert normalise_postcode(result.full or result.outward) == result
        assert result.full is None or re.fullmatch(r"[A-Z0-9]{2,4} [0-9][A-Z]{2}", result.full)


# ------------------------------------------------------------------------------------ NHS numbers

VALID_NHS = ["9434765919", "5738563913", "4809865347", "6119692495", "4259235788", "7494677860"]


@pytest.mark.parametrize("number", VALID_NHS)
def test_nhs_number_valid(number):
    assert normalise_nhs_number(number) == NhsResult(number, "valid")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("943 476 5919", "9434765919"),
        ("943-476-5919", "9434765919"),
        (" 943 - 476 - 5919 ", "9434765919"),
        ("9434765919\n", "9434765919"),
        (9434765919, "9434765919"),
        (9434765919.0, "9434765919"),
    ],
)
def test_nhs_number_formatting_removed(raw, expected):
    assert normalise_nhs_number(raw) == NhsResult(expected, "valid")


@pytest.mark.parametrize(
    "raw",
    [
        "9434765918",  # wrong check digit
        "4311379340",
        "4311379341",
        "4311379349",  # check digit would be 10: never issued
        "943476591",
        "94347659190",
        "12345",  # wrong length
        "943.476.5919",
        "943476591O",
        "NHS9434765919",
        "9434765919a",
        "９４３４７６５９１９",
        "0000000000",
        "1111111111",
        "2222222222",
        "9999999999",  # one repeated digit
        9434765919.5,
        True,
    ],
)
def test_nhs_number_invalid(raw):
    assert normalise_nhs_number(raw) == NhsResult(None, "invalid")


@pytest.mark.parametrize("raw", [None, "", "   ", "-", "unknown", "N/K", "not known", float("nan")])
def test_nhs_number_missing(raw):
    assert normalise_nhs_number(raw) == NhsResult(None, "missing")


def test_nhs_check_digit():
    assert nhs_check_digit("943476591") == 9
    assert nhs_check_digit("749467786") == 0  # remainder 0 -> 11 -> 0
    assert nhs_check_digit("431137934") is None  # 11 - remainder == 10
    assert nhs_check_digit("12345") is None


# ------------------------------------------------------------------------------------------- sex


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[(v, "m") for v in ("M", "m", "Male", "MALE", " male ", "1", 1, "Boy", "man", "M.")],
        *[(v, "f") for v in ("F", "f", "Female", "2", 2, "girl", "Woman")],
        *[
            (v, "x")
            for v in (
                "9",
                9,
                "I",
                "Indeterminate",
                "intersex",
                "Not specified",
                "unspecified",
                "Other",
            )
        ],
        *[
            (v, None)
            for v in (
                None,
                "",
                "  ",
                "0",
                0,
                "U",
                "u",
                "X",
                "Z",
                "Unknown",
                "Not known",
                "not stated",
                "n/k",
                "3",
                "mf",
                "banana",
                True,
            )
        ],
    ],
)
def test_normalise_sex(raw, expected):
    assert normalise_sex(raw) == expected
