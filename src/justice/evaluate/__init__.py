"""Intervention evaluation: did a programme change its participants' outcomes?

The generic engine is `match` (propensity-score matching with replacement, Abadie-Imbens
standard errors, a doubly robust check and a balance table), usable on any table; `stats`
holds the power and sensitivity arithmetic reports quote.
"""

from justice.evaluate.matching import Effect, MatchResult, match
from justice.evaluate.stats import (
    EValue,
    e_value,
    minimum_detectable_effect,
    minimum_detectable_mean_difference,
    participants_needed,
)

__all__ = [
    "EValue",
    "Effect",
    "MatchResult",
    "e_value",
    "match",
    "minimum_detectable_effect",
    "minimum_detectable_mean_difference",
    "participants_needed",
]
