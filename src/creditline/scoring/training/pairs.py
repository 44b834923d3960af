"""Pair cells for the scorecard: depth-2 trees on pairs of its features, folded into tables.

Why: a points table is additive; where risk lies in combinations (HMEQ, where the GBM
wins with free depth-4 trees), no per-feature points can express it. A few pair tables
(points per bin of A × bin of B, `creditline.scoring.pairs`) keep the card readable and
add the strongest interactions (the GA2M form; EBM ranks pairs the same way, by what
they add to the additive model's residual).

Rule (the training part only, the same for every dataset):

* Candidates: the card's features with two bins or more, as the refinement sees them
  (numbers raw with special values as missing, categories as their WoE).
* Ranking: `pair_rank_rounds` depth-2 trees boosted from the card's logit, free to
  split on any feature (on a seeded sample of `refine_cv_max_rows` rows for larger
  books); a pair's strength is the split gain of every second-level split on B under a
  first split on A. The `pair_max` strongest pairs are kept as candidates.
* Fit: depth-2 trees restricted to those pairs (LightGBM's interaction constraints: every
  path in a tree splits on the features of one pair), boosted from the card's logit with
  `pair_max_bin` histogram bins, early-stopped and judged as the refinement is (k-fold CV
  up to `refine_cv_max_rows` training rows, a 20 % holdout above). The cells are kept
  only when the validation AUC beats the card's by `pair_margin`; otherwise the card is
  returned unchanged. Calibration: Platt scaling on the validation logits.
* Folding: a tree's output is the sum of its leaves' values, each leaf a function of the
  one or two features on its path; leaves are grouped by the pair of their path (a leaf
  with one feature on its path joins its sibling subtree's pair, or the first candidate
  pair with that feature). A pair's axes are its features' bins cut at every threshold
  its trees use, less cuts that would open a bin without training rows (special and
  missing values keep bins of their own, categories keep their scorecard groups), so
  each cell holds the trees' exact output: on every training row, and on any value
  except one in an interval no training row fell in, the tables give the boosted
  model's logit.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from creditline.scoring import treeshap
from creditline.scoring.binning import FeatureBins, count_at_or_below
from creditline.scoring.training.gbm import gbm_matrix
from creditline.scoring.training.refine import ZERO, Budget, boost_on_card, occupied_splits
from creditline.scoring.training.scorecard import (
    BinStats,
    FittedScorecard,
    PairFit,
    ScorecardParams,
    points_table,
)

Pair = tuple[int, int]


def add_pairs(
    sc: FittedScorecard,
    X: pd.DataFrame,
    y: NDArray[np.int8],
    *,
    special_values: dict[str, tuple[float, ...]] | None = None,
    params: ScorecardParams | None = None,
) -> FittedScorecard:
    """`sc` with pair tables added to its points, or `sc` when validation says they do not help."""
    params = params or ScorecardParams()
    special_values = special_values or {}
    features = tuple(n for n in sc.selected if sc.stats[n].bins.n_regular > 1)
    if params.pair_max <= 0 or len(features) < 2:
        return replace(sc, pair_search={"applied": False, "reason": "disabled or < 2 features"})
    woe_maps = {n: sc.stats[n] for n in features if sc.stats[n].bins.kind == "categorical"}
    M = gbm_matrix(X, features, woe_maps, special_values)
    z0 = sc.raw_logit(X)
    candidates = rank_pairs(M, y, z0, params)[: params.pair_max]
    if not candidates:
        return replace(sc, pair_search={"applied": False, "reason": "no pair adds a split"})
    budget = Budget(
        "depth-2 trees on pairs", params.pair_rounds, params.refine_patience, params.pair_margin
    )
    final, info = boost_on_card(M, y, z0, _lgb_params(params, candidates), params, budget)
    info["candidates"] = [[features[a], features[b]] for a, b in candidates]
    if final is None:
        return replace(sc, pair_search=info | {"applied": False})
    calibration = info.pop("calibration")
    fitted, constant = pair_tables(final, [sc.stats[n] for n in features], candidates, X, y)
    intercept = sc.intercept + constant
    return replace(
        sc,
        intercept=intercept,
        calibration=calibration,
        points=points_table(sc.contributions, intercept, calibration, sc.scale),
        pairs=fitted,
        pair_search=info
        | {"applied": True, "pairs": [[p.first.name, p.second.name] for p in fitted]},
    )


def pair_tables(
    booster: lgb.Booster,
    stats: list[BinStats],
    candidates: list[Pair],
    X: pd.DataFrame,
    y: NDArray[np.int8],
) -> tuple[tuple[PairFit, ...], float]:
    """The booster's trees as pair tables (in the order of `candidates`) and a constant.

    `stats[j]`: the scorecard bins of the booster's input column j; `X`, `y`: the training
    rows. Summed with the constant, the tables' cells give the booster's raw margin on
    every training row, and on any row whose values fall in intervals training rows
    reached (see `_axis`).
    """
    trees = treeshap.flatten_lightgbm(booster.dump_model())
    parts, constant = fold_trees(trees, candidates)
    tables = tuple(
        _pair_table(stats[a], stats[b], parts[(a, b)], a, b, len(stats), X, y)
        for a, b in candidates
        if (a, b) in parts
    )
    return tables, constant


def rank_pairs(
    M: NDArray[np.float64], y: NDArray[np.int8], z0: NDArray[np.float64], params: ScorecardParams
) -> list[Pair]:
    """Pairs (a < b) by the gain of second-level splits in free depth-2 trees, strongest first.

    On at most `refine_cv_max_rows` rows (a seeded sample of larger books): the ranking only
    needs the strongest pairs, and the fit that follows judges them on every row."""
    if len(y) > params.refine_cv_max_rows:
        rng = np.random.default_rng(params.seed)
        rows = np.sort(rng.choice(len(y), params.refine_cv_max_rows, replace=False))
        M, y, z0 = M[rows], y[rows], z0[rows]
    data = lgb.Dataset(M, label=y, init_score=z0, params={"max_bin": params.pair_max_bin})
    booster = lgb.train(_lgb_params(params, None), data, num_boost_round=params.pair_rank_rounds)
    gain: dict[Pair, float] = defaultdict(float)
    for info in booster.dump_model()["tree_info"]:
        root = info["tree_structure"]
        if "split_feature" not in root:
            continue
        a = int(root["split_feature"])
        for child in (root["left_child"], root["right_child"]):
            if "split_feature" in child and int(child["split_feature"]) != a:
                b = int(child["split_feature"])
                gain[(min(a, b), max(a, b))] += float(child["split_gain"])
    return sorted((p for p in gain if gain[p] > 0), key=lambda p: (-gain[p], p))


def fold_trees(
    trees: list[treeshap.FlatTree], pairs: list[Pair]
) -> tuple[dict[Pair, list[treeshap.FlatTree]], float]:
    """Each tree cut into per-pair parts (the tree with other leaves' values set to zero),
    and the sum of the trees that never split (a constant)."""
    parts: dict[Pair, list[treeshap.FlatTree]] = defaultdict(list)
    constant = 0.0
    for tree in trees:
        if tree.left[0] < 0:
            constant += float(tree.value[0])
            continue
        a = int(tree.feature[0])
        by_pair: dict[Pair, list[int]] = defaultdict(list)
        lone: list[int] = []
        for child in (int(tree.left[0]), int(tree.right[0])):
            leaves = _leaves(tree, child)
            b = int(tree.feature[child])
            if tree.left[child] < 0 or b == a:
                lone += leaves
            else:
                by_pair[(min(a, b), max(a, b))] += leaves
        if lone:
            home = next(iter(by_pair), None) or next(p for p in pairs if a in p)
            by_pair[home] += lone
        for pair, leaves in by_pair.items():
            value = np.zeros_like(tree.value)
            value[leaves] = tree.value[leaves]
            parts[pair].append(replace(tree, value=value))
    return dict(parts), constant


def _leaves(tree: treeshap.FlatTree, node: int) -> list[int]:
    if tree.left[node] < 0:
        return [node]
    return _leaves(tree, int(tree.left[node])) + _leaves(tree, int(tree.right[node]))


def _pair_table(
    first: BinStats,
    second: BinStats,
    parts: list[treeshap.FlatTree],
    a: int,
    b: int,
    n_columns: int,
    X: pd.DataFrame,
    y: NDArray[np.int8],
) -> PairFit:
    """The pair's axes (bins cut at its trees' thresholds) and the trees' output per cell."""
    axis_a, inputs_a = _axis(first, parts, a, X[first.bins.name])
    axis_b, inputs_b = _axis(second, parts, b, X[second.bins.name])
    grid = np.full((len(inputs_a) * len(inputs_b), n_columns), np.nan)
    grid[:, a] = np.repeat(inputs_a, len(inputs_b))
    grid[:, b] = np.tile(inputs_b, len(inputs_a))
    values = np.zeros(len(grid))
    for tree in parts:
        values += tree.predict(grid)
    shape = (axis_a.n_bins, axis_b.n_bins)
    fit = PairFit(
        axis_a,
        axis_b,
        values.reshape(shape),
        np.zeros(shape, dtype=np.int64),
        np.zeros(shape, dtype=np.int64),
    )
    cells = fit.cells(X)
    size = shape[0] * shape[1]
    counts = np.bincount(cells, minlength=size).reshape(shape)
    bads = np.bincount(cells, weights=y, minlength=size).astype(np.int64).reshape(shape)
    return replace(fit, counts=counts, bads=bads)


def _axis(
    stats: BinStats, parts: list[treeshap.FlatTree], column: int, x: pd.Series
) -> tuple[FeatureBins, NDArray[np.float64]]:
    """An axis's bins and, per bin, the input the trees see there.

    Categories keep their scorecard groups (the trees see each group's WoE). Numbers are
    cut at every threshold ``t`` the pair's trees use on this feature (LightGBM sends
    ``x <= t`` left and a bin's lower edge is inclusive, so the edge is the next float
    above ``t``; LightGBM's ±1e-35 thresholds around zero read as zero), less the cuts
    that would leave a bin without training rows (the empty bin joins its neighbour, as
    in the refinement); a bin's input is its smallest training value, so every training
    row gets the trees' exact output. Special values and missing values are missing.
    """
    bins = stats.bins
    if bins.kind == "categorical":
        return bins, np.asarray(stats.woe, dtype=np.float64)
    thresholds = {
        float(t.threshold[k])
        for t in parts
        for k in range(len(t.feature))
        if t.left[k] >= 0 and int(t.feature[k]) == column
    }
    seen = np.asarray(pd.to_numeric(x, errors="coerce"), dtype=np.float64).copy()
    if bins.special_values:
        seen[np.isin(seen, np.asarray(bins.special_values))] = np.nan
    edges = sorted({0.0 if -ZERO < e < 0 else e for e in map(_above, thresholds)})
    splits = occupied_splits(edges, seen)
    values = seen[~np.isnan(seen)]
    reps = np.full(len(splits) + 1, np.inf)
    np.minimum.at(reps, count_at_or_below(splits, values, inclusive=True), values)
    reps[np.isinf(reps)] = 0.0  # no training value at all: one bin, read anywhere
    axis = FeatureBins(bins.name, "numerical", splits=splits, special_values=bins.special_values)
    return axis, np.r_[reps, np.nan, np.nan]


def _above(threshold: float) -> float:
    return math.nextafter(threshold, math.inf)


def _lgb_params(params: ScorecardParams, pairs: list[Pair] | None) -> dict[str, Any]:
    """Depth-2 trees; restricted to `pairs` when given (interaction constraints)."""
    out: dict[str, Any] = {
        "objective": "binary",
        "learning_rate": params.refine_learning_rate,
        "max_depth": 2,
        "num_leaves": 4,
        "min_child_samples": params.refine_min_child_samples,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "max_bin": params.pair_max_bin,
        "seed": params.seed,
        "num_threads": 1,
        "verbose": -1,
        "deterministic": True,
    }
    if pairs is not None:
        out["interaction_constraints"] = [list(p) for p in pairs]
    return out
