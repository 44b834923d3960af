"""Decisions read back exactly as stored, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import insert

from creditline.bootstrap import Container
from creditline.decisioning.adapters.sql import SqlDecisionRepository
from creditline.decisioning.domain.application import DecisionDraft, ScoreResult
from creditline.decisioning.domain.decision import Decision, Review, ReviewStatus
from creditline.decisioning.domain.pipeline import Outcome, RuleHit, RuleOutcome
from creditline.decisioning.domain.reasons import model_reason, reason
from creditline.privacy.adapters.sql import customers
from creditline.shared.money import Money

AT = datetime(2026, 1, 15, 3, 4, 5, 678901, tzinfo=UTC)


def a_decision() -> Decision:
    draft = DecisionDraft(
        outcome=Outcome.REVIEW,
        limit=Money.yuan("40000.00"),
        daily_rate=Decimal("0.00025"),
        apr=Decimal("0.0912"),
        apr_simple=Decimal("0.0913"),
        score=ScoreResult(705, 0.0213, "excellent", (model_reason("M1", "en", "中"),), "m-1"),
        reasons=(reason("THIN_FILE"), reason("LIMIT_CAPPED_BY_INCOME")),
        policy_version="v1+abc",
        trace=(RuleHit("admission", "thin-file", "THIN_FILE", RuleOutcome.REVIEW),),
        inputs_fingerprint="f" * 64,
        fired_rows=(("limit", "excellent-50k-150k"), ("price", "excellent")),
        notes=("a note",),
    )
    return Decision(
        "app-1", "cus_1", Money.yuan("50000.00"), draft, AT, None, Review(ReviewStatus.PENDING)
    )


def _customer(container: Container) -> None:
    with container.engine.begin() as connection:
        connection.execute(
            insert(customers).values(
                customer_id="cus_1",
                name_enc=b"x",
                national_id_enc=b"x",
                phone_enc=b"x",
                national_id_hash="h",
                birth_date=date(1990, 1, 1),
                declared_income_minor=1,
                currency="CNY",
                created_at=AT,
            )
        )


def test_a_decision_and_its_review_round_trip(container: Container) -> None:
    _customer(container)
    stored = a_decision()
    with container.session_factory() as session:
        SqlDecisionRepository(session).add(stored)
        session.commit()

    with container.session_factory() as session:
        repository = SqlDecisionRepository(session)
        assert repository.get("app-1") == stored
        assert repository.pending_reviews(10) == [stored]
        resolved = stored.resolve(
            decision=Outcome.APPROVED,
            limit=Money.yuan("30000.00"),
            note="ok",
            reviewer="op",
            at=AT,
            credit_line_id="cl_1",
        )
        repository.update_review(resolved)
        session.commit()

    with container.session_factory() as session:
        repository = SqlDecisionRepository(session)
        assert repository.get("app-1") == resolved
        assert repository.pending_reviews(10) == []
        assert repository.get("app-2") is None


def test_a_session_that_commits_and_goes_on_writes_in_its_new_transaction(
    container: Container,
) -> None:
    # The repository reuses its transaction's connection; after a commit it must take the
    # next transaction's, so what follows is neither lost nor committed early.
    _customer(container)
    first = a_decision()
    second = replace(first, application_id="app-2")
    third = replace(first, application_id="app-3")
    with container.session_factory() as session:
        repository = SqlDecisionRepository(session)
        repository.add(first)
        session.commit()
        repository.add(second)
        session.commit()
        repository.add(third)
        session.rollback()

    with container.session_factory() as session:
        repository = SqlDecisionRepository(session)
        assert repository.get("app-1") == first
        assert repository.get("app-2") == second
        assert repository.get("app-3") is None
