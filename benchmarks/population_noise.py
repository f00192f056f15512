"""Agency record model for the synthetic population: how a record drifts from the child's truth.

`noisy_record` turns a child's true identifiers into the strings one agency would hold. Each
error is applied independently at the rate set in `PopulationConfig`, which also lists the
published figures behind each rate. References in brackets are to the domain notes'
reference list (for example [40] for name disagreement between collections).
"""

from __future__ import annotations

import calendar
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.population_names import NAME_VARIANTS

if TYPE_CHECKING:
    from benchmarks.population import PopulationConfig

# Sex as each agency's system writes it. The health column follows the numeric convention of
# NHS systems (1 male, 2 female, 9 not specified); blanks are how some systems store "unknown".
SEX_CODES: dict[str, dict[str, str]] = {
    "social_care": {"M": "Male", "F": "Female", "U": "Unknown"},
    "police": {"M": "M", "F": "F", "U": "U"},
    "health": {"M": "1", "F": "2", "U": "9"},
    "school": {"M": "M", "F": "F", "U": ""},
    "housing": {"M": "Male", "F": "Female", "U": ""},
}

DATE_STYLES: tuple[str, ...] = ("iso", "dmy", "dmy_short", "compact")

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
# Most substitution typos hit a neighbouring key, which is why they survive a quick visual check.
_KEY_NEIGHBOURS: dict[str, str] = {}
for _row in _QWERTY_ROWS:
    for _i, _key in enumerate(_row):
        _KEY_NEIGHBOURS[_key] = _row[max(_i - 1, 0) : _i] + _row[_i + 1 : _i + 2]


@dataclass(slots=True)
class Child:
    """One child's true identifiers plus the household facts the error model draws on."""

    child_id: str
    household_id: str
    name_origin: str
    given_name: str
    middle_name: str
    family_name: str
    alt_family_name: str  # the other parent's or a step-parent's surname: source of changes
    date_of_birth: date
    sex: str  # "M" or "F"
    postcode: str
    previous_postcode: str  # where the household lived before its last move
    nhs_number: str
    twin_of: str = ""
    sibling_nhs_numbers: list[str] = field(default_factory=list)


def age_on(dob: date, day: date) -> int:
    """Age in whole years on `day`."""
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


def nhs_check_digit(first_nine: str) -> int | None:
    """The NHS number check digit for nine digits, or None where no valid number exists.

    Weights 10 down to 2 on the nine digits; check = 11 - (sum mod 11); 11 becomes 0 and 10
    means the nine digits can never form a valid number.
    """
    weights = range(10, 1, -1)
    total = sum(int(d) * w for d, w in zip(first_nine[:9], weights, strict=True))
    check = 11 - total % 11
    return 0 if check == 11 else None if check == 10 else check


def is_valid_nhs_number(value: str) -> bool:
    """True if `value` (spaces allowed, as in '943 476 5919') passes the modulus-11 check."""
    digits = value.replace(" ", "")
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return False
    return nhs_check_digit(digits[:9]) == int(digits[9])


def valid_nhs_numbers(n: int, rng: np.random.Generator, prefix: str) -> list[str]:
    """`n` distinct valid NHS numbers whose first digits are `prefix`."""
    free = 9 - len(prefix)
    space = 10**free
    if n > space // 2:  # 1 in 11 bodies has no check digit; beyond half, draws mostly repeat
        raise ValueError(f"{n} children need more NHS numbers than prefix {prefix!r} allows")
    base = int(prefix or "0") * space
    weights = np.arange(10, 1, -1)
    powers = 10 ** np.arange(8, -1, -1)
    found: dict[int, None] = {}
    while len(found) < n:
        bodies = base + rng.integers(0, space, size=n - len(found) + 64)
        checks = 11 - ((bodies[:, None] // powers) % 10 @ weights) % 11
        checks[checks == 11] = 0
        for number in (bodies * 10 + checks)[checks != 10].tolist():
            found.setdefault(number, None)
    return [f"{number:010d}" for number in list(found)[:n]]


def strip_accents(text: str) -> str:
    """ASCII-fold a name the way systems without Unicode support do ('Zoë' -> 'Zoe')."""
    # Ł and ł have no decomposition, so NFKD alone would drop them rather than fold them.
    text = text.replace("Ł", "L").replace("ł", "l")
    folded = unicodedata.normalize("NFKD", text)
    return (
        "".join(ch for ch in folded if not unicodedata.combining(ch))
        .encode("ascii", "ignore")
        .decode("ascii")
    )


def typo(word: str, rng: random.Random) -> str:
    """One keying error: insert, delete, substitute (mostly a neighbouring key) or transpose."""
    if len(word) < 3:
        return word
    for _ in range(4):
        # Clerks rarely get the initial wrong; errors cluster in the body of the name.
        i = rng.randrange(1, len(word)) if rng.random() < 0.9 else 0
        low = word[i].lower()
        letter = (
            rng.choice(_KEY_NEIGHBOURS.get(low) or _LETTERS)
            if rng.random() < 0.7
            else (rng.choice(_LETTERS))
        )
        if word[i].isupper():
            letter = letter.upper()
        op = rng.randrange(4)
        if op == 0:
            out = word[:i] + letter + word[i:]
        elif op == 1:
            out = word[:i] + word[i + 1 :]
        elif op == 2:
            out = word[:i] + letter + word[i + 1 :]
        else:
            i = min(i, len(word) - 2)
            out = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if out != word and out.strip(" -'") == out:
            return out
    return word


def name_variant(name: str, rng: random.Random) -> str | None:
    """A nickname, short form, anglicised form or transliteration of `name`, if one is known."""
    forms = NAME_VARIANTS.get(name)
    return rng.choice(forms) if forms else None


def changed_surname(family: str, alt_family: str, rng: random.Random) -> str:
    """A surname another agency may hold after a family change: the other parent's or a new
    partner's surname, a double-barrel added or dropped, or a Polish feminine form recorded
    in the masculine (a parent's) form."""
    for feminine, masculine in (("ska", "ski"), ("cka", "cki"), ("dzka", "dzki")):
        if family.endswith(feminine) and rng.random() < 0.5:
            return family[: -len(feminine)] + masculine
    if "-" in family or " " in family:
        parts = family.replace(" ", "-").split("-")
        return rng.choice([parts[0], parts[-1], alt_family])
    roll = rng.random()
    if roll < 0.6 or alt_family == family or "-" in alt_family:
        return alt_family
    return f"{family}-{alt_family}" if roll < 0.8 else f"{alt_family}-{family}"


def format_date(value: date, style: str) -> str:
    """Write a date in one of DATE_STYLES: '2015-03-07', '07/03/2015', '7/3/15', '20150307'."""
    if style == "iso":
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    if style == "dmy":
        return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"
    if style == "dmy_short":
        return f"{value.day}/{value.month}/{value.year % 100:02d}"
    if style == "compact":
        return f"{value.year:04d}{value.month:02d}{value.day:02d}"
    raise ValueError(f"unknown date style {style!r}; expected one of {DATE_STYLES}")


def _safe_date(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def mistyped_date(value: date, rng: random.Random) -> date:
    """The date with exactly one of day, month or year keyed wrongly."""
    part = rng.randrange(3)
    if part == 0:
        swapped = int(f"{value.day:02d}"[::-1])  # 13 -> 31, 21 -> 12: a transposed day
        last = calendar.monthrange(value.year, value.month)[1]
        if 1 <= swapped <= last and swapped != value.day and rng.random() < 0.5:
            return value.replace(day=swapped)
        step = rng.choice((-1, 1))
        day = value.day + step if 1 <= value.day + step <= last else value.day - step
        return value.replace(day=day)
    if part == 1:
        month = value.month + rng.choice((-1, 1))
        month = month if 1 <= month <= 12 else value.month - (month - value.month)
        return _safe_date(value.year, month, value.day)
    return _safe_date(value.year + rng.choice((-1, 1)), value.month, value.day)


def noisy_date_of_birth(value: date, rng: random.Random, cfg: PopulationConfig) -> date | None:
    """The DOB an agency holds: at most one error, or None when the field is blank."""
    roll = rng.random()
    for rate, kind in (
        (cfg.dob_missing_rate, "missing"),
        (cfg.dob_year_only_rate, "year_only"),
        (cfg.dob_day_month_swap_rate, "swap"),
        (cfg.dob_typo_rate, "typo"),
        (cfg.dob_reassessed_rate, "reassessed"),
    ):
        if roll >= rate:
            roll -= rate
            continue
        if kind == "missing":
            return None
        if kind == "year_only":
            return date(value.year, 1, 1)  # year-only DOBs defaulted to 01/01 [36]
        if kind == "swap":
            # Only a swap that still parses as a date goes unnoticed at entry.
            if value.day <= 12 and value.day != value.month:
                return date(value.year, value.day, value.month)
            return value
        if kind == "typo":
            return mistyped_date(value, rng)
        # An age assessment moves the DOB by months or years, not days [21].
        return value + timedelta(days=rng.choice((-1, 1)) * rng.randint(60, 730))
    return value


def mistyped_nhs_number(nhs: str, rng: random.Random, fixed_prefix: int) -> str:
    """One digit changed or two adjacent digits transposed. Both always break the mod-11 check.

    The first `fixed_prefix` digits are left alone so that every number stays inside the range
    reserved for test data and cannot be a real patient's.
    """
    digits = list(nhs)
    i = rng.randrange(fixed_prefix, 10)
    if rng.random() < 0.3 and i < 9 and digits[i] != digits[i + 1]:
        digits[i], digits[i + 1] = digits[i + 1], digits[i]
    else:
        digits[i] = rng.choice([d for d in "0123456789" if d != digits[i]])
    return "".join(digits)


def _given_name(
    child: Child, agency: str, age: int, rng: random.Random, cfg: PopulationConfig
) -> str:
    if age == 0 and agency in ("health", "social_care") and rng.random() < cfg.baby_name_rate:
        # Newborns registered before naming appear as 'Baby Surname' [36].
        roll = rng.random()
        if roll < 0.5:
            return "Baby"
        if roll < 0.75:
            return f"Baby of {child.family_name}"
        return "Baby Boy" if child.sex == "M" else "Baby Girl"
    given = child.given_name
    if rng.random() < cfg.nickname_rate:
        given = name_variant(given, rng) or given
    if child.middle_name and rng.random() < cfg.middle_name_in_given_rate:
        given = f"{given} {child.middle_name}"
    if rng.random() < cfg.given_typo_rate:
        given = typo(given, rng)
    return given


def _postcode(child: Child, rng: random.Random, cfg: PopulationConfig) -> str:
    if rng.random() < cfg.postcode_missing_rate:
        return ""
    # A stale address is the household's previous one, so agencies that missed the same move
    # still agree with each other [42].
    postcode = (
        child.previous_postcode if rng.random() < cfg.postcode_moved_rate else (child.postcode)
    )
    if rng.random() < cfg.postcode_format_rate:
        postcode = rng.choice((postcode.replace(" ", ""), postcode.lower()))
    return postcode


def _nhs_number(child: Child, agency: str, rng: random.Random, cfg: PopulationConfig) -> str:
    if rng.random() < cfg.nhs_missing_rate[agency]:
        return ""
    nhs = child.nhs_number
    roll = rng.random()
    if roll < cfg.nhs_mistype_rate:
        nhs = mistyped_nhs_number(nhs, rng, fixed_prefix=len(cfg.nhs_test_prefix))
    elif roll < cfg.nhs_mistype_rate + cfg.nhs_sibling_rate and child.sibling_nhs_numbers:
        # A sibling's number keyed against the wrong child: valid, and wrong.
        nhs = rng.choice(child.sibling_nhs_numbers)
    if rng.random() < cfg.nhs_spaced_rate:
        nhs = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"
    return nhs


def noisy_record(
    child: Child, agency: str, rng: random.Random, cfg: PopulationConfig
) -> dict[str, str]:
    """The identifying fields (all strings, '' for blank) that `agency` holds for `child`."""
    given = _given_name(child, agency, age_on(child.date_of_birth, cfg.reference_date), rng, cfg)
    family = child.family_name
    if rng.random() < cfg.surname_change_rate:
        family = changed_surname(family, child.alt_family_name, rng)
    if rng.random() < cfg.family_typo_rate:
        family = typo(family, rng)
    if not (given.isascii() and family.isascii()) and rng.random() < cfg.accent_strip_rate:
        given, family = strip_accents(given), strip_accents(family)
    if rng.random() < cfg.name_swap_rate:
        given, family = family, given

    dob = noisy_date_of_birth(child.date_of_birth, rng, cfg)
    style = cfg.date_format[agency]
    if rng.random() < cfg.other_date_format_rate:
        style = rng.choice(DATE_STYLES)  # records migrated from a legacy system
    sex = child.sex
    roll = rng.random()
    if roll < cfg.sex_missing_rate:
        sex = "U"
    elif roll < cfg.sex_missing_rate + cfg.sex_error_rate:
        sex = "F" if sex == "M" else "M"

    record = {
        "given_name": given,
        "family_name": family,
        "date_of_birth": format_date(dob, style) if dob else "",
        "sex": SEX_CODES[agency][sex],
        "postcode": _postcode(child, rng, cfg),
        "nhs_number": _nhs_number(child, agency, rng, cfg),
    }
    if agency in cfg.uppercase_agencies:
        record = {key: value.upper() for key, value in record.items()}
    elif rng.random() < cfg.case_variation_rate:
        upper = rng.random() < 0.5
        for key in ("given_name", "family_name"):
            record[key] = record[key].upper() if upper else record[key].lower()
    if rng.random() < cfg.whitespace_rate:
        key = rng.choice(("given_name", "family_name", "postcode", "nhs_number"))
        value = record[key]
        if value:
            roll = rng.random()
            if roll < 0.4:
                record[key] = f" {value}"
            elif roll < 0.8 or " " not in value:
                record[key] = f"{value} "
            else:
                record[key] = value.replace(" ", "  ", 1)
    return record


def record_ids(agency: str, owners: list[Child], rng: random.Random, ref: date) -> list[str]:
    """Record ids in each agency's own style, one per owner, in the owners' order.

    The formats differ on purpose ('SC-000123', 'P/2024/00123', 'MRN4839201', '103412-0017',
    'HOU/010123'), because a linker must treat them as opaque.
    """
    n = len(owners)
    if agency == "social_care":
        return [f"SC-{i:06d}" for i in range(1, n + 1)]
    if agency == "health":
        return [f"MRN{i:07d}" for i in rng.sample(range(1_000_000, 10_000_000), n)]
    if agency == "housing":
        return [f"HOU/{i:06d}" for i in range(10_001, 10_001 + n)]
    counters: dict[str, int] = {}
    ids = []
    if agency == "police":  # crime-recording style: year the record was opened, then a serial
        for child in owners:
            year = str(rng.randint(max(child.date_of_birth.year, ref.year - 9), ref.year))
            counters[year] = counters.get(year, 0) + 1
            ids.append(f"P/{year}/{counters[year]:05d}")
        return ids
    schools = [str(urn) for urn in rng.sample(range(103_000, 104_000), 40)]
    for _ in owners:  # one pupil number series per school
        urn = rng.choice(schools)
        counters[urn] = counters.get(urn, 0) + 1
        ids.append(f"{urn}-{counters[urn]:04d}")
    return ids
