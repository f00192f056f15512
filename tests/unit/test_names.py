"""Name normalisation rules and the nickname table."""

import csv
import re
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.encoding.normalise import (
    canonical_given_name,
    name_parts,
    nickname_table,
    nickname_table_digest,
    normalise_family_name,
    normalise_name,
)

pytestmark = pytest.mark.unit

# ------------------------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Smith", "smith"),
        ("  AMELIA   Rose ", "amelia rose"),
        ("O'Brien", "obrien"),
        ("O’Brien", "obrien"),
        ("D´Arcy", "darcy"),
        ("N`Dour", "ndour"),
        ("Smith-Jones", "smith jones"),
        ("Smith - Jones", "smith jones"),
        ("Smith--Jones", "smith jones"),
        ("St. John", "st john"),
        ("Anne-Marie O'Neill", "anne marie oneill"),
        ("Smith_Jones/Brown", "smith jones brown"),
        ("José", "jose"),
        ("Zoë", "zoe"),
        ("Chloé", "chloe"),
        ("Siân", "sian"),
        ("Renée", "renee"),
        ("Müller", "muller"),
        ("Nguyễn", "nguyen"),
        ("Đặng", "dang"),
        ("Straße", "strasse"),
        ("ẞTRASSE", "sstrasse"),
        ("Æthelred", "aethelred"),
        ("Søren", "soren"),
        ("Łukasz", "lukasz"),
        ("Þóra", "thora"),
        ("Œdipe", "oedipe"),
        ("Guðrún", "gudrun"),
        ("İbrahim", "ibrahim"),
        ("Yıldız", "yildiz"),
        ("ＳＭＩＴＨ", "smith"),
        ("Smith2", "smith"),
        ("J0hn", "jhn"),
        ("Smith 2nd", "smith nd"),
        ("Mc Donald", "mc donald"),
        ("x", "x"),
        ("Na", "na"),
        ("Nana", "nana"),
        ("Babyface", "babyface"),
        ("Twinkle", "twinkle"),
        ("Childs", "childs"),
    ],
)
def test_normalise_name(raw, expected):
    assert normalise_name(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "-",
        "'",
        "123",
        "日本",
        "Иван",
        "Unknown",
        "UNKNOWN",
        "unk",
        "Not Known",
        "not-known",
        "N/K",
        "n.k.",
        "NK",
        "N/A",
        "TBC",
        "tba",
        "XXX",
        "xxxx",
        "zzz",
        "None",
        "null",
        "Anon",
        "No Name",
        "withheld",
        "unknown unknown",
        "Unknown2",
        "XXX XXX",
        "zzz-unknown",
        "Male",
        "FEMALE",
        "boy",
        "Girl",
        "Baby",
        "BABY",
        "Baby of Smith",
        "Baby Smith",
        "Baby Boy",
        "baby girl smith",
        "B/O Smith",
        "baby1",
        "Infant",
        "Infant of Jones",
        "Unborn",
        "Unborn baby",
        "Newborn",
        "Twin 1",
        "twin 2",
        "Twin A",
        "TWIN-B",
        "Twin",
        "Triplet 3",
        "1st twin",
    ],
)
def test_normalise_name_missing_or_placeholder(raw):
    assert normalise_name(raw) is None


def test_normalise_name_non_string_is_missing():
    assert normalise_name(42) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Smith", "smith"),
        ("Baby of Smith", "smith"),
        ("BABY SMITH", "smith"),
        ("B/O Smith", "smith"),
        ("Infant of Smith-Jones", "smith jones"),
        ("Unborn Smith", "smith"),
        ("Baby", None),
        ("Baby of", None),
        ("Unknown", None),
        ("O'Neill", "oneill"),
    ],
)
def test_normalise_family_name_keeps_surname_of_baby_label(raw, expected):
    assert normalise_family_name(raw) == expected


@pytest.mark.parametrize(
    ("normalised", "expected"),
    [
        ("amelia rose", ("amelia", "rose")),
        ("smith jones", ("smith", "jones")),
        ("john f kennedy", ("john", "kennedy")),
        ("j smith", ("smith",)),
        ("j", ("j",)),
        ("j r", ("j", "r")),
        ("obrien", ("obrien",)),
        ("", ()),
        (None, ()),
    ],
)
def test_name_parts(normalised, expected):
    assert name_parts(normalised) == expected


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        *[(n, "william") for n in ("bill", "billy", "will", "willy", "liam", "william")],
        *[(n, "elizabeth") for n in ("beth", "betty", "lizzie", "liz", "eliza", "libby")],
        *[(n, "robert") for n in ("bob", "rob", "robbie", "bobby", "rab")],
        *[(n, "margaret") for n in ("peggy", "maggie", "meg")],
        *[(n, "katherine") for n in ("katie", "kate", "kathy", "cathy", "catherine", "kathryn")],
        *[(n, "muhammad") for n in ("mohammed", "muhammad", "mohammad", "mohamed", "md")],
        *[(n, "alex") for n in ("alex", "alexander", "alexandra", "sasha", "alec")],
        *[(n, "sam") for n in ("sam", "samuel", "samantha")],
        ("harry", "henry"),
        ("dai", "david"),
        ("huw", "hugh"),
        ("eoin", "owen"),
        ("jock", "john"),
        ("paddy", "pat"),
        ("neve", "niamh"),
        ("ciaran", "kieran"),
        ("reece", "rhys"),
        ("jack", "jack"),
        ("elsie", "elsie"),
        ("ellie", "ellie"),
        ("megan", "megan"),
        ("zebedee", "zebedee"),
        (" Bill ", "william"),
    ],
)
def test_canonical_given_name(part, expected):
    assert canonical_given_name(part) == expected


def test_nickname_table_file_is_well_formed():
    text = resources.files("clients.encoding").joinpath("data/nicknames.csv").read_text("utf-8")
    rows = list(csv.reader(text.splitlines()))
    assert rows[0] == ["nickname", "canonical"]
    body = rows[1:]
    assert len(body) >= 300
    nicknames = [row[0] for row in body]
    assert len(nicknames) == len(set(nicknames)), "a nickname must map to exactly one key"
    for nickname, canonical in body:
        assert normalise_name(nickname) == nickname and " " not in nickname
        assert normalise_name(canonical) == canonical and " " not in canonical
    assert len(nickname_table()) == len(body)


def test_nickname_keys_are_fixed_points():
    table = nickname_table()
    for canonical in set(table.values()):
        assert canonical not in table, canonical
        assert canonical_given_name(canonical) == canonical


def test_nickname_table_digest_is_stable_hex():
    digest = nickname_table_digest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and digest == nickname_table_digest()


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=30), st.from_regex(r"[A-Za-z' \-]{0,20}")))
def test_normalise_name_idempotent_and_plain_ascii(raw):
    out = normalise_name(raw)
    if out is not None:
        assert re.fullmatch(r"[a-z]+( [a-z]+)*", out)
    assert normalise_name(out) == out
    family = normalise_family_name(raw)
    assert family is None or normalise_family_name(family) == family


@given(st.text(alphabet=st.characters(min_codepoint=65, max_codepoint=122), max_size=12))
def test_name_fast_path_equals_the_general_rules(raw):
    from clients.encoding.names import _normalise, _normalise_general

    for strip in (False, True):
        assert _normalise(raw, strip_infant_prefix=strip) == _normalise_general(
            raw, strip_infant_prefix=strip
        )


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=24))
def test_ascii_folding_shortcut_equals_the_unicode_rules(raw):
    from clients.encoding.names import _fold, _fold_unicode

    assert _fold(raw) == _fold_unicode(raw)
