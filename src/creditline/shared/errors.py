"""Domain errors: what went wrong, in words a caller can act on.

Each error has a stable `code` (part of the API contract) and, where one input is at fault,
the `field` that caused it. The HTTP layer maps the error classes to status codes in one
table (`creditline.api.problems`); the CLI maps them to exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One reason one input field was refused."""

    field: str
    code: str
    message: str


class CreditlineError(Exception):
    """Base of every error that creditline raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field


class InvalidInputError(CreditlineError):
    """Input broke a rule; `issues` says which fields and why."""

    code = "invalid_input"

    def __init__(self, issues: list[FieldIssue] | FieldIssue, message: str | None = None):
        self.issues = [issues] if isinstance(issues, FieldIssue) else list(issues)
        if not self.issues:
            raise ValueError("InvalidInputError needs at least one issue")
        first = self.issues[0]
        super().__init__(message or first.message, field=first.field)


class NotFoundError(CreditlineError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    code = "not_found"


class ConflictError(CreditlineError):
    """The request contradicts the current state: a duplicate, or a state that forbids it."""

    code = "conflict"


class BusinessRuleError(CreditlineError):
    """A well-formed request that a business rule refuses (limit exceeded, line frozen)."""

    code = "business_rule_violated"


class UnavailableError(CreditlineError):
    """Something the request needs is not ready (no champion model yet, a store down)."""

    code = "unavailable"
