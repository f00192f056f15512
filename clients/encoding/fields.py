"""From a raw CSV value to the tokens one schema field puts in the Bloom filter.

Tokenisers (named in the schema):

``qgrams``
    padded q-grams of each name part: "amy" with q=2 gives "_a", "am", "my", "y_". Parts are
    tokenised separately so that adding, dropping or reordering a middle name or one half of a
    double-barrelled surname leaves the other parts' tokens intact.
``date_parts``
    ``dm:<day>`` and ``dm:<month>`` as *unlabelled* tokens, so a day/month swap keeps both;
    ``y:<year>``; and ``ymd:<date>``, which only an exact date matches. A 01/01 default keeps the
    year token; one mistyped component keeps the other two.
``postcode``
    the full postcode, its sector and its outward code, so a move within a district still agrees
    in part; an outward code alone gives just that token.
``exact``
    the whole normalised value as one token.
``identifier``
    nothing in the filter: a validated identifier becomes a keyed exact token beside it
    (see :mod:`clients.encoding.encoder`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import unicodedata
from collections.abc import Callable

from linkage_service.wire.schema import FieldSpec

from . import normalise as norm

__all__ = [
    "Tokeniser",
    "date_parts",
    "field_tokeniser",
    "identifier_value",
    "normalise_text",
    "postcode_parts",
]

Tokeniser = Callable[[str], tuple[str, ...] | None]
_PAD = "_"
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalise_text(raw: str | None) -> str | None:
    """Free text (addresses, ids): ASCII, lower case, other characters to single spaces."""
    if raw is None:
        return None
    ascii_text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode()
    text = _NON_ALNUM.sub(" ", ascii_text.lower()).strip()
    return text or None


def qgrams(parts: tuple[str, ...], q: int) -> tuple[str, ...]:
    pad = _PAD * (q - 1)
    grams: dict[str, None] = {}
    for part in parts:
        padded = pad + part + pad
        for i in range(len(padded) - q + 1):
            grams[padded[i : i + q]] = None
    return tuple(grams)


def _given_name_parts(raw: str) -> tuple[str, ...]:
    return tuple(norm.canonical_given_name(p) for p in norm.name_parts(norm.normalise_name(raw)))


def _family_name_parts(raw: str) -> tuple[str, ...]:
    return norm.name_parts(norm.normalise_family_name(raw))


def _text_parts(raw: str) -> tuple[str, ...]:
    text = normalise_text(raw)
    return (text,) if text else ()


_PART_NORMALISERS: dict[str, Callable[[str], tuple[str, ...]]] = {
    "given_name": _given_name_parts,
    "family_name": _family_name_parts,
    "text": _text_parts,
}


# Fast paths for the shapes agencies actually export (ISO, dd/mm/yyyy, d/m/yy, yyyymmdd; a
# canonical "SW1A 1AA"): a regex and a calendar check instead of the general parser. Anything
# else goes to the general normaliser, which is also the reference the tests hold these to.
_FAST_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})|(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})"
    r"|(\d{4})(\d{2})(\d{2})"
)
_FAST_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][0-9A-Z]?) [0-9][A-Z]{2}")
_COMPACT_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][0-9A-Z]?)([0-9][A-Z]{2})")
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_UNPARSED = (-1, -1, -1)
_DAY_MONTH_TOKENS = tuple(f"dm:{n:02d}" for n in range(32))


def _fast_date(raw: str, reference_year: int) -> tuple[int, int, int] | None:
    """(year, month, day); None for an impossible date; _UNPARSED if the shape is unusual."""
    match = _FAST_DATE.fullmatch(raw)
    if match is None:
        return _UNPARSED
    if match[1]:
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    elif match[4]:
        day, month, year = int(match[4]), int(match[5]), int(match[6])
        if len(match[6]) == 2:
            century = reference_year - reference_year % 100
            year += century if year <= reference_year % 100 else century - 100
    else:
        year, month, day = int(match[7]), int(match[8]), int(match[9])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not (
        1901 <= year <= 2100
        and 1 <= month <= 12
        and 1 <= day <= _DAYS_IN_MONTH[month]
        and (month != 2 or day <= 28 or leap)
    ):
        return None
    return year, month, day


def date_parts(raw: str, reference_year: int | None = None) -> tuple[int, int, int] | None:
    """(year, month, day) of a date of birth, or None when missing or impossible."""
    ref = _dt.date.today().year if reference_year is None else reference_year
    fast = _fast_date(raw, ref)
    if fast != _UNPARSED:
        return fast
    date = norm.normalise_date(raw, reference_year=ref)
    return None if date is None else (date.year, date.month, date.day)


def _date_tokens(raw: str, reference_year: int) -> tuple[str, ...] | None:
    parts = date_parts(raw, reference_year)
    if parts is None:
        return None
    year, month, day = parts
    ymd = f"ymd:{year:04d}-{month:02d}-{day:02d}"
    if day == month:
        return (_DAY_MONTH_TOKENS[day], f"y:{year:04d}", ymd)
    return (_DAY_MONTH_TOKENS[day], _DAY_MONTH_TOKENS[month], f"y:{year:04d}", ymd)


def postcode_parts(raw: str) -> tuple[str | None, str] | None:
    """(full postcode or None, outward code) of a UK postcode, or None when not one."""
    match = _FAST_POSTCODE.fullmatch(raw)
    if match is not None:
        return raw, match[1]
    if raw.isascii():  # lower case or spacing off ("sw1a1aa", "b8 7la"): the same rule, cheaper
        match = _COMPACT_POSTCODE.fullmatch(raw.upper().replace(" ", ""))
        if match is not None:
            return f"{match[1]} {match[2]}", match[1]
    postcode = norm.normalise_postcode(raw)
    return None if postcode is None else (postcode.full, postcode.outward)


def _postcode_tokens(raw: str) -> tuple[str, ...] | None:
    parts = postcode_parts(raw)
    if parts is None:
        return None
    full, outward = parts
    if full is None:
        return (f"out:{outward}",)
    return (f"pc:{full}", f"sec:{full[:-2]}", f"out:{outward}")


def _scalar_normaliser(spec: FieldSpec) -> Callable[[str], str | None]:
    if spec.normaliser == "sex":
        return norm.normalise_sex
    if spec.normaliser in _PART_NORMALISERS:
        part_fn = _PART_NORMALISERS[spec.normaliser]
        return lambda raw: " ".join(part_fn(raw)) or None
    if spec.normaliser == "nhs_number":
        return lambda raw: norm.normalise_nhs_number(raw).value
    if spec.normaliser == "postcode":
        return lambda raw: getattr(norm.normalise_postcode(raw), "full", None)
    if spec.normaliser == "date":
        return lambda raw: getattr(norm.normalise_date(raw), "iso", lambda: None)()
    raise ValueError(f"field {spec.name}: normaliser {spec.normaliser!r} has no scalar form")


def field_tokeniser(spec: FieldSpec) -> Tokeniser:
    """The function from a raw value to this field's tokens (None when the value is missing)."""
    if spec.tokeniser == "qgrams":
        if spec.normaliser not in _PART_NORMALISERS:
            raise ValueError(f"field {spec.name}: qgrams need a name or text normaliser")
        part_fn, q = _PART_NORMALISERS[spec.normaliser], spec.q
        return lambda raw: qgrams(part_fn(raw), q) or None
    if spec.tokeniser == "date_parts":
        # Two-digit years are read relative to the year the run starts in, asked once per run.
        return functools.partial(_date_tokens, reference_year=_dt.date.today().year)
    if spec.tokeniser == "postcode":
        return _postcode_tokens
    if spec.tokeniser == "exact":
        scalar = _scalar_normaliser(spec)

        def exact(raw: str) -> tuple[str, ...] | None:
            value = scalar(raw)
            return None if value is None else (f"v:{value}",)

        return exact
    raise ValueError(f"field {spec.name}: tokeniser {spec.tokeniser!r} is not a filter tokeniser")


def identifier_value(spec: FieldSpec, raw: str) -> tuple[str, str | None]:
    """(status, normalised value) of an identifier field; status is valid, missing or invalid.
    Only a number that passes its check is used, so a typo cannot assert a false disagreement."""
    if spec.normaliser == "nhs_number":
        result = norm.normalise_nhs_number(raw)
        return result.status, result.value
    value = _scalar_normaliser(spec)(raw)
    return ("valid", value) if value else ("missing", None)
