"""The command line: version, migrations, and `serve` answering /health on its own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from creditline import __version__
from creditline.cli.main import app

runner = CliRunner()


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["version"])

    assert result.exit_code == 0
    assert result.stdout.strip() == __version__


def test_db_upgrade_migrates_the_embedded_default(tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env={"CREDITLINE_DATA_DIR": str(tmp_path)})

    assert result.exit_code == 0, result.output
    assert (tmp_path / "creditline.db").exists()


def test_a_bad_option_exits_with_2() -> None:
    result = runner.invoke(app, ["serve", "--port", "not-a-port"])

    assert result.exit_code == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_serve_answers_health_with_no_other_server(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "CREDITLINE_DATA_DIR": str(tmp_path), "CREDITLINE_PORT": str(port)}
    env.pop("CREDITLINE_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "creditline.cli.main", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = None
        for _ in range(200):
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert body is not None
        assert body["status"] == "ok"
        assert body["database"] == "sqlite"
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert f"http://127.0.0.1:{port}" in output
    server_lines = [line for line in output.splitlines() if line.startswith("{")]
    assert server_lines, output
    assert all(json.loads(line)["level"] for line in server_lines)
