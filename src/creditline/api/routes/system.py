"""Operational endpoints: `/health` and Prometheus `/metrics`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from creditline import __version__
from creditline.api.deps import ContainerDep

router = APIRouter(tags=["system"])


@router.get("/health")
def health(container: ContainerDep) -> JSONResponse:
    """Liveness and readiness: the database answers and the business date is readable."""
    body: dict[str, Any] = {"status": "ok", "version": __version__}
    try:
        with container.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        body["database"] = container.engine.dialect.name
        body["business_date"] = container.business_date().isoformat()
    except Exception as error:  # a health check reports, it does not raise
        body.update(status="unavailable", error=type(error).__name__)
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
