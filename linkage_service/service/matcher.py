"""The matcher: committed work (batches, withdrawals) -> standing index -> alerts, in order.

One background thread takes the store's pending work in commit order. Each piece is applied to
the in-memory :class:`~linkage_service.core.standing.StandingIndex`, the clusters it changed
become alert versions (:mod:`linkage_service.notifications`), and the changed links and component
labels, the alerts and "done" are committed in one transaction. Only what changed is stored and
released: a record joining a component of 200,000 records touches a handful of rows, not the
component (clusters without a changed record keep their links, so their alerts stay as they are,
which is what releasing the whole region would give too). A crash between a
batch's receipt and that transaction loses nothing: on start the index is rebuilt from the
work already done and the pending work is done again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from linkage_service import notifications as release
from linkage_service.core.bitmatrix import from_packed
from linkage_service.core.clusters import connected_clusters
from linkage_service.core.decisions import DecisionRule
from linkage_service.core.standing import RegionUpdate, StandingIndex
from linkage_service.store.base import Store
from linkage_service.wire.schema import LinkageSchema

from .servicers import AlertBell

__all__ = ["MATCHER_ACTOR", "Matcher", "rule_of"]

log = logging.getLogger(__name__)
MATCHER_ACTOR = "matcher"
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


def rule_of(schema: LinkageSchema) -> DecisionRule:
    t = schema.thresholds
    return DecisionRule(t.match, t.possible, t.identifier_floor, t.duplicate)


class Matcher:
    def __init__(
        self, store: Store, schema: LinkageSchema, bell: AlertBell, threads: int | None
    ) -> None:
        self._store, self._bell = store, bell
        self._index = StandingIndex(
            schema.filter_bits, len(schema.identifier_fields), rule_of(schema), threads
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="matcher", daemon=True)
        self._idle = threading.Event()
        self.failure: BaseException | None = None
        self.on_health: Callable[[bool], None] = lambda ok: None

    @property
    def record_count(self) -> int:
        return self._index.n_active

    def rebuild(self) -> None:
        """Load the records whose matching is done, their components and links."""
        pending = self._store.pending_work()
        skip = {b for _, kind, b, _ in pending if kind == "batch" and b is not None}
        withdrawn = sorted(
            {k for _, kind, _, keys in pending if kind == "withdrawal" for k in keys}
        )
        records = self._store.restorable_records(skip, withdrawn)
        labels = self._store.component_labels(records.keys)
        self._index.restore(
            records.agencies,
            records.keys,
            from_packed(records.bits, self._index.n_bits),
            records.identifiers,
            labels,
            self._store.links(),
            agency_order=tuple(json.loads(self._store.meta("agency_order") or "[]")),
            edges=self._store.edges(),
        )

    def start(self) -> None:
        self._thread.start()
        self.poke()

    def poke(self) -> None:
        self._idle.clear()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def wait_idle(self, timeout: float) -> bool:
        """True once all committed work is matched (for tests, demos and benchmarks)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(
                RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1] if failures else None
            )
            self._wake.clear()
            try:
                while self._step() and not self._stop.is_set():
                    pass
            except Exception as e:  # the work stays pending; health says NOT_SERVING; retry
                log.exception("matching failed; retrying (the work stays pending)")
                self.failure, failures = e, failures + 1
                self.on_health(False)
                continue
            if failures:
                failures, self.failure = 0, None
                self.on_health(True)
            if not self._wake.is_set():
                self._idle.set()

    def _step(self) -> bool:
        pending = self._store.pending_work()
        if not pending:
            return False
        for seq, kind, batch_id, keys in pending:
            if self._stop.is_set():
                return False
            started = time.perf_counter()
            update = self._apply(kind, batch_id, keys)
            solved = time.perf_counter()
            self._finish(seq, update)
            log.debug(
                "work %d (%s): index %.1f ms, alerts and store %.1f ms; re-solved %d records in "
                "%d components, %d changed",
                seq,
                kind,
                1000 * (solved - started),
                1000 * (time.perf_counter() - solved),
                update.keys.size,
                update.components,
                update.changed.size,
            )
        return True

    def _apply(self, kind: str, batch_id: int | None, keys: list[int]) -> RegionUpdate:
        if kind == "withdrawal":
            return self._index.withdraw(np.array(keys, dtype=np.int64))
        records = self._store.active_records(batch_id)
        agency = records.agencies[0] if records.n else "?"
        return self._index.add(
            agency, records.keys, from_packed(records.bits, self._index.n_bits), records.identifiers
        )

    def _finish(self, seq: int, update: RegionUpdate) -> None:
        links = update.links
        names = self._index.agencies
        in_clusters, cluster_links = _changed_clusters(update)
        agency_of = {
            int(k): names[int(g)]
            for k, g in zip(update.keys[in_clusters], update.agency[in_clusters], strict=True)
        }
        clusters = release.clusters_of(
            links.key_a[cluster_links],
            links.key_b[cluster_links],
            links.decision[cluster_links],
            agency_of,
        )
        touched = np.concatenate([update.keys[in_clusters], update.changed, update.removed])
        existing = self._store.open_alerts_touching(np.unique(touched).tolist())
        refs = self._store.refs_of(
            [k for c in clusters for k in c.keys] + [k for a in existing for k in a.keys]
        )
        counter = iter(range(self._store.next_alert_number(), 1 << 62))
        versions = release.alert_changes(
            clusters,
            existing,
            refs,
            lambda: next(counter),
            datetime.now(UTC),
            set(update.removed.tolist()),
        )
        stored = np.isin(links.key_a, update.changed) | np.isin(links.key_b, update.changed)
        self._store.finish_work(
            seq,
            np.concatenate([update.changed, update.removed]).tolist(),
            (links.key_a[stored], links.key_b[stored], links.decision[stored], links.score[stored]),
            (update.relabelled, self._index.component_labels(update.relabelled)),
            versions,
            MATCHER_ACTOR,
            {"agency_order": json.dumps(list(self._index.agencies))},
            update.edges,
        )
        if versions:
            self._bell.ring()


def _changed_clusters(update: RegionUpdate) -> tuple[np.ndarray, np.ndarray]:
    """(bool over ``update.keys``, bool over ``update.links``): the records and links of the
    clusters (connected over links) that hold a changed record."""
    keys, links = update.keys, update.links
    at_a, at_b = np.searchsorted(keys, links.key_a), np.searchsorted(keys, links.key_b)
    label = connected_clusters(keys.size, at_a, at_b)
    hit = label[np.searchsorted(keys, update.changed)]
    in_clusters = np.isin(label, hit)
    return in_clusters, in_clusters[at_a]
