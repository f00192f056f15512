"""End-to-end linkage quality with the default schemas and thresholds (never tuned per run)."""

import secrets

import pytest

from benchmarks.accuracy import febrl4_csvs, measure
from benchmarks.population import generate_population, true_cross_agency_pairs, write_agency_csvs
from clients.encoding.secret import Secret
from linkage_service.wire.schema import load_schema

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_febrl4_f1_with_default_thresholds(tmp_path):
    paths, truth = febrl4_csvs(tmp_path)
    result = measure(paths, truth, load_schema("febrl-v1"), Secret(secrets.token_bytes(32)))
    assert result["records"] == 10000
    assert result["match"]["f1"] >= 0.99, result["match"]
    assert result["match"]["precision"] >= 0.999, result["match"]


def test_synthetic_multi_agency_population_with_default_thresholds(tmp_path):
    population = generate_population(4000, seed=123)
    paths = write_agency_csvs(population, tmp_path)
    truth = true_cross_agency_pairs(population)
    result = measure(paths, truth, load_schema("children-v1"), Secret(secrets.token_bytes(32)))
    # Direct-care use weighs a false link far above a missed one: automatic links must be
    # precise; the clerical band must recover nearly everything else.
    assert result["match"]["precision"] >= 0.999, result["match"]
    assert result["match"]["recall"] >= 0.94, result["match"]
    assert result["match_or_possible"]["recall"] >= 0.98, result["match_or_possible"]
