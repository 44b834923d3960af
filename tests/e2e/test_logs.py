"""Logs are JSON and never carry a resident ID number or phone in the clear."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog
from fastapi.testclient import TestClient

from creditline.api.app import create_app
from creditline.bootstrap import Container
from creditline.observability import configure_logging


@pytest.fixture
def logged_client(make_container: object, sqlite_url: str) -> Iterator[TestClient]:
    configure_logging("INFO", json=True)
    container: Container = make_container(sqlite_url)  # type: ignore[operator]
    yield TestClient(create_app(container))
    structlog.reset_defaults()


def test_request_logs_are_json_with_request_ids_and_no_raw_ids(
    logged_client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    logged_client.post(
        "/v1/customers",
        json={
            "name": "张三",
            "national_id": "11010519491231002X",
            "phone": "13812345678",
            "declared_annual_income": "1.00",
        },
    )
    structlog.get_logger("test").info("echo", body="id 11010519491231002X tel 13812345678")

    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    text = json.dumps(lines, ensure_ascii=False)
    assert any(line.get("request_id") for line in lines)
    assert "11010519491231002X" not in text
    assert "13812345678" not in text
    assert "110105********002X" in text
