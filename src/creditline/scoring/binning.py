"""Feature binning as data: which bin a value falls in, for numbers and categories.

The training side finds the bins (optbinning); this module only applies them, so
serving needs numpy and pandas but no optbinning. A numerical feature's bins are
``(-inf, s0), [s0, s1), …, [s_last, inf)`` (optbinning's convention), then a bin for its
special values and a bin for missing values. A categorical feature's bins are groups of
categories, then a special bin (unused) and a missing bin that also takes categories
never seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class FeatureBins:
    name: str
    kind: str  # "numerical" | "categorical"
    splits: tuple[float, ...] = ()
    groups: tuple[tuple[str, ...], ...] = ()
    special_values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("numerical", "categorical"):
            raise ValueError(f"{self.name}: kind must be numerical or categorical")
        if list(self.splits) != sorted(self.splits):
            raise ValueError(f"{self.name}: splits must be increasing")

    @property
    def n_regular(self) -> int:
        return len(self.splits) + 1 if self.kind == "numerical" else len(self.groups)

    @property
    def special_bin(self) -> int:
        return self.n_regular

    @property
    def missing_bin(self) -> int:
        return self.n_regular + 1

    @property
    def n_bins(self) -> int:
        return self.n_regular + 2

    def labels(self) -> list[str]:
        if self.kind == "numerical":
            edges = [-np.inf, *self.splits, np.inf]
            regular = [
                f"[{_fmt(lo)}, {_fmt(hi)})" if np.isfinite(lo) else f"(-inf, {_fmt(hi)})"
                for lo, hi in pairwise(edges)
            ]
        else:
            regular = [", ".join(group) for group in self.groups]
        specials = ", ".join(_fmt(v) for v in self.special_values)
        return [*regular, f"Special ({specials})" if specials else "Special", "Missing"]

    def assign(self, values: pd.Series | NDArray[Any]) -> NDArray[np.intp]:
        """The bin index of every value (vectorised)."""
        if self.kind == "numerical":
            x = _as_float(values)
            idx = count_at_or_below(self.splits, x, inclusive=True)
            if self.special_values:
                idx[np.isin(x, np.asarray(self.special_values, dtype=np.float64))] = (
                    self.special_bin
                )
            idx[np.isnan(x)] = self.missing_bin
            return idx
        # Categories are compared as strings (``str(value)``, pandas' "string" dtype). Each
        # distinct value is looked up once: a categorical column through its categories,
        # any other column through `pd.factorize` (missing values get code -1).
        series = values if isinstance(values, pd.Series) else pd.Series(values)
        if isinstance(series.dtype, pd.CategoricalDtype):
            codes = np.asarray(series.cat.codes, dtype=np.intp)
            uniques = pd.Index(series.cat.categories)
        else:
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
        lookup = {category: k for k, group in enumerate(self.groups) for category in group}
        known = pd.Series(pd.Index(uniques).astype("string")).map(lookup)
        per_code = np.append(
            np.asarray(known.fillna(self.missing_bin), dtype=np.intp), self.missing_bin
        )
        return per_code[codes]  # code -1 (missing) takes the appended missing bin

    def assign_one(self, value: Any) -> int:
        """The bin of a single value, without numpy overhead (in-process scoring)."""
        if self.kind == "numerical":
            if value is None:
                return self.missing_bin
            x = float(value)
            if x != x:
                return self.missing_bin
            if x in self.special_values:
                return self.special_bin
            lo, hi = 0, len(self.splits)
            while lo < hi:
                mid = (lo + hi) // 2
                if self.splits[mid] <= x:
                    lo = mid + 1
                else:
                    hi = mid
            return lo
        if value is None or (isinstance(value, float) and value != value):
            return self.missing_bin
        for k, group in enumerate(self.groups):
            if str(value) in group:
                return k
        return self.missing_bin

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "splits": list(self.splits),
            "groups": [list(g) for g in self.groups],
            "special_values": list(self.special_values),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureBins:
        return cls(
            name=data["name"],
            kind=data["kind"],
            splits=tuple(float(s) for s in data["splits"]),
            groups=tuple(tuple(str(c) for c in g) for g in data["groups"]),
            special_values=tuple(float(v) for v in data["special_values"]),
        )


COMPARE_LIMIT = 64  # up to this many edges, counting by comparisons beats a binary search


def count_at_or_below(
    edges: tuple[float, ...] | NDArray[np.float64], x: NDArray[np.float64], *, inclusive: bool
) -> NDArray[np.intp]:
    """How many sorted `edges` lie below each value (at or below it when `inclusive`).

    The same as ``np.searchsorted(edges, x, side="right" if inclusive else "left")`` for
    every non-NaN value (a NaN gets an unspecified count: callers give NaN its own bin).
    With few edges, one comparison pass per edge over contiguous memory is many times
    faster than a branchy binary search per value, so it is used up to `COMPARE_LIMIT`.
    """
    edges_f = np.asarray(edges, dtype=np.float64)
    if len(edges_f) > COMPARE_LIMIT:
        side: Literal["left", "right"] = "right" if inclusive else "left"
        return np.searchsorted(edges_f, x, side=side).astype(np.intp, copy=False)
    count = np.zeros(len(x), dtype=np.uint8)
    hit = np.empty(len(x), dtype=np.bool_)
    compare = np.greater_equal if inclusive else np.greater
    for edge in edges_f:
        compare(x, edge, out=hit)
        count += hit
    return count.astype(np.intp)


def _as_float(values: pd.Series | NDArray[Any]) -> NDArray[np.float64]:
    if isinstance(values, pd.Series):
        return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=np.float64).copy()
    return np.asarray(values, dtype=np.float64).copy()


def _fmt(value: float) -> str:
    return f"{value:.6g}"
