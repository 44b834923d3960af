"""Pair cells: a scorecard's points for a pair of features, per (bin of A × bin of B).

A scorecard adds one row of points per feature; some risk lies in combinations (a
delinquency weighs more on a short credit history). A pair table keeps that readable:
for features A and B, a grid of A's bins times B's bins with points in each cell, added
to the per-feature points (the GA2M form). Each axis is a `FeatureBins` of its own, so a
value falls in the same kind of bin as in the points table: special values and missing
values have bins of their own, unseen categories fall in the missing bin.

Reason rule, as for a feature: a pair's loss is the best points in its table minus the
points of the row's cell; a positive loss is a reason naming both features.

Serving needs numpy and pandas only (`creditline.scoring.serving` reads these).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from creditline.scoring.binning import FeatureBins


@dataclass(frozen=True, slots=True)
class PairCells:
    """Points per cell of A's bins × B's bins (``points[i, j]``: bin i of A, bin j of B)."""

    first: FeatureBins
    second: FeatureBins
    points: NDArray[np.float64]

    def __post_init__(self) -> None:
        if self.points.shape != (self.first.n_bins, self.second.n_bins):
            raise ValueError(f"{self.label}: points must have one value per cell")

    @property
    def label(self) -> str:
        return f"{self.first.name} × {self.second.name}"

    @property
    def best(self) -> float:
        return float(self.points.max())

    def cells(self, data: pd.DataFrame) -> NDArray[np.intp]:
        """The flat cell index of every row (vectorised)."""
        n_second = self.second.n_bins
        rows = self.first.assign(data[self.first.name])
        return np.asarray(rows * n_second + self.second.assign(data[self.second.name]))

    def cell_one(self, first: Any, second: Any) -> int:
        return self.first.assign_one(first) * self.second.n_bins + self.second.assign_one(second)

    def to_dict(self) -> dict[str, Any]:
        return {
            "first": self.first.to_dict(),
            "second": self.second.to_dict(),
            "points": self.points.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairCells:
        return cls(
            FeatureBins.from_dict(data["first"]),
            FeatureBins.from_dict(data["second"]),
            np.asarray(data["points"], dtype=np.float64),
        )
