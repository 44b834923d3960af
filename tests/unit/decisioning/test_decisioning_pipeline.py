"""The decision pipeline over the shipped v2 policy tables and a fake scorer.

Expected limits and rates are worked out by hand from DOMAIN.md's rules and the v2 tables
(⅓ of income, ¥300,000, ¥200,000, rounding down to ¥100), not read back from the code.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

import numpy_financial as npf
import pytest

from creditline.decisioning.adapters.lending_bridge import representative_apr
from creditline.decisioning.adapters.zen_policies import ZenPolicyEngine
from creditline.decisioning.domain.application import ApplicantFacts, DecisionDraft, ScoreResult
from creditline.decisioning.domain.pipeline import Outcome
from creditline.decisioning.domain.reasons import CATALOGUE, Reason, model_reason
from creditline.decisioning.ports import PolicyEngine, Scorer
from creditline.decisioning.service import evaluate_application
from creditline.shared.money import Money

POLICIES = Path(__file__).resolve().parents[3] / "policies" / "v2"
BOTH = frozenset({"credit_assessment", "credit_bureau_query"})
MODEL_REASONS = tuple(
    model_reason(f"M{n}", f"model reason {n}", f"模型原因{n}") for n in range(1, 6)
)


@dataclass
class FakeScorer:
    score_value: int = 720
    tier: str = "excellent"
    calls: list[Mapping[str, float | None]] = field(default_factory=list)

    def score(self, features: Mapping[str, float | None]) -> ScoreResult:
        self.calls.append(features)
        return ScoreResult(self.score_value, 0.02, self.tier, MODEL_REASONS, "model-test")


@pytest.fixture(scope="module")
def policies() -> ZenPolicyEngine:
    return ZenPolicyEngine(POLICIES)


def applicant(**changes: object) -> ApplicantFacts:
    base = ApplicantFacts("cus_1", 30, BOTH, Money.yuan("120000.00"))
    return replace(base, **changes)  # type: ignore[arg-type]


def evaluate(facts: ApplicantFacts, *, policies: PolicyEngine, scorer: Scorer) -> DecisionDraft:
    """The pipeline with the product's real APR (lending's schedule and IRR)."""
    return evaluate_application(facts, policies=policies, scorer=scorer, apr_of=representative_apr)


def codes(reasons: tuple[Reason, ...]) -> list[str]:
    return [r.code for r in reasons]


def test_every_code_a_table_can_emit_has_texts_in_both_languages() -> None:
    emitted = set()
    for path in POLICIES.glob("*.json"):
        for node in json.loads(path.read_text()).get("nodes", []):
            for row in node.get("content", {}).get("rules", []):
                if "code" in row:
                    emitted.add(json.loads(row["code"]))
    assert emitted
    assert emitted <= set(CATALOGUE)
    assert all(CATALOGUE[c].text_en and CATALOGUE[c].text_zh for c in emitted)


@pytest.mark.parametrize(
    ("consents", "missing"),
    [
        (frozenset({"credit_assessment"}), ["CONSENT_CREDIT_BUREAU_QUERY_MISSING"]),
        (frozenset({"credit_bureau_query", "marketing"}), ["CONSENT_CREDIT_ASSESSMENT_MISSING"]),
        (
            frozenset(),
            ["CONSENT_CREDIT_ASSESSMENT_MISSING", "CONSENT_CREDIT_BUREAU_QUERY_MISSING"],
        ),
    ],
)
def test_without_consent_the_applicant_is_declined_and_not_scored(
    policies: ZenPolicyEngine, consents: frozenset[str], missing: list[str]
) -> None:
    scorer = FakeScorer()

    draft = evaluate(applicant(consents=consents), policies=policies, scorer=scorer)

    assert draft.outcome is Outcome.DECLINED
    assert codes(draft.reasons) == missing
    assert scorer.calls == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"age": 17}, "AGE_BELOW_MINIMUM"),
        ({"age": 61}, "AGE_ABOVE_MAXIMUM"),
        ({"has_open_line": True}, "EXISTING_OPEN_LINE"),
        ({"max_days_past_due": 3}, "CURRENTLY_DELINQUENT"),
        ({"shared_device_customers": 3, "neighbour_delinquent_share": 0.5}, "FRAUD_RING_FLAG"),
        ({"shared_device_customers": 9}, "SHARED_DEVICE_CLUSTER"),
    ],
)
def test_each_admission_rule_declines_with_its_reason(
    policies: ZenPolicyEngine, changes: dict[str, object], code: str
) -> None:
    draft = evaluate(applicant(**changes), policies=policies, scorer=FakeScorer())

    assert draft.outcome is Outcome.DECLINED
    assert codes(draft.reasons) == [code]
    assert draft.limit.is_zero
    assert draft.daily_rate is None
    assert [hit.code for hit in draft.trace] == [code]


@pytest.mark.parametrize(("score", "tier"), [(720, "excellent"), (450, "poor")])
def test_a_thin_file_goes_to_review_with_a_starter_offer_whatever_its_score(
    policies: ZenPolicyEngine, score: int, tier: str
) -> None:
    thin = applicant(payments_and_orders_365d=4, has_bill_history=False)

    draft = evaluate(thin, policies=policies, scorer=FakeScorer(score, tier))

    assert draft.outcome is Outcome.REVIEW
    assert codes(draft.reasons)[0] == "THIN_FILE"
    assert draft.limit == Money.yuan("3000.00")


def test_a_low_score_declines_with_the_rule_first_then_three_model_reasons(
    policies: ZenPolicyEngine,
) -> None:
    draft = evaluate(applicant(), policies=policies, scorer=FakeScorer(550, "poor"))

    assert draft.outcome is Outcome.DECLINED
    assert codes(draft.reasons) == ["SCORE_BELOW_CUTOFF", "M1", "M2", "M3"]
    assert draft.model_version == "model-test"


def test_a_borderline_score_goes_to_review(policies: ZenPolicyEngine) -> None:
    draft = evaluate(applicant(), policies=policies, scorer=FakeScorer(610, "good"))

    assert draft.outcome is Outcome.REVIEW
    assert codes(draft.reasons) == ["SCORE_BORDERLINE"]


@pytest.mark.parametrize(
    ("income", "tier", "score", "limit", "reason"),
    [
        # excellent, ≥¥300k: matrix 200,000; room min(300,000, 1,000,000/3) = 300,000.
        ("1000000.00", "excellent", 720, "200000.00", None),
        # excellent, ¥150k–300k: matrix 120,000; room 200,000/3 = 66,666.66 → 66,600.
        ("200000.00", "excellent", 720, "66600.00", "LIMIT_CAPPED_BY_INCOME"),
        # good, ¥50k–150k: matrix 20,000; room 100,050/3 = 33,350 → no cut.
        ("100050.00", "good", 640, "20000.00", None),
        # excellent, <¥50k: matrix 30,000; room 30,000/3 = 10,000.
        ("30000.00", "excellent", 720, "10000.00", "LIMIT_CAPPED_BY_INCOME"),
    ],
)
def test_the_limit_is_the_matrix_cut_to_the_regulatory_room(
    policies: ZenPolicyEngine,
    income: str,
    tier: str,
    score: int,
    limit: str,
    reason: str | None,
) -> None:
    draft = evaluate(
        applicant(declared_income=Money.yuan(income)),
        policies=policies,
        scorer=FakeScorer(score, tier),
    )

    assert draft.outcome is Outcome.APPROVED
    assert draft.limit == Money.yuan(limit)
    assert codes(draft.reasons)[:1] == ([reason] if reason else [])


def test_other_lines_use_up_the_room(policies: ZenPolicyEngine) -> None:
    # 120,000 / 3 = 40,000 room, 39,500 already granted elsewhere: 500 < the ¥1,000 minimum.
    draft = evaluate(
        applicant(other_limits=Money.yuan("39500.00")), policies=policies, scorer=FakeScorer()
    )

    assert draft.outcome is Outcome.DECLINED
    assert "LIMIT_BELOW_MINIMUM" in codes(draft.reasons)


def test_price_follows_the_tier_and_shows_the_apr(policies: ZenPolicyEngine) -> None:
    draft = evaluate(applicant(), policies=policies, scorer=FakeScorer(680, "very good"))

    assert draft.daily_rate == Decimal("0.00035")
    assert draft.apr_simple == Decimal("0.1278")  # 0.00035 × 365 = 0.12775 → half-even
    # 30-day months: the IRR APR is a little below daily × 365 (12 × 30 = 360 days' charge).
    assert draft.apr == representative_apr(Decimal("0.00035")).quantize(Decimal("0.0001"))
    assert draft.apr < draft.apr_simple
    assert ("price", "very-good") in draft.fired_rows
    assert any(table == "limit" for table, _ in draft.fired_rows)
    assert draft.notes  # 12.78 % is above 4 × LPR (12 %): the decision says so


def test_the_four_times_lpr_line_caps_the_rate_when_enforced(tmp_path: Path) -> None:
    folder = tmp_path / "v2"
    shutil.copytree(POLICIES, folder)
    params = json.loads((folder / "parameters.json").read_text())
    params["enforce_four_times_lpr"] = True
    (folder / "parameters.json").write_text(json.dumps(params))

    draft = evaluate(applicant(), policies=ZenPolicyEngine(folder), scorer=FakeScorer(640, "good"))

    assert draft.daily_rate == Decimal("0.000328")  # 0.12 / 365 = 0.00032876…, rounded down
    assert "PRICE_CAPPED" in codes(draft.reasons)


def test_editing_a_table_gives_a_new_policy_version(tmp_path: Path) -> None:
    folder = tmp_path / "v1"
    shutil.copytree(POLICIES, folder)
    before = ZenPolicyEngine(folder).version
    (folder / "price.json").write_text(
        (folder / "price.json").read_text().replace("0.00045", "0.00044")
    )

    after = ZenPolicyEngine(folder)

    assert before != after.version
    assert after.version.startswith("v1+")


@pytest.mark.parametrize("daily", ["0.00015", "0.00045", "0.0006"])
def test_the_representative_apr_agrees_with_numpy_financial(daily: str) -> None:
    # The product's 30-day months: a month costs daily × 30; instalments are rounded to
    # the fen, half up, and the last one absorbs the difference.
    monthly = float(Decimal(daily) * 30)
    payment = round(-npf.pmt(monthly, 12, 10_000), 2)

    expected = npf.rate(12, -payment, 10_000, 0) * 12

    assert abs(float(representative_apr(Decimal(daily))) - expected) < 0.0005


def test_the_inputs_fingerprint_changes_with_the_inputs(policies: ZenPolicyEngine) -> None:
    first = evaluate(applicant(), policies=policies, scorer=FakeScorer())
    same = evaluate(applicant(), policies=policies, scorer=FakeScorer())
    other = evaluate(applicant(age=31), policies=policies, scorer=FakeScorer())

    assert first.inputs_fingerprint == same.inputs_fingerprint
    assert first.inputs_fingerprint != other.inputs_fingerprint
