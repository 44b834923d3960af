"""The decision pipeline, step by step, over a policy engine and a scorer.

consent → admission table → score → score cut-offs → limit matrix → regulatory caps →
price table → APR cap. A step that declines stops the pipeline (no data is scored
without consent; a declined applicant is not priced); every rule that fired is kept.
"""

from __future__ import annotations

from decimal import Decimal

from creditline.decisioning.domain.application import ApplicantFacts, DecisionDraft, ScoreResult
from creditline.decisioning.domain.pipeline import (
    Outcome,
    RuleHit,
    RuleOutcome,
    decide_limit,
    decide_price,
    fingerprint_payload,
    missing_consents,
    outcome_of,
    principal_reasons,
    rule_hits,
)
from creditline.decisioning.domain.reasons import Reason, reason
from creditline.decisioning.ports import PolicyEngine, Scorer
from creditline.shared.money import Currency, Money


def evaluate_application(
    facts: ApplicantFacts, *, policies: PolicyEngine, scorer: Scorer
) -> DecisionDraft:
    fingerprint = fingerprint_payload(facts.fingerprint_source())

    def stop(
        hits: list[RuleHit], rule_reasons: list[Reason], score: ScoreResult | None = None
    ) -> DecisionDraft:
        model = score.reasons if score else ()
        return DecisionDraft(
            outcome=outcome_of(hits) if hits else Outcome.DECLINED,
            limit=Money.zero(Currency.CNY),
            daily_rate=None,
            apr=None,
            apr_simple=None,
            score=score,
            reasons=principal_reasons(rule_reasons, model),
            policy_version=policies.version,
            trace=tuple(hits),
            inputs_fingerprint=fingerprint,
            fired_rows=tuple(fired),
        )

    params = policies.parameters
    # Rows of the `first` tables that fired (limit, price); rule hits carry the rest.
    fired: list[tuple[str, str]] = []
    absent = missing_consents(facts.consents, params)
    if absent:
        hits = [RuleHit("consent", r.code.lower(), r.code, RuleOutcome.DECLINE) for r in absent]
        return stop(hits, absent)

    context = facts.rule_context()
    hits = rule_hits(policies.evaluate("admission", context))
    if outcome_of(hits) is Outcome.DECLINED:
        return stop(hits, _reasons(hits, RuleOutcome.DECLINE))

    score = scorer.score(facts.features)
    context["score"] = {"value": score.score, "tier": _tier_key(score.tier)}
    hits += rule_hits(policies.evaluate("score_cutoff", context))
    if outcome_of(hits) is Outcome.DECLINED:
        return stop(hits, _reasons(hits, RuleOutcome.DECLINE), score)

    limit_result = policies.evaluate("limit", context)
    fired.extend(("limit", rule_id) for rule_id in limit_result.fired)
    limit = decide_limit(
        limit_result,
        declared_income=facts.declared_income,
        other_limits=facts.other_limits,
        params=params,
    )
    if limit.limit.is_zero:
        hits.append(RuleHit("limit", "regulatory-caps", "LIMIT_BELOW_MINIMUM", RuleOutcome.DECLINE))
        return stop(hits, list(limit.reasons), score)

    price_result = policies.evaluate("price", context)
    fired.extend(("price", rule_id) for rule_id in price_result.fired)
    price = decide_price(price_result, params)
    outcome = outcome_of(hits)
    reasons = _reasons(hits, RuleOutcome.REVIEW) + list(limit.reasons) + list(price.reasons)
    return DecisionDraft(
        outcome=outcome,
        limit=limit.limit,
        daily_rate=price.daily_rate,
        apr=price.apr,
        apr_simple=price.apr_simple,
        score=score,
        reasons=principal_reasons(reasons, score.reasons if limit.reasons else ()),
        policy_version=policies.version,
        trace=tuple(hits),
        inputs_fingerprint=fingerprint,
        fired_rows=tuple(fired),
        notes=_price_notes(price.apr, params.lpr_one_year),
    )


def _reasons(hits: list[RuleHit], outcome: RuleOutcome) -> list[Reason]:
    return [reason(hit.code) for hit in hits if hit.outcome is outcome]


def _tier_key(tier: str) -> str:
    """Tier names as the tables spell them: lower case, words joined by underscores."""
    return "_".join(tier.lower().replace("-", " ").split())


def _price_notes(apr: Decimal, lpr: Decimal) -> tuple[str, ...]:
    if apr > 4 * lpr:
        return (f"APR {apr} is above 4 x LPR ({4 * lpr}); courts may not protect the excess",)
    return ()
