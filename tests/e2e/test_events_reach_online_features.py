"""Events accepted over HTTP update the online features the next decision reads.

Expected counts are the events posted (each accepted event counted once, duplicates not);
a new process over the same database rebuilds the in-process state from the event table.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from creditline.bootstrap import Container

AS_OF = date(2026, 1, 15)


def payment(n: int, customer: str = "cus-9") -> dict[str, object]:
    return {
        "event_id": f"evt-{customer}-{n}",
        "customer_id": customer,
        "event_type": "payment",
        "occurred_at": f"2026-01-{1 + n % 9:02d}T10:00:00+08:00",
        "source": "alipay",
        "amount_minor": 1_000 * (n + 1),
        "category": "dining",
    }


def test_accepted_events_update_the_online_features_once(
    client: TestClient, make_container: Any, db_url: str
) -> None:
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    client.post("/v1/events", json={"events": [payment(n) for n in range(6)]})
    client.post("/v1/events", json={"events": [payment(n) for n in range(4, 10)]})  # 2 repeats

    online = container.feature_store().read("cus-9", AS_OF)
    restarted: Container = make_container(db_url)
    rebuilt = restarted.feature_store().read("cus-9", AS_OF)

    assert online["payment_count_30d"] == 10
    assert online["payment_amount_30d"] == sum(1_000 * (n + 1) for n in range(10))
    assert rebuilt == online


def test_an_event_on_the_decision_day_is_not_yet_a_feature(client: TestClient) -> None:
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    late = {**payment(1), "occurred_at": "2026-01-15T09:00:00+08:00"}

    client.post("/v1/events", json={"events": [payment(0), late]})

    assert container.feature_store().read("cus-9", AS_OF)["payment_count_30d"] == 1
