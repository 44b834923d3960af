"""What decisioning needs from outside: policies, a scorer, and its transaction.

The unit of work spans capabilities on purpose: the applicant's facts are read, the
decision stored and the credit line opened in one transaction, so two applications of the
same customer racing each other cannot both open a line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from creditline.decisioning.domain.application import ApplicantFacts, ScoreResult
from creditline.decisioning.domain.decision import Decision
from creditline.decisioning.domain.policy import PolicyParameters, TableResult
from creditline.shared.money import Money
from creditline.shared.uow import CommittingUnitOfWork, RequestRecord


class PolicyEngine(Protocol):
    @property
    def version(self) -> str:
        """Names the exact policy files a decision was made under."""
        ...

    @property
    def parameters(self) -> PolicyParameters: ...

    def evaluate(self, table: str, context: Mapping[str, Any]) -> TableResult: ...


class AprOf(Protocol):
    def __call__(self, daily_rate: Decimal, /) -> Decimal:
        """The APR (IRR method) of a representative draw at `daily_rate` on product terms."""
        ...


class Scorer(Protocol):
    def score(self, features: Mapping[str, float | None]) -> ScoreResult: ...


class DecisionRepository(Protocol):
    def add(self, decision: Decision) -> None: ...

    def update_review(self, decision: Decision) -> None: ...

    def get(self, application_id: str) -> Decision | None: ...

    def pending_reviews(self, limit: int) -> list[Decision]: ...


class ApplicantReader(Protocol):
    def facts(self, customer_id: str, on: date) -> ApplicantFacts | None:
        """Everything the rules read about the customer, as of the business date, read in
        the application's transaction (None: no such customer)."""
        ...


class LineOpener(Protocol):
    def open_line(
        self,
        *,
        line_id: str,
        customer_id: str,
        limit: Money,
        daily_rate: Decimal,
        on: date,
        new: bool = False,
    ) -> str:
        """Open a credit line in the application's transaction; returns its id.

        `new`: the caller knows no line can hold `line_id` yet (its application has no
        stored decision, in this transaction), so the opener need not look for one."""
        ...


class DecisioningUnitOfWork(CommittingUnitOfWork, Protocol):
    @property
    def decisions(self) -> DecisionRepository: ...

    @property
    def applicants(self) -> ApplicantReader: ...

    @property
    def lines(self) -> LineOpener: ...

    def lock_customer(
        self,
        customer_id: str,
        application_id: str | None = None,
        record: RequestRecord[Decision] | None = None,
    ) -> None:
        """Serialise applications of one customer (row lock on PostgreSQL).

        With `application_id`, the decision stored under it (if any) may be read in the
        same statement, for the `decisions.get` that follows. `record`, if given, is
        claimed first (before the lock, in this transaction; where storage can, in the
        same round trip), and its claim may raise to stop, as `RequestRecord.claim` does."""
        ...

    def business_date(self) -> date:
        """The business date, read in this transaction (with the lock, where it can)."""
        ...
