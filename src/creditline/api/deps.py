"""FastAPI dependencies: the wired container and what routes take from the request.

They are `async def` on purpose: they only read attributes, and FastAPI runs a plain
`def` dependency on the thread pool, so each one cost a round trip through it (a thread
wake-up and a GIL hand-over each way) on every request that used it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from creditline.api.idempotent import KeyedRequest
from creditline.bootstrap import Container


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key (validated by the middleware), if it has one."""
    key: str | None = getattr(request.state, "idempotency_key", None)
    return key


async def keyed_request(request: Request) -> KeyedRequest | None:
    """The keyed request whose record the route keeps in its transaction (see
    `api.idempotent`), if the request has a key and the route is one of those."""
    keyed: KeyedRequest | None = getattr(request.state, "idempotency_request", None)
    return keyed


ContainerDep = Annotated[Container, Depends(get_container)]
IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]
KeyedRequestDep = Annotated[KeyedRequest | None, Depends(keyed_request)]
