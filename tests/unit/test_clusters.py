"""Connected clusters: the numpy hook-and-compress against union-find, and multi-agency output."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage_service.core.clusters import (
    Clusters,
    connected_clusters,
    connected_clusters_reference,
    multi_agency_clusters,
)
from linkage_service.core.errors import CoreError

pytestmark = pytest.mark.unit


def random_graph(rng, n_nodes, n_edges):
    return rng.integers(0, n_nodes, n_edges), rng.integers(0, n_nodes, n_edges)


def assert_valid_partition(n_nodes, u, v, labels):
    assert labels.dtype == np.int64 and labels.shape == (n_nodes,)
    np.testing.assert_array_equal(labels[u], labels[v])  # every edge stays inside a cluster
    assert (labels <= np.arange(n_nodes)).all()
    np.testing.assert_array_equal(labels[labels], labels)  # a label is a member of its cluster


# ---------------------------------------------------------------- fast path equals the reference


@pytest.mark.parametrize("density", [0.0, 0.3, 0.7, 1.0, 3.0])
def test_matches_reference_on_random_graphs(density):
    rng = np.random.default_rng(int(density * 10))
    for _ in range(30):
        n = int(rng.integers(1, 800))
        u, v = random_graph(rng, n, int(density * n))
        labels = connected_clusters(n, u, v)
        np.testing.assert_array_equal(labels, connected_clusters_reference(n, u, v))
        assert_valid_partition(n, u, v, labels)


def test_matches_reference_on_a_long_shuffled_path():
    # A path visits ids in random order: deep trees, many hooking passes.
    rng = np.random.default_rng(5)
    n = 50_000
    ids = rng.permutation(n)
    u, v = ids[:-1], ids[1:]
    labels = connected_clusters(n, u, v)
    np.testing.assert_array_equal(labels, np.zeros(n, dtype=np.int64))
    np.testing.assert_array_equal(labels, connected_clusters_reference(n, u, v))


def test_matches_reference_on_a_larger_sparse_graph():
    rng = np.random.default_rng(9)
    n = 100_000
    u, v = random_graph(rng, n, 60_000)
    np.testing.assert_array_equal(
        connected_clusters(n, u, v), connected_clusters_reference(n, u, v)
    )


# ------------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("fn", [connected_clusters, connected_clusters_reference])
def test_no_nodes_and_no_edges(fn):
    assert fn(0, [], []).shape == (0,)
    assert fn(0, [], []).dtype == np.int64
    np.testing.assert_array_equal(fn(4, [], []), np.arange(4))


@pytest.mark.parametrize("fn", [connected_clusters, connected_clusters_reference])
def test_small_example_labels_by_smallest_member(fn):
    u = np.array([5, 3, 4, 6])
    v = np.array([3, 1, 4, 6])
    np.testing.assert_array_equal(fn(7, u, v), [0, 1, 2, 1, 4, 1, 6])


@pytest.mark.parametrize("fn", [connected_clusters, connected_clusters_reference])
@pytest.mark.parametrize(
    ("n_nodes", "u", "v", "message"),
    [
        (3, [0, 1], [1], "equal lengths"),
        (3, [0], [3], "only 3 nodes"),
        (3, [-1], [0], "negative"),
        (3, [0.0], [1], "integers"),
        (3, [[0]], [[1]], "1-D"),
        (-1, [], [], "non-negative integer"),
        (2.0, [], [], "non-negative integer"),
        (True, [], [], "non-negative integer"),
    ],
)
def test_bad_input_raises_core_error(fn, n_nodes, u, v, message):
    with pytest.raises(CoreError, match=message):
        fn(n_nodes, np.asarray(u), np.asarray(v))


# ------------------------------------------------------------------------ property tests

graphs_st = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=80)
    )
)


@settings(max_examples=200, deadline=None)
@given(graph=graphs_st, data=st.data())
def test_property_partition_equals_reference_and_ignores_edge_order_and_repeats(graph, data):
    n, edges = graph
    u = np.array([e[0] for e in edges], dtype=np.int64)
    v = np.array([e[1] for e in edges], dtype=np.int64)
    labels = connected_clusters(n, u, v)
    assert_valid_partition(n, u, v, labels)
    np.testing.assert_array_equal(labels, connected_clusters_reference(n, u, v))
    perm = np.array(data.draw(st.permutations(range(len(u)))), dtype=np.int64)
    np.testing.assert_array_equal(connected_clusters(n, v[perm], u[perm]), labels)
    doubled_u, doubled_v = np.concatenate([u, v, u]), np.concatenate([v, u, v])
    np.testing.assert_array_equal(connected_clusters(n, doubled_u, doubled_v), labels)


# ------------------------------------------------------------------- multi-agency clusters


def expected_clusters(agency, record, u, v):
    """Build the expected rows with dicts and the union-find reference."""
    labels = connected_clusters_reference(len(agency), u, v).tolist()
    members = defaultdict(list)
    for node, label in enumerate(labels):
        members[label].append((int(agency[node]), int(record[node])))
    rows = []
    for label in sorted(members):
        group = sorted(members[label])
        agencies = [a for a, _ in group]
        if len(set(agencies)) >= 2:
            rows += [(label, a, r, agencies.count(a) > 1) for a, r in group]
    return rows


def rows_of(clusters: Clusters):
    return list(
        zip(
            clusters.cluster_id.tolist(),
            clusters.agency.tolist(),
            clusters.record.tolist(),
            clusters.duplicate_within_agency.tolist(),
            strict=True,
        )
    )


def test_duplicate_within_agency_is_kept_and_flagged():
    # Agency 0 records 10 and 11 meet through agency 1 record 20; agency 2 stands alone.
    agency = np.array([0, 1, 0, 2, 1, 1])
    record = np.array([10, 20, 11, 30, 21, 22])
    u = np.array([0, 1, 4])
    v = np.array([1, 2, 5])
    result = multi_agency_clusters(agency, record, u, v)
    assert rows_of(result) == [(0, 0, 10, True), (0, 0, 11, True), (0, 1, 20, False)]
    assert result.cluster_id.dtype == np.int64 and result.agency.dtype == np.int64
    assert result.record.dtype == np.int64 and result.duplicate_within_agency.dtype == bool


def test_single_agency_clusters_and_lone_records_are_left_out():
    agency = np.array([3, 3, 4])
    record = np.array([0, 1, 0])
    result = multi_agency_clusters(agency, record, np.array([0]), np.array([1]))
    assert rows_of(result) == []
    assert all(len(a) == 0 for a in result)


def test_multi_agency_matches_expectation_on_random_inputs():
    rng = np.random.default_rng(21)
    for _ in range(30):
        n = int(rng.integers(1, 400))
        agency = rng.integers(0, 5, n)
        record = rng.permutation(10 * n)[:n]  # distinct, so (agency, record) pairs are too
        u, v = random_graph(rng, n, int(rng.integers(0, n)))
        result = multi_agency_clusters(agency, record, u, v)
        assert rows_of(result) == expected_clusters(agency, record, u, v)


def test_empty_multi_agency_input():
    empty = np.zeros(0, dtype=np.int64)
    result = multi_agency_clusters(empty, empty, empty, empty)
    assert all(a.shape == (0,) for a in result)


@pytest.mark.parametrize(
    ("agency", "record", "message"),
    [
        ([0, 1], [0], "equal lengths"),
        ([0, 0], [7, 7], "repeat the pair"),
        ([0, -1], [0, 1], "negative"),
        ([0, 1], [0.5, 1], "integers"),
    ],
)
def test_multi_agency_bad_input(agency, record, message):
    with pytest.raises(CoreError, match=message):
        multi_agency_clusters(np.asarray(agency), np.asarray(record), np.array([0]), np.array([0]))
