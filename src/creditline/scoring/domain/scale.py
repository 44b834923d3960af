"""The credit score scale: points to double the odds, clipped to 350–950, and its tiers.

A score is a linear function of the log-odds of being good: ``score = offset + factor ·
ln(odds)`` with ``factor = pdo / ln 2`` and ``offset = base_score − factor · ln(base_odds)``.
Defaults: 600 points at odds of 19 : 1 (PD 5 %), 50 points to double the odds, so PD 1 %
scores about 719 and PD 30 % about 449. The score is clipped to 350–950 and rounded half
up; the PD is kept unrounded. Tiers follow DOMAIN.md (Sesame-style).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

MIN_SCORE = 350
MAX_SCORE = 950


class Tier(StrEnum):
    POOR = "poor"
    FAIR = "fair"
    GOOD = "good"
    VERY_GOOD = "very_good"
    EXCELLENT = "excellent"


# Lower bound of each tier, highest first (DOMAIN.md: 350–549 poor … 700–950 excellent).
TIER_FLOORS: tuple[tuple[int, Tier], ...] = (
    (700, Tier.EXCELLENT),
    (650, Tier.VERY_GOOD),
    (600, Tier.GOOD),
    (550, Tier.FAIR),
    (MIN_SCORE, Tier.POOR),
)


def tier_of(score: int) -> Tier:
    if not MIN_SCORE <= score <= MAX_SCORE:
        raise ValueError(f"a score lies in {MIN_SCORE}–{MAX_SCORE}, got {score}")
    for floor, tier in TIER_FLOORS:
        if score >= floor:
            return tier
    raise AssertionError("unreachable: the last floor is MIN_SCORE")


@dataclass(frozen=True, slots=True)
class ScoreScale:
    """Points-to-double-odds scaling (odds = good : bad)."""

    base_score: float = 600.0
    base_odds: float = 19.0
    pdo: float = 50.0

    def __post_init__(self) -> None:
        if self.pdo <= 0 or self.base_odds <= 0:
            raise ValueError("pdo and base_odds must be positive")

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def raw_score(self, pd: float) -> float:
        """Unclipped, unrounded score of a probability of default in (0, 1)."""
        if not 0.0 < pd < 1.0:
            raise ValueError(f"a PD lies strictly between 0 and 1, got {pd}")
        return self.offset + self.factor * math.log((1.0 - pd) / pd)

    def score(self, pd: float) -> int:
        return clip_round(self.raw_score(pd))

    def pd_of(self, raw_score: float) -> float:
        """The PD whose unclipped score is `raw_score` (inverse of `raw_score`)."""
        log_odds = (raw_score - self.offset) / self.factor
        return 1.0 / (1.0 + math.exp(log_odds))

    def to_dict(self) -> dict[str, float]:
        return {"base_score": self.base_score, "base_odds": self.base_odds, "pdo": self.pdo}


def clip_round(raw: float) -> int:
    """Round half up, then clip to 350–950."""
    return max(MIN_SCORE, min(MAX_SCORE, math.floor(raw + 0.5)))
