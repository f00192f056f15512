"""Multi-agency clusters: connected components over accepted links between records.

Nodes are records of any agency, numbered 0..n_nodes-1 by the caller; an edge is an accepted link
(usually from pairwise one-to-one solving of each agency pair). A component is one cluster.

Duplicates inside one agency: one-to-one solving allows one link per record per agency *pair*,
so two records of the same agency can still meet in a cluster through records of other agencies
(A1 - B7 - A4). Such records are kept in the cluster, not split off or dropped, and every member
of the cluster that shares its agency with another member is flagged ``duplicate_within_agency``:
the agency may hold the same child twice, which a person has to look at.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from linkage_service.core.arrays import as_index_array
from linkage_service.core.errors import CoreError

__all__ = [
    "Clusters",
    "connected_clusters",
    "connected_clusters_reference",
    "multi_agency_clusters",
]


class Clusters(NamedTuple):
    """Cluster membership as a structure of arrays, one row per member record.

    All arrays have shape (k,), where k is the number of records in kept clusters, and rows are
    sorted by ``cluster_id``, then ``agency``, then ``record``.

    Attributes:
        cluster_id: int64, the smallest node id in the cluster (stable for a given numbering).
        agency: int64, the member's agency index.
        record: int64, the member's record index within its agency.
        duplicate_within_agency: bool, True when another member of the same cluster belongs to
            the same agency.
    """

    cluster_id: np.ndarray
    agency: np.ndarray
    record: np.ndarray
    duplicate_within_agency: np.ndarray


def _validated_edges(n_nodes: int, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, int | np.integer) or n_nodes < 0:
        raise CoreError(f"n_nodes must be a non-negative integer, got {n_nodes!r}")
    u_ids = as_index_array("u", u, int(n_nodes))
    v_ids = as_index_array("v", v, int(n_nodes))
    if len(u_ids) != len(v_ids):
        raise CoreError(f"u and v must have equal lengths, got {len(u_ids)} and {len(v_ids)}")
    return u_ids, v_ids


def connected_clusters(n_nodes: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Connected-component label of every node.

    Args:
        n_nodes: number of nodes; node ids are 0..n_nodes-1.
        u, v: shape (e,), integer node ids; edge i joins u[i] and v[i] (undirected, any order,
            repeats and self-loops allowed).

    Returns:
        int64 array, shape (n_nodes,): the smallest node id in each node's component (a node
        without edges labels itself).

    Raises:
        CoreError: bad n_nodes, arrays not 1-D or of unequal lengths, ids outside 0..n_nodes-1.
    """
    u_ids, v_ids = _validated_edges(n_nodes, u, v)
    parent = np.arange(int(n_nodes), dtype=np.int64)
    # Hook and compress: every root points at the smallest root it shares an edge with, then
    # pointer jumping flattens the trees. parent[x] <= x always holds, so each root is the
    # minimum of its tree, and the number of roots per component at least halves each pass.
    while True:
        pu, pv = parent[u_ids], parent[v_ids]
        differ = pu != pv
        if not differ.any():
            return parent
        lo, hi = np.minimum(pu[differ], pv[differ]), np.maximum(pu[differ], pv[differ])
        np.minimum.at(parent, hi, lo)
        _compress(parent)
        # Edges whose ends already share a root stay that way; drop them to shrink later passes.
        u_ids, v_ids = u_ids[differ], v_ids[differ]


def _compress(parent: np.ndarray) -> None:
    """Point every node straight at its root, in place, by repeated pointer jumping."""
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return
        parent[:] = grand


def connected_clusters_reference(n_nodes: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Plain union-find with path compression: the obviously correct twin of
    ``connected_clusters``, with the same arguments and result."""
    u_ids, v_ids = _validated_edges(n_nodes, u, v)
    parent = list(range(int(n_nodes)))

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in zip(u_ids.tolist(), v_ids.tolist(), strict=True):
        ra, rb = find(a), find(b)
        # Keep the smaller id as root so that the root is the component's label.
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.asarray([find(x) for x in range(int(n_nodes))], dtype=np.int64)


def multi_agency_clusters(
    node_agency: np.ndarray, node_record: np.ndarray, u: np.ndarray, v: np.ndarray
) -> Clusters:
    """Clusters of linked records that span at least two distinct agencies.

    Args:
        node_agency: shape (n_nodes,), integer agency index >= 0 of each node.
        node_record: shape (n_nodes,), integer record index >= 0 of each node within its agency;
            the (agency, record) pairs must be distinct.
        u, v: shape (e,), integer node ids in 0..n_nodes-1; edge i links u[i] and v[i].

    Returns:
        ``Clusters`` holding every member of every cluster with records from >= 2 agencies,
        sorted by cluster, agency, record. Single-agency clusters (including lone records) are
        left out; same-agency members of a kept cluster stay in and are flagged (module notes).

    Raises:
        CoreError: mismatched lengths, negative or non-integer values, repeated
            (agency, record) pairs, or edge ids outside 0..n_nodes-1.
    """
    agency = as_index_array("node_agency", node_agency)
    record = as_index_array("node_record", node_record)
    if len(agency) != len(record):
        raise CoreError(
            f"node_agency and node_record must have equal lengths, got {len(agency)}"
            f" and {len(record)}"
        )
    _check_distinct(agency, record)
    labels = connected_clusters(len(agency), u, v)
    order = np.lexsort((record, agency, labels))
    lab, agc, rec = labels[order], agency[order], record[order]
    new_cluster = _starts(lab)
    new_agency = new_cluster | _starts(agc)
    # Distinct agencies per cluster = number of agency starts inside it.
    cluster_index = np.cumsum(new_cluster) - 1
    n_agencies = np.bincount(cluster_index, weights=new_agency)[cluster_index]
    keep = n_agencies >= 2
    # A member shares its agency with another iff its (cluster, agency) run has length > 1.
    run_start = np.flatnonzero(new_agency)
    run_len = np.diff(np.append(run_start, len(lab)))
    duplicate = np.repeat(run_len > 1, run_len)
    return Clusters(lab[keep], agc[keep], rec[keep], duplicate[keep])


def _check_distinct(agency: np.ndarray, record: np.ndarray) -> None:
    order = np.lexsort((record, agency))
    agc, rec = agency[order], record[order]
    repeated = (agc[1:] == agc[:-1]) & (rec[1:] == rec[:-1])
    if repeated.any():
        i = int(np.argmax(repeated))
        raise CoreError(
            f"node_agency and node_record repeat the pair (agency {agc[i]}, record {rec[i]});"
            " each node must be a distinct record"
        )


def _starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Boolean mask, shape like the input: True where a run of equal keys begins."""
    starts = np.ones(len(sorted_keys), dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return starts
