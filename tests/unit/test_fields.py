"""Tokenisers' fast paths against the general normalisers (their reference)."""

import datetime
import random

from hypothesis import given
from hypothesis import strategies as st

from clients.encoding.fields import date_parts, postcode_parts, qgrams
from clients.encoding.normalise import normalise_date, normalise_postcode

REF_YEAR = 2026


def _reference_date(raw):
    d = normalise_date(raw, reference_year=REF_YEAR)
    return None if d is None else (d.year, d.month, d.day)


def _reference_postcode(raw):
    p = normalise_postcode(raw)
    return None if p is None else (p.full, p.outward)


def _date_strings(rng, n):
    out = []
    for _ in range(n):
        y, m, d = rng.randint(1890, 2110), rng.randint(0, 13), rng.randint(0, 32)
        out.append(
            rng.choice(
                [
                    f"{y:04d}-{m:02d}-{d:02d}",
                    f"{d:02d}/{m:02d}/{y:04d}",
                    f"{d}/{m}/{y % 100:02d}",
                    f"{y:04d}{m:02d}{d:02d}",
                    f"{d}/{m}/{y}",
                    f"{y}/{m}/{d}",
                    f" {d}-{m}-{y} ",
                    f"{d}.{m}.{y % 100}",
                    "29/02/2024",
                    "29/02/2023",
                    "29/02/1900",
                    "31/04/2015",
                ]
            )
        )
    return out


def test_date_fast_path_equals_the_general_parser():
    for raw in _date_strings(random.Random(3), 20000):
        assert date_parts(raw, REF_YEAR) == _reference_date(raw), raw


@given(st.text(alphabet="0123456789/-. ", max_size=12))
def test_date_fast_path_equals_the_general_parser_on_any_text(raw):
    assert date_parts(raw, REF_YEAR) == _reference_date(raw)


@given(st.text(alphabet="ABGIRSW0123456789 abgi-\t.", max_size=9))
def test_postcode_fast_path_equals_the_general_parser(raw):
    assert postcode_parts(raw) == _reference_postcode(raw)


def test_postcode_examples():
    assert postcode_parts("SW1A 1AA") == ("SW1A 1AA", "SW1A")
    assert postcode_parts("sw1a1aa") == ("SW1A 1AA", "SW1A")
    assert postcode_parts("SW1A") == (None, "SW1A")
    assert postcode_parts("not a postcode") is None


def test_qgrams_are_padded_and_per_part():
    assert qgrams(("amy",), 2) == ("_a", "am", "my", "y_")
    assert set(qgrams(("jo", "li"), 2)) == {"_j", "jo", "o_", "_l", "li", "i_"}


@given(st.dates(min_value=datetime.date(1901, 1, 1), max_value=datetime.date(2100, 12, 31)))
def test_date_tokens_are_day_month_unlabelled_then_year_then_exact_date(date):
    from clients.encoding.fields import _date_tokens

    dd, mm, yyyy = f"{date.day:02d}", f"{date.month:02d}", f"{date.year:04d}"
    expected = tuple(dict.fromkeys([f"dm:{dd}", f"dm:{mm}", f"y:{yyyy}", f"ymd:{yyyy}-{mm}-{dd}"]))
    assert _date_tokens(date.isoformat(), REF_YEAR) == expected
    # a day/month swap keeps both unlabelled tokens and the year
    swapped = f"{mm}/{dd}/{yyyy}"
    if date.day <= 12:
        assert set(_date_tokens(swapped, REF_YEAR)) >= set(expected[:-1])
