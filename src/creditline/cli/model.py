"""`creditline model train | score | list | promote`: train, score with, and govern models.

Exit codes: 0 done, 2 unusable input (missing target column, a target that is not binary,
constant features under --strict, an empty file, an unknown version), 1 unexpected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from creditline.config import Settings
from creditline.scoring.adapters.file_registry import FileModelRegistry
from creditline.scoring.domain.scale import ScoreScale
from creditline.scoring.ports import Role
from creditline.shared.clock import SystemClock
from creditline.shared.errors import CreditlineError, FieldIssue, InvalidInputError

if TYPE_CHECKING:
    from creditline.data.datasets import Dataset

# pandas, the loaders and the scorers are imported by the commands that use them, so that
# `creditline --help` and every other command start without them.

app = typer.Typer(help="Credit scoring models: train, score, list, promote.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

RegistryOption = Annotated[
    Path | None,
    typer.Option("--registry", help="Registry folder; default: CREDITLINE_DATA_DIR/models."),
]


def _registry(path: Path | None) -> FileModelRegistry:
    return FileModelRegistry(path or Settings().data_dir / "models")


def _fail(reason: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {reason}", highlight=False)
    return typer.Exit(code)


@app.command("train")
def train_command(
    out_dir: Annotated[
        Path,
        typer.Option("--out", help="Artefact folder (one sub-folder per model with --model both)."),
    ],
    data: Annotated[
        Path | None, typer.Option("--data", help="CSV, Parquet or Excel file with a target column.")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Target column (0/1, bad = 1).")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="A bundled loader: german, taiwan, hmeq, …")
    ] = None,
    features: Annotated[
        Path | None, typer.Option("--features", help="A batch feature file with an outcome column.")
    ] = None,
    bad: Annotated[
        str | None, typer.Option("--bad", help="The target value that means bad, if not 1.")
    ] = None,
    model: Annotated[str, typer.Option("--model", help="scorecard, gbm or both.")] = "both",
    time_column: Annotated[
        str | None, typer.Option("--time-column", help="Split out-of-time on this column.")
    ] = None,
    base_score: Annotated[float, typer.Option(help="Score at the base odds.")] = 600.0,
    base_odds: Annotated[float, typer.Option(help="Good:bad odds at the base score.")] = 19.0,
    pdo: Annotated[float, typer.Option(help="Points to double the odds.")] = 50.0,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse constant features instead of dropping them.")
    ] = False,
    register: Annotated[
        bool, typer.Option("--register/--no-register", help="Add the artefacts to the registry.")
    ] = True,
    registry: RegistryOption = None,
) -> None:
    """Train a WoE scorecard and/or a monotone LightGBM, write artefacts with a report."""
    from creditline.scoring.training.pipeline import train

    try:
        ds = _dataset(data, features, dataset, target, bad, time_column)
        artefacts = train(
            ds,
            out_dir,
            clock=SystemClock(),
            model=model,
            time_column=time_column,
            scale=ScoreScale(base_score, base_odds, pdo),
            strict_constant=strict,
        )
    except CreditlineError as error:
        raise _fail(str(error)) from error
    except (FileNotFoundError, ValueError) as error:
        raise _fail(str(error)) from error
    reg = _registry(registry)
    for artefact in artefacts:
        line = f"{artefact.version}  test AUC {artefact.test_auc:.4f}  {artefact.folder}"
        if register:
            reg.register(artefact.folder)
            line += f"  (registered in {reg.root})"
        out.print(line, highlight=False)
    manifest = json.loads((artefacts[0].folder / "manifest.json").read_text())
    if manifest["dropped_constant"]:
        err.print(
            f"dropped constant features: {', '.join(manifest['dropped_constant'])}", highlight=False
        )


def _dataset(
    data: Path | None,
    features: Path | None,
    dataset: str | None,
    target: str | None,
    bad: str | None,
    time_column: str | None,
) -> Dataset:
    from creditline.data.datasets import load_dataset, load_table

    chosen = [x for x in (data, features, dataset) if x is not None]
    if len(chosen) != 1:
        raise InvalidInputError(
            FieldIssue("data", "required", "give exactly one of --data, --features or --dataset")
        )
    if dataset is not None:
        return load_dataset(dataset)
    file = data or features
    assert file is not None
    if target is None:
        raise InvalidInputError(
            FieldIssue("target", "required", "--target names the outcome column of the file")
        )
    bad_value: object | None = None
    if bad is not None:
        bad_value = int(bad) if bad.lstrip("-").isdigit() else bad
    return load_table(file, target, bad=bad_value, time_column=time_column)


@app.command("score")
def score_command(
    artefact: Annotated[Path, typer.Argument(help="An artefact folder, or a registered version.")],
    data: Annotated[
        Path, typer.Argument(help="CSV, Parquet or Excel file with the model's features.")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Output CSV or Parquet.")],
    registry: RegistryOption = None,
) -> None:
    """Score every row: score, PD, tier and four reason codes."""
    folder = artefact if (artefact / "manifest.json").is_file() else None
    try:
        if folder is None:
            folder = _registry(registry).get(str(artefact)).folder
        from creditline.data.datasets import read_table
        from creditline.scoring.service import score_file
        from creditline.scoring.serving import load_model

        scorer = load_model(folder)
        frame = read_table(data)
        rows = score_file(scorer, frame, out_file)
    except (CreditlineError, KeyError, ValueError) as error:
        raise _fail(str(error)) from error
    out.print(f"scored {rows:,} rows with {scorer.version} into {out_file}", highlight=False)


@app.command("list")
def list_command(
    registry: RegistryOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List registered models with their role and test AUC."""
    entries = _registry(registry).list()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "version": e.version,
                        "kind": e.kind,
                        "dataset": e.dataset,
                        "created_at": e.created_at,
                        "test_auc": e.test_auc,
                        "role": e.role.value if e.role else None,
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
        return
    table = Table("version", "kind", "dataset", "created", "test AUC", "role")
    for e in entries:
        auc = f"{e.test_auc:.4f}" if e.test_auc is not None else ""
        table.add_row(
            e.version, e.kind, e.dataset, e.created_at[:19], auc, e.role.value if e.role else ""
        )
    out.print(table)


@app.command("promote")
def promote_command(
    version: Annotated[str, typer.Argument(help="A registered version id.")],
    role: Annotated[Role, typer.Option("--role", help="champion or challenger.")],
    registry: RegistryOption = None,
) -> None:
    """Give VERSION a role; the decision pipeline scores with the champion."""
    try:
        entry = _registry(registry).promote(version, role)
    except CreditlineError as error:
        raise _fail(str(error)) from error
    out.print(f"{entry.version} is now the {role.value}", highlight=False)
