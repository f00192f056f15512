"""The matching core: pure functions of numpy arrays (no I/O, transport or plaintext).

Public surface; everything else in this package is an implementation detail.
"""

from .bitmatrix import BitMatrix, from_packed
from .candidates import CandidatePairs
from .clusters import Clusters, connected_clusters, multi_agency_clusters
from .decisions import MATCH, NO_LINK, POSSIBLE, DecisionRule, decide
from .dice import dice_candidates, dice_scores
from .errors import BitLengthError, CoreError, ThresholdError
from .linking import AgencyRecords, PairLinks, duplicate_entities, link_agencies, match_clusters
from .solving import greedy_one_to_one
from .standing import RegionUpdate, StandingIndex, StandingLinks

__all__ = [
    "MATCH",
    "NO_LINK",
    "POSSIBLE",
    "AgencyRecords",
    "BitLengthError",
    "BitMatrix",
    "CandidatePairs",
    "Clusters",
    "CoreError",
    "DecisionRule",
    "PairLinks",
    "RegionUpdate",
    "StandingIndex",
    "StandingLinks",
    "ThresholdError",
    "connected_clusters",
    "decide",
    "dice_candidates",
    "dice_scores",
    "duplicate_entities",
    "from_packed",
    "greedy_one_to_one",
    "link_agencies",
    "match_clusters",
    "multi_agency_clusters",
]
