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
from typing import Any

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
            idx = np.searchsorted(np.asarray(self.splits, dtype=np.float64), x, side="right")
            if self.special_values:
                idx[np.isin(x, np.asarray(self.special_values, dtype=np.float64))] = (
                    self.special_bin
                )
            idx[np.isnan(x)] = self.missing_bin
            return idx.astype(np.intp)
        lookup = {category: k for k, group in enumerate(self.groups) for category in group}
        series = pd.Series(values).astype("string")
        codes = series.map(lookup)
        return np.asarray(codes.fillna(self.missing_bin), dtype=np.intp)

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


def _as_float(values: pd.Series | NDArray[Any]) -> NDArray[np.float64]:
    if isinstance(values, pd.Series):
        return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=np.float64).copy()
    return np.asarray(values, dtype=np.float64).copy()


def _fmt(value: float) -> str:
    return f"{value:.6g}"
