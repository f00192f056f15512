"""Client-side normalisation of linkage identifiers, applied before any encoding.

Every function is pure, uses only the standard library, returns ``None`` (or a result object)
for missing or unusable input, and never raises on ordinary bad data. Name rules live in
:mod:`clients.encoding.names` and are re-exported here.

normalise_date(raw, *, reference_year=None) -> DateValue | None
    * Accepted forms (surrounding spaces ignored, spaces round a separator ignored):
      ``YYYY-MM-DD`` (also with ``/`` or ``.``), ``dd/mm/yyyy``, ``dd-mm-yyyy``, ``dd.mm.yyyy``,
      ``dd mm yyyy``, the same with one-digit day/month and two-digit years (``d/m/yy``),
      ``yyyymmdd``, and month names of three letters or more (``4 Mar 2015``, ``04-MAR-15``,
      ``4th Sept 2015``). Eight bare digits are only ever ``yyyymmdd``, never ``ddmmyyyy``.
      A trailing time (``2015-03-04T00:00:00Z``, ``04/03/2015 00:00``) is ignored, since
      exports often turn a date column into a datetime. ``datetime.date`` values are accepted.
    * Day-month order is always UK day first; ``mm/dd/yyyy`` is never guessed.
    * Two-digit years: ``yy <= reference_year % 100`` -> this century, else the previous one
      (``reference_year`` defaults to today's year, read at call time). Records are about
      children, so recent years win; only someone 100+ years old is misread, which is accepted.
    * Invalid calendar dates (``31/02/2015``) -> ``None``. Years outside 1901..2100 -> ``None``:
      nobody on a current record has them, and they catch system "null" dates such as
      ``1900-01-01`` (SQL Server/Excel zero date), ``0001-01-01`` and ``9999-12-31``.
is_default_date(d)
    True for 1 January. Systems that hold only a birth year store it as 01/01, so a 1 January DOB
    is weak evidence: the encoder should lower the weight of day and month (or flag precision).

normalise_postcode(raw) -> Postcode | None
    * Case and spacing are normalised: every non-alphanumeric character is dropped, letters are
      upper-cased, and the inward code (last three characters) is split off with one space:
      ``sw1a1aa`` -> ``SW1A 1AA``.
    * Valid shapes (outward + inward ``9AA``): A9, A99, AA9, AA99, A9A, AA9A, plus ``GIR 0AA``.
      Only the shape is checked, not the per-position letter rules, and letter O is not read as
      zero: a mistyped code is rejected rather than silently rewritten into someone else's.
    * An outward code alone (``SW1A``), or with only part of the inward code (a sector such as
      ``SW1A 1``), gives ``Postcode(full=None, outward="SW1A")``. The space in the input decides
      the split, because ``SW1 1`` (sector of SW1) and ``SW11`` (a district) differ.
    * Anything else -> ``None``. Output is a fixed point: normalising ``full`` (or ``outward``
      when ``full`` is ``None``) again gives the same value. ``inward`` (``1AA``) and ``sector``
      (``SW1A 1``) are derived properties, ``None`` for an outward-only value.

normalise_nhs_number(raw) -> NhsResult
    * ``status`` is ``'valid'``, ``'missing'`` or ``'invalid'``; ``value`` is the 10-digit string
      only when valid, so an invalid number can never be encoded by mistake.
    * ``None``, blank, NaN, or text without a single digit (``unknown``, ``N/K``, ``-``) ->
      ``missing``. Spaces and hyphens are removed; anything else left over, or a length other
      than 10 -> ``invalid``. Integers (and integral floats from spreadsheets) are accepted.
    * Modulus 11: weights 10..2 on the first nine digits, check = 11 - (sum mod 11); 11 means 0,
      10 means the number cannot exist -> ``invalid``; a wrong check digit -> ``invalid``.
    * A number made of one repeated digit (``0000000000``, ``1111111111``) passes modulus 11 but
      is a keying placeholder -> ``invalid``. The 999 test range is not rejected here.

normalise_sex(raw) -> 'm' | 'f' | 'x' | None
    * Codes follow the NHS Data Dictionary: PERSON GENDER CODE (0 not known, 1 male, 2 female,
      9 not specified) and PERSON STATED GENDER CODE (1, 2, 9 indeterminate, X not known).
    * ``m``: M, Male, 1, Boy, Man. ``f``: F, Female, 2, Girl, Woman.
      ``x`` (indeterminate / not specified): 9, I, Indeterminate, Intersex, Not specified,
      Unspecified, Other.
    * ``None`` (missing): blank, 0, U, X, Z, Unknown, Not known, Not stated, and anything not
      recognised. ``X`` and ``U`` are deliberately missing, not ``x``: X means "not known" in
      PERSON STATED GENDER CODE and U means "indeterminate" in NHS Wales but "unknown"
      elsewhere, and a wrong value counts against a match while a missing one is neutral.
      The linkage schema's fourth state ("not known") is therefore ``None``.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass
from typing import Literal

from clients.encoding.names import (
    canonical_given_name,
    name_parts,
    nickname_table,
    nickname_table_digest,
    normalise_family_name,
    normalise_name,
)

__all__ = [
    "DateValue",
    "NhsResult",
    "NhsStatus",
    "Postcode",
    "canonical_given_name",
    "is_default_date",
    "name_parts",
    "nickname_table",
    "nickname_table_digest",
    "normalise_date",
    "normalise_family_name",
    "normalise_name",
    "normalise_nhs_number",
    "normalise_postcode",
    "normalise_sex",
    "nhs_check_digit",
]

# ---------------------------------------------------------------------------------------- dates

_MIN_YEAR, _MAX_YEAR = 1901, 2100
_MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_TIME_SUFFIX = re.compile(
    r"(?:[t ]\s*\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:z|am|pm|[+-]\d{2}:?\d{2})?)$"
)
_SPACED_SEPARATOR = re.compile(r"\s*([/.\-])\s*")
_YEAR_FIRST = re.compile(r"(\d{4})([/.\-])(\d{1,2})\2(\d{1,2})")
_DAY_FIRST = re.compile(r"(\d{1,2})([/.\- ])(\d{1,2})\2(\d{4}|\d{2})")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_MONTH_NAME = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?[ /.\-]*([a-z]+)[ /.\-,]*(\d{4}|\d{2})")


@dataclass(frozen=True, order=True, slots=True)
class DateValue:
    """A valid calendar date; construction with an impossible date raises ``ValueError``."""

    year: int
    month: int
    day: int

    def __post_init__(self) -> None:
        _dt.date(self.year, self.month, self.day)

    def iso(self) -> str:
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"


def _expand_year(text: str, reference_year: int) -> int:
    year = int(text)
    if len(text) != 2:
        return year
    century = reference_year - reference_year % 100
    return century + year if year <= reference_year % 100 else century - 100 + year


def normalise_date(
    raw: str | _dt.date | None, *, reference_year: int | None = None
) -> DateValue | None:
    """Parse a UK-style date string into a :class:`DateValue`; ``None`` if unusable."""
    fields: tuple[int, int, int] | None = None
    if isinstance(raw, _dt.date):
        fields = (raw.year, raw.month, raw.day)
    elif isinstance(raw, str):
        fields = _parse_date_text(raw, reference_year)
    if fields is None:
        return None
    year, month, day = fields
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        return None
    try:
        return DateValue(year, month, day)
    except (ValueError, TypeError):
        return None


def _parse_date_text(raw: str, reference_year: int | None) -> tuple[int, int, int] | None:
    text = _TIME_SUFFIX.sub("", raw.strip().lower()).strip()
    text = _SPACED_SEPARATOR.sub(r"\1", text)
    text = " ".join(text.split())
    ref = _dt.date.today().year if reference_year is None else reference_year
    if match := _YEAR_FIRST.fullmatch(text):
        return int(match[1]), int(match[3]), int(match[4])
    if match := _DAY_FIRST.fullmatch(text):
        return _expand_year(match[4], ref), int(match[3]), int(match[1])
    if match := _COMPACT.fullmatch(text):
        return int(match[1]), int(match[2]), int(match[3])
    if match := _MONTH_NAME.fullmatch(text):
        # Any prefix of three letters or more names a month: "mar", "sept", "march".
        months = [n for n, name in enumerate(_MONTH_NAMES, 1) if name.startswith(match[2])]
        if len(match[2]) >= 3 and months:
            return _expand_year(match[3], ref), months[0], int(match[1])
    return None


def is_default_date(d: DateValue | None) -> bool:
    """True for 1 January, the value systems store when only the birth year is known."""
    return d is not None and d.month == 1 and d.day == 1


# ------------------------------------------------------------------------------------ postcodes

_OUTWARD = r"[A-Z]{1,2}[0-9][0-9A-Z]?"
_FULL_POSTCODE = re.compile(rf"({_OUTWARD})([0-9][A-Z]{{2}})|(GIR)(0AA)")
_OUTWARD_ONLY = re.compile(rf"{_OUTWARD}|GIR")
_PARTIAL_INWARD = re.compile(r"[0-9][A-Z]?")
_NON_ALNUM = re.compile(r"[^A-Z0-9]+")


@dataclass(frozen=True, slots=True)
class Postcode:
    """``full`` is ``"SW1A 1AA"`` or ``None`` when only the outward code is known."""

    full: str | None
    outward: str

    @property
    def inward(self) -> str | None:
        return self.full.split(" ")[1] if self.full else None

    @property
    def sector(self) -> str | None:
        """Outward code plus the inward digit (``"SW1A 1"``), a coarser area for blocking."""
        return self.full[:-2] if self.full else None


def normalise_postcode(raw: str | None) -> Postcode | None:
    """Validate and canonicalise a UK postcode; ``None`` if it is not one."""
    if not isinstance(raw, str):
        return None
    tokens = [token for token in _NON_ALNUM.split(raw.upper()) if token]
    compact = "".join(tokens)
    if match := _FULL_POSTCODE.fullmatch(compact):
        outward = match[1] or match[3]
        return Postcode(full=f"{outward} {match[2] or match[4]}", outward=outward)
    if len(tokens) == 1 and _OUTWARD_ONLY.fullmatch(compact):
        return Postcode(full=None, outward=compact)
    if (
        len(tokens) == 2
        and _OUTWARD_ONLY.fullmatch(tokens[0])
        and _PARTIAL_INWARD.fullmatch(tokens[1])
    ):
        return Postcode(full=None, outward=tokens[0])
    return None


# ---------------------------------------------------------------------------------- NHS numbers

NhsStatus = Literal["valid", "missing", "invalid"]
_NHS_SEPARATORS = re.compile(r"[\s\-]+")


@dataclass(frozen=True, slots=True)
class NhsResult:
    """``value`` is the 10-digit number when ``status == 'valid'``, otherwise ``None``."""

    value: str | None
    status: NhsStatus


_MISSING_NHS, _INVALID_NHS = NhsResult(None, "missing"), NhsResult(None, "invalid")


def nhs_check_digit(first_nine: str) -> int | None:
    """Modulus-11 check digit for nine digits, or ``None`` when no valid number can exist."""
    if len(first_nine) != 9 or not (first_nine.isascii() and first_nine.isdigit()):
        return None
    weights = range(10, 1, -1)
    total = sum(int(digit) * weight for digit, weight in zip(first_nine, weights, strict=True))
    check = 11 - total % 11
    if check == 10:
        return None
    return 0 if check == 11 else check


def normalise_nhs_number(raw: str | int | float | None) -> NhsResult:
    """Validate an NHS number (modulus 11) and return it as ten digits with a status."""
    if raw is None or isinstance(raw, bool):
        return _MISSING_NHS if raw is None else _INVALID_NHS
    if isinstance(raw, float):
        if math.isnan(raw):
            return _MISSING_NHS
        if not raw.is_integer():
            return _INVALID_NHS
        raw = int(raw)
    raw = str(raw) if isinstance(raw, int) else raw
    if not isinstance(raw, str):
        return _INVALID_NHS
    if not any(ch.isdigit() for ch in raw):
        return _MISSING_NHS
    digits = _NHS_SEPARATORS.sub("", raw)
    if len(digits) != 10 or not (digits.isascii() and digits.isdigit()):
        return _INVALID_NHS
    if len(set(digits)) == 1 or nhs_check_digit(digits[:9]) != int(digits[9]):
        return _INVALID_NHS
    return NhsResult(digits, "valid")


# ------------------------------------------------------------------------------------------ sex

_SEX_CODES = {
    **dict.fromkeys(("m", "male", "1", "boy", "man"), "m"),
    **dict.fromkeys(("f", "female", "2", "girl", "woman"), "f"),
    **dict.fromkeys(
        ("9", "i", "indeterminate", "intersex", "not specified", "unspecified", "other"), "x"
    ),
}


def normalise_sex(raw: str | int | None) -> str | None:
    """Map a recorded sex/gender code to ``'m'``, ``'f'``, ``'x'`` or ``None`` (missing)."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        return None
    key = " ".join(re.sub(r"[^a-z0-9]+", " ", str(raw).lower()).split())
    return _SEX_CODES.get(key)
