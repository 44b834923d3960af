"""Seed a working lender: a simulated population, its features, and a champion scorecard.

`make run` calls this before serving. When the registry already has a champion it does
nothing, so later starts reuse what the first one made; otherwise it simulates a small
population (`data.simulator`), builds every feature as of the observation date on DuckDB
(`features`), joins the simulated outcomes, trains a scorecard with its validation report
(`scoring.training`) and promotes it to champion. Everything lands under the data folder.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from creditline.config import Settings
from creditline.data.datasets import load_table
from creditline.data.simulator.population import SimulationConfig
from creditline.data.simulator.run import simulate
from creditline.features import service as feature_service
from creditline.features.adapters.duckdb_engine import DuckDbEngine
from creditline.scoring.adapters.file_registry import FileModelRegistry
from creditline.scoring.ports import Role
from creditline.scoring.training.pipeline import train
from creditline.shared.clock import Clock


@dataclass(frozen=True, slots=True)
class SeedResult:
    version: str
    created: bool
    test_auc: float | None = None


def seed_demo(
    settings: Settings, clock: Clock, *, customers: int = 3000, months: int = 12, seed: int = 7
) -> SeedResult:
    registry = FileModelRegistry(settings.models_dir)
    champion = registry.holder(Role.CHAMPION)
    if champion is not None:
        return SeedResult(champion.version, created=False)
    work = settings.data_dir / "demo"
    if work.exists():  # a first start that was interrupted: start over
        shutil.rmtree(work)
    config = SimulationConfig(customers=customers, months=months, seed=seed)
    simulate(config, work / "simulation")
    feature_service.build_batch(
        DuckDbEngine(),
        events=work / "simulation" / "events",
        as_of=config.observation_on,
        out=work / "features.parquet",
    )
    training_file = _with_outcomes(work)
    dataset = load_table(training_file, "bad", drop=("customer_id",))
    [artefact] = train(dataset, work / "model", clock=clock, model="scorecard", report=True)
    entry = registry.register(artefact.folder)
    registry.promote(entry.version, Role.CHAMPION)
    return SeedResult(entry.version, created=True, test_auc=artefact.test_auc)


def _with_outcomes(work: Path) -> Path:
    out = work / "training.parquet"
    features = (work / "features.parquet").as_posix()
    outcomes = (work / "simulation" / "outcomes.parquet").as_posix()
    connection = duckdb.connect()
    try:
        connection.execute(
            f"COPY (SELECT f.*, o.bad FROM read_parquet('{features}') f "
            f"JOIN read_parquet('{outcomes}') o USING (customer_id)) "
            f"TO '{out.as_posix()}' (FORMAT parquet)"
        )
    finally:
        connection.close()
    return out
