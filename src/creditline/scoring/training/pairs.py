"""Pair cells for the scorecard: trees on pairs of its features, folded into tables.

Why: a points table is additive; where risk lies in combinations (HMEQ, where the GBM
wins with free depth-4 trees), no per-feature points can express it. Pair tables
(points per bin of A × bin of B, `creditline.scoring.pairs`) keep the card readable and
add the strongest interactions (the GA2M form; EBM ranks pairs the same way, by what
they add to the additive model's residual).

Rule (the training part only, the same for every dataset):

* Candidates: the card's features with two bins or more, as the refinement sees them
  (numbers raw with special values as missing, categories as their WoE).
* Ranking: `pair_rank_rounds` depth-2 trees boosted from the card's logit, free to
  split on any feature (on a seeded sample of `refine_cv_max_rows` rows for larger
  books); a pair's strength is the split gain of every second-level split on B under a
  first split on A.
* Fit: trees restricted to the strongest pairs (LightGBM's interaction constraints:
  every path in a tree splits on the features of one pair), boosted from the card's
  logit, early-stopped and judged as the refinement is (k-fold CV up to
  `refine_cv_max_rows` training rows, a 20 % holdout above). First the `pair_step`
  strongest pairs with depth-2 trees on `pair_max_bin` histogram bins: they are kept
  only when the validation AUC beats the card's by `pair_margin`, otherwise the card is
  returned unchanged. Then the ladder goes on by `pair_step` (20, 30, 40, … pairs, up
  to every ranked pair or `pair_max`) for as long as validation follows: a count is
  kept when it beats the last kept by `pair_margin`, and the search stops after
  `pair_misses` + 1 counts in a row that do not (one count that gains too little does
  not end it: on HMEQ's other splits 30 pairs often add little over 20 and 40 much over
  30). As the GBM chooses deeper trees where the data support them, later steps get
  more capacity: depth 3 on 32 bins for the second and third steps (`pair_deeper`),
  depth 4 on 32 bins from the fourth on (`pair_deepest`; the GBM's deepest trees; 64
  bins gave lower mean validation AUC over six splits of HMEQ, and 2.8 times the cells).
  Deeper trees learn slowly and their fold-mean AUC wanders, so the pair fits stop
  after `pair_patience` (150) rounds without gain, not the refinement's 50, and run up
  to `pair_rounds` (2,000). `pair_max` (100) only bounds the serving cost; the ranking
  seldom finds that many pairs. (In ../shared/data: HMEQ, where risk lies in many
  combinations, takes 40 of its 45 ranked pairs, test AUC 0.916 → 0.961 (the ladder
  that stopped at 30 gave 0.950); Taiwan 20, 0.7751 → 0.7768; Australian keeps its
  first step's 9 pairs and German, LendingClub, Home Credit and Tianchi none, as
  before.) Even all pairs leave the GBM a lead on HMEQ in validation: trees free to
  split on three features reach 0.961 in the same cross-validation, unbounded trees
  0.964, pairs 0.956.
  Calibration: Platt scaling on the validation logits.
* Folding: a tree's output is the sum of its leaves' values, each leaf a function of the
  one or two features on its path; leaves are grouped by the pair of their path (a leaf
  with only the root's feature on its path joins a pair of the same tree, or the first
  candidate pair with that feature). A pair's axes are its features' bins cut at every
  threshold its trees use, less cuts that would open a bin without training rows
  (special and missing values keep bins of their own, categories keep their scorecard
  groups), so each cell holds the trees' exact output: on every training row, and on
  any value except one in an interval no training row fell in, the tables give the
  boosted model's logit.
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
    ranked = rank_pairs(M, y, z0, params)
    if not ranked:
        return replace(sc, pair_search={"applied": False, "reason": "no pair adds a split"})
    final, info = _fewest_pairs(M, y, z0, ranked, params)
    info["candidates"] = [[features[a], features[b]] for a, b in ranked[: params.pair_max]]
    if final is None:
        return replace(sc, pair_search=info | {"applied": False})
    candidates = ranked[: info["pair_count"]]
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


def pair_counts(params: ScorecardParams, available: int) -> list[int]:
    """The pair counts tried, fewest first: `pair_step`, 2 · `pair_step`, … up to `pair_max`
    (and at most the `available` ranked pairs)."""
    top = min(params.pair_max, available)
    step = max(params.pair_step, 1)
    return sorted({min(k, top) for k in range(step, top + step, step)})


def pair_capacity(params: ScorecardParams, step: int) -> tuple[int, int]:
    """(max depth, histogram bins) of the trees at the ladder's `step` (0: the first):
    depth 2 on `pair_max_bin` bins, then `pair_deeper` for the second and third steps and
    `pair_deepest` from the fourth on."""
    if step == 0:
        return 2, params.pair_max_bin
    return params.pair_deeper if step < 3 else params.pair_deepest


def _fewest_pairs(
    M: NDArray[np.float64],
    y: NDArray[np.int8],
    z0: NDArray[np.float64],
    ranked: list[Pair],
    params: ScorecardParams,
) -> tuple[lgb.Booster | None, dict[str, Any]]:
    """Trees on the strongest 10, 20, … pairs (with the capacity of `pair_capacity`), each
    judged by `boost_on_card`: the fewest pairs win unless more gain `pair_margin`
    validation AUC over them; the search goes on while they do and stops after
    `pair_misses` + 1 counts in a row that gain less than that over the last kept. None
    when the first count does not beat the card by `pair_margin`."""
    best: lgb.Booster | None = None
    best_info: dict[str, Any] = {}
    tried: dict[str, float] = {}
    misses = 0
    for k, count in enumerate(pair_counts(params, len(ranked))):
        depth, max_bin = pair_capacity(params, k)
        budget = Budget(
            f"depth-{depth} trees on {count} pairs",
            params.pair_rounds,
            params.pair_patience,
            params.pair_margin,
        )
        lgb_params = _lgb_params(params, ranked[:count], depth=depth, max_bin=max_bin)
        final, info = boost_on_card(M, y, z0, lgb_params, params, budget)
        tried[str(count)] = info["refined_auc"]
        if final is not None and (
            best is None or info["refined_auc"] >= best_info["refined_auc"] + params.pair_margin
        ):
            best, best_info = (
                final,
                info | {"pair_count": count, "depth": depth, "max_bin": max_bin},
            )
            misses = 0
            continue
        if best is None:  # the first step does not help: no pairs
            best_info = info | {"pair_count": count}
            break
        misses += 1
        if misses > params.pair_misses:
            break
    return best, best_info | {"pair_counts_tried": tried}


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
    and the sum of the trees that never split (a constant).

    A leaf's value is a function of the features on its path only, so leaves are grouped
    by those features: a path on A and B belongs to the pair (A, B); a path on the root's
    feature alone joins a pair of the same tree with that feature (the first candidate
    pair with it when the tree has none). Interaction constraints on pairs allow no path
    on three features."""
    parts: dict[Pair, list[treeshap.FlatTree]] = defaultdict(list)
    constant = 0.0
    for tree in trees:
        if tree.left[0] < 0:
            constant += float(tree.value[0])
            continue
        a = int(tree.feature[0])
        by_pair: dict[Pair, list[int]] = defaultdict(list)
        lone: list[int] = []
        for leaf, on_path in _leaf_paths(tree, 0, frozenset()):
            if len(on_path) > 2:
                raise ValueError(f"a path splits on {len(on_path)} features: not a pair")
            if len(on_path) == 2:
                first, second = sorted(on_path)
                by_pair[(first, second)].append(leaf)
            else:
                lone.append(leaf)
        if lone:
            home = next(iter(by_pair), None) or next(p for p in pairs if a in p)
            by_pair[home] += lone
        for pair, leaves in by_pair.items():
            value = np.zeros_like(tree.value)
            value[leaves] = tree.value[leaves]
            parts[pair].append(replace(tree, value=value))
    return dict(parts), constant


def _leaf_paths(
    tree: treeshap.FlatTree, node: int, above: frozenset[int]
) -> list[tuple[int, frozenset[int]]]:
    """Every leaf under `node` with the features split on its path from the root."""
    if tree.left[node] < 0:
        return [(node, above)]
    on_path = above | {int(tree.feature[node])}
    return _leaf_paths(tree, int(tree.left[node]), on_path) + _leaf_paths(
        tree, int(tree.right[node]), on_path
    )


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


def _lgb_params(
    params: ScorecardParams,
    pairs: list[Pair] | None,
    *,
    depth: int = 2,
    max_bin: int | None = None,
) -> dict[str, Any]:
    """Trees of `depth` levels on `max_bin` histogram bins (default `pair_max_bin`);
    restricted to `pairs` when given (interaction constraints: every path then splits on
    the features of one pair)."""
    out: dict[str, Any] = {
        "objective": "binary",
        "learning_rate": params.refine_learning_rate,
        "max_depth": depth,
        "num_leaves": 2**depth,
        "min_child_samples": params.refine_min_child_samples,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "max_bin": params.pair_max_bin if max_bin is None else max_bin,
        "seed": params.seed,
        "num_threads": 1,
        "verbose": -1,
        "deterministic": True,
    }
    if pairs is not None:
        out["interaction_constraints"] = [list(p) for p in pairs]
    return out
