"""The release policy: the one module that decides what leaves the service, and to whom.

* Agencies get **receipts**: their batch id, how many records were accepted, and their *own*
  rejected references with reasons. Nothing about matching, other agencies or scores.
* Coordinators get **alerts**, one per child cluster that spans two or more agencies: alert id
  and version, the agencies and their opaque record references, whether an agency holds the
  child twice, the band (``match`` when every link is automatic, ``possible`` when a person
  should review one), each record's own band (``match`` when it has an automatic link inside
  the cluster), and times. Never scores, bits, identifier tokens, or counts of any
  agency's records.

Alerts follow clusters as batches arrive and records are withdrawn: a new cross-agency link
opens an alert; a further record joining the cluster releases a new version; two clusters that
join keep the older alert and mark the other ``merged``; a cluster that no longer spans two
agencies closes its alert. A version is released only when what a coordinator sees changed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from .core.decisions import MATCH
from .store.model import AlertRecordView, AlertVersion, Receipt
from .wire.v1 import linkage_pb2 as pb

__all__ = ["Cluster", "alert_changes", "clusters_of", "coordinator_alert", "agency_receipt"]

ALERT_PREFIX = "A-"


@dataclass(frozen=True)
class Cluster:
    """Linked records of one child: ``keys`` sorted; ``band`` match or possible;
    ``matched`` the keys (sorted) that have a MATCH link inside the cluster."""

    keys: tuple[int, ...]
    band: str
    matched: tuple[int, ...] = ()
    groups: tuple[int, ...] = ()  # per key: 1.. for its match component in the cluster, 0 none


def clusters_of(
    key_a: np.ndarray, key_b: np.ndarray, decision: np.ndarray, agency_of: Mapping[int, str]
) -> list[Cluster]:
    """Clusters (connected over links) holding records of two or more agencies, ordered by
    smallest key. The band is ``match`` when MATCH links alone connect the cluster."""
    everything = _components(key_a.tolist(), key_b.tolist())
    is_match = decision == MATCH
    by_match = _components(key_a[is_match].tolist(), key_b[is_match].tolist())
    out = []
    distinct = {min(members): members for members in everything.values()}
    for _, keys in sorted(distinct.items()):
        if len({agency_of[k] for k in keys}) < 2:
            continue
        # match components lie inside link components: one covering every key connects them
        single = len(by_match.get(keys[0], ())) == len(keys)
        ordered = tuple(sorted(keys))
        matched = tuple(k for k in ordered if k in by_match)
        first_of = {min(by_match[k]) for k in matched}
        number = {m: i + 1 for i, m in enumerate(sorted(first_of))}
        groups = tuple(number[min(by_match[k])] if k in by_match else 0 for k in ordered)
        out.append(Cluster(ordered, "match" if single else "possible", matched, groups))
    return out


def _components(left: list[int], right: list[int]) -> dict[int, list[int]]:
    """key -> the (shared) list of keys in its component."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(left, right, strict=True):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for k in list(parent):
        groups.setdefault(root(k), []).append(k)
    return {k: members for members in groups.values() for k in members}


def _view(cluster: Cluster, refs: Mapping[int, tuple[str, str]]) -> tuple[AlertRecordView, ...]:
    per_agency: dict[str, int] = {}
    for k in cluster.keys:
        per_agency[refs[k][0]] = per_agency.get(refs[k][0], 0) + 1
    matched = set(cluster.matched) if cluster.band == "possible" else set(cluster.keys)
    groups = cluster.groups or tuple(1 if k in matched else 0 for k in cluster.keys)
    return tuple(
        sorted(
            AlertRecordView(
                refs[k][0],
                refs[k][1],
                per_agency[refs[k][0]] > 1,
                "match" if k in matched else "possible",
                group,
            )
            for k, group in zip(cluster.keys, groups, strict=True)
        )
    )


def alert_changes(
    clusters: Sequence[Cluster],
    existing: Sequence[AlertVersion],
    refs: Mapping[int, tuple[str, str]],
    next_number: Callable[[], int],
    now: datetime,
    removed: Collection[int] = (),
) -> list[AlertVersion]:
    """The alert versions to release for a re-solved region, given its clusters and the open
    alerts that held any of its records. ``removed`` (withdrawn keys) are left out of closing
    and merging versions too: a withdrawn reference is not sent to coordinators again."""
    gone = {refs[k] for k in removed if k in refs}
    by_key = {k: a for a in existing for k in a.keys}
    claimed: set[str] = set()
    out: list[AlertVersion] = []
    for cluster in clusters:
        touched = sorted(
            {by_key[k].alert_id: by_key[k] for k in cluster.keys if k in by_key}.values(),
            key=lambda a: _number(a.alert_id),
        )
        free = [a for a in touched if a.alert_id not in claimed]
        records = _view(cluster, refs)
        agencies = tuple(sorted({r.agency for r in records}))
        if not free:
            alert_id = f"{ALERT_PREFIX}{next_number():06d}"
            out.append(
                AlertVersion(
                    alert_id, 1, "open", cluster.band, agencies, records, cluster.keys, now, now
                )
            )
            claimed.add(alert_id)
            continue
        primary, others = free[0], free[1:]
        claimed.update(a.alert_id for a in free)
        if (primary.records, primary.band, primary.state) != (records, cluster.band, "open"):
            out.append(
                AlertVersion(
                    primary.alert_id,
                    primary.version + 1,
                    "open",
                    cluster.band,
                    agencies,
                    records,
                    cluster.keys,
                    primary.opened_at,
                    now,
                )
            )
        out.extend(_ended(a, "merged", now, gone, primary.alert_id) for a in others)
    out.extend(_ended(a, "closed", now, gone) for a in existing if a.alert_id not in claimed)
    return out


def _ended(
    alert: AlertVersion, state: str, now: datetime, gone: set[tuple[str, str]], into: str = ""
) -> AlertVersion:
    records = tuple(r for r in alert.records if (r.agency, r.ref) not in gone)
    return AlertVersion(
        alert.alert_id,
        alert.version + 1,
        state,
        alert.band,
        tuple(sorted({r.agency for r in records})),
        records,
        alert.keys,
        alert.opened_at,
        now,
        into,
    )


def _number(alert_id: str) -> int:
    return int(alert_id.removeprefix(ALERT_PREFIX))


# -- what crosses the wire ------------------------------------------------------------------

_STATES = {"open": pb.OPEN, "closed": pb.CLOSED, "merged": pb.MERGED}
_BANDS = {"match": pb.BAND_MATCH, "possible": pb.BAND_POSSIBLE}


def _timestamp(at: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


def coordinator_alert(alert: AlertVersion) -> pb.Alert:
    """The alert as a coordinator sees it. Internal record keys never leave."""
    return pb.Alert(
        alert_id=alert.alert_id,
        version=alert.version,
        state=_STATES[alert.state],
        band=_BANDS[alert.band],
        agencies=list(alert.agencies),
        records=[
            pb.AlertRecord(
                agency=r.agency,
                record_ref=r.ref,
                duplicate=r.duplicate,
                band=_BANDS[r.band],
                match_group=r.match_group,
            )
            for r in alert.records
        ],
        opened_at=_timestamp(alert.opened_at),
        updated_at=_timestamp(alert.updated_at),
        merged_into=alert.merged_into,
    )


def agency_receipt(receipt: Receipt) -> pb.BatchReceipt:
    """The receipt a submitting agency gets: its own counts and rejections, nothing else."""
    return pb.BatchReceipt(
        batch_id=str(receipt.batch_id),
        agency=receipt.agency,
        idempotency_key=receipt.idempotency_key,
        accepted=receipt.accepted,
        rejected=[pb.RejectedRecord(record_ref=r, reason=why) for r, why in receipt.rejected],
        committed_at=_timestamp(receipt.committed_at),
        replayed=receipt.replayed,
    )
