"""The population simulator: deterministic, on its base rate, learnable but not trivially."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from creditline.data.adapters.arrow_schema import EVENT_SCHEMA
from creditline.data.domain.events import parse_event
from creditline.data.simulator.population import SimulationConfig
from creditline.data.simulator.run import simulate
from tests.integration.data.simulated_features import customer_features


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.parquet")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "run"
    simulate(SimulationConfig(customers=1_500, months=3, seed=7, chunk_customers=500), out)
    return out


def test_the_same_seed_writes_the_same_files(small_run: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    other = tmp_path / "other"

    simulate(SimulationConfig(customers=1_500, months=3, seed=7, chunk_customers=500), again)
    simulate(SimulationConfig(customers=1_500, months=3, seed=8, chunk_customers=500), other)

    assert tree_digest(again) == tree_digest(small_run)
    assert tree_digest(other) != tree_digest(small_run)


def test_events_are_in_the_ingestion_schema_and_pass_validation(small_run: Path) -> None:
    files = sorted((small_run / "events").rglob("*.parquet"))
    table = pq.read_table(files[0])

    assert table.schema.equals(EVENT_SCHEMA)
    for row in table.slice(0, 2_000).to_pylist():
        parse_event(row)


def test_events_sit_in_the_partition_of_their_china_month(small_run: Path) -> None:
    query = f"""
        SELECT count(*) FROM read_parquet('{small_run}/events/**/*.parquet',
                                          hive_partitioning = true)
        WHERE strftime(occurred_at AT TIME ZONE 'Asia/Shanghai', '%Y-%m') <> event_month
    """
    with duckdb.connect() as connection:
        misplaced = connection.execute(query).fetchone()

    assert misplaced == (0,)


def test_event_ids_are_unique(small_run: Path) -> None:
    query = f"""
        SELECT count(*), count(DISTINCT event_id)
        FROM read_parquet('{small_run}/events/**/*.parquet', hive_partitioning = false)
    """
    with duckdb.connect() as connection:
        total, distinct = connection.execute(query).fetchone() or (0, -1)

    assert total == distinct > 0


def test_an_existing_folder_is_never_overwritten(small_run: Path) -> None:
    with pytest.raises(FileExistsError):
        simulate(SimulationConfig(customers=10, months=1, seed=1, chunk_customers=100), small_run)


@pytest.mark.slow
@pytest.mark.parametrize("base_rate", [0.02, 0.06])
def test_the_bad_rate_follows_the_base_rate_parameter(base_rate: float, tmp_path: Path) -> None:
    config = SimulationConfig(customers=20_000, months=1, seed=3, base_rate=base_rate)

    summary = simulate(config, tmp_path / "run")
    outcomes = pq.read_table(tmp_path / "run" / "outcomes.parquet").to_pandas()

    # 20,000 Bernoulli draws: the standard error at 6 % is 0.17 points; allow 4 of them.
    assert summary.base_rate == pytest.approx(base_rate, abs=4 * np.sqrt(base_rate / 20_000))
    assert outcomes["bad"].mean() == pytest.approx(summary.base_rate)
    assert set(outcomes["observation_on"].astype(str)) == {"2025-02-01"}


@pytest.mark.slow
def test_a_simple_model_on_simulated_features_reaches_a_realistic_auc(tmp_path: Path) -> None:
    config = SimulationConfig(customers=12_000, months=6, seed=11, base_rate=0.05)
    simulate(config, tmp_path / "run")
    frame = customer_features(tmp_path / "run")
    features = frame.drop(columns=["customer_id", "bad"])

    x_train, x_test, y_train, y_test = train_test_split(
        features, frame["bad"], test_size=0.3, random_state=0, stratify=frame["bad"]
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1_000))
    model.fit(x_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])

    assert 0.72 <= auc <= 0.88
