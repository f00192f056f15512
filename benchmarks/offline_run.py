"""Encode several agencies' CSV files and link them in-process: the offline pipeline that the
demo and the accuracy benchmark share (the same functions the CLI commands call)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clients.encoding.encode_file import encode_csv
from clients.encoding.secret import Secret
from linkage_service.cli import as_agency_records, rule_from_schema
from linkage_service.core.decisions import MATCH, POSSIBLE, DecisionRule
from linkage_service.core.linking import PairLinks, link_agencies
from linkage_service.wire.encoded_file import EncodedBatch
from linkage_service.wire.schema import LinkageSchema

from .metrics import Pair

__all__ = ["OfflineRun", "encode_agencies", "link_batches", "rule_for"]


@dataclass
class OfflineRun:
    batches: list[EncodedBatch]
    links: list[PairLinks]
    seconds: dict[str, float] = field(default_factory=dict)

    def pairs(self, *decisions: int) -> list[Pair]:
        """Linked pairs with the given decisions (default: match only)."""
        wanted = set(decisions or (MATCH,))
        out = []
        for p in self.links:
            a, b = self.batches[p.a], self.batches[p.b]
            for i, j, d in zip(
                p.left.tolist(), p.right.tolist(), p.decisions.tolist(), strict=True
            ):
                if d in wanted:
                    out.append((a.agency, str(a.record_ids[i]), b.agency, str(b.record_ids[j])))
        return out

    def match_and_possible(self) -> list[Pair]:
        return self.pairs(MATCH, POSSIBLE)


def rule_for(schema: LinkageSchema, match: float | None = None) -> DecisionRule:
    return rule_from_schema(schema, match)


def encode_agencies(
    csv_paths: Mapping[str, Path], schema: LinkageSchema, secret: Secret
) -> tuple[list[EncodedBatch], float]:
    started = time.perf_counter()
    batches = [encode_csv(path, schema, secret, agency) for agency, path in csv_paths.items()]
    return batches, time.perf_counter() - started


def link_batches(
    batches: list[EncodedBatch], rule: DecisionRule, threads: int | None = None
) -> tuple[list[PairLinks], float]:
    started = time.perf_counter()
    links = link_agencies([as_agency_records(b) for b in batches], rule, threads=threads)
    return links, time.perf_counter() - started
