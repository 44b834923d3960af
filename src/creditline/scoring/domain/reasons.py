"""Reason codes: the stable code and English/Chinese text of a factor that lowered a score.

An adverse-action notice gives at most four principal reasons (ECOA/Reg B §1002.9). A
reason is tied to a feature, not to a model: the code is ``R-`` plus the feature name in
upper case with every non-alphanumeric run replaced by ``_`` (``PAY_0`` → ``R-PAY_0``,
``log.annual.inc`` → ``R-LOG_ANNUAL_INC``), so the same feature keeps its code across
model versions and between the scorecard and the GBM. A scorecard's pair cell (points for
a combination of two features) is a reason naming both: ``R-DEROG-X-CLAGE``, feature
``DEROG × CLAGE``. `impact` is in score points.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

MAX_REASONS = 4


@lru_cache(maxsize=4096)  # scoring one applicant asks for the same few codes every time
def reason_code(feature: str) -> str:
    return "R-" + _part(feature)


def _part(feature: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", feature).strip("_").upper()


@lru_cache(maxsize=4096)
def pair_reason_code(first: str, second: str) -> str:
    return f"R-{_part(first)}-X-{_part(second)}"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    feature: str
    impact: float  # score points lost to this feature (> 0)
    text_en: str
    text_zh: str

    def __post_init__(self) -> None:
        if not self.impact > 0:
            raise ValueError(f"a reason lowers the score, impact must be > 0, got {self.impact}")


def make_reason(feature: str, impact: float, label: str | None = None) -> Reason:
    name = label or feature
    return Reason(
        code=reason_code(feature),
        feature=feature,
        impact=impact,
        text_en=f"{name}: this value lowered the score",
        text_zh=f"{name}：该项取值拉低了评分",
    )


def make_pair_reason(first: str, second: str, impact: float) -> Reason:
    """A pair cell that lowered the score: the combination of the two features' values."""
    return Reason(
        code=pair_reason_code(first, second),
        feature=f"{first} × {second}",
        impact=impact,
        text_en=f"{first} together with {second}: this combination lowered the score",
        text_zh=f"{first}与{second}的组合：该组合取值拉低了评分",
    )
