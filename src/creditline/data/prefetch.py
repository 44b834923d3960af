"""Take the items of an iterator from a child process, so that producing them (reading and
validating a file's batches) runs on the other core while this process stores them.

What it is for: a bulk load's two halves are both Python and both hold the GIL most of the
time: reading and validating a batch, and storing it (SQLite's driver takes the GIL back
for every row, so a writer thread beside the validation waits on the GIL instead of
overlapping it). A forked child owns the first half outright; batches come back pickled
(an Arrow table travels as its buffers), at most `depth` ahead.

The rule it keeps: the items arrive exactly as the iterator yields them, in order, each
once, and an error the iterator raises is raised here at the same point, after the items
before it. The child only reads and validates; it never writes to a database, so every
promise of the storing side (one transaction per batch, each reported once stored) stays
with this process. The child stops with its parent: when the consumer stops early
(`close`, or leaving the `with` block) it is terminated, and when this process dies
(killed mid-load) the child notices within a second and exits.

The cost: the child is a fork, batches are pickled and unpickled, and the pages both
processes share are copied as either writes to them (the objects of the fork are kept
out of the collector's passes while the reader runs, `gc.freeze`, so that a full pass
does not copy the whole heap), so a load takes more CPU in all
(about a fifth for a Parquet file); it pays only where a second core is free, which is why
`creditline events load` uses it only when asked (`--reader-process`).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

#: How often a child blocked on a full queue checks that its parent is still alive.
_PARENT_CHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class _Raised:
    """The iterator raised `error` (sent instead of an item)."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class _Done:
    """The iterator is exhausted."""


class ChildProcessReader(Iterator[T]):
    """The items of `items`, produced in a forked child process, at most `depth` ahead.

    `items` must be made before (its set-up, such as opening a file and checking its
    header, runs in this process and raises here); the child inherits it by fork and
    advances only its own copy. Items and errors must pickle. `close` (or leaving a
    `with` block) stops the child if it is still producing."""

    def __init__(self, items: Iterator[T], depth: int = 2) -> None:
        context = multiprocessing.get_context("fork")
        self._channel: Any = context.Queue(maxsize=depth)
        self._child: Any = context.Process(
            target=_produce,
            args=(items, self._channel, os.getpid()),
            name="batch-reader",
            daemon=True,
        )
        # The objects that exist now are left out of the collector's passes (in both
        # processes, until `close`): a pass writes to every object it visits, so after the
        # fork each page it visits would be copied, the whole heap in a full pass.
        self._froze = gc.get_freeze_count() == 0
        if self._froze:
            gc.freeze()
        self._child.start()
        self._closed = False

    @property
    def pid(self) -> int:
        """The child's process id."""
        pid: int = self._child.pid
        return pid

    def __iter__(self) -> ChildProcessReader[T]:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        message = _get(self._channel, self._child)
        if isinstance(message, _Done):
            self.close()
            raise StopIteration
        if isinstance(message, _Raised):
            self.close()
            raise message.error
        item: T = message
        return item

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._child.is_alive():
            self._child.terminate()  # the consumer stopped early, or the child is done
        self._child.join()
        self._channel.close()
        if self._froze:
            gc.unfreeze()

    def __enter__(self) -> ChildProcessReader[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _get(channel: Any, child: Any) -> Any:
    """The next message; an error if the child died without saying why (killed)."""
    while True:
        try:
            return channel.get(timeout=_PARENT_CHECK_SECONDS)
        except queue.Empty:
            if not child.is_alive() and channel.empty():
                raise RuntimeError(
                    f"the batch reader process ended unexpectedly (exit code {child.exitcode})"
                ) from None


def _produce(items: Iterator[Any], channel: Any, parent: int) -> None:
    """In the child: every item, then `_Done`; or the error the iterator raised."""
    try:
        for item in items:
            _put(channel, item, parent)
    except BaseException as error:  # every error goes to the parent
        try:
            pickle.dumps(error)
        except Exception:  # an error that cannot travel is named instead
            error = RuntimeError(f"{type(error).__name__}: {error}")
        _put(channel, _Raised(error), parent)
    else:
        _put(channel, _Done(), parent)
    channel.close()
    channel.join_thread()


def _put(channel: Any, message: Any, parent: int) -> None:
    while True:
        try:
            channel.put(message, timeout=_PARENT_CHECK_SECONDS)
            return
        except queue.Full:
            if os.getppid() != parent:  # the parent is gone: nobody will read this
                os._exit(0)
