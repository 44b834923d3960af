"""How the Redis store cuts a batch's customers into script calls: at most
`SCRIPT_CUSTOMERS` customers and `SCRIPT_STATES` states to write per call, in order."""

from __future__ import annotations

import pytest

from creditline.features.adapters import redis_store
from creditline.features.adapters.redis_store import _slices


def test_a_slice_holds_at_most_script_states_heavy_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_store, "SCRIPT_CUSTOMERS", 3)
    monkeypatch.setattr(redis_store, "SCRIPT_STATES", 1)

    assert _slices([0, 1, 2, 3, 4], lambda n: n % 2 == 0) == [[0, 1], [2, 3], [4]]


def test_a_slice_holds_at_most_script_customers_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_store, "SCRIPT_CUSTOMERS", 3)
    monkeypatch.setattr(redis_store, "SCRIPT_STATES", 2)

    assert _slices(list(range(7)), lambda n: False) == [[0, 1, 2], [3, 4, 5], [6]]
    assert _slices(list(range(5)), lambda n: True) == [[0, 1], [2, 3], [4]]


def test_no_items_make_one_empty_slice() -> None:
    assert _slices([], lambda n: True) == [[]]
