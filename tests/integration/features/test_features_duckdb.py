"""The DuckDB batch engine: the hand-made expectations, and the point-in-time rule."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from creditline.features.adapters.duckdb_engine import DuckDbEngine
from creditline.features.adapters.synthetic_events import SyntheticPopulation, generate
from creditline.features.domain.definitions import feature_names
from creditline.features.domain.events import EventType
from creditline.features.service import build_batch
from creditline.shared.errors import InvalidInputError
from tests.unit.features.handmade import (
    AS_OF,
    EXPECTED_A,
    assert_matches_expected,
    at,
    event,
    history,
    write_parquet,
)


def rows(path: Path) -> dict[str, dict[str, object]]:
    return {row["customer_id"]: row for row in pq.read_table(path).to_pylist()}


def test_duckdb_computes_what_was_worked_out_by_hand(tmp_path: Path) -> None:
    events = write_parquet(history(), tmp_path / "events" / "part.parquet")

    result = DuckDbEngine().build(events, AS_OF, tmp_path / "features.parquet")

    built = rows(result.out)
    assert result.columns == ("customer_id", *feature_names())
    assert_matches_expected(built["A"], EXPECTED_A)
    # C's only event is after D, so C has no row; B, X, Y, Z do.
    assert sorted(built) == ["A", "B", "X", "Y", "Z"]


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("population") / "events"
    generate(SyntheticPopulation(customers=400, months=13, seed=11, end_on=date(2026, 2, 1)), out)
    return out


AS_OF_POPULATION = date(2026, 1, 1)


def plant(folder: Path, days_from_as_of: int, hour: int) -> None:
    """Events for three existing customers, `days_from_as_of` days from the as-of date."""
    delta = (AS_OF_POPULATION - AS_OF).days + days_from_as_of
    planted = []
    for customer in ("C0000001", "C0000002", "C0000003"):
        planted += [
            event(
                customer,
                EventType.PAYMENT,
                at(delta, hour),
                amount_minor=99_900,
                category="jewellery",
            ),
            event(
                customer,
                EventType.BILL_REPAYMENT,
                at(delta, hour),
                product_id="PZ",
                due_on=AS_OF_POPULATION - timedelta(days=200),
                amount_minor=1,
            ),
            event(
                customer,
                EventType.DEVICE_LOGIN,
                at(delta, hour),
                device_id="RING0",
                is_sim_change=True,
            ),
            event(
                customer,
                EventType.TRANSFER,
                at(delta, hour),
                counterparty_id="C0000009",
                amount_minor=5,
            ),
            event(customer, EventType.PROFILE_UPDATE, at(delta, hour), amount_minor=1),
        ]
    write_parquet(planted, folder / "planted" / f"part-{days_from_as_of}-{hour}.parquet")


def copy_tree(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def test_events_on_or_after_the_as_of_date_change_nothing(population: Path, tmp_path: Path) -> None:
    engine = DuckDbEngine()
    before = engine.build(population, AS_OF_POPULATION, tmp_path / "before.parquet")
    planted = copy_tree(population, tmp_path / "planted")
    plant(planted, 0, 0)  # D at 00:00 China time: still the previous day in UTC
    plant(planted, 30, 12)

    after = engine.build(planted, AS_OF_POPULATION, tmp_path / "after.parquet")

    assert pq.read_table(after.out).equals(pq.read_table(before.out))


def test_the_same_events_one_day_earlier_do_change_the_features(
    population: Path, tmp_path: Path
) -> None:
    engine = DuckDbEngine()
    before = rows(engine.build(population, AS_OF_POPULATION, tmp_path / "before.parquet").out)
    planted = copy_tree(population, tmp_path / "planted")
    plant(planted, -1, 23)  # the last minute of the day before D counts

    after = rows(engine.build(planted, AS_OF_POPULATION, tmp_path / "after.parquet").out)

    changed = after["C0000001"]
    count_before = before["C0000001"]["payment_count_30d"]
    assert isinstance(count_before, int)
    assert changed["payment_count_30d"] == count_before + 1
    assert changed["worst_days_late_365d"] == 199
    assert changed["days_since_sim_change"] == 1
    assert changed["declared_monthly_income"] == 1
    assert after["C0000009"]["transfer_degree_365d"] != before["C0000009"]["transfer_degree_365d"]


def test_csv_output_has_a_header_and_a_row_per_customer(population: Path, tmp_path: Path) -> None:
    result = DuckDbEngine().build(population, AS_OF_POPULATION, tmp_path / "features.csv")

    lines = (tmp_path / "features.csv").read_text().splitlines()
    assert lines[0].split(",")[:3] == ["customer_id", "payment_count_30d", "payment_amount_30d"]
    assert len(lines) == result.customers + 1


def test_missing_events_and_an_unknown_output_format_are_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as raised:
        build_batch(DuckDbEngine(), events=tmp_path / "none", as_of=AS_OF, out=tmp_path / "f.txt")

    assert [issue.field for issue in raised.value.issues] == ["events", "out"]
