"""Credit applications through HTTP, end to end: customer → consent → decision → line.

A small scorecard is trained once (on synthetic data named like the online features) and
promoted in each test's registry; the online feature store is a fake implementing the
port; lending, decisions and customers are the real SQL adapters, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from creditline.api.app import create_app
from creditline.bootstrap import Container
from creditline.data.datasets import Dataset
from creditline.decisioning import service
from creditline.decisioning.domain.decision import Decision
from creditline.decisioning.domain.pipeline import Outcome
from creditline.features.domain.online import FeatureVector
from creditline.scoring.adapters.file_registry import FileModelRegistry
from creditline.scoring.ports import Role
from creditline.scoring.training.pipeline import train
from creditline.shared.clock import FixedClock
from creditline.shared.errors import ConflictError

POLICIES = Path(__file__).resolve().parents[2] / "policies" / "v2"
GOOD = {
    "payment_count_365d": 120.0,
    "order_count_365d": 40.0,
    "bill_on_time_rate_365d": 1.0,
    "worst_days_late_365d": 0.0,
    "shared_device_customers": 0.0,
    "neighbour_delinquent_share": 0.0,
}
RISKY = {**GOOD, "bill_on_time_rate_365d": 0.2, "worst_days_late_365d": 95.0}
RING = {**GOOD, "shared_device_customers": 4.0, "neighbour_delinquent_share": 0.75}
THIN: dict[str, float] = {}


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scorecard whose risk rises with lateness and falls with on-time bills."""
    rng = np.random.default_rng(7)
    n = 4000
    frame = pd.DataFrame(
        {
            "payment_count_365d": rng.poisson(60, n).astype(float),
            "bill_on_time_rate_365d": rng.beta(8, 1.5, n),
            "worst_days_late_365d": rng.exponential(8, n).round(),
        }
    )
    logit = (
        -3.2
        - 4.0 * (frame["bill_on_time_rate_365d"] - 0.85)
        + 0.035 * frame["worst_days_late_365d"]
        - 0.01 * (frame["payment_count_365d"] - 60)
    )
    target = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), name="bad")
    out = tmp_path_factory.mktemp("model")
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    [artefact] = train(
        Dataset("synthetic", frame, target), out, clock=clock, model="scorecard", report=False
    )
    return artefact.folder


class FakeFeatureStore:
    """The online store port, answering from a dict (customer id → feature vector)."""

    def __init__(self) -> None:
        self.vectors: dict[str, FeatureVector] = {}

    def apply(self, events: Any) -> int:
        return 0

    def read(self, customer_id: str, as_of: date) -> FeatureVector:
        return dict(self.vectors.get(customer_id, {}))

    def customers(self) -> list[str]:
        return list(self.vectors)


@pytest.fixture
def lender(
    make_container: Any, db_url: str, trained_model: Path
) -> Iterator[tuple[TestClient, Container, FakeFeatureStore]]:
    container: Container = make_container(db_url)
    container.settings.policy_dir = POLICIES
    registry = FileModelRegistry(container.settings.models_dir)
    entry = registry.register(trained_model)
    registry.promote(entry.version, Role.CHAMPION)
    store = FakeFeatureStore()
    container._feature_store = store
    with TestClient(create_app(container)) as client:
        yield client, container, store


PEOPLE = {
    "good": ("11010519900307123", "13800000001"),
    "ring": ("11010519850612345", "13800000002"),
    "thin": ("11010519920101234", "13800000003"),
    "risky": ("11010519800808080", "13800000004"),
    "young": ("11010520100505050", "13800000005"),
}


def _id(first17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return (
        first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]
    )


def customer(
    client: TestClient,
    store: FakeFeatureStore,
    who: str,
    features: dict[str, float],
    *,
    consents: tuple[str, ...] = ("credit_assessment", "credit_bureau_query"),
    income: str = "120000.00",
) -> str:
    first17, phone = PEOPLE[who]
    response = client.post(
        "/v1/customers",
        json={
            "name": who,
            "national_id": _id(first17),
            "phone": phone,
            "declared_annual_income": income,
        },
        headers={"Idempotency-Key": f"reg-{who}"},
    )
    assert response.status_code == 201, response.text
    cid: str = response.json()["customer_id"]
    if consents:
        client.post(f"/v1/customers/{cid}/consents", json={"purposes": list(consents)})
    store.vectors[cid] = dict(features)
    return cid


def apply(client: TestClient, cid: str, key: str, **extra: Any) -> httpx.Response:
    response: httpx.Response = client.post(
        "/v1/applications", json={"customer_id": cid, **extra}, headers={"Idempotency-Key": key}
    )
    return response


def codes(response: httpx.Response) -> list[str]:
    return [r["code"] for r in response.json()["reasons"]]


def test_a_good_applicant_is_approved_and_the_line_is_open(
    lender: tuple[TestClient, Container, FakeFeatureStore],
) -> None:
    client, _, store = lender
    cid = customer(client, store, "good", GOOD)

    response = apply(client, cid, "app-good")
    body = response.json()
    line = client.get(f"/v1/credit-lines/{body['credit_line_id']}")
    quote = client.get(
        f"/v1/credit-lines/{body['credit_line_id']}/quote",
        params={"amount": "10000.00", "term_months": 12, "repayment_method": "equal_installment"},
    ).json()

    assert response.status_code == 201, body
    assert body["decision"] == "approved"
    assert body["score"] >= 620
    assert body["limit"] == "40000.00"  # 120,000 / 3 caps every matrix cell at or above it
    assert codes(response) == ["LIMIT_CAPPED_BY_INCOME"]
    assert body["daily_rate"] in {"0.00015", "0.00025", "0.00035", "0.00045"}
    assert body["apr_simple"]
    assert body["apr"]
    assert body["policy_version"].startswith("v2+")
    assert body["model_version"].startswith("scorecard-")
    assert line.status_code == 200
    assert line.json()["limit"] == "40000.00"
    # The APR shown with the offer is the APR the customer is charged on a draw.
    assert Decimal(body["apr"]) == Decimal(quote["pricing"]["apr"]).quantize(Decimal("0.0001"))


def test_a_replay_returns_the_same_decision_and_opens_no_second_line(
    lender: tuple[TestClient, Container, FakeFeatureStore],
) -> None:
    client, _, store = lender
    cid = customer(client, store, "good", GOOD)

    first = apply(client, cid, "app-1")
    again = apply(client, cid, "app-1")
    other_body = apply(client, cid, "app-1", requested_limit="1000.00")

    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert other_body.status_code == 409


def test_a_replay_carries_the_first_responses_headers(
    lender: tuple[TestClient, Container, FakeFeatureStore],
) -> None:
    client, _, store = lender
    cid = customer(client, store, "good", GOOD)

    first = apply(client, cid, "app-h")
    again = apply(client, cid, "app-h")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert first.headers["location"] == again.headers["location"] == "/v1/applications/app-h"
    assert first.headers["content-type"] == again.headers["content-type"] == "application/json"
    assert "idempotent-replayed" not in first.headers


def test_two_identical_requests_racing_give_one_decision(
    lender: tuple[TestClient, Container, FakeFeatureStore],
) -> None:
    client, _, store = lender
    cid = customer(client, store, "good", GOOD)
    transport = httpx.ASGITransport(app=client.app)

    async def one() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.post(
                "/v1/applications", json={"customer_id": cid}, headers={"Idempotency-Key": "twin"}
            )

    async def both() -> list[httpx.Response]:
        return list(await asyncio.gather(one(), one()))

    first, second = asyncio.run(both())
    # The twin waits for the first to commit, then gets its stored answer.
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.content == second.content
    replayed = [r.headers.get("idempotent-replayed") for r in (first, second)]
    assert Counter(replayed) == {"true": 1, None: 1}
    # One line: a later application of the same customer finds it open.
    later = apply(client, cid, "after-twin")
    assert later.json()["decision"] == "declined"
    assert "EXISTING_OPEN_LINE" in codes(later)


def test_an_error_answer_is_replayed_too(
    lender: tuple[TestClient, Container, FakeFeatureStore],
) -> None:
    client, _, _ = lender

    first = apply(client, "cus_nobody", "err-1")
    again = apply(client, "cus_nobody", "err-1")

    assert (first.status_code, again.status_code) == (404, 404)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["code"] == first.json()["code"] == "customer_not_found"


def test_a_key_used_on_another_route_is_refused(
    lender: tuple[TestClient, Container, FakeFeatureStore],
) -> None:
    client, _, store = lender
    cid = customer(client, store, "good", GOOD)  # registered with key "reg-good"

    response = apply(client, cid, "reg-good")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"


def test_in_process_a_retried_id_returns_the_stored_decision(
    lender: tuple[TestClient, Container, FakeFeatureStore],
) -> None:
    """The service's own idempotency (no HTTP record): the id is looked up with the
    customer's lock, in one statement on the SQL unit of work."""
    client, container, store = lender
    cid = customer(client, store, "good", GOOD)
    other = customer(client, store, "thin", THIN)
    wiring = container.decisioning()

    def decide(customer_id: str) -> tuple[Decision, bool]:
        return service.apply_for_credit(
            wiring.uow(),
            container.clock,
            policies=wiring.policies,
            scorer=wiring.scorer,
            apr_of=wiring.apr_of,
            application_id="app-in-process",
            customer_id=customer_id,
            requested_limit=None,
            business_date=container.business_date(),
        )

    first, created = decide(cid)
    again, created_again = decide(cid)

    assert (created, created_again) == (True, False)
    assert again == first
    assert first.outcome is Outcome.APPROVED
    with pytest.raises(ConflictError):
        decide(other)
    with pytest.raises(ConflictError):
        decide("cus_nobody")


@pytest.mark.parametrize(
    ("who", "features", "consents", "reason"),
    [
        ("good", GOOD, ("credit_assessment",), "CONSENT_CREDIT_BUREAU_QUERY_MISSING"),
        ("good", GOOD, ("credit_bureau_query",), "CONSENT_CREDIT_ASSESSMENT_MISSING"),
        ("young", GOOD, ("credit_assessment", "credit_bureau_query"), "AGE_BELOW_MINIMUM"),
        ("ring", RING, ("credit_assessment", "credit_bureau_query"), "FRAUD_RING_FLAG"),
        ("risky", RISKY, ("credit_assessment", "credit_bureau_query"), "SCORE_BELOW_CUTOFF"),
    ],
)
def test_each_decline_says_why(
    lender: tuple[TestClient, Container, FakeFeatureStore],
    who: str,
    features: dict[str, float],
    consents: tuple[str, ...],
    reason: str,
) -> None:
    client, _, store = lender
    cid = customer(client, store, who, features, consents=consents)

    response = apply(client, cid, f"app-{who}")
    body = response.json()

    assert body["decision"] == "declined"
    assert codes(response)[0] == reason
    assert len(body["reasons"]) <= 4
    assert all(r["text"] and r["text_zh"] for r in body["reasons"])
    assert body["credit_line_id"] is None


def test_an_existing_line_declines_a_second_application(
    lender: tuple[TestClient, Container, FakeFeatureStore],
) -> None:
    client, _, store = lender
    cid = customer(client, store, "good", GOOD)
    apply(client, cid, "first")

    second = apply(client, cid, "second")

    assert second.json()["decision"] == "declined"
    assert codes(second) == ["EXISTING_OPEN_LINE"]


def test_a_thin_file_goes_to_review_and_a_person_approves_it(
    lender: tuple[TestClient, Container, FakeFeatureStore],
) -> None:
    client, _, store = lender
    cid = customer(client, store, "thin", THIN)
    waiting = apply(client, cid, "app-thin").json()

    queue = client.get("/v1/reviews").json()
    resolved = client.post(
        f"/v1/reviews/{waiting['application_id']}",
        json={
            "decision": "approved",
            "limit": "2500.00",
            "note": "payslips seen",
            "reviewer": "op-1",
        },
    )
    assert resolved.status_code == 200, resolved.text
    resolved = resolved.json()
    detail = client.get(f"/v1/applications/{waiting['application_id']}").json()

    assert waiting["decision"] == "review"
    assert codes_of(waiting)[0] == "THIN_FILE"
    assert [item["application_id"] for item in queue] == [waiting["application_id"]]
    assert resolved["decision"] == "approved"
    assert resolved["limit"] == "2500.00"
    assert resolved["credit_line_id"]
    assert detail["automated_decision"] == "review"
    assert detail["review"]["reviewer"] == "op-1"
    assert any(hit["code"] == "THIN_FILE" for hit in detail["trace"])
    assert client.get("/v1/reviews").json() == []


def codes_of(body: dict[str, Any]) -> list[str]:
    return [r["code"] for r in body["reasons"]]


def test_bad_review_requests_are_refused(
    lender: tuple[TestClient, Container, FakeFeatureStore],
) -> None:
    client, _, store = lender
    cid = customer(client, store, "thin", THIN)
    waiting = apply(client, cid, "app-thin").json()

    too_much = client.post(
        f"/v1/reviews/{waiting['application_id']}",
        json={"decision": "approved", "limit": "999999.00", "note": "x", "reviewer": "op"},
    )
    unknown = client.post(
        f"/v1/reviews/{waiting['application_id']}",
        json={"decision": "maybe", "note": "x", "reviewer": "op"},
    )
    missing = client.post(
        "/v1/reviews/app-nobody", json={"decision": "declined", "note": "x", "reviewer": "op"}
    )

    assert too_much.status_code == 422
    assert unknown.status_code == 422
    assert missing.status_code == 404


def test_two_applications_racing_open_one_line(
    lender: tuple[TestClient, Container, FakeFeatureStore],
) -> None:
    client, _, store = lender
    cid = customer(client, store, "good", GOOD)
    transport = httpx.ASGITransport(app=client.app)

    async def one(key: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.post(
                "/v1/applications", json={"customer_id": cid}, headers={"Idempotency-Key": key}
            )

    async def both() -> list[httpx.Response]:
        return list(await asyncio.gather(one("race-a"), one("race-b")))

    outcomes = Counter(r.json()["decision"] for r in asyncio.run(both()))

    assert outcomes == {"approved": 1, "declined": 1}


def edited_policy(tmp_path: Path, table: str, rule_id: str, field: str, value: str) -> Path:
    """A copy of the shipped policy as folder `v3`, with one cell of one table's row changed."""
    folder = tmp_path / "v3"
    shutil.copytree(POLICIES, folder)
    path = folder / f"{table}.json"
    content = json.loads(path.read_text())
    (rule,) = [r for r in content["nodes"][1]["content"]["rules"] if r["_id"] == rule_id]
    rule[field] = value
    path.write_text(json.dumps(content))
    return folder


def put_in_force(container: Container, folder: Path) -> None:
    container.settings.policy_dir = folder
    container._decisioning = None  # the operator reloads the policy


def test_a_policy_change_takes_effect_with_a_new_version(
    lender: tuple[TestClient, Container, FakeFeatureStore], tmp_path: Path
) -> None:
    client, container, store = lender
    before = apply(client, customer(client, store, "good", GOOD), "before").json()
    put_in_force(
        container, edited_policy(tmp_path, "score_cutoff", "below-cutoff", "score", "< 950")
    )

    after = apply(client, customer(client, store, "ring", GOOD), "after").json()

    assert before["decision"] == "approved"
    assert after["decision"] == "declined"
    assert codes_of(after)[0] == "SCORE_BELOW_CUTOFF"
    assert after["policy_version"].startswith("v3+")
    assert after["policy_version"] != before["policy_version"]


def test_the_fraud_ring_threshold_is_policy_data_recorded_with_the_decision(
    lender: tuple[TestClient, Container, FakeFeatureStore], tmp_path: Path
) -> None:
    # RING: 4 device-sharing neighbours, 75 % of them late. v2 calls that a ring (at least
    # two neighbours, at least half late); a policy that wants 80 % late does not.
    client, container, store = lender
    under_v2 = apply(client, customer(client, store, "ring", RING), "ring-v2").json()
    put_in_force(
        container, edited_policy(tmp_path, "admission", "fraud-ring", "late_share", ">= 0.8")
    )

    under_v3 = apply(client, customer(client, store, "good", RING), "ring-v3").json()
    trace = client.get(f"/v1/applications/{under_v2['application_id']}").json()["trace"]

    assert under_v2["decision"] == "declined"
    assert codes_of(under_v2) == ["FRAUD_RING_FLAG"]
    assert {"table": "admission", "rule_id": "fraud-ring"}.items() <= trace[0].items()
    assert under_v2["policy_version"].startswith("v2+")
    assert "FRAUD_RING_FLAG" not in codes_of(under_v3)
    assert under_v3["decision"] == "approved"
    assert under_v3["policy_version"].startswith("v3+")


def test_without_a_champion_the_api_says_so(make_container: Any, sqlite_url: str) -> None:
    container: Container = make_container(sqlite_url)
    container.settings.policy_dir = POLICIES
    with TestClient(create_app(container)) as client:
        first17, phone = PEOPLE["good"]
        cid = client.post(
            "/v1/customers",
            json={
                "name": "x",
                "national_id": _id(first17),
                "phone": phone,
                "declared_annual_income": "1.00",
            },
        ).json()["customer_id"]
        client.post(
            f"/v1/customers/{cid}/consents",
            json={"purposes": ["credit_assessment", "credit_bureau_query"]},
        )

        response = client.post("/v1/applications", json={"customer_id": cid})

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "no_champion_model"
