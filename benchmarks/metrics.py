"""Linkage quality against ground truth: precision, recall and F1 of cross-agency pairs."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Pair", "canonical_pair", "pair_metrics"]

Pair = tuple[str, str, str, str]  # agency_a, record_a, agency_b, record_b


def canonical_pair(agency_a: str, record_a: str, agency_b: str, record_b: str) -> Pair:
    """The same pair whichever side it was reported from."""
    if (agency_a, record_a) <= (agency_b, record_b):
        return (agency_a, record_a, agency_b, record_b)
    return (agency_b, record_b, agency_a, record_a)


def pair_metrics(predicted: Iterable[Pair], truth: Iterable[Pair]) -> dict[str, float | int]:
    found = {canonical_pair(*p) for p in predicted}
    true = {canonical_pair(*p) for p in truth}
    tp = len(found & true)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "predicted": len(found),
        "true": len(true),
        "true_positives": tp,
        "false_positives": len(found) - tp,
        "false_negatives": len(true) - tp,
        "precision": round(precision, 5),
        "recall": round(recall, 5),
        "f1": round(f1, 5),
    }
