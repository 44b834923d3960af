"""The decision pipeline, step by step, over a policy engine and a scorer.

consent → admission table → score → score cut-offs → limit matrix → regulatory caps →
price table → APR cap. A step that declines stops the pipeline (no data is scored
without consent; a declined applicant is not priced); every rule that fired is kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date
from decimal import Decimal

from creditline.decisioning.domain.application import ApplicantFacts, DecisionDraft, ScoreResult
from creditline.decisioning.domain.decision import Decision, Review, ReviewStatus
from creditline.decisioning.domain.pipeline import (
    THIN_FILE,
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
from creditline.decisioning.ports import (
    AprOf,
    DecisioningUnitOfWork,
    PolicyEngine,
    Scorer,
)
from creditline.shared.clock import Clock
from creditline.shared.errors import ConflictError, FieldIssue, InvalidInputError, NotFoundError
from creditline.shared.money import Currency, Money
from creditline.shared.uow import RequestRecord


def evaluate_application(
    facts: ApplicantFacts, *, policies: PolicyEngine, scorer: Scorer, apr_of: AprOf
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

    # The admission table decides what a thin file is; the tables after it read its finding.
    context["history"]["thin_file"] = any(hit.code == THIN_FILE for hit in hits)
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
    price = decide_price(price_result, params, apr_of)
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


def apply_for_credit(
    uow: DecisioningUnitOfWork,
    clock: Clock,
    *,
    policies: PolicyEngine,
    scorer: Scorer,
    apr_of: AprOf,
    application_id: str,
    customer_id: str,
    requested_limit: Money | None,
    business_date: date | None = None,
    record: RequestRecord[Decision] | None = None,
) -> tuple[Decision, bool]:
    """Decide an application and, if approved, open the line: all in one transaction.

    Idempotent on `application_id` (the caller's key): a retry returns the stored decision
    (and False); the same id for another customer or amount is a conflict. `record`, if
    given, is claimed first and completed last in the same transaction. Without a
    `business_date`, the one the transaction reads (with the customer's lock) holds.
    """
    with uow:
        # The record is claimed first, then the lock is taken, which comes before the
        # look-up of the id so that the look-up can share its statement.
        uow.lock_customer(customer_id, application_id, record)
        earlier = uow.decisions.get(application_id)
        if earlier is not None:
            if earlier.customer_id != customer_id or earlier.requested_limit != requested_limit:
                raise ConflictError(
                    "this application id was used for another application",
                    code="idempotency_key_reused",
                )
            if record is not None:
                record.complete(earlier)
                uow.commit()
            return earlier, False
        if business_date is None:
            business_date = uow.business_date()
        facts = uow.applicants.facts(customer_id, business_date)
        if facts is None:
            raise NotFoundError(f"no customer {customer_id}", code="customer_not_found")
        draft = _within_request(
            evaluate_application(facts, policies=policies, scorer=scorer, apr_of=apr_of),
            requested_limit,
            policies.parameters.limit_step,
        )
        line_id = None
        with uow.committing():
            if draft.outcome is Outcome.APPROVED:
                # No decision holds this application id (read above, in this transaction),
                # and only its decision or review opens the line named after it.
                line_id = uow.lines.open_line(
                    line_id=_line_id(application_id),
                    customer_id=customer_id,
                    limit=draft.limit,
                    daily_rate=_rate(draft),
                    on=business_date,
                    new=True,
                )
            review = Review(ReviewStatus.PENDING) if draft.outcome is Outcome.REVIEW else None
            decision = Decision(
                application_id, customer_id, requested_limit, draft, clock.now(), line_id, review
            )
            uow.decisions.add(decision)
            if record is not None:
                record.complete(decision)
    return decision, True


def get_decision(uow: DecisioningUnitOfWork, application_id: str) -> Decision:
    with uow:
        found = uow.decisions.get(application_id)
    if found is None:
        raise NotFoundError(f"no application {application_id}", code="application_not_found")
    return found


def pending_reviews(uow: DecisioningUnitOfWork, limit: int = 100) -> list[Decision]:
    with uow:
        return uow.decisions.pending_reviews(limit)


def resolve_review(
    uow: DecisioningUnitOfWork,
    clock: Clock,
    *,
    application_id: str,
    decision: Outcome,
    limit: Money | None,
    note: str,
    reviewer: str,
    business_date: date,
) -> Decision:
    """A person approves or declines an application the pipeline sent to review.

    Approval opens the line at the reviewer's limit (or the prepared offer's), which may not
    exceed the regulatory room the pipeline computed; declining keeps the reasons.
    """
    with uow:
        stored = uow.decisions.get(application_id)
        if stored is None:
            raise NotFoundError(f"no application {application_id}", code="application_not_found")
        uow.lock_customer(stored.customer_id)
        line_id = None
        final_limit = None
        if decision is Outcome.APPROVED:
            final_limit = _reviewed_limit(stored, limit)
            line_id = uow.lines.open_line(
                line_id=_line_id(application_id),
                customer_id=stored.customer_id,
                limit=final_limit,
                daily_rate=_rate(stored.draft),
                on=business_date,
            )
        resolved = stored.resolve(
            decision=decision,
            limit=final_limit,
            note=note,
            reviewer=reviewer,
            at=clock.now(),
            credit_line_id=line_id,
        )
        uow.decisions.update_review(resolved)
        uow.commit()
    return resolved


def _within_request(draft: DecisionDraft, requested: Money | None, step: Money) -> DecisionDraft:
    """A customer who asks for less than the offer gets what they asked for (stepped down)."""
    if requested is None or requested >= draft.limit or draft.limit.is_zero:
        return draft
    stepped = Money(requested.minor_units // step.minor_units * step.minor_units, Currency.CNY)
    return replace(draft, limit=stepped)


def _reviewed_limit(stored: Decision, asked: Money | None) -> Money:
    offer = stored.draft.limit
    if offer.is_zero or stored.draft.daily_rate is None:
        raise ConflictError(
            "this application has no prepared offer to approve", code="no_offer_to_approve"
        )
    if asked is None:
        return offer
    if asked > offer or not asked.is_positive:
        raise InvalidInputError(
            FieldIssue("limit", "above_offer", f"the limit must be between 0 and {offer.to_str()}")
        )
    return asked


def _rate(draft: DecisionDraft) -> Decimal:
    if draft.daily_rate is None:  # pragma: no cover - approved drafts always carry a rate
        raise ConflictError("an approved decision without a price", code="internal_error")
    return draft.daily_rate


def _line_id(application_id: str) -> str:
    # The line's id follows from the application's, so a retried approval finds it again.
    return "cl_" + hashlib.sha256(application_id.encode()).hexdigest()[:32]
