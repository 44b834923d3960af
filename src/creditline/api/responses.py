"""JSON responses written straight from a response model, in one step.

A route that returns a Pydantic model makes FastAPI validate that model again and, for a
plain (`def`) route, do so on another trip through the thread pool before it serialises
it. The models here are built by our own code from domain objects, so the routes on the
hot path (draws, repayments, decisions, their reads) serialise them themselves with
Pydantic's JSON encoder: the same bytes, without the second validation or thread hop. The
route still declares `response_model`, so the OpenAPI document is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel, TypeAdapter
from starlette.responses import Response

JSON = "application/json"
M = TypeVar("M", bound=BaseModel)


def json_model(
    model: BaseModel, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """`model` as a JSON response (by alias, as FastAPI would write it)."""
    return Response(
        model.model_dump_json(by_alias=True),
        status_code=status_code,
        media_type=JSON,
        headers=headers,
    )


def json_models(
    adapter: TypeAdapter[list[M]], models: Sequence[M], *, status_code: int = 200
) -> Response:
    """A list of models as a JSON array, through a `TypeAdapter` built once per route."""
    return Response(
        adapter.dump_json(list(models), by_alias=True), status_code=status_code, media_type=JSON
    )
