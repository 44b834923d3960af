"""The in-process adapters of decisioning: policy tables, the champion, online features.

* Which rows fired is read from an extra output each row carries (no zen-engine trace); it
  must agree with zen-engine's own trace, for any applicant (Hypothesis). A remembered
  table result must be the one a fresh evaluation gives, also for numbers on, beside and
  between the numbers a table compares with (a number is remembered by its class).
* A policy that reads a field the pipeline does not give fails to load (v1 reads the
  fraud-ring and thin-file flags that v2 turned into rows).
* The fraud-ring and thin-file thresholds are rows of v2's admission table: both sides of
  each threshold, and a copy with another threshold decides otherwise under a new version.
* The champion is loaded once and reloaded when a promotion changes the roles file.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import zen
from hypothesis import given, settings
from hypothesis import strategies as st

from creditline.decisioning.adapters.model_features import ChampionScorer, OnlineFeatureSource
from creditline.decisioning.adapters.zen_policies import (
    RULE_ID_FIELD,
    ZenPolicyEngine,
    fields_read,
    numeric_bounds,
)
from creditline.decisioning.domain.application import TABLE_FIELDS, ApplicantFacts
from creditline.decisioning.domain.pipeline import Outcome
from creditline.decisioning.domain.policy import TABLES, PolicyError, unknown_inputs
from creditline.scoring import service as scoring_service
from creditline.scoring.adapters.file_registry import FileModelRegistry
from creditline.scoring.ports import Role
from creditline.shared.errors import UnavailableError
from creditline.shared.money import Money
from tests.unit.decisioning.test_decisioning_pipeline import FakeScorer, evaluate

ROOT = Path(__file__).resolve().parents[3] / "policies"
V2 = ROOT / "v2"
BOTH = frozenset({"credit_assessment", "credit_bureau_query"})
ENGINE = ZenPolicyEngine(V2)
UNREMEMBERED = ZenPolicyEngine(V2, memo_size=0)
CLASSED = ZenPolicyEngine(V2)


def fired_by_trace(table: str, context: dict[str, Any]) -> list[str]:
    """The ids of the rows that fired, as zen-engine's trace reports them."""
    content = zen.ZenDecisionContent((V2 / f"{table}.json").read_text())
    engine = zen.ZenEngine({"loader": lambda _key: content})
    trace = engine.evaluate(table, context, {"trace": True})["trace"]
    fired = []
    for node in trace.values():
        data = node.get("traceData")
        for entry in data if isinstance(data, list) else [data] if data else []:
            fired.append(entry["rule"]["_id"])
    return fired


contexts = st.fixed_dictionaries(
    {
        "applicant": st.fixed_dictionaries(
            {
                "age": st.integers(10, 80),
                "annual_income_yuan": st.floats(0, 2_000_000, allow_nan=False),
            }
        ),
        "credit": st.fixed_dictionaries(
            {"has_open_line": st.booleans(), "max_days_past_due": st.integers(0, 200)}
        ),
        "graph": st.fixed_dictionaries(
            {
                "shared_device_customers": st.integers(0, 20),
                "neighbour_delinquent_share": st.floats(0, 1),
                "shared_device_cluster_size": st.integers(1, 21),
            }
        ),
        "history": st.fixed_dictionaries(
            {
                "payments_and_orders_365d": st.integers(0, 30),
                "has_bill_history": st.booleans(),
                "thin_file": st.booleans(),
            }
        ),
        "score": st.fixed_dictionaries(
            {
                "value": st.integers(350, 950),
                "tier": st.sampled_from(["excellent", "very_good", "good", "fair", "poor"]),
            }
        ),
    }
)


@settings(max_examples=150, deadline=None)
@given(context=contexts)
def test_the_rows_named_as_fired_are_those_zen_engine_traces(context: dict[str, Any]) -> None:
    for table in TABLES:
        result = UNREMEMBERED.evaluate(table, context)

        assert list(result.fired) == fired_by_trace(table, context)
        assert all(RULE_ID_FIELD not in row for row in result.rows)


@settings(max_examples=150, deadline=None)
@given(first=contexts, second=contexts)
def test_a_remembered_result_is_the_result_zen_engine_gives(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    # Two applicants, then the first again: what the memo returns for a table is what a
    # fresh evaluation returns, whatever was evaluated before it.
    engine = ZenPolicyEngine(V2, memo_size=2)
    for context in (first, second, first):
        for table in TABLES:
            remembered = engine.evaluate(table, context)
            fresh = UNREMEMBERED.evaluate(table, context)

            assert remembered.fired == fresh.fired
            assert [dict(r) for r in remembered.rows] == [dict(r) for r in fresh.rows]


def test_only_plain_decision_tables_are_remembered() -> None:
    plain = {
        "nodes": [
            {"type": "inputNode"},
            {
                "type": "decisionTableNode",
                "content": {"inputs": [{"field": "score.tier"}, {"field": "applicant.age"}]},
            },
        ]
    }
    expression = {
        "nodes": [
            {"type": "decisionTableNode", "content": {"inputs": [{"field": "score.value * 2"}]}}
        ]
    }
    other_node = {"nodes": [{"type": "functionNode"}]}

    assert fields_read(plain) == (("score", "tier"), ("applicant", "age"))
    assert fields_read(expression) is None
    assert fields_read(other_node) is None


def _one_table(rules: list[dict[str, str]], output: str = '"x"') -> dict[str, Any]:
    inputs = [{"id": "a", "field": "applicant.age"}, {"id": "b", "field": "score.tier"}]
    return {
        "nodes": [
            {"type": "inputNode"},
            {
                "type": "decisionTableNode",
                "content": {
                    "hitPolicy": "first",
                    "inputs": inputs,
                    "outputs": [{"id": "o", "field": "out"}],
                    "rules": [{"_id": f"r{n}", "o": output, **r} for n, r in enumerate(rules)],
                },
            },
        ]
    }


def test_the_numbers_a_field_is_compared_with_are_its_classes() -> None:
    numeric = _one_table(
        [{"a": "< 18", "b": '"good"'}, {"a": "[50..100)", "b": ""}, {"a": "620", "b": ""}]
    )
    boolean = _one_table([{"a": "> 1", "b": ""}, {"a": "true", "b": ""}])

    assert numeric_bounds(numeric) == {("applicant", "age"): (18.0, 50.0, 100.0, 620.0)}
    assert numeric_bounds(boolean) == {("score", "tier"): ()}
    assert numeric_bounds(_one_table([{"a": "< 18", "b": ""}], output="a * 2")) == {}
    assert numeric_bounds(_one_table([{"a": "< 18", "zzz": "1"}])) == {}
    assert numeric_bounds({"nodes": []}) == {}


NEAR = 1e-8  # beside a class's edge, within the billionth that is keyed by value
INCOMES: tuple[float, ...] = (60_000.0, 50_000, 50_000.0, 50_000 - NEAR, 50_000 + NEAR)
INCOMES += (49_999.99, 149_999.5, 150_000, 150_000 + 1e-6, 300_000.0, 299_999.999, 0.0, 1e7)
SCORES: tuple[float, ...] = (
    700,
    599,
    600,
    601,
    610,
    619,
    620,
    799,
    800,
    801,
    599.9999999999,
    800 + NEAR,
)


@pytest.mark.parametrize(
    ("income", "score"), [(income, score) for income in INCOMES for score in SCORES]
)
def test_a_number_remembered_by_its_class_gives_zen_engines_result(
    income: float, score: float
) -> None:
    # The memo is warmed with a number inside each class first (60,000 and 700), so a
    # number on or beside a class's edge that were keyed wrongly would get its result.
    context = {
        "applicant": {"age": 30, "annual_income_yuan": income},
        "credit": {"has_open_line": False, "max_days_past_due": 0},
        "graph": {
            "shared_device_customers": 0,
            "neighbour_delinquent_share": 0.0,
            "shared_device_cluster_size": 1,
        },
        "history": {"payments_and_orders_365d": 9, "has_bill_history": True, "thin_file": False},
        "score": {"value": score, "tier": "good"},
    }
    warm = {**context, "applicant": {"age": 30, "annual_income_yuan": 60_000.0}}
    warm["score"] = {"value": 700, "tier": "good"}
    for table in TABLES:
        CLASSED.evaluate(table, warm)
        remembered = CLASSED.evaluate(table, context)
        fresh = UNREMEMBERED.evaluate(table, context)

        assert remembered.fired == fresh.fired
        assert [dict(r) for r in remembered.rows] == [dict(r) for r in fresh.rows]


def test_incomes_in_one_band_share_the_limit_tables_entry() -> None:
    engine = ZenPolicyEngine(V2)
    context: dict[str, Any] = {
        "score": {"value": 700, "tier": "good"},
        "history": {"thin_file": False},
    }
    for income in (60_000.0, 61_234.5, 149_999, 75_000):
        context["applicant"] = {"annual_income_yuan": income}
        assert engine.evaluate("limit", context).fired == ("good-50k-150k",)
    assert len(engine._memo) == 1


def test_a_table_reading_a_field_the_pipeline_does_not_give_fails_to_load() -> None:
    with pytest.raises(PolicyError, match=r"graph\.fraud_ring"):
        ZenPolicyEngine(ROOT / "v1")


def test_unknown_inputs_names_plain_paths_only() -> None:
    content = {
        "nodes": [
            {
                "type": "decisionTableNode",
                "content": {
                    "inputs": [
                        {"field": "applicant.age"},
                        {"field": "graph.fraud_ring"},
                        {"field": "score.value * 2"},
                    ]
                },
            },
            {"type": "inputNode"},
        ]
    }

    assert unknown_inputs(content, TABLE_FIELDS["admission"]) == ["graph.fraud_ring"]


def applicant(**changes: object) -> ApplicantFacts:
    base = ApplicantFacts("cus_1", 30, BOTH, Money.yuan("120000.00"), payments_and_orders_365d=50)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("neighbours", "late_share", "ring"),
    [(2, 0.5, True), (4, 0.75, True), (1, 1.0, False), (2, 0.49, False), (0, 0.0, False)],
)
def test_the_fraud_ring_threshold_is_a_row_of_the_admission_table(
    neighbours: int, late_share: float, ring: bool
) -> None:
    # v2: a ring is at least two device-sharing neighbours, at least half of them late.
    facts = applicant(shared_device_customers=neighbours, neighbour_delinquent_share=late_share)

    draft = evaluate(facts, policies=ENGINE, scorer=FakeScorer())

    assert (draft.outcome is Outcome.DECLINED) is ring
    assert ("FRAUD_RING_FLAG" in [r.code for r in draft.reasons]) is ring
    assert (("admission", "fraud-ring") in [(h.table, h.rule_id) for h in draft.trace]) is ring


@pytest.mark.parametrize(
    ("events", "bills", "thin"),
    [(4, False, True), (0, False, True), (5, False, False), (0, True, False)],
)
def test_the_thin_file_threshold_is_a_row_of_the_admission_table(
    events: int, bills: bool, thin: bool
) -> None:
    # v2: a thin file is fewer than five payments and orders in a year and no bill history;
    # it goes to review with the ¥3,000 starter limit, whatever the score (450 is poor).
    facts = applicant(payments_and_orders_365d=events, has_bill_history=bills)

    draft = evaluate(facts, policies=ENGINE, scorer=FakeScorer(450, "poor"))

    if thin:
        assert draft.outcome is Outcome.REVIEW
        assert draft.reasons[0].code == "THIN_FILE"
        assert draft.limit == Money.yuan("3000.00")
    else:
        assert draft.outcome is Outcome.DECLINED
        assert draft.reasons[0].code == "SCORE_BELOW_CUTOFF"


def test_another_thin_file_threshold_is_another_policy_version(tmp_path: Path) -> None:
    folder = tmp_path / "v3"
    shutil.copytree(V2, folder)
    admission = json.loads((folder / "admission.json").read_text())
    for rule in admission["nodes"][1]["content"]["rules"]:
        if rule["_id"] == "thin-file":
            rule["activity"] = "< 10"
    (folder / "admission.json").write_text(json.dumps(admission))
    stricter = ZenPolicyEngine(folder)
    seven = applicant(payments_and_orders_365d=7, has_bill_history=False)

    before = evaluate(seven, policies=ENGINE, scorer=FakeScorer())
    after = evaluate(seven, policies=stricter, scorer=FakeScorer())

    assert before.outcome is Outcome.APPROVED
    assert after.outcome is Outcome.REVIEW
    assert after.reasons[0].code == "THIN_FILE"
    assert after.policy_version.startswith("v3+")
    assert after.policy_version != before.policy_version


class FakeStore:
    def __init__(self, vector: dict[str, Any]) -> None:
        self.vector = vector

    def apply(self, events: Any) -> int:
        return 0

    def read(self, customer_id: str, as_of: date) -> dict[str, Any]:
        return dict(self.vector)

    def customers(self) -> list[str]:
        return []


@pytest.mark.parametrize(
    ("vector", "expected"),
    [
        (
            {
                "shared_device_customers": 3,
                "neighbour_delinquent_share": 0.25,
                "payment_count_365d": 4,
                "order_count_365d": 2,
                "bill_on_time_rate_365d": 0.9,
            },
            (3, 0.25, 6, True),
        ),
        ({}, (0, 0.0, 0, False)),
        ({"payment_count_365d": 1, "neighbour_delinquent_share": None}, (0, 0.0, 1, False)),
    ],
)
def test_the_online_source_hands_the_table_measurements_not_verdicts(
    vector: dict[str, Any], expected: tuple[int, float, int, bool]
) -> None:
    snapshot = OnlineFeatureSource(FakeStore(vector))("cus_1", date(2026, 1, 15))

    assert (
        snapshot.shared_device_customers,
        snapshot.neighbour_delinquent_share,
        snapshot.payments_and_orders_365d,
        snapshot.has_bill_history,
    ) == expected


@dataclass
class Loaded:
    version: str

    def score(self, features: Any) -> Any:
        raise NotImplementedError


def _artefact(root: Path, version: str) -> Path:
    folder = root / "artefacts" / version
    folder.mkdir(parents=True)
    manifest = {"version": version, "kind": "scorecard", "created_at": "2026-01-01T00:00:00Z"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_the_champion_is_loaded_once_and_again_after_a_promotion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = FileModelRegistry(tmp_path / "models")
    loads: list[str] = []

    def load(reg: FileModelRegistry) -> Loaded:
        entry = reg.holder(Role.CHAMPION)
        assert entry is not None
        loads.append(entry.version)
        return Loaded(entry.version)

    monkeypatch.setattr(scoring_service, "champion", load)
    scorer = ChampionScorer(registry)
    with pytest.raises(UnavailableError):
        scorer._model()
    for version in ("m-1", "m-2"):
        registry.register(_artefact(tmp_path, version))
    registry.promote("m-1", Role.CHAMPION)

    first = [scorer._model().version for _ in range(3)]
    registry.promote("m-2", Role.CHAMPION)
    second = [scorer._model().version for _ in range(3)]

    assert first == ["m-1"] * 3
    assert second == ["m-2"] * 3
    assert loads == ["m-1", "m-2"]


def _paths(node: dict[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for key, value in node.items():
        path = f"{prefix}{key}"
        found |= _paths(value, path + ".") if isinstance(value, dict) else {path}
    return found


def test_the_admission_fields_are_exactly_what_the_rule_context_holds() -> None:
    context = applicant().rule_context()

    assert _paths(context) == TABLE_FIELDS["admission"]
    assert context["graph"]["shared_device_cluster_size"] == 1  # the applicant alone
