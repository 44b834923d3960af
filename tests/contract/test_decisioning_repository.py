"""Decisions read back exactly as stored, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from creditline.bootstrap import Container
from creditline.decisioning.adapters.lending_bridge import credit_summary
from creditline.decisioning.adapters.sql import SqlApplicantReader, SqlDecisionRepository
from creditline.decisioning.domain.application import (
    ApplicantFacts,
    DecisionDraft,
    FeatureSnapshot,
    ScoreResult,
)
from creditline.decisioning.domain.decision import Decision, Review, ReviewStatus
from creditline.decisioning.domain.pipeline import Outcome, RuleHit, RuleOutcome
from creditline.decisioning.domain.reasons import model_reason, reason
from creditline.lending.adapters.tables import credit_lines
from creditline.privacy.adapters.sql import consents, customers
from creditline.shared.money import Money
from creditline.storage.direct import DirectStatement
from creditline.storage.tables import business_date, idempotency_keys

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


def _consent(container: Container, consent_id: str, purpose: str, withdrawn: bool) -> None:
    with container.engine.begin() as connection:
        connection.execute(
            insert(consents).values(
                consent_id=consent_id,
                customer_id="cus_1",
                purpose=purpose,
                notice_version="n1",
                granted_at=AT,
                withdrawn_at=AT if withdrawn else None,
                end_reason="withdrawn" if withdrawn else None,
            )
        )


def _line(container: Container, line_id: str, limit_minor: int, status: str) -> None:
    with container.engine.begin() as connection:
        connection.execute(
            insert(credit_lines).values(
                line_id=line_id,
                customer_id="cus_1",
                currency="CNY",
                limit_minor=limit_minor,
                outstanding_minor=0,
                holds_minor=0,
                daily_rate="0.0003",
                status=status,
                status_reason="opened",
                open_draws=0,
                opened_on=date(2026, 1, 1),
                created_at=AT,
            )
        )


def _facts_both_ways(container: Container) -> tuple[ApplicantFacts | None, ApplicantFacts | None]:
    """The applicant's facts read with the one combined statement and with the two
    separate ones (consents, then lending's credit summary)."""

    def no_features(customer_id: str, on: date) -> FeatureSnapshot:
        return FeatureSnapshot({}, 0, 0.0, 0, False)

    read = []
    for credit in (None, credit_summary):
        with container.session_factory() as session:
            reader = SqlApplicantReader(
                session, None if credit is None else credit(session), no_features
            )
            read.append(reader.facts("cus_1", date(2026, 1, 15)))
    return read[0], read[1]


def test_consents_and_credit_read_in_one_statement_equal_the_separate_reads(
    container: Container,
) -> None:
    _customer(container)
    combined, separate = _facts_both_ways(container)
    assert combined is not None
    assert combined == separate
    assert combined.consents == frozenset()
    assert (combined.has_open_line, combined.other_limits) == (False, Money.yuan("0"))

    _consent(container, "con_1", "credit_assessment", withdrawn=False)
    _consent(container, "con_2", "credit_bureau_query", withdrawn=True)
    _consent(container, "con_3", "marketing", withdrawn=False)
    _line(container, "cl_1", 3_000_000, "active")
    _line(container, "cl_2", 1_000_000, "frozen")
    _line(container, "cl_3", 9_000_000, "closed")
    combined, separate = _facts_both_ways(container)
    assert combined is not None
    assert combined == separate
    assert combined.consents == {"credit_assessment", "marketing"}
    # ¥30,000 + ¥10,000 of lines not closed; no loans, so nothing past due.
    assert combined.has_open_line
    assert combined.other_limits == Money.yuan("40000.00")
    assert combined.max_days_past_due == 0


def test_the_lock_reads_the_business_date_in_the_same_statement(container: Container) -> None:
    _customer(container)
    container.business_dates.advance_to(date(2026, 3, 2))
    stored = a_decision()
    with container.session_factory() as session:
        SqlDecisionRepository(session).add(stored)
        session.commit()
    with container.decisioning().uow() as uow:
        uow.lock_customer("cus_1", "app-unknown")
        assert uow.business_date() == date(2026, 3, 2)
        assert uow.decisions.get("app-unknown") is None
    # The stored decision, read beside the lock, equals the one the repository reads alone.
    with container.decisioning().uow() as uow:
        uow.lock_customer("cus_1", "app-1")
        assert uow.decisions.get("app-1") == stored
        assert uow.business_date() == date(2026, 3, 2)


def test_a_new_database_starts_its_business_date_inside_the_transaction(
    container: Container,
) -> None:
    with container.engine.begin() as connection:
        connection.execute(delete(business_date))
    started = container.settings.initial_business_date
    assert started is not None
    with container.decisioning().uow() as uow:
        # No such customer: the lock reads no row, so the date is read (here: started) on
        # the transaction's own connection; on SQLite a second one would wait for its lock.
        uow.lock_customer("cus_absent", "app-1")
        assert uow.business_date() == started
        uow.commit()
    assert container.business_date() == started


class _KeyClaim:
    """A request record claimed as a statement (a `StatementClaim`): the key's rows come
    back to `claimed`, which stops (raises) when the key was taken."""

    def __init__(self, container: Container, key: str) -> None:
        self.store = container.idempotency
        self.key = key
        self.seen: list[list[dict[str, Any]]] = []

    def claim(self) -> None:  # pragma: no cover - the adapter sends the statement instead
        raise AssertionError("a StatementClaim is sent with the lock, not claimed alone")

    def claim_statement(self, dialect: str) -> tuple[DirectStatement, dict[str, Any]]:
        return self.store.claim_statement(dialect, self.key, "f" * 64, "POST", "/x", AT)

    def claimed(self, rows: list[dict[str, Any]]) -> None:
        self.seen.append(rows)
        if not rows:
            raise _TakenKeyError(self.key)

    def complete(self, result: Decision) -> None:  # pragma: no cover - not reached here
        raise AssertionError("not completed in this test")


class _TakenKeyError(Exception):
    pass


def test_a_statement_claim_goes_first_with_the_lock_and_a_taken_key_stops_before_the_read(
    container: Container,
) -> None:
    _customer(container)
    today = container.business_date()
    first = _KeyClaim(container, "key-1")
    with container.decisioning().uow() as uow:
        uow.lock_customer("cus_1", "app-1", first)
        # Claimed (the insert returned the key), and the lock's rows were used.
        assert first.seen == [[{"key": "key-1"}]]
        assert uow.business_date() == today
        uow.commit()

    again = _KeyClaim(container, "key-1")
    with pytest.raises(_TakenKeyError), container.decisioning().uow() as uow:
        uow.lock_customer("cus_1", "app-2", again)
    # The taken key's claim came back empty; nothing of that transaction was kept.
    assert again.seen == [[]]
    with container.engine.connect() as connection:
        keys = connection.execute(select(idempotency_keys.c.key)).scalars().all()
    assert keys == ["key-1"]
