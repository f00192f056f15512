"""Synthetic multi-agency child population with ground truth, for the demo and accuracy benchmark.

One local authority's children (0-17) live in households with siblings and twins. Five agencies
hold noisy, differently formatted records of the subset of children they know. The truth maps
every record to its child, so linkage output can be scored pair by pair.

The population is fully synthetic. NHS numbers come from the 999 range, which is reserved for
test data and never issued to a patient. Mistyped numbers keep that prefix, so no generated
string can collide with a real child's number.

Random streams are seeded separately for the children, for agency coverage, for record noise and
for record ids. Changing an error rate therefore leaves the children, and which agencies know
them, unchanged, so benchmark sweeps over error rates compare like with like.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta
from functools import cached_property
from itertools import combinations, product
from math import inf, sqrt
from pathlib import Path
from statistics import NormalDist

import click
import numpy as np
import pandas as pd

from benchmarks.population_names import (
    NAME_ORIGINS,
    NAME_VARIANTS,
    NamePicker,
    feminine_surname,
    random_postcode,
)
from benchmarks.population_noise import (
    Child,
    age_on,
    is_valid_nhs_number,
    nhs_check_digit,
    noisy_record,
    record_ids,
    valid_nhs_numbers,
)

__all__ = [
    "AGENCIES",
    "RECORD_COLUMNS",
    "Population",
    "PopulationConfig",
    "generate_population",
    "is_valid_nhs_number",
    "nhs_check_digit",
    "population_command",
    "true_cross_agency_pairs",
    "true_within_agency_duplicates",
    "write_agency_csvs",
]

AGENCIES: tuple[str, ...] = ("social_care", "police", "health", "school", "housing")
RECORD_COLUMNS: tuple[str, ...] = (
    "record_id",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "nhs_number",
)

# Relative number of children at each single year of age 0-17. This is the rough shape of recent
# mid-year estimates for England: cohorts born since the 2012 birth peak are smaller (unverified).
_AGE_WEIGHTS = (
    580,
    600,
    615,
    630,
    640,
    650,
    665,
    680,
    690,
    700,
    705,
    710,
    700,
    690,
    680,
    665,
    640,
    625,
)
# Dependent children per family: about 4 in 10 families have one child, fewer have three or more
# (rough shape of ONS families and households figures, unverified).
_HOUSEHOLD_SIZES = ((1, 2, 3, 4, 5), (0.42, 0.38, 0.14, 0.045, 0.015))


def _per_agency(
    social_care: float, police: float, health: float, school: float, housing: float
) -> dict[str, float]:
    return dict(zip(AGENCIES, (social_care, police, health, school, housing), strict=True))


@dataclass(frozen=True)
class PopulationConfig:
    """Population structure, agency coverage and error rates. Every rate is a probability per
    record (per child for structure fields), applied independently.

    Names: [40] found 18% of surnames and 12% of forenames disagree between two collections.
    Two records each changed with chance p disagree with chance about 2p. With the defaults,
    about 18% of same-child cross-agency pairs disagree on surname and 13-14% on forename,
    ignoring case and spacing (seed 0, 20,000 children). Nicknames, name-order
    swaps and hyphenation come from [36]. 'Baby' names for unnamed newborns are from [36], and
    the same source notes year-only DOBs defaulted to 01/01. Age assessments move a DOB [21].
    Stale postcodes follow moves [42]. Missing NHS numbers are common outside health [20]; the
    CP-IS go-live gate is 95% of social-care records matched to one. Twins are the usual source
    of false matches in infant records [45]. Rates with no cited figure are judgement,
    set so that each error type occurs often enough to test.
    """

    reference_date: date = date(2025, 3, 31)  # fixed, so that ages do not depend on today
    # Share of children known to each agency; school is a share of school-age children only.
    coverage: dict[str, float] = field(
        default_factory=lambda: _per_agency(
            social_care=0.25, police=0.15, health=0.95, school=0.80, housing=0.20
        )
    )
    school_ages: tuple[int, int] = (4, 16)
    # Children known to one of these agencies are more often known to the others (families,
    # not children, are referred). This is the correlation of a household latent in a Gaussian
    # copula; the marginal coverage stays as configured.
    need_linked_agencies: tuple[str, ...] = ("social_care", "police", "housing")
    need_correlation: float = 0.5
    name_origin_shares: dict[str, float] = field(
        default_factory=lambda: dict(zip(NAME_ORIGINS, (0.72, 0.12, 0.06, 0.06, 0.04), strict=True))
    )
    given_name_mixing_rate: float = 0.15  # given name drawn from the whole pool, not the family's
    middle_name_rate: float = 0.6
    twin_rate: float = 0.015  # share of children who are a twin
    twin_same_sex_share: float = 0.65  # identical twins plus same-sex fraternal twins
    double_barrelled_rate: float = 0.04  # households with a hyphenated surname
    half_sibling_rate: float = 0.15  # later siblings with the other parent's surname
    out_of_area_rate: float = 0.05  # households living (or placed) outside the LA

    # Name errors [36, 40].
    nickname_rate: float = 0.03
    given_typo_rate: float = 0.015
    middle_name_in_given_rate: float = 0.03
    family_typo_rate: float = 0.015
    surname_change_rate: float = 0.06
    name_swap_rate: float = 0.015
    baby_name_rate: float = 0.35  # health and social-care records of children under 1
    accent_strip_rate: float = 0.5
    # Date-of-birth errors [21, 36]; at most one per record.
    dob_day_month_swap_rate: float = 0.01
    dob_typo_rate: float = 0.01
    dob_year_only_rate: float = 0.005
    dob_reassessed_rate: float = 0.001
    dob_missing_rate: float = 0.002
    date_format: dict[str, str] = field(
        default_factory=lambda: dict(
            zip(AGENCIES, ("iso", "dmy", "compact", "dmy_short", "dmy"), strict=True)
        )
    )
    other_date_format_rate: float = 0.03
    sex_missing_rate: float = 0.01
    sex_error_rate: float = 0.002
    # Address [42].
    postcode_moved_rate: float = 0.15
    postcode_missing_rate: float = 0.03
    postcode_format_rate: float = 0.1
    # NHS number [20].
    nhs_missing_rate: dict[str, float] = field(
        default_factory=lambda: _per_agency(
            social_care=0.25, police=0.60, health=0.02, school=0.70, housing=0.80
        )
    )
    nhs_mistype_rate: float = 0.01
    nhs_sibling_rate: float = 0.002
    nhs_spaced_rate: float = 0.15
    nhs_test_prefix: str = "999"
    # Formatting and duplicates.
    uppercase_agencies: tuple[str, ...] = ("police",)
    case_variation_rate: float = 0.03
    whitespace_rate: float = 0.02
    duplicate_rate: float = 0.025  # children with a second record in the same agency

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            values = value.values() if isinstance(value, dict) else [value]
            if f.name.endswith(("_rate", "_share", "coverage", "_correlation")) and not all(
                0.0 <= v <= 1.0 for v in values
            ):
                raise ValueError(f"{f.name} must be within [0, 1], got {value!r}")
        for name in ("coverage", "nhs_missing_rate", "date_format"):
            if set(getattr(self, name)) != set(AGENCIES):
                raise ValueError(f"{name} must have exactly the agencies {AGENCIES}")
        if set(self.name_origin_shares) - set(NAME_ORIGINS):
            raise ValueError(f"name_origin_shares keys must be among {NAME_ORIGINS}")
        if (
            not (self.nhs_test_prefix.isdigit() or self.nhs_test_prefix == "")
            or len(self.nhs_test_prefix) > 6
        ):
            raise ValueError("nhs_test_prefix must be at most 6 digits")


@dataclass(frozen=True)
class Population:
    """Agency record tables plus the truth that links them.

    agencies: agency -> DataFrame with RECORD_COLUMNS, all strings ('' for blank), rows in
        random order so that row position says nothing about identity.
    truth: one row per record: agency, record_id, child_id.
    children: one row per child: the true values, household_id, name_origin, twin_of, age.
    """

    agencies: dict[str, pd.DataFrame]
    truth: pd.DataFrame
    children: pd.DataFrame
    seed: int
    config: PopulationConfig

    @cached_property
    def child_of(self) -> dict[tuple[str, str], str]:
        """(agency, record_id) -> child_id."""
        truth = self.truth
        keys = zip(truth["agency"], truth["record_id"], strict=True)
        return dict(zip(keys, truth["child_id"], strict=True))

    @property
    def n_records(self) -> int:
        return len(self.truth)


def _sibling_dobs(size: int, twins: bool, rng: random.Random, ref: date) -> list[date]:
    dobs: list[date] = []
    for _ in range(30):
        ages = rng.choices(range(18), weights=_AGE_WEIGHTS, k=size)
        dobs = [
            ref - timedelta(days=rng.randrange(int(a * 365.25) + 1, int((a + 1) * 365.25)))
            for a in ages
        ]
        if twins:
            dobs[1] = dobs[0]
        singles = sorted(set(dobs))
        # Siblings other than twins are born at least about ten months apart.
        if len(singles) == size - twins and all(
            (b - a).days >= 300 for a, b in zip(singles, singles[1:], strict=False)
        ):
            break
    return dobs


def _build_children(
    n: int, rng: random.Random, np_rng: np.random.Generator, cfg: PopulationConfig
) -> list[Child]:
    sizes: list[int] = []
    total = 0
    while total < n:
        sizes.append(rng.choices(*_HOUSEHOLD_SIZES)[0])
        total += sizes[-1]
    if sizes:
        sizes[-1] -= total - n
    multi = [h for h, size in enumerate(sizes) if size >= 2]
    twin_homes = set(rng.sample(multi, min(len(multi), round(n * cfg.twin_rate / 2))))
    nhs_numbers = iter(valid_nhs_numbers(n, np_rng, cfg.nhs_test_prefix))
    picker = NamePicker(rng, cfg.name_origin_shares)
    children: list[Child] = []
    for h, size in enumerate(sizes):
        origin = picker.origin()
        surname = picker.name("surname", origin)
        if rng.random() < cfg.double_barrelled_rate and "-" not in surname:
            surname = f"{surname}-{picker.name('surname', origin, mixed=True)}"
        other = surname
        while other == surname:
            other = picker.name("surname", origin, mixed=rng.random() < 0.3)
        home = random_postcode(rng, cfg.out_of_area_rate)
        previous = random_postcode(rng, 0.2)
        twins = h in twin_homes
        household: list[Child] = []
        for k, dob in enumerate(_sibling_dobs(size, twins, rng, cfg.reference_date)):
            if twins and k == 1:
                same = rng.random() < cfg.twin_same_sex_share
                sex = household[0].sex if same else ("F" if household[0].sex == "M" else "M")
            else:
                sex = "M" if rng.random() < 0.512 else "F"  # 105 boys per 100 girls at birth
            taken = {c.given_name for c in household}
            taken |= {v for name in taken for v in NAME_VARIANTS.get(name, ())}
            given = ""
            while not given or given in taken:  # siblings, twins above all, differ in name
                given = picker.name(sex, origin, mixed=rng.random() < cfg.given_name_mixing_rate)
            middle = ""
            if rng.random() < cfg.middle_name_rate:
                middle = picker.name(sex, origin, mixed=rng.random() < 0.3)
                middle = "" if middle == given else middle
            half = k > 0 and not (twins and k < 2) and rng.random() < cfg.half_sibling_rate
            family, alt = (other, surname) if half else (surname, other)
            household.append(
                Child(
                    child_id=f"C{len(children) + k + 1:07d}",
                    household_id=f"H{h + 1:06d}",
                    name_origin=origin,
                    given_name=given,
                    middle_name=middle,
                    family_name=feminine_surname(family, sex),
                    alt_family_name=feminine_surname(alt, sex),
                    date_of_birth=dob,
                    sex=sex,
                    postcode=home,
                    previous_postcode=previous,
                    nhs_number=next(nhs_numbers),
                    twin_of="" if not (twins and k < 2) else f"C{len(children) + 2 - k:07d}",
                )
            )
        for child in household:
            child.sibling_nhs_numbers = [c.nhs_number for c in household if c is not child]
        children.extend(household)
    return children


def generate_population(
    n_children: int = 20000, seed: int = 0, config: PopulationConfig | None = None
) -> Population:
    """Generate `n_children` children and every agency's noisy records of them.

    Deterministic for a given (n_children, seed, config). See PopulationConfig for the error
    model and its sources.
    """
    if n_children < 0:
        raise ValueError(f"n_children must be non-negative, got {n_children}")
    cfg = config or PopulationConfig()
    streams = np.random.SeedSequence(seed).spawn(5)
    child_rng, cover_rng, noise_rng, id_rng = (
        random.Random(int(s.generate_state(1, np.uint64)[0])) for s in streams[:4]
    )
    children = _build_children(n_children, child_rng, np.random.default_rng(streams[4]), cfg)

    ref = cfg.reference_date
    gauss = NormalDist()
    cut = {
        a: -inf if p <= 0 else inf if p >= 1 else gauss.inv_cdf(p) for a, p in cfg.coverage.items()
    }
    rho = cfg.need_correlation
    need = {h: cover_rng.gauss(0.0, 1.0) for h in dict.fromkeys(c.household_id for c in children)}
    owners: dict[str, list[Child]] = {a: [] for a in AGENCIES}
    records: dict[str, list[dict[str, str]]] = {a: [] for a in AGENCIES}
    low, high = cfg.school_ages
    for child in children:
        for agency in AGENCIES:
            latent = cover_rng.gauss(0.0, 1.0)
            if agency in cfg.need_linked_agencies:
                latent = sqrt(rho) * need[child.household_id] + sqrt(1 - rho) * latent
            if agency == "school" and not low <= age_on(child.date_of_birth, ref) <= high:
                continue
            if latent >= cut[agency]:
                continue
            copies = 2 if cover_rng.random() < cfg.duplicate_rate else 1
            for _ in range(copies):
                owners[agency].append(child)
                records[agency].append(noisy_record(child, agency, noise_rng, cfg))

    tables, truth_parts = {}, []
    for agency in AGENCIES:
        order = list(range(len(owners[agency])))
        id_rng.shuffle(order)
        agency_owners = [owners[agency][i] for i in order]
        ids = record_ids(agency, agency_owners, id_rng, ref)
        rows = [{"record_id": rid, **records[agency][i]} for rid, i in zip(ids, order, strict=True)]
        tables[agency] = pd.DataFrame(rows, columns=list(RECORD_COLUMNS), dtype=object)
        truth_parts.append(
            pd.DataFrame(
                {
                    "agency": agency,
                    "record_id": ids,
                    "child_id": [c.child_id for c in agency_owners],
                }
            )
        )
    truth = pd.concat(truth_parts, ignore_index=True)
    people = pd.DataFrame(
        [{k: v for k, v in asdict(c).items() if k != "sibling_nhs_numbers"} for c in children]
    )
    people["age"] = [age_on(c.date_of_birth, ref) for c in children]
    return Population(agencies=tables, truth=truth, children=people, seed=seed, config=cfg)


def write_agency_csvs(population: Population, directory: str | Path) -> dict[str, Path]:
    """Write `<agency>.csv` (UTF-8, header, RECORD_COLUMNS) for every agency."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for agency, table in population.agencies.items():
        paths[agency] = out / f"{agency}.csv"
        table.to_csv(paths[agency], index=False, encoding="utf-8")
    return paths


def _records_by_child(population: Population) -> dict[str, dict[str, list[str]]]:
    grouped: dict[str, dict[str, list[str]]] = {}
    for agency, record_id, child_id in population.truth.itertuples(index=False):
        grouped.setdefault(child_id, {}).setdefault(agency, []).append(record_id)
    return grouped


def true_cross_agency_pairs(population: Population) -> set[tuple[str, str, str, str]]:
    """Every (agency_a, record_a, agency_b, record_b) of the same child, agency_a before
    agency_b in AGENCIES order. A child with two records in one agency yields both pairings."""
    pairs: set[tuple[str, str, str, str]] = set()
    for by_agency in _records_by_child(population).values():
        present = [a for a in AGENCIES if a in by_agency]
        for a, b in combinations(present, 2):
            pairs.update((a, ra, b, rb) for ra, rb in product(by_agency[a], by_agency[b]))
    return pairs


def true_within_agency_duplicates(population: Population) -> set[tuple[str, str, str]]:
    """Every (agency, record_a, record_b) of the same child within one agency, record_a <
    record_b."""
    dupes: set[tuple[str, str, str]] = set()
    for by_agency in _records_by_child(population).values():
        for agency, ids in by_agency.items():
            dupes.update((agency, ra, rb) for ra, rb in combinations(sorted(ids), 2))
    return dupes


@click.command("population")
@click.option(
    "--children",
    "n_children",
    type=click.IntRange(min=1),
    default=20000,
    show_default=True,
    help="Number of children in the local authority.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "-o",
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("population"),
    show_default=True,
    help="Directory for <agency>.csv files and truth.csv.",
)
def population_command(n_children: int, seed: int, out_dir: Path) -> None:
    """Write a synthetic multi-agency child population with ground truth."""
    started = time.perf_counter()
    population = generate_population(n_children, seed)
    paths = write_agency_csvs(population, out_dir)
    population.truth.to_csv(out_dir / "truth.csv", index=False, encoding="utf-8")
    for agency, path in paths.items():
        click.echo(f"{agency:<12} {len(population.agencies[agency]):>7} records  {path}")
    click.echo(f"{'truth':<12} {population.n_records:>7} records  {out_dir / 'truth.csv'}")
    click.echo(f"{n_children} children, seed {seed}, {time.perf_counter() - started:.1f} s")
