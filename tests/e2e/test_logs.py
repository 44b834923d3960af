"""Logs are JSON and never carry a resident ID number or phone in the clear."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from fastapi.testclient import TestClient

from creditline.api.app import create_app
from creditline.bootstrap import Container
from creditline.observability import configure_logging
from tests.conftest import TEST_KEY


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


@pytest.fixture
def app_from_environment(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """`create_app()` as `uvicorn --factory` calls it: settings only from the environment."""
    monkeypatch.setenv("CREDITLINE_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CREDITLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CREDITLINE_ENCRYPTION_KEY", TEST_KEY)
    monkeypatch.setenv("CREDITLINE_LOG_JSON", "true")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def _access_lines(err: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "request"]


@pytest.mark.usefixtures("app_from_environment")
def test_an_app_built_from_the_environment_honours_the_log_level(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CREDITLINE_LOG_LEVEL", "WARNING")
    with TestClient(create_app()) as quiet:
        assert quiet.get("/health").status_code == 200
    quiet_output = capsys.readouterr()
    assert "request" not in quiet_output.out + quiet_output.err

    monkeypatch.setenv("CREDITLINE_LOG_LEVEL", "info")  # case does not matter
    with TestClient(create_app()) as chatty:
        assert chatty.get("/health").status_code == 200
    access = _access_lines(capsys.readouterr().err)
    assert [(line["path"], line["status"], line["level"]) for line in access] == [
        ("/health", 200, "info")
    ]
