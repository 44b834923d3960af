"""Serving: read an artefact folder and score, in batch (vectorised) or one applicant.

Needs numpy and pandas only: never optbinning, scikit-learn or LightGBM (the GBM is
served from its exact TreeSHAP tables, which also give its margin). Both models give
the same outputs: the unrounded PD, the score (350–950), the tier, and up to four
reasons, each the feature that cost the most points:

* scorecard: points below the best attainable for that feature (its top bin);
* GBM: the feature's TreeSHAP contribution to the calibrated log-odds of bad, in points
  (``factor · b · φ``), against the path-dependent reference (training row counts in the
  trees, see `creditline.scoring.treeshap`); only positive contributions are reasons.

Unseen categories and missing values fall in the feature's missing bin.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas
import pandas as pd
from numpy.typing import NDArray

from creditline.scoring.binning import FeatureBins
from creditline.scoring.domain.reasons import MAX_REASONS, make_reason, reason_code
from creditline.scoring.domain.result import ScoreResult
from creditline.scoring.domain.scale import MAX_SCORE, MIN_SCORE, ScoreScale, clip_round, tier_of
from creditline.scoring.treeshap import ShapTable

TIER_NAMES = np.array(["poor", "fair", "good", "very_good", "excellent"])
TIER_EDGES = np.array([550, 600, 650, 700])
CHUNK = 131_072

# per table: (global-to-cell look-ups per feature, margin per cell, φ column per feature)
Plan = tuple[
    list[tuple[int, NDArray[np.int64]]], NDArray[np.float64], list[tuple[int, NDArray[np.float64]]]
]


@dataclass(frozen=True, slots=True)
class BatchScores:
    """Vectorised results, one row per input row; `reason_features`: feature indices, -1 none."""

    raw: NDArray[np.float64]
    pd: NDArray[np.float64]
    score: NDArray[np.int64]
    reason_features: NDArray[np.int64]  # (n, 4)
    reason_points: NDArray[np.float64]  # (n, 4)
    features: tuple[str, ...]

    def frame(self) -> pandas.DataFrame:
        codes = np.array([reason_code(f) for f in self.features] + [""], dtype=object)
        out = pd.DataFrame(
            {
                "score": self.score,
                "pd": self.pd,
                "tier": TIER_NAMES[np.searchsorted(TIER_EDGES, self.score, side="right")],
            }
        )
        if len(set(codes)) < len(codes):  # two feature names with one code: plain strings
            for k in range(MAX_REASONS):
                out[f"reason_{k + 1}"] = codes[self.reason_features[:, k]]
            return out
        for k in range(MAX_REASONS):
            # categorical columns: one small code per row instead of a Python string object
            out[f"reason_{k + 1}"] = pd.Categorical.from_codes(
                np.where(
                    self.reason_features[:, k] < 0, len(codes) - 1, self.reason_features[:, k]
                ),
                categories=pd.Index(codes),
            )
        return out


def _top_reasons(loss: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Indices and sizes of the four largest positive losses per row (ties: lower index)."""
    n, f = loss.shape
    k = min(MAX_REASONS, f)
    order = np.argsort(-loss, axis=1, kind="stable")[:, :k]
    size = np.take_along_axis(loss, order, axis=1)
    idx = np.where(size > 1e-9, order, -1)
    size = np.where(size > 1e-9, size, 0.0)
    if k < MAX_REASONS:
        idx = np.hstack([idx, np.full((n, MAX_REASONS - k), -1)])
        size = np.hstack([size, np.zeros((n, MAX_REASONS - k))])
    return idx.astype(np.int64), size


class Scorer(ABC):
    """Common part: the scale and the manifest."""

    kind = ""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest
        self.version: str = manifest["version"]
        self.scale = ScoreScale(**manifest["scale"])
        self.features: tuple[str, ...] = tuple(manifest["features"])
        self._factor = self.scale.factor
        self._offset = self.scale.offset

    def _finish(self, raw: NDArray[np.float64], loss: NDArray[np.float64]) -> BatchScores:
        pd_ = 1.0 / (1.0 + np.exp((raw - self._offset) / self._factor))
        score = np.clip(np.floor(raw + 0.5), MIN_SCORE, MAX_SCORE).astype(np.int64)
        idx, size = _top_reasons(loss)
        return BatchScores(raw, pd_, score, idx, size, self.features)

    def score_batch(self, data: pd.DataFrame) -> BatchScores:
        missing = [f for f in self.features if f not in data.columns]
        if missing:
            raise KeyError(f"columns absent from the data: {missing}")
        parts = [self._score_chunk(data.iloc[i : i + CHUNK]) for i in range(0, len(data), CHUNK)]
        if not parts:
            raise ValueError("no rows to score")
        return BatchScores(
            np.concatenate([p.raw for p in parts]),
            np.concatenate([p.pd for p in parts]),
            np.concatenate([p.score for p in parts]),
            np.concatenate([p.reason_features for p in parts]),
            np.concatenate([p.reason_points for p in parts]),
            self.features,
        )

    @abstractmethod
    def _score_chunk(self, data: pd.DataFrame) -> BatchScores:
        """Score up to `CHUNK` rows at once (the model kind's vectorised path)."""

    @abstractmethod
    def score(self, features: Mapping[str, Any]) -> ScoreResult:
        """Score one applicant in process, with reasons."""

    def _result(self, raw: float, losses: list[tuple[float, int]]) -> ScoreResult:
        pd_ = 1.0 / (1.0 + math.exp((raw - self._offset) / self._factor))
        score = clip_round(raw)
        losses.sort(key=lambda item: (-item[0], item[1]))
        reasons = tuple(
            make_reason(self.features[j], loss) for loss, j in losses[:MAX_REASONS] if loss > 1e-9
        )
        return ScoreResult(score, pd_, tier_of(score), reasons, self.version)


class ScorecardScorer(Scorer):
    kind = "scorecard"

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        super().__init__(folder, manifest)
        body = json.loads((folder / "scorecard.json").read_text())
        self.bins = [FeatureBins.from_dict(f["bins"]) for f in body["features"]]
        self.points = [np.asarray(f["points"], dtype=np.float64) for f in body["features"]]
        self.best = np.array([p.max() for p in self.points])
        self._points_lists = [p.tolist() for p in self.points]
        self._best_list = self.best.tolist()
        self._lookups = [
            {c: k for k, g in enumerate(b.groups) for c in g} if b.kind == "categorical" else None
            for b in self.bins
        ]

    def _score_chunk(self, data: pd.DataFrame) -> BatchScores:
        pts = np.empty((len(data), len(self.bins)))
        for j, (bins, points) in enumerate(zip(self.bins, self.points, strict=True)):
            pts[:, j] = points[bins.assign(data[bins.name])]
        return self._finish(pts.sum(axis=1), self.best - pts)

    def score(self, features: Mapping[str, Any]) -> ScoreResult:
        raw = 0.0
        losses = []
        for j, bins in enumerate(self.bins):
            value = features.get(bins.name)
            lookup = self._lookups[j]
            if lookup is None:
                b = bins.assign_one(value)
            elif value is None or (isinstance(value, float) and value != value):
                b = bins.missing_bin
            else:
                b = lookup.get(str(value), bins.missing_bin)
            p = self._points_lists[j][b]
            raw += p
            losses.append((self._best_list[j] - p, j))
        return self._result(raw, losses)


class GbmScorer(Scorer):
    kind = "gbm"

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        super().__init__(folder, manifest)
        body = json.loads((folder / "gbm.json").read_text())
        self.woe_bins = {
            n: (FeatureBins.from_dict(v["bins"]), np.asarray(v["woe"]))
            for n, v in body["woe_maps"].items()
        }
        self.special_values = {n: tuple(v) for n, v in body["special_values"].items()}
        self.expected_value = float(body["expected_value"])
        self.constant_margin = float(body.get("constant_margin", 0.0))
        a, b = body["calibration"]
        self.a, self.b = float(a), float(b)
        tables = np.load(folder / "shap_tables.npz")
        self.tables: list[ShapTable] = []
        for t in range(int(tables["count"])):
            feats = tuple(int(f) for f in tables[f"t{t}_features"])
            thr = tuple(tables[f"t{t}_thr{k}"] for k in range(len(feats)))
            self.tables.append(ShapTable(feats, thr, tables[f"t{t}_margin"], tables[f"t{t}_phi"]))
        self._prepare()

    def _prepare(self) -> None:
        """Global thresholds per feature and, per table, look-ups from global to local bins.

        A row's global bin per feature is found once (one `searchsorted` per feature);
        each table then maps it to its own cell with small look-up arrays, since a
        table's thresholds are a subset of the feature's global thresholds.
        """
        pooled: list[list[NDArray[np.float64]]] = [[] for _ in self.features]
        for table in self.tables:
            for f, thr in zip(table.features, table.thresholds, strict=True):
                pooled[f].append(thr)
        self.global_thresholds = [
            np.unique(np.concatenate(p)) if p else np.empty(0) for p in pooled
        ]
        self._plans: list[Plan] = []
        for table in self.tables:
            luts: list[tuple[int, NDArray[np.int64]]] = []
            stride = 1
            for f, thr in reversed(list(zip(table.features, table.thresholds, strict=True))):
                glob = self.global_thresholds[f]
                lut = np.r_[np.searchsorted(thr, glob, side="left"), len(thr), len(thr) + 1]
                luts.append((f, (lut * stride).astype(np.int64)))
                stride *= len(thr) + 2
            phi_t = np.ascontiguousarray(table.phi.T)
            columns = [(f, phi_t[j]) for j, f in enumerate(table.features)]
            self._plans.append((luts, np.ascontiguousarray(table.margin), columns))
        self._single_thr = [g.tolist() for g in self.global_thresholds]
        self._single_plans = [
            (
                [(f, lut.tolist()) for f, lut in luts],
                margin.tolist(),
                [(f, c.tolist()) for f, c in cols],
            )
            for luts, margin, cols in self._plans
        ]

    def global_bins(self, M: NDArray[np.float64]) -> list[NDArray[np.intp]]:
        bins = []
        for f, glob in enumerate(self.global_thresholds):
            x = np.ascontiguousarray(M[:, f])
            b = np.searchsorted(glob, x, side="left")
            b[np.isnan(x)] = len(glob) + 1
            bins.append(b)
        return bins

    def matrix(self, data: pd.DataFrame) -> NDArray[np.float64]:
        out = np.empty((len(data), len(self.features)))
        for j, name in enumerate(self.features):
            if name in self.woe_bins:
                bins, woe = self.woe_bins[name]
                out[:, j] = woe[bins.assign(data[name])]
            else:
                col = np.asarray(
                    pd.to_numeric(data[name], errors="coerce"), dtype=np.float64
                ).copy()
                specials = self.special_values.get(name, ())
                if specials:
                    col[np.isin(col, np.asarray(specials))] = np.nan
                out[:, j] = col
        return out

    def contributions(
        self, M: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(margin, φ): raw LightGBM margin and exact TreeSHAP contributions per feature."""
        bins = self.global_bins(M)
        n = len(M)
        phi_t = np.zeros((len(self.features), n))
        margin = np.full(n, self.constant_margin)
        for luts, table_margin, columns in self._plans:
            f0, lut0 = luts[0]
            cell = lut0[bins[f0]]
            for f, lut in luts[1:]:
                cell += lut[bins[f]]
            margin += table_margin[cell]
            for f, column in columns:
                phi_t[f] += column[cell]
        return margin, phi_t.T

    def _single(self, x: list[float]) -> tuple[float, list[float]]:
        """Margin and contributions of one row in plain Python (no per-call numpy overhead)."""
        gbins = [
            len(glob) + 1 if v != v else bisect_left(glob, v)
            for v, glob in zip(x, self._single_thr, strict=True)
        ]
        margin = self.constant_margin
        phi = [0.0] * len(x)
        for luts, table_margin, columns in self._single_plans:
            cell = 0
            for f, lut in luts:
                cell += lut[gbins[f]]
            margin += table_margin[cell]
            for f, column in columns:
                phi[f] += column[cell]
        return margin, phi

    def _score_chunk(self, data: pd.DataFrame) -> BatchScores:
        margin, phi = self.contributions(self.matrix(data))
        logit = self.a + self.b * margin
        raw = self._offset - self._factor * logit
        return self._finish(raw, self._factor * self.b * phi)

    def score(self, features: Mapping[str, Any]) -> ScoreResult:
        x = []
        for name in self.features:
            value = features.get(name)
            if name in self.woe_bins:
                bins, woe = self.woe_bins[name]
                x.append(float(woe[bins.assign_one(value)]))
                continue
            try:
                v = float(value) if value is not None else math.nan
            except (TypeError, ValueError):
                v = math.nan
            if v in self.special_values.get(name, ()):
                v = math.nan
            x.append(v)
        margin, phi = self._single(x)
        raw = self._offset - self._factor * (self.a + self.b * margin)
        points = self._factor * self.b
        return self._result(raw, [(points * p, j) for j, p in enumerate(phi)])


def load_model(folder: str | Path) -> Scorer:
    path = Path(folder)
    manifest = json.loads((path / "manifest.json").read_text())
    if manifest["kind"] == "scorecard":
        return ScorecardScorer(path, manifest)
    if manifest["kind"] == "gbm":
        return GbmScorer(path, manifest)
    raise ValueError(f"unknown model kind {manifest['kind']!r} in {path}")
