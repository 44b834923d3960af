"""Serving: read an artefact folder and score, in batch (vectorised) or one applicant.

Needs numpy and pandas only: never optbinning, scikit-learn or LightGBM (the GBM is
served from its exact TreeSHAP tables, which also give its margin). Both models give
the same outputs: the unrounded PD, the score (350–950), the tier, and up to four
reasons, each the feature that cost the most points:

* scorecard: points below the best attainable for that feature (its top bin), and for
  each pair table (`creditline.scoring.pairs`) points below its best cell, a reason
  naming both features;
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

from creditline.scoring.binning import FeatureBins, count_at_or_below
from creditline.scoring.domain.reasons import (
    MAX_REASONS,
    Reason,
    make_pair_reason,
    make_reason,
    pair_reason_code,
    reason_code,
)
from creditline.scoring.domain.result import ScoreResult
from creditline.scoring.domain.scale import MAX_SCORE, MIN_SCORE, ScoreScale, clip_round, tier_of
from creditline.scoring.pairs import PairCells
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
    features: tuple[str, ...]  # what each reason index names: a feature, or "A × B" for a pair
    codes: tuple[str, ...] = ()  # the reason code of each; empty: `reason_code` of each feature

    def frame(self) -> pandas.DataFrame:
        named = self.codes or tuple(reason_code(f) for f in self.features)
        codes = np.array([*named, ""], dtype=object)
        out = pd.DataFrame(
            {
                "score": self.score,
                "pd": self.pd,
                # a categorical column: one small code per row, not a string object per row
                "tier": pd.Categorical.from_codes(
                    np.searchsorted(TIER_EDGES, self.score, side="right"),
                    categories=pd.Index(TIER_NAMES),
                ),
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


def top_reasons(loss: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The four largest losses of every row above 1e-9 points: feature indices (-1: none), sizes.

    `loss` has shape ``(rows, features)`` and is overwritten. Four rounds of one `argmax`
    per row (it returns the lowest index among equal losses: the order of the one-row
    path, by loss and then by feature index), each taking the found loss out of the next
    round; no per-row sort. Returns arrays of shape ``(rows, 4)``.
    """
    n, f = loss.shape
    idx = np.full((n, MAX_REASONS), -1, dtype=np.int64)
    size = np.zeros((n, MAX_REASONS))
    if f == 0 or n == 0:
        return idx, size
    flat = loss.reshape(-1)  # a view: `loss` is C-contiguous
    base = np.arange(0, n * f, f)
    for k in range(min(MAX_REASONS, f)):
        at = base + loss.argmax(axis=1)
        value = flat[at]
        found = value > 1e-9
        idx[:, k] = np.where(found, at - base, -1)
        size[:, k] = np.where(found, value, 0.0)
        flat[at] = -np.inf
    return idx, size


class Scorer(ABC):
    """Common part: the scale and the manifest."""

    kind = ""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest
        self.version: str = manifest["version"]
        self.scale = ScoreScale(**manifest["scale"])
        self.features: tuple[str, ...] = tuple(manifest["features"])
        # what a reason index names, and its code (the scorecard adds its pairs)
        self.reason_labels: tuple[str, ...] = self.features
        self.reason_codes: tuple[str, ...] = tuple(reason_code(f) for f in self.features)
        self._factor = self.scale.factor
        self._offset = self.scale.offset

    def score_batch(self, data: pd.DataFrame) -> BatchScores:
        missing = [f for f in self.features if f not in data.columns]
        if missing:
            raise KeyError(f"columns absent from the data: {missing}")
        n = len(data)
        if n == 0:
            raise ValueError("no rows to score")
        raw = np.empty(n)
        reason_features = np.empty((n, MAX_REASONS), dtype=np.int64)
        reason_points = np.empty((n, MAX_REASONS))
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            raw[start:stop], loss_t = self._score_chunk(data.iloc[start:stop])
            reason_features[start:stop], reason_points[start:stop] = top_reasons(loss_t)
        pd_ = 1.0 / (1.0 + np.exp((raw - self._offset) / self._factor))
        score = np.clip(np.floor(raw + 0.5), MIN_SCORE, MAX_SCORE).astype(np.int64)
        return BatchScores(
            raw, pd_, score, reason_features, reason_points, self.reason_labels, self.reason_codes
        )

    @abstractmethod
    def _score_chunk(self, data: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Unclipped scores and point losses ``(rows, features)`` of up to `CHUNK` rows."""

    @abstractmethod
    def score(self, features: Mapping[str, Any]) -> ScoreResult:
        """Score one applicant in process, with reasons."""

    def _result(self, raw: float, losses: list[tuple[float, int]]) -> ScoreResult:
        pd_ = 1.0 / (1.0 + math.exp((raw - self._offset) / self._factor))
        score = clip_round(raw)
        losses.sort(key=lambda item: (-item[0], item[1]))
        reasons = tuple(self._reason(j, loss) for loss, j in losses[:MAX_REASONS] if loss > 1e-9)
        return ScoreResult(score, pd_, tier_of(score), reasons, self.version)

    def _reason(self, j: int, loss: float) -> Reason:
        return make_reason(self.features[j], loss)


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
        self.pairs = [PairCells.from_dict(p) for p in body.get("pairs", [])]
        self._pair_points = [p.points.reshape(-1) for p in self.pairs]
        self._pair_lists = [p.tolist() for p in self._pair_points]
        self._pair_best = [p.best for p in self.pairs]
        self.reason_labels = (*self.features, *(p.label for p in self.pairs))
        self.reason_codes = (
            *self.reason_codes,
            *(pair_reason_code(p.first.name, p.second.name) for p in self.pairs),
        )

    def _score_chunk(self, data: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        n_features = len(self.bins)
        loss = np.empty((len(data), n_features + len(self.pairs)))
        raw = np.zeros(len(data))
        for j, (bins, points) in enumerate(zip(self.bins, self.points, strict=True)):
            pts = points[bins.assign(data[bins.name])]
            raw += pts  # feature by feature, then pair by pair: the order of the one-row sum
            np.subtract(self.best[j], pts, out=loss[:, j])
        for k, (pair, points) in enumerate(zip(self.pairs, self._pair_points, strict=True)):
            pts = points[pair.cells(data)]
            raw += pts
            np.subtract(self._pair_best[k], pts, out=loss[:, n_features + k])
        return raw, loss

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
        n_features = len(self.bins)
        for k, pair in enumerate(self.pairs):
            cell = pair.cell_one(features.get(pair.first.name), features.get(pair.second.name))
            p = self._pair_lists[k][cell]
            raw += p
            losses.append((self._pair_best[k] - p, n_features + k))
        return self._result(raw, losses)

    def _reason(self, j: int, loss: float) -> Reason:
        if j < len(self.bins):
            return make_reason(self.features[j], loss)
        pair = self.pairs[j - len(self.bins)]
        return make_pair_reason(pair.first.name, pair.second.name, loss)


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
        loaded: list[ShapTable] = []
        for t in range(int(tables["count"])):
            feats = tuple(int(f) for f in tables[f"t{t}_features"])
            thr = tuple(tables[f"t{t}_thr{k}"] for k in range(len(feats)))
            loaded.append(ShapTable(feats, thr, tables[f"t{t}_margin"], tables[f"t{t}_phi"]))
        self.table_count = len(loaded)
        self._prepare(loaded)

    def _prepare(self, tables: list[ShapTable]) -> None:
        """Global thresholds per feature and, per table, look-ups from global to local bins.

        A row's global bin per feature is found once per feature; each table then maps it
        to its own cell with small look-up arrays, since a table's thresholds are a subset
        of the feature's global thresholds. Every table's margins, and every table's φ
        column per feature, are laid end to end in one array each (`_margin_all`,
        `_phi_all`): the batch path works on views of them, the one-row path gathers from
        them with a few index arrays, and the tables are held in memory once.
        """
        pooled: list[list[NDArray[np.float64]]] = [[] for _ in self.features]
        for table in tables:
            for f, thr in zip(table.features, table.thresholds, strict=True):
                pooled[f].append(thr)
        self.global_thresholds = [
            np.unique(np.concatenate(p)) if p else np.empty(0) for p in pooled
        ]
        self._margin_all = np.concatenate([t.margin for t in tables]) if tables else np.empty(0)
        self._phi_all = (
            np.concatenate([np.ravel(t.phi.T) for t in tables]) if tables else np.empty(0)
        )
        self._plans: list[Plan] = []
        lut_parts: list[NDArray[np.int64]] = []
        lut_base: list[int] = []
        lut_feature: list[int] = []
        lut_start: list[int] = []
        column_base: list[int] = []
        column_feature: list[int] = []
        column_table: list[int] = []
        margin_base: list[int] = []
        margin_at = phi_at = lut_at = 0
        for t, table in enumerate(tables):
            luts: list[tuple[int, NDArray[np.int64]]] = []
            stride = 1
            lut_start.append(len(lut_base))
            for f, thr in reversed(list(zip(table.features, table.thresholds, strict=True))):
                glob = self.global_thresholds[f]
                lut = np.r_[np.searchsorted(thr, glob, side="left"), len(thr), len(thr) + 1]
                lut = (lut * stride).astype(np.int64)
                luts.append((f, lut))
                lut_parts.append(lut)
                lut_base.append(lut_at)
                lut_feature.append(f)
                lut_at += len(lut)
                stride *= len(thr) + 2
            cells = len(table.margin)
            margin = self._margin_all[margin_at : margin_at + cells]
            margin_base.append(margin_at)
            margin_at += cells
            columns = []
            for f in table.features:
                columns.append((f, self._phi_all[phi_at : phi_at + cells]))
                column_base.append(phi_at)
                column_feature.append(f)
                column_table.append(t)
                phi_at += cells
            self._plans.append((luts, margin, columns))
        self._single_thr = [g.tolist() for g in self.global_thresholds]
        self._lut_all = np.concatenate(lut_parts) if lut_parts else np.empty(0, dtype=np.int64)
        self._lut_base = np.asarray(lut_base, dtype=np.int64)
        self._lut_feature = np.asarray(lut_feature, dtype=np.int64)
        self._lut_start = np.asarray(lut_start, dtype=np.int64)
        self._margin_base = np.asarray(margin_base, dtype=np.int64)
        self._column_base = np.asarray(column_base, dtype=np.int64)
        self._column_feature = np.asarray(column_feature, dtype=np.int64)
        self._column_table = np.asarray(column_table, dtype=np.int64)

    def global_bins(self, M: NDArray[np.float64]) -> list[NDArray[np.intp]]:
        bins = []
        for f, glob in enumerate(self.global_thresholds):
            x = np.ascontiguousarray(M[:, f])
            b = count_at_or_below(glob, x, inclusive=False)
            b[np.isnan(x)] = len(glob) + 1
            bins.append(b)
        return bins

    def matrix(self, data: pd.DataFrame) -> NDArray[np.float64]:
        out = np.empty((len(data), len(self.features)))
        for j, name in enumerate(self.features):
            out[:, j] = self._column(data, name)
        return out

    def _column(self, data: pd.DataFrame, name: str) -> NDArray[np.float64]:
        """The booster's input for one feature: its WoE for a category, else the number."""
        if name in self.woe_bins:
            bins, woe = self.woe_bins[name]
            return np.asarray(woe[bins.assign(data[name])], dtype=np.float64)
        col = np.asarray(pd.to_numeric(data[name], errors="coerce"), dtype=np.float64).copy()
        specials = self.special_values.get(name, ())
        if specials:
            col[np.isin(col, np.asarray(specials))] = np.nan
        return col

    def contributions(
        self, M: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(margin, φ): raw LightGBM margin and exact TreeSHAP contributions per feature."""
        margin, phi_t = self._contributions_t([np.ascontiguousarray(c) for c in M.T])
        return margin, phi_t.T

    def _contributions_t(
        self, columns: list[NDArray[np.float64]]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Margin and φ laid out feature by feature ``(features, rows)``, from input columns."""
        n = len(columns[0]) if columns else 0
        bins = []
        for glob, x in zip(self.global_thresholds, columns, strict=True):
            b = count_at_or_below(glob, x, inclusive=False)
            b[np.isnan(x)] = len(glob) + 1
            bins.append(b)
        phi_t = np.zeros((len(self.features), n))
        margin = np.full(n, self.constant_margin)
        for luts, table_margin, table_columns in self._plans:
            f0, lut0 = luts[0]
            cell = lut0[bins[f0]]
            for f, lut in luts[1:]:
                cell += lut[bins[f]]
            margin += table_margin[cell]
            for f, column in table_columns:
                phi_t[f] += column[cell]
        return margin, phi_t

    def _single(self, x: list[float]) -> tuple[float, list[float]]:
        """Margin and contributions of one row: a few gathers over all tables at once.

        The sums run in table order, as in the batch path (`np.bincount` adds its weights
        in input order), so both paths give the same floating-point results.
        """
        gbins = np.array(
            [
                len(glob) + 1 if v != v else bisect_left(glob, v)
                for v, glob in zip(x, self._single_thr, strict=True)
            ],
            dtype=np.int64,
        )
        if not len(self._margin_base):
            return self.constant_margin, [0.0] * len(x)
        parts = self._lut_all[self._lut_base + gbins[self._lut_feature]]
        cells = np.add.reduceat(parts, self._lut_start)
        margin = sum(self._margin_all[self._margin_base + cells].tolist(), self.constant_margin)
        values = self._phi_all[self._column_base + cells[self._column_table]]
        phi = np.bincount(self._column_feature, weights=values, minlength=len(x))
        return margin, phi.tolist()

    def _score_chunk(self, data: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        margin, phi_t = self._contributions_t([self._column(data, n) for n in self.features])
        raw = self._offset - self._factor * (self.a + self.b * margin)
        loss = np.empty(phi_t.shape[::-1])
        np.multiply(phi_t.T, self._factor * self.b, out=loss)
        return raw, loss

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
