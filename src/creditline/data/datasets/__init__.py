"""Loaders for the real public credit datasets in `../shared/data` and for any table.

A loader returns a `Dataset`: a feature frame whose columns have documented types
(numbers as float64 or Int64, categorical attributes as pandas `category`), a target
Series coded **bad = 1, good = 0** (whatever the file's own coding), and the special
values of each feature (codes such as HELOC's -7/-8/-9 or Home Credit's 365243 days
employed, which mean "not applicable" rather than a quantity and are kept unchanged so a
binning can put them in their own bin). The files are third-party data: they are read
where they lie and never copied into the repository. `docs/datasets.md` describes each.
"""

from __future__ import annotations

from creditline.data.datasets.loaders import (
    DATASETS,
    Dataset,
    load_australian,
    load_dataset,
    load_german,
    load_hmeq,
    load_home_credit,
    load_lendingclub,
    load_table,
    load_taiwan,
    load_tianchi,
    read_table,
    shared_data_dir,
)

__all__ = [
    "DATASETS",
    "Dataset",
    "load_australian",
    "load_dataset",
    "load_german",
    "load_hmeq",
    "load_home_credit",
    "load_lendingclub",
    "load_table",
    "load_taiwan",
    "load_tianchi",
    "read_table",
    "shared_data_dir",
]
