"""Worker processes for `creditline serve --workers N`, each listening on its own socket.

Why: uvicorn's own workers share one listening socket, and the first worker to wake
accepts every connection then pending. Clients that keep their connections open (a
lender's gateway, a load balancer's pool, the benchmarks' 50 clients) connect together,
so one worker ends up with most of them: 50 connections opened at once landed 5/45 on
three workers (docs/benchmarks.md, seventh round). That worker then serves most of the
traffic near its own saturation while the others idle, and the tail grows with it.

Rule: on Linux (3.9 and later), every worker binds a socket of its own to the same
address with `SO_REUSEPORT`, and the kernel spreads new connections over the sockets by
a hash of their addresses, so each worker gets its share whatever the timing (other
systems accept the option without balancing, so they keep uvicorn's way). Elsewhere, or
with one worker, uvicorn serves as before. The supervisor here keeps what uvicorn's
gives: SIGINT/SIGTERM stop the workers and wait for them to finish their requests; a
worker that dies is replaced, except one that could not start (the app cannot be built,
the port is taken: uvicorn's exit code 3 for a startup failure), which stops the whole
server with exit code 1, since a replacement would fail the same way (so do more than
five workers in a row that exit before they start). A worker's socket listens only once
its app has started, so no connection is hashed to a worker that is still starting.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from uvicorn import config as uvicorn_config

STARTED = "started"
FAILED = "failed"
STARTUP_FAILURE = uvicorn_config.STARTUP_FAILURE  # a worker's exit code: do not replace it
EARLY_EXITS = 5  # workers in a row that may exit before they start (killed, crashed)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def reuse_port_supported() -> bool:
    """Whether this system spreads connections over sockets sharing a port (Linux)."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except OSError:
            return False
    return True


def worker_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with `SO_REUSEPORT`, not yet listening.

    The worker's server listens on it once the app has started, so the kernel hashes no
    connection to a worker still starting (or failing to). Raises OSError when the
    address is taken by a socket without the option (another program) or cannot be
    bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class WorkerConfig:
    """What each worker runs: the app (an import string), where, and uvicorn's options."""

    app: str
    host: str
    port: int
    factory: bool = True
    options: dict[str, Any] = field(default_factory=dict)


def _worker(config: WorkerConfig, report: Connection) -> None:
    """A worker's body: bind its own socket, serve until told to stop."""
    try:
        sock = worker_socket(config.host, config.port)
    except OSError as error:
        report.send((FAILED, f"cannot listen on {config.host}:{config.port}: {error}"))
        raise SystemExit(STARTUP_FAILURE) from error
    server = uvicorn.Server(uvicorn.Config(config.app, factory=config.factory, **config.options))

    def tell_when_started() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            report.send((STARTED, ""))

    threading.Thread(target=tell_when_started, daemon=True).start()
    server.run(sockets=[sock])
    if not server.started and not server.should_exit:  # not stopped by a signal: failed
        raise SystemExit(STARTUP_FAILURE)


@dataclass
class _Worker:
    process: BaseProcess
    report: Connection
    started: bool = False


class Supervisor:
    """Runs `count` workers of `config` and keeps them running until a stop signal."""

    def __init__(self, config: WorkerConfig, count: int, *, echo: Callable[[str], None]) -> None:
        self.config = config
        self.count = count
        self.echo = echo
        self.stopping = threading.Event()
        self.failure: str | None = None
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._early_exits = 0  # workers in a row that exited before they started

    def _start(self) -> _Worker:
        parent_end, child_end = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker, args=(self.config, child_end), name="creditline-worker"
        )
        process.start()
        child_end.close()
        return _Worker(process, parent_end)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (exit code 0) or a worker fails to start (1)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            self._workers = [self._start() for _ in range(self.count)]
            while not self.stopping.wait(0.2):
                self._look_after_workers()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.failure is not None:
            self.echo(f"error: {self.failure}")
            return 1
        return 0

    def _look_after_workers(self) -> None:
        for index, worker in enumerate(self._workers):
            while worker.report.poll():
                try:
                    state, reason = worker.report.recv()
                except EOFError:
                    break
                if state == STARTED:
                    worker.started = True
                    self._early_exits = 0
                else:
                    self.failure = reason
            if self.failure is not None:
                self.stopping.set()
                return
            if worker.process.is_alive():
                continue
            worker.process.join()
            if self.stopping.is_set():  # stopped by the same signal as this server
                return
            if not worker.started:
                self._early_exits += 1
                if worker.process.exitcode == STARTUP_FAILURE or self._early_exits > EARLY_EXITS:
                    self.failure = (
                        f"a worker exited with code {worker.process.exitcode} before it started"
                    )
                    self.stopping.set()
                    return
            self.echo(
                f"worker {worker.process.pid} exited ({worker.process.exitcode}); replacing it"
            )
            worker.report.close()
            self._workers[index] = self._start()

    def _stop_all(self) -> None:
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: uvicorn finishes its requests
        for worker in self._workers:
            worker.process.join(timeout=30)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.report.close()


def serve(
    app: str,
    *,
    host: str,
    port: int,
    workers: int,
    factory: bool = True,
    echo: Callable[[str], None],
    **options: Any,
) -> int:
    """Serve `app` with `workers` processes; returns the exit code.

    On Linux with more than one worker, each worker listens on its own socket (see the
    module docstring); otherwise uvicorn's own server and workers."""
    if workers > 1 and reuse_port_supported():
        config = WorkerConfig(app, host, port, factory, options | {"host": host, "port": port})
        return Supervisor(config, workers, echo=echo).run()
    uvicorn.run(app, factory=factory, host=host, port=port, workers=workers, **options)
    return 0
