"""Name normalisation rules shared by every agency client.

Both sides of a comparison must apply exactly the same rules, so every rule is listed here and
each one is pinned by a test in ``tests/unit/test_normalise.py``.

normalise_name(raw)
    1. ``None``, a non-string, or a value that is empty after the steps below -> ``None``.
    2. Apostrophes are deleted, not spaced: ``O'Brien`` -> ``obrien``, ``D’Souza`` -> ``dsouza``.
       The set covers ASCII ``'``, the typographic quotes, modifier letters, backtick, acute
       accent, prime and the Catalan middle dot, because systems substitute them for each other.
    3. Case-folded, then Unicode NFKD with every combining mark dropped (``José`` -> ``jose``,
       ``Zoë`` -> ``zoe``, full-width and ligature forms fold to ASCII).
    4. Letters that NFKD does not decompose are transliterated: ``ß``->``ss``, ``æ``->``ae``,
       ``ø``->``o``, ``ł``->``l``, ``đ``/``ð``->``d``, ``þ``->``th``, ``œ``->``oe``,
       ``ı``->``i``, ``ħ``->``h``, ``ŧ``->``t``.
    5. Hyphens and every other character outside ``a-z0-9`` become a space (``Smith-Jones`` ->
       ``smith jones``); whitespace runs collapse to one space and the ends are trimmed.
       Non-Latin scripts are not transliterated and therefore vanish, so a name written only in
       another script is treated as missing rather than as a garbled match candidate.
    6. Placeholders -> ``None`` (checked with digits still present, then again without them):
       the whole value is a phrase such as ``unknown``, ``not known``, ``n/k``, ``nk``, ``n/a``,
       ``tbc``, ``no name``, ``male``, ``female``, ``baby``, ``infant``, ``unborn``, ``newborn``;
       every word is a placeholder word (``unknown unknown``) or a run of one repeated letter of
       length three or more (``xxx``, ``zzzz xxx``); a twin/triplet label (``twin 1``, ``twin b``);
       or the value starts with ``baby``, ``infant``, ``unborn``, ``newborn``, ``neonate`` or
       ``b o`` (``B/O`` = "baby of"). ``Baby``, ``Baby Smith`` and ``Baby of Smith`` therefore
       carry no given-name information and give ``None``: an unnamed infant links on its family
       name, date of birth, sex and NHS number, never on a given name.
    7. Digits are dropped last (``Smith2`` -> ``smith``), so output matches ``[a-z]+( [a-z]+)*``.
    The function is idempotent: its output, normalised again, is unchanged.

normalise_family_name(raw)
    As ``normalise_name``, except that an infant prefix is stripped instead of voiding the value
    (``Baby of Smith``, ``B/O Smith``, ``Baby Smith`` -> ``smith``), because some systems put the
    whole "Baby Surname" label in the family-name field and the surname is what links the infant.

name_parts(normalised)
    Splits on spaces: ``amelia rose`` -> ``("amelia", "rose")``, ``smith jones`` ->
    ``("smith", "jones")``. One-letter initials are dropped, unless every part is an initial
    (``j`` -> ``("j",)``, ``j r`` -> ``("j", "r")``), since then they are all the name there is.
    ``None`` or empty -> ``()``.

canonical_given_name(part)
    Looks one name part up in ``data/nicknames.csv`` (columns ``nickname,canonical``) and returns
    the canonical key; a part not in the table is returned unchanged. The table is loaded once,
    lazily; it is public reference data, not a secret. Keys are fixed points (a canonical key is
    never itself a nickname of something else), so applying the map twice changes nothing.
    Table policy:
    * A short form maps to its full name (``bill``/``will``/``liam`` -> ``william``,
      ``harry`` -> ``henry``, ``peggy``/``meg`` -> ``margaret``) and spelling variants map to one
      spelling (``catherine``/``kathryn`` -> ``katherine``; ``mohammed``/``mohamed``/``md`` ->
      ``muhammad``; ``reece`` -> ``rhys``; ``neve`` -> ``niamh``), including Welsh, Irish and
      Scottish forms (``dai`` -> ``david``, ``huw`` -> ``hugh``, ``eoin`` -> ``owen``,
      ``rab`` -> ``robert``, ``jock`` -> ``john``).
    * A short form shared by a male and a female name joins both names into one cluster whose key
      is the shared short form, so either spelling on either side collapses the same way: ``alex``
      (alexander, alexandra, alec, sasha), ``sam`` (samuel, samantha), ``chris`` (christopher,
      christian, christine, christina), ``pat`` (patrick, patricia), ``fran`` (francis, frances,
      francesca, frank, frankie), ``nicky`` (nicholas, nicola, nicole), ``charlie`` (charles,
      charlotte, lottie). Sex is a separate field, so the cost is small; boy/girl twins in one
      cluster differ only in the raw name, which is why a twin check must use the raw name.
    * A short form with several unrelated sources and no dominant one maps to itself: ``ellie``,
      ``millie``, ``evie``, ``bella``, ``annie``, ``teddy``, ``max``, ``jo``, ``al``, ``sandy``,
      ``georgie``, ``maddie``.
    * Names that are now registered in their own right keep their own key when the old link is no
      longer how people are called: ``jack`` is not mapped to ``john`` and ``elsie`` is not mapped
      to ``elizabeth``; ``sean``, ``ian``, ``megan`` and ``kathleen`` stay distinct names.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import re
import unicodedata
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

__all__ = [
    "canonical_given_name",
    "name_parts",
    "nickname_table",
    "nickname_table_digest",
    "normalise_family_name",
    "normalise_name",
]

# Deleted rather than spaced: they join the two halves of one name (O'Brien, D’Arcy).
_APOSTROPHES = dict.fromkeys(
    map(ord, "'\u2019\u2018\u201b\u02bc\u02bb\u0060\u00b4\u2032\uff07\u00b7")
)

_TRANSLIT = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "œ": "oe",
        "ı": "i",
        "ħ": "h",
        "ŧ": "t",
    }
)

_NOT_WORD = re.compile(r"[^a-z0-9]+")
_DIGITS = re.compile(r"[0-9]+")

_PLACEHOLDER_PHRASES = frozenset(
    {
        "unknown",
        "unk",
        "not known",
        "notknown",
        "nk",
        "n k",
        "n a",
        "not applicable",
        "not stated",
        "not given",
        "not recorded",
        "not provided",
        "no name",
        "noname",
        "none",
        "nil",
        "null",
        "tbc",
        "tba",
        "tbd",
        "to be confirmed",
        "to be advised",
        "anon",
        "anonymous",
        "withheld",
        "refused",
        "unnamed",
        "male",
        "female",
        "boy",
        "girl",
        "baby",
        "infant",
        "unborn",
        "newborn",
        "neonate",
        "unborn child",
        "unborn baby",
        "baby boy",
        "baby girl",
    }
)
# Words that are noise on their own, so a value made only of them has no name in it.
_PLACEHOLDER_WORDS = frozenset(
    {
        "unknown",
        "unk",
        "nk",
        "tbc",
        "tba",
        "tbd",
        "none",
        "nil",
        "null",
        "anon",
        "anonymous",
        "unnamed",
        "noname",
        "notknown",
    }
)
_REPEATED_LETTER = re.compile(r"([a-z])\1{2,}")
_MULTIPLE_BIRTH = re.compile(
    r"(?:(?:1st|2nd|3rd|first|second|third) )?(?:twin|triplet|quad|quadruplet)s?"
    r"(?: (?:[0-9]+|[a-d]|one|two|three|four))?"
)
_INFANT_PREFIX = re.compile(r"(?:baby|infant|unborn|newborn|neonate|b o)(?: of)?(?: |$)")


def _fold(raw: str) -> str:
    """Lower-case ASCII words separated by single spaces; digits are still present."""
    if raw.isascii():  # NFKD, combining marks and transliteration touch only non-ASCII
        return _NOT_WORD.sub(" ", raw.translate(_APOSTROPHES).lower()).strip()
    return _fold_unicode(raw)


def _fold_unicode(raw: str) -> str:
    text = raw.translate(_APOSTROPHES).casefold()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    # NFKD can emit upper case (compatibility forms such as U+2121) and apostrophes again.
    text = text.casefold().translate(_APOSTROPHES).translate(_TRANSLIT)
    return _NOT_WORD.sub(" ", text).strip()


def _is_placeholder(text: str) -> bool:
    if not text or text in _PLACEHOLDER_PHRASES:
        return True
    if _MULTIPLE_BIRTH.fullmatch(text):
        return True
    return all(
        word in _PLACEHOLDER_WORDS or _REPEATED_LETTER.fullmatch(word) for word in text.split(" ")
    )


def _drop_digits(text: str) -> str:
    return " ".join(_DIGITS.sub("", text).split())


def _normalise(raw: object, *, strip_infant_prefix: bool) -> str | None:
    # Fast path for the common case, one plain ASCII word ("Smith", "AMELIA"): lower case is
    # the whole rule unless the word is a placeholder, which the general path decides.
    if isinstance(raw, str) and raw.isascii() and raw.isalpha():
        word = raw.lower()
        if not _could_be_placeholder(word):
            return word
    return _normalise_general(raw, strip_infant_prefix=strip_infant_prefix)


def _could_be_placeholder(word: str) -> bool:
    return bool(
        word in _PLACEHOLDER_PHRASES
        or word in _PLACEHOLDER_WORDS
        or _REPEATED_LETTER.fullmatch(word)
        or _MULTIPLE_BIRTH.fullmatch(word)
        or _INFANT_PREFIX.match(word)
    )


def _normalise_general(raw: object, *, strip_infant_prefix: bool) -> str | None:
    if not isinstance(raw, str):
        return None
    spaced = _fold(raw)
    # The checks run before digits are dropped ("twin 1") and again after ("baby1"), so the
    # output never fails them and normalising it a second time changes nothing.
    for _ in range(2):
        if strip_infant_prefix:
            match = _INFANT_PREFIX.match(spaced)
            if match:
                spaced = spaced[match.end() :]
        if _is_placeholder(spaced) or _INFANT_PREFIX.match(spaced):
            return None
        spaced = _drop_digits(spaced)
    return spaced or None


def normalise_name(raw: str | None) -> str | None:
    """Normalise one name field (given or family); ``None`` when missing or a placeholder."""
    return _normalise(raw, strip_infant_prefix=False)


def normalise_family_name(raw: str | None) -> str | None:
    """Like :func:`normalise_name`, but ``Baby of Smith`` / ``B/O Smith`` -> ``smith``."""
    return _normalise(raw, strip_infant_prefix=True)


def name_parts(normalised: str | None) -> tuple[str, ...]:
    """Split a normalised name into its parts, dropping initials unless only initials remain."""
    if not normalised:
        return ()
    parts = tuple(normalised.split())
    longer = tuple(part for part in parts if len(part) > 1)
    return longer or parts


@functools.cache
def _table_bytes() -> bytes:
    return resources.files(__package__).joinpath("data").joinpath("nicknames.csv").read_bytes()


@functools.cache
def _table() -> Mapping[str, str]:
    mapping: dict[str, str] = {}
    reader = csv.DictReader(io.StringIO(_table_bytes().decode("utf-8")))
    for row in reader:
        nickname = normalise_name(row.get("nickname"))
        canonical = normalise_name(row.get("canonical"))
        if nickname and canonical and nickname != canonical:
            mapping.setdefault(nickname, canonical)
    return MappingProxyType(mapping)


def nickname_table() -> Mapping[str, str]:
    """The loaded ``nickname -> canonical`` map (read-only)."""
    return _table()


def nickname_table_digest() -> str:
    """SHA-256 of the shipped table, so an encoding can record which table produced it."""
    return hashlib.sha256(_table_bytes()).hexdigest()


def canonical_given_name(part: str) -> str:
    """Canonical key for one given-name part; unknown names map to themselves."""
    if not isinstance(part, str):
        return part
    return _table().get(part.strip().lower(), part)
