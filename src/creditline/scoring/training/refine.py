"""Boosted refinement of the points table: one-feature trees fitted on the scorecard's residual.

Why: a WoE logistic regression gives each feature one coefficient on coarse, monotone
bins, and it ignores the features that selection dropped. Gradient-boosted stumps
(trees of depth 1, each splitting one feature once) started from the scorecard's logit
add, per feature, a step function of the raw value. The sum stays additive, so the model
is still a points table: each feature's bins are the scorecard's bins cut further at the
stumps' thresholds, and a bin's points are the scorecard's points plus the stumps'
values there. Serving, reason codes and the artefact format do not change.

Rule (the training part only, the same for every dataset):

* Inputs are those of the GBM challenger (numbers raw, special values as missing,
  categories as their scorecard WoE). Each stump is monotone in its feature's scorecard
  trend (categories: rising with their WoE), so every feature's points keep the
  direction of its scorecard bins: a worse value never earns more points, and a reason
  code never points at a value that helped. (With the GBM's looser constraints, free
  where the decile bad rates do not confirm a trend, Taiwan's PAY_2 gave its worst bin
  the most points, through its collinearity with PAY_0.)
* Stumps (learning rate 0.1, at most `refine_rounds`, 63 histogram bins per feature)
  start from the scorecard's in-sample logit and are early-stopped after
  `refine_patience` rounds without gain: on the mean fold AUC of a seeded, stratified
  k-fold cross-validation up to `refine_cv_max_rows` training rows, on a stratified
  20 % holdout above (as the GBM does; k folds would cost five fits on 120,000 rows).
  The scorecard's logit on a validation row is in-sample, so the stumps see less
  residual than there is: the rule errs towards adding less.
* The refinement is kept only when its validation AUC beats the scorecard's own on the
  same rows by `refine_margin`; otherwise the classic scorecard is returned unchanged
  (German, Australian, LendingClub and Tianchi in ../shared/data); books with
  non-linear risk or useful features that selection dropped gain most (Taiwan: the
  BILL_AMT columns, AGE, SEX and MARRIAGE come back).
* Calibration: Platt scaling on the validation logits (scorecard plus stumps).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from creditline.scoring import treeshap
from creditline.scoring.binning import FeatureBins, count_at_or_below
from creditline.scoring.training.gbm import gbm_matrix
from creditline.scoring.training.scorecard import (
    BinStats,
    FittedScorecard,
    ScorecardParams,
    bin_stats,
    platt,
    points_table,
)

ZERO = 1e-30  # LightGBM splits at ±1e-35 (its kZeroThreshold) to set zero apart


def refine_scorecard(
    sc: FittedScorecard,
    X: pd.DataFrame,
    y: NDArray[np.int8],
    *,
    special_values: dict[str, tuple[float, ...]] | None = None,
    params: ScorecardParams | None = None,
) -> FittedScorecard:
    """`sc` with boosted stumps folded into its points table, or `sc` when they do not help."""
    params = params or ScorecardParams()
    special_values = special_values or {}
    if params.refine_rounds <= 0 or min(int(y.sum()), len(y) - int(y.sum())) < params.refine_folds:
        return replace(sc, refinement={"applied": False, "reason": "disabled or too few rows"})
    stats = sc.stats
    features = tuple(n for n in X.columns if stats[n].bins.n_regular > 1)
    if not features:
        return replace(sc, refinement={"applied": False, "reason": "no feature with two bins"})
    woe_maps = {n: stats[n] for n in features if stats[n].bins.kind == "categorical"}
    constraints = [1 if n in woe_maps else stats[n].trend for n in features]
    M = gbm_matrix(X, features, woe_maps, special_values)
    z0 = sc.raw_logit(X)
    lgb_params = _lgb_params(params, constraints)
    budget = Budget(
        "depth-1 trees", params.refine_rounds, params.refine_patience, params.refine_margin
    )
    final, info = boost_on_card(M, y, z0, lgb_params, params, budget)
    if final is None:
        return replace(sc, refinement=info | {"applied": False})
    calibration = info.pop("calibration")
    trees = treeshap.flatten_lightgbm(final.dump_model())
    constant = sum(float(t.value[0]) for t in trees if t.left[0] < 0)
    table: dict[str, BinStats] = {}
    contributions: dict[str, tuple[float, ...]] = {}
    used = {int(t.feature[0]) for t in trees if t.left[0] >= 0}
    order = [
        *sc.selected,
        *sorted((n for n in features if n not in sc.selected), key=lambda n: -stats[n].iv),
    ]
    for name in order:
        j = features.index(name) if name in features else -1
        if name not in sc.selected and j not in used:
            continue
        own = [t for t in trees if t.left[0] >= 0 and int(t.feature[0]) == j]
        bins, values = _feature_table(
            name,
            stats[name],
            sc.coefficients.get(name, 0.0),
            own,
            j,
            len(features),
            seen=gbm_matrix(X, (name,), {}, special_values)[:, 0],
        )
        table[name] = bin_stats(bins, X[name], y, trend=stats[name].trend)
        contributions[name] = values
    intercept = sc.intercept + constant
    selected = tuple(table)
    dropped = {n: r for n, r in sc.dropped.items() if n not in table}
    return replace(
        sc,
        selected=selected,
        coefficients={n: sc.coefficients.get(n, 0.0) for n in selected},
        intercept=intercept,
        calibration=calibration,
        table=table,
        contributions=contributions,
        points=points_table(contributions, intercept, calibration, sc.scale),
        dropped=dropped,
        refinement=info
        | {"applied": True, "features_added": [n for n in selected if n not in sc.selected]},
    )


Fit = tuple[lgb.Booster | None, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Budget:
    """What is boosted (for the manifest), at most how many rounds, and the gain to keep it."""

    trees: str
    rounds: int
    patience: int
    margin: float  # validation AUC the boosted card must gain over the card it starts from


def boost_on_card(
    M: NDArray[np.float64],
    y: NDArray[np.int8],
    z0: NDArray[np.float64],
    lgb_params: dict[str, Any],
    params: ScorecardParams,
    budget: Budget,
) -> Fit:
    """Trees boosted from the card's logit `z0`, judged as the GBM is: k-fold CV on books of
    up to `refine_cv_max_rows` training rows, a stratified holdout above. The booster is
    None when the validation AUC does not beat the card's by `budget.margin`."""
    if len(y) <= params.refine_cv_max_rows:
        return _by_cv(M, y, z0, lgb_params, params, budget)
    return _by_holdout(M, y, z0, lgb_params, params, budget)


def _by_cv(
    M: NDArray[np.float64],
    y: NDArray[np.int8],
    z0: NDArray[np.float64],
    lgb_params: dict[str, Any],
    params: ScorecardParams,
    budget: Budget,
) -> Fit:
    """Rounds by k-fold CV, refit on every row, Platt-scaled on the out-of-fold logits."""
    folds = list(
        StratifiedKFold(params.refine_folds, shuffle=True, random_state=params.seed).split(M, y)
    )
    base_auc = float(np.mean([roc_auc_score(y[v], z0[v]) for _, v in folds]))
    max_bin = {"max_bin": lgb_params["max_bin"]}
    data = lgb.Dataset(M, label=y, init_score=z0, params=max_bin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = lgb.cv(
            lgb_params | {"metric": "auc"},
            data,
            num_boost_round=budget.rounds,
            folds=folds,
            callbacks=[lgb.early_stopping(budget.patience, verbose=False)],
            return_cvbooster=True,
        )
    curve = np.asarray(result["valid auc-mean"])
    rounds = int(np.argmax(curve)) + 1
    info: dict[str, Any] = {
        "method": f"{params.refine_folds}-fold cross-validation of {budget.trees}",
        "scorecard_auc": base_auc,
        "refined_auc": float(curve[rounds - 1]),
        "rounds": rounds,
    }
    if info["refined_auc"] < base_auc + budget.margin:
        return None, info
    cv_booster = result["cvbooster"]
    assert isinstance(cv_booster, lgb.CVBooster)
    oof = np.empty(len(y))
    for booster, (_, val_idx) in zip(cv_booster.boosters, folds, strict=True):
        oof[val_idx] = z0[val_idx] + booster.predict(
            M[val_idx], num_iteration=rounds, raw_score=True
        )
    info["calibration"] = platt(oof, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        final = lgb.train(
            lgb_params,
            lgb.Dataset(M, label=y, init_score=z0, params=max_bin),
            num_boost_round=rounds,
        )
    return final, info


def _by_holdout(
    M: NDArray[np.float64],
    y: NDArray[np.int8],
    z0: NDArray[np.float64],
    lgb_params: dict[str, Any],
    params: ScorecardParams,
    budget: Budget,
) -> Fit:
    """Rounds early-stopped on a stratified holdout, Platt-scaled on it (large books)."""
    fit_idx, val_idx = train_test_split(
        np.arange(len(y)),
        test_size=params.refine_validation_share,
        stratify=y,
        random_state=params.seed,
    )
    base_auc = float(roc_auc_score(y[val_idx], z0[val_idx]))
    max_bin = {"max_bin": lgb_params["max_bin"]}
    train_set = lgb.Dataset(M[fit_idx], label=y[fit_idx], init_score=z0[fit_idx], params=max_bin)
    val_set = lgb.Dataset(M[val_idx], label=y[val_idx], init_score=z0[val_idx], reference=train_set)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        booster = lgb.train(
            lgb_params | {"metric": "auc"},
            train_set,
            num_boost_round=budget.rounds,
            valid_sets=[val_set],
            callbacks=[lgb.early_stopping(budget.patience, verbose=False)],
        )
    rounds = int(booster.best_iteration or booster.current_iteration())
    margin = z0[val_idx] + booster.predict(M[val_idx], num_iteration=rounds, raw_score=True)
    info: dict[str, Any] = {
        "method": (
            f"{budget.trees} early-stopped on a {params.refine_validation_share:.0%} holdout"
        ),
        "scorecard_auc": base_auc,
        "refined_auc": float(roc_auc_score(y[val_idx], margin)),
        "rounds": rounds,
    }
    if info["refined_auc"] < base_auc + budget.margin:
        return None, info
    info["calibration"] = platt(np.asarray(margin, dtype=np.float64), y[val_idx])
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds)), info


def _lgb_params(params: ScorecardParams, constraints: list[int]) -> dict[str, Any]:
    return {
        "objective": "binary",
        "learning_rate": params.refine_learning_rate,
        "max_depth": 1,
        "num_leaves": 2,
        "min_child_samples": params.refine_min_child_samples,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "feature_fraction": 0.8,
        "lambda_l2": 1.0,
        "monotone_constraints": constraints,
        "max_bin": params.refine_max_bin,
        "seed": params.seed,
        "num_threads": 1,
        "verbose": -1,
        "deterministic": True,
    }


def _feature_table(
    name: str,
    stats: BinStats,
    coefficient: float,
    stumps: list[treeshap.FlatTree],
    column: int,
    n_columns: int,
    *,
    seen: NDArray[np.float64],
) -> tuple[FeatureBins, tuple[float, ...]]:
    """The feature's bins in the points table and its log-odds contribution in each bin.

    A numerical feature's bins are the scorecard's, cut further at every stump threshold
    (LightGBM sends ``x <= t`` left; the bins' edges are inclusive on the right side, so
    the edge is the next float above ``t``), and each bin's value is the scorecard's and
    the stumps' at the smallest training value in it. Special values and missing values are
    missing for the stumps. A cut that leaves a bin without training rows (`seen`: the
    feature's training values, special values as NaN) is dropped, the empty bin joining
    its lower neighbour, and LightGBM's ±1e-35 thresholds around zero read as zero. A
    categorical feature keeps its groups: the stumps see the group's WoE.
    """
    woe = np.asarray(stats.woe)
    bins = stats.bins
    if bins.kind == "categorical":
        inputs = woe.copy()  # one input per bin: what `gbm_matrix` gives the stumps
        classic = coefficient * woe
        return bins, tuple(
            float(v) for v in classic + _stump_values(stumps, inputs, column, n_columns)
        )
    own = {math.nextafter(float(t.threshold[0]), math.inf) for t in stumps}
    splits = occupied_splits(
        sorted({0.0 if -ZERO < e < 0 else e for e in set(bins.splits) | own}), seen
    )
    # each bin is read at its smallest training value (every bin has one, see `occupied_splits`)
    values = seen[~np.isnan(seen)]
    reps = np.full(len(splits) + 1, np.inf)
    np.minimum.at(reps, count_at_or_below(splits, values, inclusive=True), values)
    reps[np.isinf(reps)] = 0.0  # no training value at all: one bin, read anywhere
    regular = count_at_or_below(bins.splits, reps, inclusive=True)
    classic = coefficient * np.r_[woe[regular], woe[bins.special_bin], woe[bins.missing_bin]]
    inputs = np.r_[reps, np.nan, np.nan]
    refined = FeatureBins(name, "numerical", splits=splits, special_values=bins.special_values)
    return refined, tuple(
        float(v) for v in classic + _stump_values(stumps, inputs, column, n_columns)
    )


def occupied_splits(splits: list[float], seen: NDArray[np.float64]) -> tuple[float, ...]:
    """`splits` less those that open (or, for the first bin, close) a bin with no rows."""
    values = seen[~np.isnan(seen)]
    while splits:
        counts = np.bincount(
            count_at_or_below(tuple(splits), values, inclusive=True), minlength=len(splits) + 1
        )
        empty = np.flatnonzero(counts == 0)
        if not len(empty):
            break
        k = int(empty[0])
        del splits[k - 1 if k > 0 else 0]
    return tuple(splits)


def _stump_values(
    stumps: list[treeshap.FlatTree], inputs: NDArray[np.float64], column: int, n_columns: int
) -> NDArray[np.float64]:
    out = np.zeros(len(inputs))
    if not stumps:
        return out
    grid = np.full((len(inputs), n_columns), np.nan)
    grid[:, column] = inputs
    for tree in stumps:
        out += tree.predict(grid)
    return out
