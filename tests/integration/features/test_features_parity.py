"""Parity: DuckDB, the online engine and Spark give the same values for every customer and
feature on simulated populations (exact for counts, fen and days; within 1e-9 for ratios).

Two populations: one from the behaviour-data simulator (`creditline simulate`'s model) and
one from the feature store's own generator, which is denser in edge cases (repayments 90+
days late, products opened recently, rings of customers sharing a device).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from creditline.features.adapters.duckdb_engine import DuckDbEngine
from creditline.features.adapters.memory_store import InMemoryFeatureStore
from creditline.features.adapters.parquet_events import read_events
from creditline.features.adapters.synthetic_events import SyntheticPopulation, generate
from creditline.features.domain.online import FeatureVector
from tests.integration.features.parity import differences, read_rows
from tests.unit.features.handmade import (
    AS_OF,
    EXPECTED_A,
    assert_matches_expected,
    history,
    write_parquet,
)

SIMULATED_AS_OF = date(2025, 11, 1)
SYNTHETIC_AS_OF = date(2026, 1, 1)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from creditline.data.simulator.population import SimulationConfig
    from creditline.data.simulator.run import simulate

    out = tmp_path_factory.mktemp("simulated") / "run"
    simulate(SimulationConfig(customers=400, months=12, seed=5, start_on=date(2025, 1, 1)), out)
    return out / "events"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "events"
    generate(SyntheticPopulation(customers=300, months=13, seed=2, end_on=date(2026, 2, 1)), out)
    return out


def online_rows(events: Path, as_of: date, customers: list[str]) -> dict[str, FeatureVector]:
    store = InMemoryFeatureStore()
    store.apply(read_events(events))
    return {customer: store.read(customer, as_of) for customer in customers}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("population", "as_of"), [("simulated", SIMULATED_AS_OF), ("synthetic", SYNTHETIC_AS_OF)]
)
def test_duckdb_and_the_online_engine_agree_on_every_customer_and_feature(
    population: str, as_of: date, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    events: Path = request.getfixturevalue(population)
    batch = read_rows(DuckDbEngine().build(events, as_of, tmp_path / "duckdb.parquet").out)

    online = online_rows(events, as_of, sorted(batch))

    assert len(batch) >= 250
    assert differences(batch, online) == []


@pytest.mark.spark
@pytest.mark.slow
def test_spark_agrees_with_duckdb_and_the_online_engine(synthetic: Path, tmp_path: Path) -> None:
    from creditline.features.adapters.spark_engine import SparkEngine, local_session

    spark = SparkEngine(local_session())
    handmade = write_parquet(history(), tmp_path / "handmade" / "part.parquet")

    by_hand = read_rows(spark.build(handmade, AS_OF, tmp_path / "handmade.parquet").out)
    from_spark = read_rows(spark.build(synthetic, SYNTHETIC_AS_OF, tmp_path / "spark.parquet").out)

    assert_matches_expected(by_hand["A"], EXPECTED_A)
    # The same events in two files that carry different subsets of the columns (each
    # leaves out the columns it has no value for): Spark must merge the schemas, as
    # DuckDB's union_by_name does, not take one file's schema for both.
    import pyarrow.parquet as pq

    table = pq.read_table(handmade)
    split = tmp_path / "split"
    split.mkdir()
    schemas = []
    for i, part in enumerate(
        (table.slice(0, table.num_rows // 2), table.slice(table.num_rows // 2))
    ):
        kept = part.select([n for n in part.column_names if part.column(n).null_count < len(part)])
        schemas.append(set(kept.column_names))
        pq.write_table(kept, split / f"part-{i}.parquet")
    assert schemas[0] != schemas[1]
    by_split = read_rows(spark.build(split, AS_OF, tmp_path / "split.parquet").out)
    assert differences(by_hand, by_split) == []
    from_duckdb = read_rows(
        DuckDbEngine().build(synthetic, SYNTHETIC_AS_OF, tmp_path / "duckdb.parquet").out
    )
    assert differences(from_duckdb, from_spark) == []
    online = online_rows(synthetic, SYNTHETIC_AS_OF, sorted(from_spark))
    assert differences(from_spark, online) == []
