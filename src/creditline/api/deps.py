"""FastAPI dependencies: the wired container and what routes take from the request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from creditline.bootstrap import Container


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key (validated by the middleware), if it has one."""
    key: str | None = getattr(request.state, "idempotency_key", None)
    return key


ContainerDep = Annotated[Container, Depends(get_container)]
IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]
