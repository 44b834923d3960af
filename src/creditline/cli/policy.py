"""`creditline policy test FILE --cases CASES.csv`: run a decision table over test cases."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from creditline.decisioning.adapters.zen_policies import evaluate_file
from creditline.decisioning.domain.cases import CaseResult, case_from_row, flatten_outputs
from creditline.decisioning.domain.policy import PolicyError

app = typer.Typer(help="Credit policies (GoRules JDM decision tables).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


@app.command("test")
def test_policy(
    file: Annotated[Path, typer.Argument(help="A JDM decision file, e.g. policies/v2/limit.json")],
    cases: Annotated[Path, typer.Option(help="CSV: input paths and expect.<field> columns")],
) -> None:
    """Evaluate FILE for every case and show the cases whose outputs differ.

    Exit code 0 when every case matches, 1 when some differ, 2 on unusable input.
    """
    for path in (file, cases):
        if not path.is_file():
            err.print(f"[red]error:[/red] no such file: {path}")
            raise typer.Exit(2)
    with cases.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = [
            f.removeprefix("expect.") for f in reader.fieldnames or [] if f.startswith("expect.")
        ]
        if not fields:
            err.print("[red]error:[/red] the cases file has no expect.<field> column")
            raise typer.Exit(2)
        rows = [(index + 2, row) for index, row in enumerate(reader)]
    results: list[CaseResult] = []
    for line, row in rows:
        case = case_from_row(line, row)
        try:
            outputs = evaluate_file(file, case.inputs)
        except PolicyError as error:
            err.print(f"[red]error:[/red] line {line}: {error}")
            raise typer.Exit(2) from error
        results.append(CaseResult(case, flatten_outputs(outputs, fields)))
    _report(results)
    if any(not r.passed for r in results):
        raise typer.Exit(1)


def _report(results: list[CaseResult]) -> None:
    failed = [r for r in results if not r.passed]
    if failed:
        table = Table(title="cases that differ")
        for column in ("line", "field", "expected", "actual"):
            table.add_column(column)
        for result in failed:
            for field, (want, got) in result.differences.items():
                table.add_row(str(result.case.line), field, want or "(nothing)", got or "(nothing)")
        out.print(table)
    out.print(f"{len(results) - len(failed)} of {len(results)} cases match")
