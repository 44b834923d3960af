"""`creditline serve --workers N`: a listening socket per worker, supervised.

Connections opened together must spread over the workers (uvicorn's shared socket gave
one worker 35 of 50 here); a worker that dies is replaced; a port another program holds
stops the server with exit code 1 and a reason; SIGTERM stops it cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from creditline.cli.workers import reuse_port_supported, worker_socket

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not reuse_port_supported(), reason="needs SO_REUSEPORT"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(tmp_path: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CREDITLINE_DATA_DIR": str(tmp_path), "CREDITLINE_PORT": str(port)}
    env.pop("CREDITLINE_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "creditline.cli.main", "serve", "--workers", str(workers)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert process.poll() is None, process.communicate()[0].decode()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("the server did not answer /health")


def _workers(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    found = []
    for child in psutil.Process(process.pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _wait_for_workers(process: subprocess.Popen[bytes], count: int, port: int) -> None:
    """Until `count` workers each listen on `port` (a worker listens once it started)."""
    for _ in range(300):
        listening = [
            worker
            for worker in _workers(process)
            if any(
                c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                for c in _connections(worker)
            )
        ]
        if len(listening) == count:
            return
        time.sleep(0.1)
    raise AssertionError(f"expected {count} listening workers")


def _connections(worker: psutil.Process) -> list[psutil._common.pconn]:
    try:
        return list(worker.net_connections(kind="tcp"))
    except psutil.NoSuchProcess:
        return []


@contextmanager
def _serving(tmp_path: Path, workers: int) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = _free_port()
    process = _start(tmp_path, port, workers)
    try:
        _wait_healthy(port, process)
        _wait_for_workers(process, workers, port)
        yield port, process
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=30)


def _accepted_per_worker(process: subprocess.Popen[bytes], port: int) -> list[int]:
    return [
        sum(
            1
            for c in _connections(worker)
            if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        )
        for worker in _workers(process)
    ]


def test_connections_opened_together_spread_over_the_workers(tmp_path: Path) -> None:
    with _serving(tmp_path, workers=2) as (port, process), ExitStack() as stack:
        clients = [
            stack.enter_context(socket.create_connection(("127.0.0.1", port))) for _ in range(40)
        ]
        counts: list[int] = []
        for _ in range(100):
            counts = _accepted_per_worker(process, port)
            if sum(counts) == len(clients):
                break
            time.sleep(0.05)

        assert sum(counts) == 40
        # A hash over 40 connections: fewer than 8 on either of two workers has a
        # probability of about 1e-5; one shared socket's first waker takes most of them.
        assert min(counts) >= 8, counts
        for client in clients:
            client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert all(client.recv(64).startswith(b"HTTP/1.1 200") for client in clients)


def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    with _serving(tmp_path, workers=2) as (port, process):
        victim = _workers(process)[0]
        victim.kill()
        victim.wait(timeout=10)

        _wait_for_workers(process, 2, port)
        assert victim.pid not in {worker.pid for worker in _workers(process)}
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200


def test_sigterm_stops_every_worker_with_exit_code_0(tmp_path: Path) -> None:
    with _serving(tmp_path, workers=2) as (_port, process):
        workers = _workers(process)
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()

        assert process.returncode == 0, output
        assert not any(worker.is_running() and worker.status() != "zombie" for worker in workers)


def test_a_port_held_by_another_program_stops_the_server_with_a_reason(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        process = _start(tmp_path, port, workers=2)
        output = process.communicate(timeout=60)[0].decode()

    assert process.returncode == 1, output
    assert f"cannot listen on 127.0.0.1:{port}" in output


def test_worker_sockets_share_a_port() -> None:
    first = worker_socket("127.0.0.1", 0)
    try:
        first.listen()
        port = first.getsockname()[1]
        second = worker_socket("127.0.0.1", port)
        second.listen()
        second.close()
    finally:
        first.close()
