"""A stored decision: the automated part, the line it opened, and any human review.

The automated draft is never changed after it is stored. A review (PIPL Art. 24's human
path; Interim Measures Art. 22) adds the reviewer's decision beside it, so the final
outcome is the reviewer's when there is one, and both parts stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from creditline.decisioning.domain.application import DecisionDraft
from creditline.decisioning.domain.pipeline import Outcome
from creditline.shared.errors import ConflictError
from creditline.shared.money import Money


class ReviewStatus(StrEnum):
    PENDING = "pending"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Review:
    status: ReviewStatus
    decision: Outcome | None = None
    limit: Money | None = None
    note: str | None = None
    reviewer: str | None = None
    reviewed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    application_id: str
    customer_id: str
    requested_limit: Money | None
    draft: DecisionDraft
    decided_at: datetime
    credit_line_id: str | None = None
    review: Review | None = None

    @property
    def outcome(self) -> Outcome:
        if self.review is not None and self.review.decision is not None:
            return self.review.decision
        return self.draft.outcome

    @property
    def limit(self) -> Money:
        if self.review is not None and self.review.limit is not None:
            return self.review.limit
        return self.draft.limit

    def resolve(
        self,
        *,
        decision: Outcome,
        limit: Money | None,
        note: str,
        reviewer: str,
        at: datetime,
        credit_line_id: str | None,
    ) -> Decision:
        if self.review is None or self.review.status is not ReviewStatus.PENDING:
            raise ConflictError(
                f"application {self.application_id} is not waiting for review",
                code="review_not_pending",
            )
        if decision is Outcome.REVIEW:
            raise ConflictError("a review ends in approved or declined", code="invalid_review")
        resolved = Review(ReviewStatus.RESOLVED, decision, limit, note, reviewer, at)
        return replace(self, review=resolved, credit_line_id=credit_line_id)
