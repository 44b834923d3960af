"""Customers and consent through HTTP: happy paths, every bad input, idempotency, masking."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from creditline.bootstrap import Container

ZHANG: dict[str, Any] = {
    "name": "张三",
    "national_id": "11010519491231002X",
    "phone": "13812345678",
    "declared_annual_income": "120000.00",
}


def register(client: TestClient, body: dict[str, Any] | None = None, key: str = "reg-1") -> Any:
    return client.post("/v1/customers", json=body or ZHANG, headers={"Idempotency-Key": key})


def problem_fields(response: Any) -> dict[str, str]:
    assert response.headers["content-type"] == "application/problem+json"
    return {e["field"]: e["code"] for e in response.json()["errors"]}


def test_registration_returns_the_customer_masked(client: TestClient) -> None:
    response = register(client)

    assert response.status_code == 201
    body = response.json()
    assert body["customer_id"].startswith("cus_")
    assert response.headers["location"] == f"/v1/customers/{body['customer_id']}"
    assert body["national_id"] == "110105********002X"
    assert body["phone"] == "138****5678"
    assert body["name"] == "张*"
    assert (body["birth_date"], body["age"]) == ("1949-12-31", 76)
    assert body["declared_annual_income"] == "120000.00"


def test_reading_a_customer_shows_only_masked_personal_data(client: TestClient) -> None:
    cid = register(client).json()["customer_id"]

    text = client.get(f"/v1/customers/{cid}").text

    assert "110105********002X" in text
    assert "11010519491231002X" not in text
    assert "13812345678" not in text


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("national_id", "110105194912310021", "invalid_check_digit"),
        ("national_id", "1101051949", "invalid_length"),
        ("national_id", "1101051949123100AX", "invalid_format"),
        ("phone", "12345678901", "invalid_phone"),
        ("phone", "1381234567", "invalid_phone"),
        ("name", "   ", "required"),
        ("declared_annual_income", "12.345", "invalid_amount"),
        ("declared_annual_income", "-1.00", "negative_amount"),
        ("declared_annual_income", "abc", "invalid_amount"),
        ("declared_annual_income", "1000000000.01", "amount_too_large"),
        ("declared_annual_income", 120000, "must_be_string"),
        ("national_id", None, "must_be_string"),
    ],
)
def test_each_bad_field_is_a_422_naming_it(
    client: TestClient, field: str, value: object, code: str
) -> None:
    response = register(client, {**ZHANG, field: value}, key=f"bad-{field}-{code}")

    assert response.status_code == 422
    assert problem_fields(response) == {field: code}


def test_every_bad_field_is_named_in_one_response(client: TestClient) -> None:
    bad = {"name": "", "national_id": "1", "phone": "2", "declared_annual_income": 3}

    response = register(client, bad)

    assert response.status_code == 422
    assert set(problem_fields(response)) == set(bad)


def test_missing_and_unknown_fields_are_named(client: TestClient) -> None:
    body = {k: v for k, v in ZHANG.items() if k != "phone"} | {"nickname": "x"}

    response = register(client, body)

    assert problem_fields(response) == {"phone": "required", "nickname": "unknown_field"}


def test_a_body_that_is_not_json_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/v1/customers",
        content=b"{not json",
        headers={"content-type": "application/json", "Idempotency-Key": "x"},
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_a_replay_returns_the_first_response(client: TestClient) -> None:
    first = register(client, key="same")

    again = register(client, key="same")

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]


def test_the_same_key_with_another_body_is_409(client: TestClient) -> None:
    register(client, key="same")

    response = register(client, {**ZHANG, "declared_annual_income": "1.00"}, key="same")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"


def test_a_key_still_in_flight_is_409(client: TestClient) -> None:
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    body = json.dumps(ZHANG).encode()
    import hashlib

    fingerprint = hashlib.sha256(b"\x00".join([b"POST", b"/v1/customers", body])).hexdigest()
    container.idempotency.claim("busy", fingerprint, "POST", "/v1/customers", container.clock.now())

    response = client.post(
        "/v1/customers",
        content=body,
        headers={"Idempotency-Key": "busy", "content-type": "application/json"},
    )

    assert response.status_code == 409
    assert response.json()["code"] == "request_in_flight"


def test_an_abandoned_key_can_be_retried_after_its_lease(client: TestClient) -> None:
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    container.idempotency.claim(
        "abandoned", "whatever", "POST", "/v1/customers", container.clock.now()
    )
    container.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]

    response = register(client, key="abandoned")

    assert response.status_code == 409  # a different request under that key: still a mismatch
    assert response.json()["code"] == "idempotency_key_reused"


def test_a_failed_validation_is_replayed_too(client: TestClient) -> None:
    first = register(client, {**ZHANG, "phone": "1"}, key="bad")

    again = register(client, {**ZHANG, "phone": "1"}, key="bad")

    assert (first.status_code, again.status_code) == (422, 422)
    assert again.headers["idempotent-replayed"] == "true"


def test_an_unusable_idempotency_key_is_a_400(client: TestClient) -> None:
    response = register(client, key="x" * 300)

    assert response.status_code == 400
    assert problem_fields(response) == {"Idempotency-Key": "invalid"}


def test_the_same_person_under_a_new_key_is_409(client: TestClient) -> None:
    register(client, key="one")

    response = register(client, {**ZHANG, "phone": "13900000000"}, key="two")

    assert response.status_code == 409
    assert response.json()["code"] == "customer_already_registered"
    assert problem_fields(response) == {"national_id": "customer_already_registered"}


def test_an_unknown_customer_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/v1/customers/cus_nobody")

    assert response.status_code == 404
    assert response.json()["code"] == "customer_not_found"


def test_consent_is_granted_listed_and_withdrawn(client: TestClient) -> None:
    cid = register(client).json()["customer_id"]

    granted = client.post(
        f"/v1/customers/{cid}/consents",
        json={"purposes": ["credit_assessment", "credit_bureau_query", "marketing"]},
    )
    withdrawn = client.delete(f"/v1/customers/{cid}/consents/marketing")
    customer = client.get(f"/v1/customers/{cid}").json()
    history = client.get(f"/v1/customers/{cid}/consents").json()

    assert granted.status_code == 201
    assert [c["notice_version"] for c in granted.json()["consents"]] == ["2026-01"] * 3
    assert withdrawn.json()["active"] is False
    assert withdrawn.json()["withdrawn_at"] is not None
    assert {c["purpose"] for c in customer["consents"]} == {
        "credit_assessment",
        "credit_bureau_query",
    }
    assert len(history["consents"]) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"purposes": []}, "purposes"),
        ({"purposes": ["marketing", "spam"]}, "purposes[1]"),
        ({"purposes": "marketing"}, "purposes"),
        ({}, "purposes"),
    ],
)
def test_bad_consent_requests_name_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    cid = register(client).json()["customer_id"]

    response = client.post(f"/v1/customers/{cid}/consents", json=body)

    assert response.status_code == 422
    assert field in problem_fields(response)


def test_withdrawing_an_unknown_purpose_is_a_422(client: TestClient) -> None:
    cid = register(client).json()["customer_id"]

    response = client.delete(f"/v1/customers/{cid}/consents/spam")

    assert response.status_code == 422
    assert problem_fields(response) == {"purpose": "unknown_purpose"}


def test_health_metrics_docs_and_request_ids(client: TestClient) -> None:
    health = client.get("/health", headers={"X-Request-ID": "abc-123"})
    register(client)

    assert health.json()["status"] == "ok"
    assert health.headers["x-request-id"] == "abc-123"
    assert "creditline_http_requests_total" in client.get("/metrics").text
    assert client.get("/docs").status_code == 200
    assert "/v1/customers" in client.get("/openapi.json").json()["paths"]
