"""The OpenAPI schema documents every write route's Idempotency-Key header.

The hot write routes (a decision, a draw, a repayment) read the key from the request
instead of declaring it as a parameter (see `creditline.api.deps`); the schema must name
it all the same, once, as the other write routes' declared header does.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

WRITES = [
    "/v1/customers",
    "/v1/applications",
    "/v1/credit-lines/{line_id}/draws",
    "/v1/loans/{loan_id}/repayments",
]


@pytest.mark.parametrize("path", WRITES)
def test_a_write_route_documents_its_idempotency_key_once(client: TestClient, path: str) -> None:
    operation = client.get("/openapi.json").json()["paths"][path]["post"]

    headers = [p for p in operation.get("parameters", []) if p["in"] == "header"]
    assert [h["name"] for h in headers] == ["Idempotency-Key"]
    assert headers[0]["description"]


def test_a_route_with_a_path_id_keeps_it_beside_the_header(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/loans/{loan_id}/repayments"]

    names = {(p["in"], p["name"]) for p in operation["post"]["parameters"]}
    assert names == {("path", "loan_id"), ("header", "Idempotency-Key")}
