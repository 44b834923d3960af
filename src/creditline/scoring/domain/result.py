"""The outcome of scoring one applicant: score, PD, tier, reasons and the model version."""

from __future__ import annotations

from dataclasses import dataclass

from creditline.scoring.domain.reasons import MAX_REASONS, Reason
from creditline.scoring.domain.scale import MAX_SCORE, MIN_SCORE, Tier, tier_of


@dataclass(frozen=True, slots=True)
class ScoreResult:
    score: int
    pd: float
    tier: Tier
    reasons: tuple[Reason, ...]
    model_version: str

    def __post_init__(self) -> None:
        if not MIN_SCORE <= self.score <= MAX_SCORE:
            raise ValueError(f"score {self.score} outside {MIN_SCORE}–{MAX_SCORE}")
        if not 0.0 <= self.pd <= 1.0:
            raise ValueError(f"PD {self.pd} outside [0, 1]")
        if self.tier is not tier_of(self.score):
            raise ValueError(f"tier {self.tier} does not match score {self.score}")
        if len(self.reasons) > MAX_REASONS:
            raise ValueError(f"at most {MAX_REASONS} reasons, got {len(self.reasons)}")
