"""`ChildProcessReader` hands over an iterator's items from a forked child, in order, each
once, with the iterator's own error at the same point, and leaves no child behind."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator

import pytest

from creditline.data.prefetch import ChildProcessReader


def numbered(count: int) -> Iterator[tuple[int, int]]:
    """`count` items, each with the id of the process that made it."""
    for n in range(count):
        yield n, os.getpid()


def test_items_come_in_order_each_once_made_in_another_process() -> None:
    with ChildProcessReader(numbered(50)) as reader:
        items = list(reader)

    assert [n for n, _ in items] == list(range(50))
    assert {pid for _, pid in items} == {reader.pid}
    assert reader.pid != os.getpid()


def failing() -> Iterator[int]:
    yield 1
    yield 2
    raise ValueError("line 3: unreadable CSV")


def test_the_iterators_error_comes_after_the_items_before_it() -> None:
    reader = ChildProcessReader(failing())

    assert next(reader) == 1
    assert next(reader) == 2
    with pytest.raises(ValueError, match="line 3: unreadable CSV"):
        next(reader)
    assert list(reader) == []  # and nothing after it


class UnpicklableError(Exception):
    def __init__(self) -> None:
        super().__init__("with a lock")
        self.lock = threading.Lock()


def unpicklable() -> Iterator[int]:
    yield 1
    raise UnpicklableError


def test_an_error_that_cannot_travel_is_named() -> None:
    reader = ChildProcessReader(unpicklable())

    assert next(reader) == 1
    with pytest.raises(RuntimeError, match="UnpicklableError: with a lock"):
        next(reader)


def endless() -> Iterator[int]:
    n = 0
    while True:
        yield n
        n += 1


def test_a_consumer_that_stops_early_leaves_no_child() -> None:
    reader = ChildProcessReader(endless())
    taken = [next(reader) for _ in range(3)]
    pid = reader.pid

    reader.close()

    assert taken == [0, 1, 2]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: no such process any more


def test_the_collector_is_left_as_it_was_found() -> None:
    # The reader keeps the objects of the fork out of the collector's passes while it
    # runs, and gives them back after; a freeze made by someone else stays theirs.
    # This test process may have been frozen by an earlier test (an app's start-up
    # freezes): start from nothing frozen, and leave it as it was found.
    frozen_before = gc.get_freeze_count() > 0
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        with ChildProcessReader(numbered(3)) as reader:
            assert gc.get_freeze_count() > 0
            assert len(list(reader)) == 3
        assert gc.get_freeze_count() == 0

        gc.freeze()
        with ChildProcessReader(numbered(3)) as reader:
            list(reader)
        assert gc.get_freeze_count() > 0  # not unfrozen by the reader
    finally:
        gc.unfreeze()
        if frozen_before:
            gc.freeze()
