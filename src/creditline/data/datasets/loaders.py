"""One loader per dataset file, plus `load_table` for any CSV, Parquet or Excel file.

Every loader checks what it reads (the target column exists, holds exactly two outcomes,
there is at least one row and one feature) and raises `InvalidInputError` naming the
field at fault otherwise, so a bad file is a clear message and never a traceback deep in
a model library.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from creditline.shared.errors import FieldIssue, InvalidInputError

SHARED_DATA_ENV = "CREDITLINE_SHARED_DATA"


@dataclass(frozen=True, slots=True)
class Dataset:
    """Features and a bad = 1 target, with what a model needs to know about the columns."""

    name: str
    features: pd.DataFrame
    target: pd.Series
    description: str = ""
    special_values: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    time_column: str | None = None

    def __post_init__(self) -> None:
        if len(self.features) != len(self.target):
            raise ValueError("features and target must have the same number of rows")

    @property
    def bad_rate(self) -> float:
        return float(self.target.mean())

    @property
    def categorical(self) -> list[str]:
        return [
            c
            for c in self.features.columns
            if isinstance(self.features[c].dtype, pd.CategoricalDtype)
        ]


def shared_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$CREDITLINE_SHARED_DATA`, else the `shared/data` folder beside the repository."""
    env = os.environ if environ is None else environ
    if env.get(SHARED_DATA_ENV):
        return Path(env[SHARED_DATA_ENV])
    # src/creditline/data/datasets/loaders.py -> parents[4] is the repository root.
    return Path(__file__).resolve().parents[5] / "shared" / "data"


def _path(relative: str, data_dir: Path | None) -> Path:
    path = (data_dir or shared_data_dir()) / relative
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {path} is absent (set {SHARED_DATA_ENV})")
    return path


def binary_target(
    values: pd.Series, *, bad: object | None = None, name: str = "target"
) -> pd.Series:
    """The target as int8 with bad = 1.

    `bad` names the value that means bad; without it the values must already be {0, 1}
    (or booleans). A missing value, or more or fewer than two outcomes, is refused.
    """
    if values.isna().any():
        raise InvalidInputError(
            FieldIssue(
                name,
                "missing",
                f"target column {name!r} has {int(values.isna().sum())} missing values",
            )
        )
    distinct = pd.unique(values)
    if len(distinct) != 2:
        shown = ", ".join(repr(v) for v in list(distinct)[:5])
        raise InvalidInputError(
            FieldIssue(
                name,
                "not_binary",
                f"target column {name!r} must hold two outcomes, found {len(distinct)}: {shown}",
            )
        )
    if bad is None:
        as_set = {int(v) if isinstance(v, (bool, np.bool_)) else v for v in distinct}
        try:
            numeric = {float(v) for v in as_set}
        except (TypeError, ValueError):
            numeric = set()
        if numeric != {0.0, 1.0}:
            raise InvalidInputError(
                FieldIssue(
                    name,
                    "not_binary",
                    f"target column {name!r} must be coded 0/1 (bad = 1), or name the bad value",
                )
            )
        return pd.Series(values.astype(float).astype("int8"), index=values.index, name=name)
    if bad not in set(distinct):
        raise InvalidInputError(
            FieldIssue(
                name, "not_binary", f"target column {name!r} never takes the bad value {bad!r}"
            )
        )
    return pd.Series((values == bad).astype("int8"), index=values.index, name=name)


def _finish(
    name: str,
    frame: pd.DataFrame,
    target: str,
    *,
    bad: object | None = None,
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
    special_values: Mapping[str, tuple[float, ...]] | None = None,
    description: str = "",
    time_column: str | None = None,
) -> Dataset:
    if frame.empty:
        raise InvalidInputError(FieldIssue("data", "empty", f"{name}: the file has no rows"))
    if target not in frame.columns:
        raise InvalidInputError(
            FieldIssue(
                target,
                "missing_column",
                f"{name}: target column {target!r} is absent; "
                f"columns are {list(frame.columns)[:10]}…",
            )
        )
    y = binary_target(frame[target], bad=bad, name=target)
    features = frame.drop(columns=[target, *[c for c in drop if c in frame.columns]])
    if features.shape[1] == 0:
        raise InvalidInputError(
            FieldIssue("data", "no_features", f"{name}: no feature columns besides the target")
        )
    for column in features.columns:
        series = features[column]
        if (
            column in categorical
            or series.dtype == object
            or pd.api.types.is_string_dtype(series.dtype)
        ):
            if column == time_column:
                continue
            features[column] = series.astype("string").astype("category")
        elif pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(
            series.dtype
        ):
            features[column] = series.astype("float64")
    return Dataset(
        name=name,
        features=features.reset_index(drop=True),
        target=y.reset_index(drop=True),
        description=description,
        special_values=dict(special_values or {}),
        time_column=time_column,
    )


def read_table(path: Path, *, sep: str | None = None) -> pd.DataFrame:
    """Read CSV (separator sniffed: comma, semicolon, tab), Parquet or Excel."""
    if not path.is_file():
        raise InvalidInputError(FieldIssue("data", "not_found", f"no file at {path}"))
    if path.stat().st_size == 0:
        raise InvalidInputError(FieldIssue("data", "empty", f"{path} is empty"))
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    if suffix in {".xlsx", ".xls"}:
        return pd.read_excel(path)
    with path.open("rb") as handle:
        head = handle.read(65536)
    text = head.decode("utf-8", errors="replace")
    line_end = "\r" if ("\r" in text and "\n" not in text) else None
    if sep is None:
        first = text.replace("\r", "\n").split("\n", 1)[0]
        sep = max(("\t", ";", ","), key=first.count)
    try:
        frame = pd.read_csv(path, sep=sep, lineterminator=line_end, encoding="utf-8")
    except UnicodeDecodeError:
        frame = pd.read_csv(path, sep=sep, lineterminator=line_end, encoding="gb18030")
    except pd.errors.EmptyDataError as error:
        raise InvalidInputError(FieldIssue("data", "empty", f"{path} has no columns")) from error
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed: 0") or str(c) == ""]
    return frame.drop(columns=unnamed)


def load_table(
    path: str | Path,
    target: str,
    *,
    bad: object | None = None,
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
    special_values: Mapping[str, tuple[float, ...]] | None = None,
    time_column: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Any CSV/Parquet/Excel file with a target column (0/1, or name the `bad` value).

    Text columns and those named in `categorical` become categories; numbers become
    float64; `special_values` (e.g. ``{"MSinceOldestTradeOpen": (-7, -8, -9)}``) are
    kept as they are and recorded for the binning.
    """
    file = Path(path)
    frame = read_table(file)
    if time_column is not None and time_column not in frame.columns:
        raise InvalidInputError(
            FieldIssue(time_column, "missing_column", f"time column {time_column!r} is absent")
        )
    return _finish(
        name or file.stem,
        frame,
        target,
        bad=bad,
        categorical=categorical,
        drop=drop,
        special_values=special_values,
        time_column=time_column,
        description=f"table {file.name}",
    )


GERMAN_COLUMNS = [
    "checking_status",
    "duration_months",
    "credit_history",
    "purpose",
    "credit_amount",
    "savings_status",
    "employment_since",
    "installment_rate_pct",
    "personal_status_sex",
    "other_debtors",
    "residence_since",
    "property",
    "age_years",
    "other_installment_plans",
    "housing",
    "existing_credits",
    "job",
    "people_liable",
    "telephone",
    "foreign_worker",
    "class",
]


def load_german(data_dir: Path | None = None) -> Dataset:
    """UCI Statlog German credit: 1,000 rows, 20 attributes (13 coded A11…), class 2 = bad."""
    frame = pd.read_csv(
        _path("german/german.data", data_dir), sep=r"\s+", header=None, names=GERMAN_COLUMNS
    )
    categorical = [
        c
        for c in GERMAN_COLUMNS
        if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])
    ]
    return _finish(
        "german",
        frame,
        "class",
        bad=2,
        categorical=categorical,
        description="UCI Statlog German credit",
    )


def load_australian(data_dir: Path | None = None) -> Dataset:
    """UCI Statlog Australian: 690 rows, 14 anonymised attributes, last column 1 = bad.

    A4, A5, A6 and A12 are categorical codes (per the UCI description); the label is the
    approval decision, not an observed default: class 1 is read as bad as the README says.
    """
    names = [f"A{i}" for i in range(1, 15)] + ["class"]
    frame = pd.read_csv(
        _path("australian/australian.dat", data_dir), sep=r"\s+", header=None, names=names
    )
    return _finish(
        "australian",
        frame,
        "class",
        bad=1,
        categorical=["A4", "A5", "A6", "A12"],
        description="UCI Statlog Australian credit approval",
    )


def load_taiwan(data_dir: Path | None = None) -> Dataset:
    """UCI default of credit card clients (Taiwan, 2005): 30,000 rows, 23 features.

    SEX, EDUCATION and MARRIAGE are categorical codes (EDUCATION 0/5/6 and MARRIAGE 0 are
    undocumented and kept as their own categories). PAY_x are ordinal repayment statuses:
    -2 no consumption, -1 paid in full, 0 revolving, 1..9 months late; kept numeric.
    """
    frame = pd.read_csv(_path("taiwan/UCI_Credit_Card.csv", data_dir))
    return _finish(
        "taiwan",
        frame,
        "default.payment.next.month",
        categorical=["SEX", "EDUCATION", "MARRIAGE"],
        drop=["ID"],
        description="UCI default of credit card clients (Yeh & Lien 2009)",
    )


def load_hmeq(data_dir: Path | None = None) -> Dataset:
    """HMEQ home-equity loans: 5,960 rows, BAD = 1, missing cells kept as NaN (informative)."""
    frame = pd.read_csv(_path("hmeq/hmeq.csv", data_dir))
    return _finish(
        "hmeq",
        frame,
        "BAD",
        categorical=["REASON", "JOB"],
        description="HMEQ (Baesens et al. 2016)",
    )


def load_lendingclub(data_dir: Path | None = None) -> Dataset:
    """LendingClub 2007–2010 (CR line endings): 9,578 rows, not.fully.paid = 1 is bad."""
    frame = pd.read_csv(_path("lendingclub-2007-2010/loan_data.csv", data_dir), lineterminator="\r")
    return _finish(
        "lendingclub",
        frame,
        "not.fully.paid",
        categorical=["purpose"],
        description="LendingClub public loan data 2007–2010",
    )


HOME_CREDIT_DAYS_EMPLOYED_NA = 365243.0


def load_home_credit(data_dir: Path | None = None) -> Dataset:
    """Home Credit application sample: tab-separated, a leading index column, TARGET = 1 bad.

    DAYS_EMPLOYED = 365243 marks pensioners and the unemployed (no employment spell) and
    is a special value, not a thousand years of work. The customer id is dropped.
    """
    frame = pd.read_csv(
        _path("home-credit-sample/application_train_sample.csv", data_dir), sep="\t", index_col=0
    )
    return _finish(
        "home_credit",
        frame,
        "TARGET",
        drop=["SK_ID_CURR"],
        special_values={"DAYS_EMPLOYED": (HOME_CREDIT_DAYS_EMPLOYED_NA,)},
        description="Kaggle Home Credit Default Risk, application sample",
    )


def load_tianchi(data_dir: Path | None = None) -> Dataset:
    """Tianchi loan default sample (Excel, 999 rows), isDefault = 1 bad.

    Ids and the constant policyCode are dropped; `earliesCreditLine` becomes its year;
    `grade`, `subGrade`, `employmentLength` and the coded ids (`homeOwnership`,
    `verificationStatus`, `purpose`, `regionCode`, …) are categories; `issueDate` (an
    Excel day number) is kept as the time column.
    """
    frame = pd.read_excel(_path("tianchi-sample/train_sample.xlsx", data_dir))
    frame["earliesCreditLine"] = pd.to_datetime(frame["earliesCreditLine"]).dt.year.astype(
        "float64"
    )
    coded = [
        "grade",
        "subGrade",
        "employmentLength",
        "homeOwnership",
        "verificationStatus",
        "purpose",
        "regionCode",
        "initialListStatus",
        "applicationType",
    ]
    return _finish(
        "tianchi",
        frame,
        "isDefault",
        categorical=coded,
        drop=["id", "policyCode", "employmentTitle", "postCode", "title"],
        description="Alibaba Tianchi loan default, first 999 rows",
        time_column="issueDate",
    )


DATASETS: dict[str, Callable[[Path | None], Dataset]] = {
    "german": load_german,
    "australian": load_australian,
    "taiwan": load_taiwan,
    "hmeq": load_hmeq,
    "lendingclub": load_lendingclub,
    "home_credit": load_home_credit,
    "tianchi": load_tianchi,
}


def load_dataset(name: str, data_dir: Path | None = None) -> Dataset:
    try:
        loader = DATASETS[name.replace("-", "_")]
    except KeyError as error:
        known = ", ".join(DATASETS)
        raise InvalidInputError(
            FieldIssue("dataset", "unknown", f"unknown dataset {name!r}; known: {known}")
        ) from error
    return loader(data_dir)
