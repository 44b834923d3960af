"""The WoE scorecard: optbinning bins, selection by IV and correlation, logistic regression.

Steps, each with a default that holds for the general case (no tuning per dataset):

1. Bin every feature with optbinning's `OptimalBinning` (numbers: monotonic trend chosen
   automatically between ascending and descending, `auto_asc_desc`; categories grouped
   by bad rate), at most 20 pre-bins of at least 2 % of rows, special values and missing
   values in bins of their own.
2. Weight of evidence per bin, bad-oriented: ``WoE = ln((bads/B) / (goods/G))`` with 0.5
   added to empty cells; a bin with no training rows has WoE 0 (average risk).
3. Keep features with IV ≥ 0.02; walk them by decreasing IV and drop one whose WoE has
   |Pearson r| > 0.7 with a feature already kept.
4. Logistic regression (L2, C = 1) on the WoE; a feature whose coefficient comes out ≤ 0
   (a sign flip from collinearity) is dropped and the model refitted.
5. Calibration: Platt scaling of the logit on 5-fold out-of-fold predictions of the
   training part, so the points stay additive.
6. Points per bin: ``−factor · b · c_j · WoE_ij`` plus an equal share of the intercept.
7. The pipeline then refines the points table with boosted one-feature trees when
   cross-validation on the training part says they help
   (`creditline.scoring.training.refine`); `refine_rounds = 0` keeps the classic card.
8. It may then add pair tables, points per (bin of A × bin of B) for up to `pair_max`
   pairs of its features (10 pairs of depth-2 trees, then 20, 30, 40, … of deeper trees
   on finer bins for as long as validation supports more), when validation on the
   training part says they help (`creditline.scoring.training.pairs`);
   `pair_max = 0` keeps no pair.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from optbinning import OptimalBinning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from creditline.scoring.binning import FeatureBins
from creditline.scoring.domain.scale import ScoreScale


@dataclass(frozen=True, slots=True)
class ScorecardParams:
    min_iv: float = 0.02
    max_correlation: float = 0.7
    max_n_prebins: int = 20
    min_prebin_size: float = 0.02
    monotonic_trend: str = "auto_asc_desc"
    c: float = 1.0
    calibration_folds: int = 5
    seed: int = 42
    # boosted refinement (`creditline.scoring.training.refine`); 0 rounds: classic card only
    refine_rounds: int = 500
    refine_learning_rate: float = 0.1
    refine_patience: int = 50
    refine_folds: int = 5
    refine_cv_max_rows: int = 20_000  # above: early stopping on a holdout, as the GBM does
    refine_validation_share: float = 0.2
    refine_min_child_samples: int = 20
    refine_max_bin: int = 63
    refine_margin: float = 0.001
    # pair cells (`creditline.scoring.training.pairs`); 0 pairs: no pair tables
    pair_max: int = 100  # a bound on serving cost; the ladder stops first on most books
    pair_step: int = 10  # pair counts tried: pair_step, 2 · pair_step, … up to pair_max
    pair_rank_rounds: int = 100
    pair_rounds: int = 2000
    pair_patience: int = 150  # rounds without validation gain before pair trees stop
    pair_max_bin: int = 16  # depth-2 trees on the first pair_step pairs (and the ranking)
    # (max depth, histogram bins) of the ladder's later steps: the second step on, then the
    # fourth step on (the first step: depth 2 on pair_max_bin)
    pair_deeper: tuple[int, int] = (3, 32)
    pair_deepest: tuple[int, int] = (4, 32)
    pair_margin: float = 0.002
    pair_misses: int = 1  # counts in a row that may gain < pair_margin without ending the ladder

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class BinStats:
    """One feature's bins with training counts, WoE and IV (the report shows these)."""

    bins: FeatureBins
    counts: tuple[int, ...]
    bads: tuple[int, ...]
    woe: tuple[float, ...]
    iv: float
    trend: int  # +1: risk rises with the value, -1: falls, 0: none/categorical

    def table(self) -> pd.DataFrame:
        counts = np.asarray(self.counts)
        bads = np.asarray(self.bads)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(counts > 0, bads / np.maximum(counts, 1), np.nan)
        return pd.DataFrame(
            {
                "bin": self.bins.labels(),
                "count": counts,
                "share": counts / max(int(counts.sum()), 1),
                "bads": bads,
                "bad_rate": rate,
                "woe": self.woe,
            }
        )


@dataclass(frozen=True, slots=True)
class PairFit:
    """A pair table as fitted: log-odds of bad per cell of `first`'s bins × `second`'s bins
    (before calibration, like `FittedScorecard.contributions`) and the training rows and
    bads in each cell (`creditline.scoring.training.pairs`)."""

    first: FeatureBins
    second: FeatureBins
    contributions: NDArray[np.float64]  # (first.n_bins, second.n_bins)
    counts: NDArray[np.int64]
    bads: NDArray[np.int64]

    def cells(self, X: pd.DataFrame) -> NDArray[np.intp]:
        rows = self.first.assign(X[self.first.name])
        return np.asarray(rows * self.second.n_bins + self.second.assign(X[self.second.name]))

    def points(self, calibration: tuple[float, float], scale: ScoreScale) -> NDArray[np.float64]:
        """Points per cell: ``−factor · b · contribution`` (the intercept is in the features')."""
        return np.asarray(-scale.factor * calibration[1] * self.contributions, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class FittedScorecard:
    """The fitted card. `stats`: every feature's optbinning bins (the GBM and the report use
    them); `table`: the bins of the points table, per selected feature (the same bins unless
    a refinement cut them further); `contributions`: log-odds of bad per table bin, before
    calibration, so that ``logit = intercept + Σ contribution`` and points follow from it.
    """

    stats: dict[str, BinStats]  # every binned feature
    selected: tuple[str, ...]
    coefficients: dict[str, float]
    intercept: float
    calibration: tuple[float, float]  # (a, b): logit' = a + b · logit
    scale: ScoreScale
    points: dict[str, tuple[float, ...]] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # feature -> reason
    table: dict[str, BinStats] = field(default_factory=dict)
    contributions: dict[str, tuple[float, ...]] = field(default_factory=dict)
    refinement: dict[str, Any] = field(default_factory=dict)  # what the refinement found
    pairs: tuple[PairFit, ...] = ()  # pair tables, when validation kept them
    pair_search: dict[str, Any] = field(default_factory=dict)  # what the pair search found

    def raw_logit(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """Log-odds of bad before calibration."""
        z = np.full(len(X), self.intercept)
        for name in self.selected:
            values = np.asarray(self.contributions[name])
            z += values[self.table[name].bins.assign(X[name])]
        for pair in self.pairs:
            z += pair.contributions.reshape(-1)[pair.cells(X)]
        return z

    def logit(self, X: pd.DataFrame) -> NDArray[np.float64]:
        a, b = self.calibration
        return np.asarray(a + b * self.raw_logit(X), dtype=np.float64)


def _woe(
    bads: NDArray[np.float64], counts: NDArray[np.float64], B: float, G: float
) -> NDArray[np.float64]:
    goods = counts - bads
    woe = np.log(((bads + 0.5) / B) / ((goods + 0.5) / G))
    return np.where(counts > 0, woe, 0.0)


def cell_woe(bads: NDArray[np.int64], counts: NDArray[np.int64]) -> NDArray[np.float64]:
    """WoE of each cell of a table of bads and counts (the rule of `bin_stats`)."""
    b = np.asarray(bads, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    B = float(b.sum())
    return _woe(b, c, B, float(c.sum()) - B)


def bin_feature(
    name: str,
    x: pd.Series,
    y: NDArray[np.int8],
    special: tuple[float, ...],
    params: ScorecardParams,
) -> BinStats:
    categorical = isinstance(x.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
        x.dtype
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if categorical:
            values = np.asarray(
                x.astype("string").astype(object).where(x.notna(), np.nan), dtype=object
            )
            optb = OptimalBinning(
                name=name,
                dtype="categorical",
                max_n_prebins=params.max_n_prebins,
                min_prebin_size=params.min_prebin_size,
                cat_cutoff=None,
            )
            optb.fit(values, y)
            seen = {str(c) for c in pd.unique(x.dropna().astype("string"))}
            groups = [tuple(sorted(str(c) for c in g)) for g in optb.splits]
            grouped = {c for g in groups for c in g}
            # categories optbinning left out (too rare) join the group nearest in bad rate
            rest = sorted(seen - grouped)
            bins = FeatureBins(
                name, "categorical", groups=tuple(groups) + ((tuple(rest),) if rest else ())
            )
        else:
            values_f = np.asarray(pd.to_numeric(x, errors="coerce"), dtype=np.float64)
            optb = OptimalBinning(
                name=name,
                dtype="numerical",
                monotonic_trend=params.monotonic_trend,
                max_n_prebins=params.max_n_prebins,
                min_prebin_size=params.min_prebin_size,
                special_codes=list(special) or None,
            )
            optb.fit(values_f, y)
            bins = FeatureBins(
                name,
                "numerical",
                splits=tuple(float(s) for s in optb.splits),
                special_values=special,
            )
    return bin_stats(bins, x, y)


def bin_stats(
    bins: FeatureBins, x: pd.Series, y: NDArray[np.int8], *, trend: int | None = None
) -> BinStats:
    """Training counts, bads, WoE and IV of `bins`; the trend is measured unless given."""
    idx = bins.assign(x)
    counts = np.bincount(idx, minlength=bins.n_bins).astype(np.float64)
    bads = np.asarray(np.bincount(idx, weights=y, minlength=bins.n_bins), dtype=np.float64)
    B = float(y.sum())
    G = float(len(y) - B)
    woe = _woe(bads, counts, B, G)
    iv = float(np.sum((bads / B - (counts - bads) / G) * woe))
    if trend is None:
        trend = 0
        if bins.kind == "numerical" and bins.n_regular > 1:
            reg_counts = counts[: bins.n_regular]
            rate = bads[: bins.n_regular] / np.maximum(reg_counts, 1)
            trend = 1 if rate[-1] > rate[0] else (-1 if rate[-1] < rate[0] else 0)
    return BinStats(
        bins, tuple(int(c) for c in counts), tuple(int(b) for b in bads), tuple(woe), iv, trend
    )


def points_table(
    contributions: dict[str, tuple[float, ...]],
    intercept: float,
    calibration: tuple[float, float],
    scale: ScoreScale,
) -> dict[str, tuple[float, ...]]:
    """Points per bin: ``−factor · b · contribution`` plus an equal share of the intercept."""
    a, b = calibration
    share = (scale.offset - scale.factor * (a + b * intercept)) / len(contributions)
    return {
        n: tuple(float(-scale.factor * b * v + share) for v in values)
        for n, values in contributions.items()
    }


def fit_scorecard(
    X: pd.DataFrame,
    y: NDArray[np.int8],
    *,
    special_values: dict[str, tuple[float, ...]] | None = None,
    params: ScorecardParams | None = None,
    scale: ScoreScale | None = None,
) -> FittedScorecard:
    params = params or ScorecardParams()
    scale = scale or ScoreScale()
    special_values = special_values or {}
    stats = {
        name: bin_feature(name, X[name], y, tuple(special_values.get(name, ())), params)
        for name in X.columns
    }
    dropped: dict[str, str] = {}
    woe_frame = pd.DataFrame({n: np.asarray(s.woe)[s.bins.assign(X[n])] for n, s in stats.items()})
    candidates = sorted(stats, key=lambda n: -stats[n].iv)
    kept: list[str] = []
    for name in candidates:
        if stats[name].iv < params.min_iv:
            dropped[name] = f"IV {stats[name].iv:.4f} < {params.min_iv}"
            continue
        col = woe_frame[name].to_numpy()
        if np.std(col) == 0:
            dropped[name] = "one bin only"
            continue
        clash = next(
            (
                k
                for k in kept
                if abs(np.corrcoef(col, woe_frame[k].to_numpy())[0, 1]) > params.max_correlation
            ),
            None,
        )
        if clash is not None:
            dropped[name] = f"|r| > {params.max_correlation} with {clash}"
            continue
        kept.append(name)
    if not kept:
        raise ValueError(f"no feature has enough information value (IV ≥ {params.min_iv:.2f})")
    while True:
        model = LogisticRegression(C=params.c, max_iter=2000)
        model.fit(woe_frame[kept].to_numpy(), y)
        coefs = dict(zip(kept, model.coef_[0], strict=True))
        flipped = [n for n in kept if coefs[n] <= 0]
        if not flipped or len(kept) == 1:
            break
        worst = min(flipped, key=lambda n: coefs[n])
        dropped[worst] = f"coefficient {coefs[worst]:.3f} ≤ 0 (collinear)"
        kept.remove(worst)
    intercept = float(model.intercept_[0])
    calibration = _platt(woe_frame[kept].to_numpy(), y, params)
    contributions = {n: tuple(float(coefs[n] * w) for w in stats[n].woe) for n in kept}
    return FittedScorecard(
        stats=stats,
        selected=tuple(kept),
        coefficients={n: float(c) for n, c in coefs.items()},
        intercept=intercept,
        calibration=calibration,
        scale=scale,
        points=points_table(contributions, intercept, calibration, scale),
        dropped=dropped,
        table={n: stats[n] for n in kept},
        contributions=contributions,
    )


def _platt(
    W: NDArray[np.float64], y: NDArray[np.int8], params: ScorecardParams
) -> tuple[float, float]:
    """(a, b) of ``logit' = a + b · logit`` fitted on out-of-fold logits."""
    folds = StratifiedKFold(
        n_splits=params.calibration_folds, shuffle=True, random_state=params.seed
    )
    oof = np.empty(len(y))
    for fit_idx, out_idx in folds.split(W, y):
        m = LogisticRegression(C=params.c, max_iter=2000).fit(W[fit_idx], y[fit_idx])
        oof[out_idx] = m.decision_function(W[out_idx])
    return platt(oof, y)


def platt(logit: NDArray[np.float64], y: NDArray[np.int8]) -> tuple[float, float]:
    cal = LogisticRegression(C=1e6, max_iter=2000).fit(logit.reshape(-1, 1), y)
    return float(cal.intercept_[0]), float(cal.coef_[0][0])
