"""The hot lane (`api.hot`) on a small app of its own: what it serves, what it hands on.

The app behind the lane is replaced by a recorder, so a test sees whether a request was
answered by the lane (the endpoint ran) or handed on (the recorder got it, body and all).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr
from starlette.types import Message, Receive, Scope, Send

from creditline.api.hot import HotLane, hot
from creditline.api.problems import install_problem_handlers
from creditline.shared.errors import FieldIssue, InvalidInputError


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: StrictStr
    count: StrictInt = 1


calls: list[dict[str, Any]] = []


router = APIRouter()


@router.post("/v1/things/{thing_id}/parts", status_code=201)
@hot
async def add_part(thing_id: str, body: Body, request: Request) -> Response:
    calls.append({"thing_id": thing_id, "body": body, "path": request.url.path})
    if body.name == "bad":
        raise InvalidInputError(FieldIssue("name", "not_allowed", "bad is not a name"))
    if body.name == "boom":
        raise RuntimeError("boom")
    return Response(json.dumps({"thing_id": thing_id, "name": body.name}), status_code=201)


@router.post("/v1/other")
async def other(body: Body) -> dict[str, str]:
    return {"other": body.name}


def small_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router)
    return app


class Recorder:
    """The app behind the lane: records what reaches it and answers 299."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.seen.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def post(
    lane: HotLane, path: str, body: bytes, content_type: bytes = b"application/json"
) -> tuple[int, bytes, Scope]:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"t"), (b"content-type", content_type)],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    # Hand the body over in two messages, as a server may.
    messages: list[Message] = [
        {"type": "http.request", "body": body[:3], "more_body": True},
        {"type": "http.request", "body": body[3:], "more_body": False},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(lane(scope, receive, send))
    return int(sent[0]["status"]), b"".join(m.get("body", b"") for m in sent[1:]), scope


@pytest.fixture
def lane() -> tuple[HotLane, Recorder]:
    calls.clear()
    recorder = Recorder()
    app = small_app()
    return HotLane(recorder, routers=[router], handlers=app.exception_handlers), recorder


def test_a_valid_request_is_answered_by_the_endpoint_with_its_path_parameters(
    lane: tuple[HotLane, Recorder],
) -> None:
    hot_lane, recorder = lane

    status, body, scope = post(hot_lane, "/v1/things/t-1/parts", b'{"name": "axle"}')

    assert (status, json.loads(body)) == (201, {"thing_id": "t-1", "name": "axle"})
    assert recorder.seen == []
    assert calls == [{"thing_id": "t-1", "body": Body(name="axle"), "path": "/v1/things/t-1/parts"}]
    assert scope["route"].path == "/v1/things/{thing_id}/parts"  # what metrics label


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"name": ', b"application/json"),  # not JSON
        (b'{"name": 5}', b"application/json"),  # not valid for the model
        (b'{"name": "a", "extra": 1}', b"application/json"),  # a field it forbids
        (b'{"name": "a", "count": "2"}', b"application/json"),  # strict: no coercion
        (b"", b"application/json"),  # no body
        (b'{"name": "a"}', b"text/plain"),  # not declared as JSON
        (b"\xff\xfe", b"application/json"),  # not UTF-8
    ],
)
def test_anything_it_cannot_answer_goes_on_with_its_body(
    lane: tuple[HotLane, Recorder], body: bytes, content_type: bytes
) -> None:
    hot_lane, recorder = lane

    status, _, _ = post(hot_lane, "/v1/things/t-1/parts", body, content_type)

    assert status == 299
    assert recorder.seen == [("/v1/things/t-1/parts", body)]
    assert calls == []


def test_a_charset_parameter_still_means_json(lane: tuple[HotLane, Recorder]) -> None:
    hot_lane, recorder = lane

    status, _, _ = post(
        hot_lane, "/v1/things/t-1/parts", b'{"name": "a"}', b"application/json; charset=utf-8"
    )

    assert status == 201
    assert recorder.seen == []


def test_other_routes_and_methods_go_on(lane: tuple[HotLane, Recorder]) -> None:
    hot_lane, recorder = lane

    assert post(hot_lane, "/v1/other", b'{"name": "a"}')[0] == 299
    assert post(hot_lane, "/v1/things/t-1/parts/more", b'{"name": "a"}')[0] == 299
    assert post(hot_lane, "/v1/things//parts", b'{"name": "a"}')[0] == 299
    assert [path for path, _ in recorder.seen] == [
        "/v1/other",
        "/v1/things/t-1/parts/more",
        "/v1/things//parts",
    ]


def test_an_error_the_app_handles_becomes_its_problem(lane: tuple[HotLane, Recorder]) -> None:
    hot_lane, _ = lane

    status, body, _ = post(hot_lane, "/v1/things/t-1/parts", b'{"name": "bad"}')

    problem = json.loads(body)
    assert status == 422
    assert problem["errors"] == [
        {"field": "name", "code": "not_allowed", "message": "bad is not a name"}
    ]


def test_an_unexpected_error_propagates_to_the_server_error_middleware(
    lane: tuple[HotLane, Recorder],
) -> None:
    hot_lane, _ = lane

    with pytest.raises(RuntimeError, match="boom"):
        post(hot_lane, "/v1/things/t-1/parts", b'{"name": "boom"}')


def test_only_an_async_endpoint_can_be_marked() -> None:
    def plain(body: Body, request: Request) -> Response:
        return Response()

    with pytest.raises(TypeError, match="async"):
        hot(plain)  # type: ignore[type-var]  # what the check at run time is for


def test_an_endpoint_with_other_parameters_is_refused_when_the_lane_is_built() -> None:
    odd_router = APIRouter()

    @odd_router.post("/v1/odd")
    @hot
    async def odd(body: Body, request: Request, limit: int = 5) -> Response:
        return Response()

    with pytest.raises(TypeError, match="nothing else"):
        HotLane(Recorder(), routers=[odd_router], handlers={})
