"""RFC 9457 problem details: every error the API returns has the same shape.

`{"type", "title", "status", "detail", "code", "instance", "request_id", "errors": [...]}`
with `Content-Type: application/problem+json`. `code` is stable (clients branch on it);
`errors` names each offending field. One table maps domain errors to status codes, so a
route never picks a status by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from creditline.shared.errors import (
    BusinessRuleError,
    ConflictError,
    CreditlineError,
    FieldIssue,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
)

PROBLEM_JSON = "application/problem+json"

#: The one table from domain errors to HTTP statuses (most specific class first).
STATUS_BY_ERROR: tuple[tuple[type[CreditlineError], int], ...] = (
    (InvalidInputError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (BusinessRuleError, 422),
    (UnavailableError, 503),
    (CreditlineError, 400),
)

log = structlog.get_logger("creditline.api")


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    request: Request | None = None,
    errors: Sequence[FieldIssue] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{code.replace('_', '-')}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request is not None:
        body["instance"] = request.url.path
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    if errors:
        body["errors"] = [
            {"field": issue.field, "code": issue.code, "message": issue.message} for issue in errors
        ]
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_for(error: CreditlineError) -> int:
    for error_class, status in STATUS_BY_ERROR:
        if isinstance(error, error_class):
            return status
    return 400  # pragma: no cover - CreditlineError is the last row


def _field_path(location: Sequence[int | str]) -> str:
    parts = list(location)
    if parts and parts[0] in {"body", "query", "path", "header"}:
        source = parts.pop(0)
        if source == "header" and parts:
            return str(parts[0])
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


_PYDANTIC_CODES = {
    "missing": "required",
    "string_type": "must_be_string",
    "extra_forbidden": "unknown_field",
    "json_invalid": "invalid_json",
    "list_type": "must_be_list",
    "model_attributes_type": "must_be_object",
    "dict_type": "must_be_object",
}


def _validation_issues(error: RequestValidationError) -> list[FieldIssue]:
    issues = []
    for item in error.errors():
        kind = str(item.get("type", "invalid"))
        message = str(item.get("msg", "invalid value"))
        if kind == "string_type":
            message = 'must be a string (amounts are decimal strings such as "1000.00")'
        issues.append(
            FieldIssue(_field_path(item.get("loc", ())), _PYDANTIC_CODES.get(kind, kind), message)
        )
    return issues


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        issues = _validation_issues(error)
        fields = ", ".join(dict.fromkeys(issue.field for issue in issues))
        return problem(
            422,
            "validation_error",
            f"the request is invalid: {fields}",
            request=request,
            errors=issues,
        )

    @app.exception_handler(CreditlineError)
    async def _domain(request: Request, error: CreditlineError) -> JSONResponse:
        issues: list[FieldIssue]
        if isinstance(error, InvalidInputError):
            issues = error.issues
        elif error.field is not None:
            issues = [FieldIssue(error.field, error.code, error.message)]
        else:
            issues = []
        return problem(status_for(error), error.code, error.message, request=request, errors=issues)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        detail = str(error.detail) if error.detail else HTTPStatus(error.status_code).phrase
        return problem(
            error.status_code, code, detail, request=request, headers=dict(error.headers or {})
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return problem(500, "internal_error", "an unexpected error occurred", request=request)
