"""`creditline policy test`: every shipped table passes its cases; a wrong case is shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from creditline.cli.main import app

POLICIES = Path(__file__).resolve().parents[2] / "policies" / "v2"
runner = CliRunner()


@pytest.mark.parametrize("table", ["admission", "score_cutoff", "limit", "price"])
def test_each_shipped_table_passes_its_cases(table: str) -> None:
    result = runner.invoke(
        app,
        [
            "policy",
            "test",
            str(POLICIES / f"{table}.json"),
            "--cases",
            str(POLICIES / f"{table}.cases.csv"),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "cases match" in result.output


def test_a_case_that_differs_is_listed_and_exits_1(tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    cases.write_text(
        "score.tier,applicant.annual_income_yuan,expect.limit\nexcellent,60000,99999\n"
    )

    result = runner.invoke(
        app, ["policy", "test", str(POLICIES / "limit.json"), "--cases", str(cases)]
    )

    assert result.exit_code == 1
    assert "99999" in result.output
    assert "60000" in result.output
    assert "0 of 1 cases match" in result.output


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["policy", "test", str(tmp_path / "none.json"), "--cases", str(tmp_path / "x.csv")]
    )

    assert result.exit_code == 2


def test_cases_without_expectations_exit_2(tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    cases.write_text("score.value\n600\n")

    result = runner.invoke(
        app, ["policy", "test", str(POLICIES / "score_cutoff.json"), "--cases", str(cases)]
    )

    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("rule_id", "column", "condition"),
    [("fraud-ring", "late_share", ">= 0.6"), ("thin-file", "activity", "< 6")],
)
def test_the_admission_cases_pin_the_fraud_ring_and_thin_file_thresholds(
    tmp_path: Path, rule_id: str, column: str, condition: str
) -> None:
    # A threshold moved in the table without its cases being updated is caught.
    admission = json.loads((POLICIES / "admission.json").read_text())
    for rule in admission["nodes"][1]["content"]["rules"]:
        if rule["_id"] == rule_id:
            rule[column] = condition
    moved = tmp_path / "admission.json"
    moved.write_text(json.dumps(admission))

    result = runner.invoke(
        app, ["policy", "test", str(moved), "--cases", str(POLICIES / "admission.cases.csv")]
    )

    assert result.exit_code == 1, result.output
    assert "cases match" in result.output
    assert "18 of 18" not in result.output
