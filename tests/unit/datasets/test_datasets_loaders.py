"""The dataset loaders: shapes, bad rates and types against the README of ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from creditline.data.datasets import DATASETS, load_dataset, load_table, shared_data_dir
from creditline.shared.errors import InvalidInputError

DATA = shared_data_dir()
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared datasets absent at {DATA}")

# rows, bad rate and feature count from ../shared/data/README.md (the original releases)
EXPECTED = {
    "german": (1000, 0.300, 20),
    "australian": (690, 0.445, 14),
    "taiwan": (30000, 0.221, 23),
    "hmeq": (5960, 0.199, 12),
    "lendingclub": (9578, 0.160, 13),
    "home_credit": (5000, 0.077, 120),
    "tianchi": (999, 0.205, 41),
}


@needs_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_dataset_loads_with_the_published_rows_and_bad_rate(name: str) -> None:
    rows, bad_rate, n_features = EXPECTED[name]

    dataset = load_dataset(name)

    assert dataset.features.shape == (rows, n_features)
    assert dataset.bad_rate == pytest.approx(bad_rate, abs=0.0006)
    assert set(dataset.target.unique()) == {0, 1}


@needs_data
def test_german_codes_are_categories_and_class_two_is_bad() -> None:
    raw = pd.read_csv(DATA / "german/german.data", sep=r"\s+", header=None)

    dataset = load_dataset("german")

    assert isinstance(dataset.features["checking_status"].dtype, pd.CategoricalDtype)
    assert set(dataset.features["checking_status"].cat.categories) == {"A11", "A12", "A13", "A14"}
    assert dataset.features["duration_months"].dtype == "float64"
    assert int(dataset.target.sum()) == int((raw[20] == 2).sum())


@needs_data
def test_home_credit_keeps_the_365243_days_employed_code_as_a_special_value() -> None:
    dataset = load_dataset("home_credit")

    assert dataset.special_values["DAYS_EMPLOYED"] == (365243.0,)
    assert (dataset.features["DAYS_EMPLOYED"] == 365243.0).sum() > 0


@needs_data
def test_taiwan_undocumented_education_codes_stay_their_own_categories() -> None:
    education = load_dataset("taiwan").features["EDUCATION"]

    assert {"0", "5", "6"} <= set(education.cat.categories)


def test_the_registry_knows_every_loader() -> None:
    assert set(DATASETS) == set(EXPECTED)


def test_shared_data_dir_follows_the_environment(tmp_path: Path) -> None:
    assert shared_data_dir({"CREDITLINE_SHARED_DATA": str(tmp_path)}) == tmp_path
    assert shared_data_dir({}).parts[-2:] == ("shared", "data")


def test_generic_loader_reads_semicolons_and_a_named_bad_value(tmp_path: Path) -> None:
    file = tmp_path / "loans.csv"
    file.write_text("income;city;status\n10;A;paid\n20;B;default\n30;A;paid\n")

    dataset = load_table(file, "status", bad="default")

    assert dataset.target.tolist() == [0, 1, 0]
    assert isinstance(dataset.features["city"].dtype, pd.CategoricalDtype)
    assert dataset.features["income"].dtype == "float64"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("income,flag\n1,0\n2,1\n", "missing_column"),
        ("income,bad\n1,0\n2,1\n3,2\n", "not_binary"),
        ("income,bad\n1,0\n2,0\n", "not_binary"),
        ("income,bad\n", "empty"),
    ],
)
def test_generic_loader_refuses_bad_files_with_a_clear_issue(
    tmp_path: Path, content: str, code: str
) -> None:
    file = tmp_path / "bad.csv"
    file.write_text(content)

    with pytest.raises(InvalidInputError) as caught:
        load_table(file, "bad")

    assert caught.value.issues[0].code == code


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "empty.csv"
    file.write_text("")

    with pytest.raises(InvalidInputError, match="empty"):
        load_table(file, "bad")
