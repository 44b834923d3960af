"""`creditline policy test`: every shipped table passes its cases; a wrong case is shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from creditline.cli.main import app

POLICIES = Path(__file__).resolve().parents[2] / "policies" / "v1"
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
