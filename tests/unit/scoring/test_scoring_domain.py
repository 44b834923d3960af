"""Score scale, tiers and reason codes."""

from __future__ import annotations

import math

import pytest

from creditline.scoring.domain.reasons import Reason, make_reason, reason_code
from creditline.scoring.domain.scale import ScoreScale, Tier, clip_round, tier_of


def test_scale_matches_siddiqis_published_example() -> None:
    # Siddiqi, Credit Risk Scorecards (2006), ch. 6: 600 points at 30:1, 20 points to double:
    # factor = 20 / ln 2 = 28.8539, offset = 600 − 28.8539 · ln 30 = 501.8622.
    scale = ScoreScale(base_score=600, base_odds=30, pdo=20)

    assert scale.factor == pytest.approx(28.8539, abs=1e-4)
    assert scale.offset == pytest.approx(501.8622, abs=1e-4)


def test_doubling_the_odds_adds_pdo_points() -> None:
    scale = ScoreScale()
    pd_at_base = 1 / (1 + 19)
    pd_double = 1 / (1 + 38)

    assert scale.raw_score(pd_at_base) == pytest.approx(600)
    assert scale.raw_score(pd_double) - scale.raw_score(pd_at_base) == pytest.approx(50)
    assert scale.pd_of(scale.raw_score(0.123)) == pytest.approx(0.123)


def test_scores_are_clipped_to_350_950_and_rounded_half_up() -> None:
    assert clip_round(10.0) == 350
    assert clip_round(2000.0) == 950
    assert clip_round(612.5) == 613
    assert clip_round(612.49) == 612
    assert ScoreScale().score(0.999999) == 350


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        (350, Tier.POOR),
        (549, Tier.POOR),
        (550, Tier.FAIR),
        (599, Tier.FAIR),
        (600, Tier.GOOD),
        (649, Tier.GOOD),
        (650, Tier.VERY_GOOD),
        (699, Tier.VERY_GOOD),
        (700, Tier.EXCELLENT),
        (950, Tier.EXCELLENT),
    ],
)
def test_tiers_follow_the_domain_table(score: int, tier: Tier) -> None:
    assert tier_of(score) is tier


def test_a_score_outside_the_scale_has_no_tier() -> None:
    with pytest.raises(ValueError, match="350"):
        tier_of(349)


def test_reason_codes_are_stable_and_independent_of_punctuation() -> None:
    assert reason_code("PAY_0") == "R-PAY_0"
    assert reason_code("log.annual.inc") == "R-LOG_ANNUAL_INC"


def test_a_reason_has_english_and_chinese_text_and_a_positive_impact() -> None:
    reason = make_reason("PAY_0", 12.5)

    assert "PAY_0" in reason.text_en
    assert "评分" in reason.text_zh
    with pytest.raises(ValueError, match="impact"):
        Reason("R-X", "x", 0.0, "", "")


def test_factor_is_pdo_over_ln2() -> None:
    assert ScoreScale(pdo=40).factor == pytest.approx(40 / math.log(2))
