"""SQL storage of decisions, and the unit of work that spans the application transaction.

A decision row keeps the automated draft (outcome, limit, price, score, every reason with
its texts, the rule trace, the fired rows, the policy and model versions, the inputs'
fingerprint) and, beside it, the review. Reasons and traces are JSON: they are read back
whole, never queried by part.

The decision path runs a fixed handful of statements per application (lock and read the
customer with the decision stored under the application id and the business date, read
the active consents and the credit summary in one statement, open the line, store the
decision, one commit). They are Core statements built once at import with bind
parameters, and run directly on the driver (`storage.direct`): SQLAlchemy's execution
layer cost more CPU than the database spent on them. The customer is read with its
lock, and only the columns a decision uses (birth date, declared income): no encrypted
field is opened to decide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from creditline.decisioning.domain.application import (
    ApplicantFacts,
    CreditSummary,
    DecisionDraft,
    FeatureSnapshot,
    ScoreResult,
)
from creditline.decisioning.domain.decision import Decision, Review, ReviewStatus
from creditline.decisioning.domain.pipeline import Outcome, RuleHit, RuleOutcome
from creditline.decisioning.domain.reasons import Reason, ReasonSource
from creditline.decisioning.ports import LineOpener
from creditline.lending.adapters.tables import credit_lines, loans
from creditline.lending.domain.credit_line import LineStatus
from creditline.lending.domain.terms import LoanStatus
from creditline.privacy.adapters.sql import consents, customers
from creditline.privacy.ports import FieldCipher
from creditline.shared.clock import age_on
from creditline.shared.money import Currency, Money
from creditline.shared.uow import RequestRecord
from creditline.storage.business_date import SqlBusinessDateStore
from creditline.storage.direct import DirectStatement, execute_together
from creditline.storage.idempotency import StatementClaim
from creditline.storage.metadata import metadata
from creditline.storage.tables import business_date
from creditline.storage.types import UtcDateTime
from creditline.storage.uow import SqlAlchemyUnitOfWork, transaction_connection

decisions = Table(
    "decisions",
    metadata,
    Column("application_id", String(255), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.customer_id"), nullable=False),
    Column("requested_limit_minor", BigInteger),
    Column("outcome", String(16), nullable=False),
    Column("limit_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("daily_rate", String(24)),
    Column("apr", String(24)),
    Column("apr_simple", String(24)),
    Column("score", Integer),
    Column("pd", Float),
    Column("tier", String(24)),
    Column("model_version", String(128)),
    Column("model_reasons", JSON, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("trace", JSON, nullable=False),
    Column("fired_rows", JSON, nullable=False),
    Column("notes", JSON, nullable=False),
    Column("policy_version", String(64), nullable=False),
    Column("inputs_fingerprint", String(64), nullable=False),
    Column("decided_at", UtcDateTime(), nullable=False),
    Column("credit_line_id", String(64)),
    Column("review_status", String(16)),
    Column("review_decision", String(16)),
    Column("review_limit_minor", BigInteger),
    Column("review_note", Text),
    Column("reviewer", String(128)),
    Column("reviewed_at", UtcDateTime()),
    Index("ix_decisions_customer_id", "customer_id"),
    Index("ix_decisions_review_status", "review_status", "decided_at"),
)


def _reason_json(reason: Reason) -> dict[str, str]:
    return {
        "code": reason.code,
        "text_en": reason.text_en,
        "text_zh": reason.text_zh,
        "source": reason.source.value,
    }


def _reason_of(raw: Mapping[str, str]) -> Reason:
    return Reason(raw["code"], raw["text_en"], raw["text_zh"], ReasonSource(raw["source"]))


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


_INSERT_DECISION = DirectStatement(insert(decisions))
_GET_DECISION = select(decisions).where(decisions.c.application_id == bindparam("application_id"))


class SqlDecisionRepository:
    """Decisions on the session. `known` holds decisions already read in this transaction
    (by the unit of work's lock statement): `get` answers those without a query, once."""

    def __init__(self, session: Session, known: dict[str, Decision | None] | None = None) -> None:
        self._session = session
        self._known = known if known is not None else {}

    def add(self, decision: Decision) -> None:
        draft = decision.draft
        score = draft.score
        _INSERT_DECISION.execute(
            transaction_connection(self._session),
            {
                "application_id": decision.application_id,
                "customer_id": decision.customer_id,
                "requested_limit_minor": (
                    decision.requested_limit.minor_units if decision.requested_limit else None
                ),
                "outcome": draft.outcome.value,
                "limit_minor": draft.limit.minor_units,
                "currency": draft.limit.currency.value,
                "daily_rate": _str(draft.daily_rate),
                "apr": _str(draft.apr),
                "apr_simple": _str(draft.apr_simple),
                "score": score.score if score else None,
                "pd": score.pd if score else None,
                "tier": score.tier if score else None,
                "model_version": score.model_version if score else None,
                "model_reasons": [_reason_json(r) for r in score.reasons] if score else [],
                "reasons": [_reason_json(r) for r in draft.reasons],
                "trace": [
                    {"table": h.table, "rule_id": h.rule_id, "code": h.code, "outcome": h.outcome}
                    for h in draft.trace
                ],
                "fired_rows": [list(row) for row in draft.fired_rows],
                "notes": list(draft.notes),
                "policy_version": draft.policy_version,
                "inputs_fingerprint": draft.inputs_fingerprint,
                "decided_at": decision.decided_at,
                "credit_line_id": decision.credit_line_id,
                **self._review_values(decision.review),
            },
        )

    def update_review(self, decision: Decision) -> None:
        self._session.execute(
            update(decisions)
            .where(decisions.c.application_id == decision.application_id)
            .values(credit_line_id=decision.credit_line_id, **self._review_values(decision.review))
        )

    @staticmethod
    def _review_values(review: Review | None) -> dict[str, Any]:
        if review is None:
            # Every column named, so the insert has one shape (and one compiled form).
            return dict.fromkeys(
                (
                    "review_status",
                    "review_decision",
                    "review_limit_minor",
                    "review_note",
                    "reviewer",
                    "reviewed_at",
                )
            )
        return {
            "review_status": review.status.value,
            "review_decision": review.decision.value if review.decision else None,
            "review_limit_minor": review.limit.minor_units if review.limit else None,
            "review_note": review.note,
            "reviewer": review.reviewer,
            "reviewed_at": review.reviewed_at,
        }

    def get(self, application_id: str) -> Decision | None:
        if application_id in self._known:
            return self._known.pop(application_id)
        row = (
            transaction_connection(self._session)
            .execute(_GET_DECISION, {"application_id": application_id})
            .one_or_none()
        )
        return None if row is None else _decision_of(row._mapping)

    def pending_reviews(self, limit: int) -> list[Decision]:
        rows = self._session.execute(
            select(decisions)
            .where(decisions.c.review_status == ReviewStatus.PENDING.value)
            .order_by(decisions.c.decided_at, decisions.c.application_id)
            .limit(limit)
        ).all()
        return [_decision_of(row._mapping) for row in rows]


def _decision_of(m: Mapping[Any, Any]) -> Decision:
    currency = Currency(m["currency"])
    score = None
    if m["score"] is not None:
        score = ScoreResult(
            int(m["score"]),
            float(m["pd"]),
            str(m["tier"]),
            tuple(_reason_of(r) for r in m["model_reasons"]),
            str(m["model_version"]),
        )
    draft = DecisionDraft(
        outcome=Outcome(m["outcome"]),
        limit=Money(int(m["limit_minor"]), currency),
        daily_rate=_dec(m["daily_rate"]),
        apr=_dec(m["apr"]),
        apr_simple=_dec(m["apr_simple"]),
        score=score,
        reasons=tuple(_reason_of(r) for r in m["reasons"]),
        policy_version=m["policy_version"],
        trace=tuple(
            RuleHit(h["table"], h["rule_id"], h["code"], RuleOutcome(h["outcome"]))
            for h in m["trace"]
        ),
        inputs_fingerprint=m["inputs_fingerprint"],
        fired_rows=tuple((str(a), str(b)) for a, b in m["fired_rows"]),
        notes=tuple(m["notes"]),
    )
    review = None
    if m["review_status"] is not None:
        review = Review(
            ReviewStatus(m["review_status"]),
            Outcome(m["review_decision"]) if m["review_decision"] else None,
            Money(int(m["review_limit_minor"]), currency)
            if m["review_limit_minor"] is not None
            else None,
            m["review_note"],
            m["reviewer"],
            m["reviewed_at"],
        )
    requested = m["requested_limit_minor"]
    return Decision(
        application_id=m["application_id"],
        customer_id=m["customer_id"],
        requested_limit=Money(int(requested), currency) if requested is not None else None,
        draft=draft,
        decided_at=m["decided_at"],
        credit_line_id=m["credit_line_id"],
        review=review,
    )


CreditReaderFactory = Callable[[Session], Callable[[str, date], CreditSummary]]
FeatureSource = Callable[[str, date], FeatureSnapshot]
LineOpenerFactory = Callable[[Session], LineOpener]


# The customer's row, locked for the application (FOR UPDATE is a row lock on PostgreSQL;
# SQLite already holds the write lock, BEGIN IMMEDIATE, and SQLAlchemy leaves it out there).
_LOCK_CUSTOMER = (
    select(customers.c.birth_date, customers.c.declared_income_minor, customers.c.currency)
    .where(customers.c.customer_id == bindparam("customer_id"))
    .with_for_update()
)
_ACTIVE_CONSENTS = (
    select(consents.c.purpose)
    .where(consents.c.customer_id == bindparam("customer_id"))
    .where(consents.c.withdrawn_at.is_(None))
)
# The customer's credit summary from lending's tables (lines not closed: how many, their
# limits; the worst days past due of the loans not closed), as one row of scalar subqueries.
CREDIT_SUMMARY = select(
    select(func.count())
    .where(credit_lines.c.customer_id == bindparam("customer_id"))
    .where(credit_lines.c.status != LineStatus.CLOSED.value)
    .scalar_subquery()
    .label("open_lines"),
    select(func.coalesce(func.sum(credit_lines.c.limit_minor), 0))
    .where(credit_lines.c.customer_id == bindparam("customer_id"))
    .where(credit_lines.c.status != LineStatus.CLOSED.value)
    .scalar_subquery()
    .label("limits_minor"),
    select(func.coalesce(func.max(loans.c.days_past_due), 0))
    .where(loans.c.customer_id == bindparam("customer_id"))
    .where(loans.c.status != LoanStatus.CLOSED.value)
    .scalar_subquery()
    .label("worst_dpd"),
)
_SUMMARY_ROW = CREDIT_SUMMARY.subquery("summary")
# The summary and the active consents in one round trip: the summary's one row, joined to
# each active consent (one row with no purpose when there is none). Read after the
# customer's row is locked, as the two statements it replaces were.
_CONSENTS_AND_CREDIT = DirectStatement(
    select(
        _SUMMARY_ROW.c.open_lines,
        _SUMMARY_ROW.c.limits_minor,
        _SUMMARY_ROW.c.worst_dpd,
        consents.c.purpose,
    ).select_from(
        _SUMMARY_ROW.outerjoin(
            consents,
            and_(
                consents.c.customer_id == bindparam("customer_id"),
                consents.c.withdrawn_at.is_(None),
            ),
        )
    )
)


def credit_summary_of(row: Mapping[Any, Any]) -> CreditSummary:
    return CreditSummary(
        has_open_line=int(row["open_lines"] or 0) > 0,
        max_days_past_due=int(row["worst_dpd"] or 0),
        other_limits=Money(int(row["limits_minor"] or 0), Currency.CNY),
    )


# The same lock, and beside it the decision stored under an application id (if any): the
# look-up of an application's id and the customer's lock in one round trip.
# The business date rides along (a scalar subquery): read in the decision's transaction,
# after the lock, it costs no statement of its own.
_LOCK_CUSTOMER_AND_DECISION = DirectStatement(
    select(
        customers.c.birth_date.label("c_birth_date"),
        customers.c.declared_income_minor.label("c_income_minor"),
        customers.c.currency.label("c_currency"),
        select(business_date.c.business_date)
        .where(business_date.c.id == 1)
        .scalar_subquery()
        .label("c_business_date"),
        *decisions.c,
    )
    .select_from(
        customers.outerjoin(decisions, decisions.c.application_id == bindparam("application_id"))
    )
    .where(customers.c.customer_id == bindparam("customer_id"))
    .with_for_update(of=customers)
)


@dataclass(frozen=True, slots=True)
class _CustomerRow:
    birth_date: date
    declared_income: Money


class SqlApplicantReader:
    """Facts from privacy (age, income, consents), lending (lines) and features.

    `locked` holds the customers this transaction has already locked and read (see
    `SqlDecisioningUnitOfWork.lock_customer`); any other customer is read here. `read_ahead`
    holds the consents-and-credit rows the lock's round trip brought along; they are used
    once.
    """

    def __init__(
        self,
        session: Session,
        credit: Callable[[str, date], CreditSummary] | None,
        features: FeatureSource,
        locked: Mapping[str, _CustomerRow | None] | None = None,
        read_ahead: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self._session = session
        self._credit = credit
        self._features = features
        self._locked = locked if locked is not None else {}
        self._read_ahead = read_ahead if read_ahead is not None else {}

    def facts(self, customer_id: str, on: date) -> ApplicantFacts | None:
        if customer_id in self._locked:
            customer = self._locked[customer_id]
        else:
            customer = _read_customer(self._session, customer_id)
        if customer is None:
            return None
        connection = transaction_connection(self._session)
        purposes: list[str]
        if self._credit is None:  # both in one statement
            rows = self._read_ahead.pop(customer_id, None)
            if rows is None:
                rows = _CONSENTS_AND_CREDIT.execute(connection, {"customer_id": customer_id})
            credit = credit_summary_of(rows[0])
            purposes = [row["purpose"] for row in rows if row["purpose"] is not None]
        else:
            found = connection.execute(_ACTIVE_CONSENTS, {"customer_id": customer_id}).scalars()
            purposes = list(found)
            credit = self._credit(customer_id, on)
        snapshot = self._features(customer_id, on)
        return ApplicantFacts(
            customer_id=customer_id,
            age=age_on(customer.birth_date, on),
            consents=frozenset(str(p) for p in purposes),
            declared_income=customer.declared_income,
            has_open_line=credit.has_open_line,
            max_days_past_due=credit.max_days_past_due,
            other_limits=credit.other_limits,
            shared_device_customers=snapshot.shared_device_customers,
            neighbour_delinquent_share=snapshot.neighbour_delinquent_share,
            payments_and_orders_365d=snapshot.payments_and_orders_365d,
            has_bill_history=snapshot.has_bill_history,
            features=snapshot.values,
        )


def _read_customer(session: Session, customer_id: str) -> _CustomerRow | None:
    row = (
        transaction_connection(session)
        .execute(_LOCK_CUSTOMER, {"customer_id": customer_id})
        .one_or_none()
    )
    if row is None:
        return None
    income = Money(int(row.declared_income_minor), Currency(row.currency))
    return _CustomerRow(row.birth_date, income)


class SqlDecisioningUnitOfWork(SqlAlchemyUnitOfWork):
    decisions: SqlDecisionRepository
    applicants: SqlApplicantReader
    lines: LineOpener

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        cipher: FieldCipher,
        *,
        credit: CreditReaderFactory | None = None,
        features: FeatureSource,
        lines: LineOpenerFactory,
        business_dates: SqlBusinessDateStore,
    ) -> None:
        super().__init__(session_factory)
        self._business_dates = business_dates
        self._business_date: date | None = None
        # The decision reads no encrypted field; the cipher stays in the signature for the
        # wiring, and for repositories that will need it.
        self._cipher = cipher
        self._credit = credit
        self._features = features
        self._lines = lines
        self._locked: dict[str, _CustomerRow | None] = {}
        self._known: dict[str, Decision | None] = {}
        self._read_ahead: dict[str, list[dict[str, Any]]] = {}

    def _on_enter(self) -> None:
        self._locked = {}
        self._known = {}
        self._read_ahead = {}
        self._business_date = None
        self.decisions = SqlDecisionRepository(self.session, self._known)
        credit = None if self._credit is None else self._credit(self.session)
        self.applicants = SqlApplicantReader(
            self.session, credit, self._features, self._locked, self._read_ahead
        )
        self.lines = self._lines(self.session)

    def lock_customer(
        self,
        customer_id: str,
        application_id: str | None = None,
        record: RequestRecord[Decision] | None = None,
    ) -> None:
        # The lock and the read are one statement; the applicant reader reuses the row.
        if application_id is None:
            if record is not None:
                record.claim()
            self._locked[customer_id] = _read_customer(self.session, customer_id)
            return
        lock = (
            _LOCK_CUSTOMER_AND_DECISION,
            {"customer_id": customer_id, "application_id": application_id},
        )
        connection = transaction_connection(self.session)
        if self._credit is None:
            # The claim of the request's record (first: see `storage.idempotency`), the
            # lock, and the consents and credit summary behind it go in one round trip
            # (with the transaction's BEGIN on PostgreSQL): the server runs them in order,
            # so the read sees the lock held, as if each were sent after the one before.
            # A retried application (its decision found) does not use the read.
            together = [lock, (_CONSENTS_AND_CREDIT, {"customer_id": customer_id})]
            claim = record if isinstance(record, StatementClaim) else None
            if claim is not None:
                together.insert(0, claim.claim_statement(connection.dialect.name))
            elif record is not None:
                record.claim()
            found = execute_together(connection, together)
            if claim is not None:
                claim.claimed(found.pop(0))
            rows, ahead = found
            self._read_ahead[customer_id] = ahead
        else:
            if record is not None:
                record.claim()
            rows = lock[0].execute(connection, lock[1])
        if not rows:  # no such customer: the decision is looked up on its own
            self._locked[customer_id] = None
            return
        m = rows[0]
        income = Money(int(m["c_income_minor"]), Currency(m["c_currency"]))
        self._locked[customer_id] = _CustomerRow(m["c_birth_date"], income)
        self._business_date = m["c_business_date"]
        self._known[application_id] = None if m["application_id"] is None else _decision_of(m)

    def business_date(self) -> date:
        if self._business_date is None:
            self._business_date = self._business_dates.get_in(transaction_connection(self.session))
        return self._business_date
