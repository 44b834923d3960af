"""The boosted refinement of the points table: when it applies and how stumps become bins."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from creditline.scoring import metrics
from creditline.scoring.binning import FeatureBins
from creditline.scoring.training.refine import _feature_table, refine_scorecard
from creditline.scoring.training.scorecard import (
    BinStats,
    FittedScorecard,
    ScorecardParams,
    fit_scorecard,
)
from creditline.scoring.treeshap import FlatTree

pytestmark = pytest.mark.slow  # optbinning and LightGBM fits


def correlated(n: int, seed: int) -> tuple[pd.DataFrame, NDArray[np.int8]]:
    """`a` and `b` both raise risk and correlate at 0.8: selection keeps one of them only."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 0.8 * a + 0.6 * rng.normal(size=n)
    c = rng.normal(size=n)
    logit = -1.5 + a + b + 0.5 * c
    y: NDArray[np.int8] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return pd.DataFrame({"a": a, "b": b, "c": c}), y


def fitted(
    frame: pd.DataFrame, y: NDArray[np.int8], params: ScorecardParams
) -> tuple[FittedScorecard, FittedScorecard]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classic = fit_scorecard(frame, y, params=params)
        return classic, refine_scorecard(classic, frame, y, params=params)


def test_the_refinement_brings_back_what_the_correlation_filter_dropped() -> None:
    frame, y = correlated(6000, seed=1)
    fresh, y_fresh = correlated(6000, seed=2)

    classic, refined = fitted(frame, y, ScorecardParams())

    assert len(classic.selected) == 2  # one of `a` and `b` dropped: |r| > 0.7
    assert refined.refinement["applied"] is True
    assert set(refined.selected) == {"a", "b", "c"}
    assert refined.refinement["refined_auc"] > refined.refinement["scorecard_auc"]
    gain = metrics.auc(y_fresh, refined.logit(fresh)) - metrics.auc(y_fresh, classic.logit(fresh))
    assert gain > 0.01
    # the table's bins refine the scorecard's: every scorecard split is kept
    for name in classic.selected:
        assert set(classic.table[name].bins.splits) <= set(refined.table[name].bins.splits)


def test_large_books_stop_the_stumps_on_a_holdout() -> None:
    frame, y = correlated(6000, seed=1)
    fresh, y_fresh = correlated(6000, seed=2)

    classic, refined = fitted(frame, y, ScorecardParams(refine_cv_max_rows=5000))

    assert "holdout" in refined.refinement["method"]
    assert refined.refinement["applied"] is True
    gain = metrics.auc(y_fresh, refined.logit(fresh)) - metrics.auc(y_fresh, classic.logit(fresh))
    assert gain > 0.01


def test_points_add_up_to_the_calibrated_logit() -> None:
    frame, y = correlated(4000, seed=3)

    _, refined = fitted(frame, y, ScorecardParams())

    scale = refined.scale
    total = sum(
        np.asarray(refined.points[n])[refined.table[n].bins.assign(frame[n])]
        for n in refined.selected
    )
    np.testing.assert_allclose(total, scale.offset - scale.factor * refined.logit(frame))


def test_each_feature_keeps_the_direction_of_its_scorecard_bins() -> None:
    frame, y = correlated(6000, seed=5)

    _, refined = fitted(frame, y, ScorecardParams())

    for name in refined.selected:
        regular = np.asarray(refined.points[name][: refined.table[name].bins.n_regular])
        assert np.all(np.diff(regular) <= 1e-9)  # risk rises with every feature: points fall


def test_no_rounds_keep_the_classic_scorecard() -> None:
    frame, y = correlated(2000, seed=4)

    classic, refined = fitted(frame, y, ScorecardParams(refine_rounds=0))

    assert refined.refinement["applied"] is False
    assert refined.points == classic.points
    assert refined.selected == classic.selected


def stump(threshold: float, left: float, right: float, *, default_left: bool) -> FlatTree:
    return FlatTree(
        feature=np.array([0, -1, -1]),
        threshold=np.array([threshold, 0.0, 0.0]),
        default_left=np.array([default_left, False, False]),
        missing_nan=np.array([True, True, True]),
        left=np.array([1, -1, -1]),
        right=np.array([2, -1, -1]),
        value=np.array([0.0, left, right]),
        cover=np.array([10.0, 5.0, 5.0]),
    )


def test_a_stump_cuts_a_numerical_bin_at_its_threshold_and_missing_follows_its_default() -> None:
    bins = FeatureBins("x", "numerical", splits=(1.0, 2.0), special_values=(-9.0,))
    # regular bins (-inf, 1), [1, 2), [2, inf), then special and missing
    woe = (-0.5, 0.1, 0.6, 0.3, 0.2)
    stats = BinStats(bins, (1, 1, 1, 1, 1), (0, 0, 0, 0, 0), woe, 0.1, 1)
    trees = [stump(1.5, -0.3, 0.7, default_left=True)]

    seen = np.array([0.0, 1.2, 1.7, 3.0, np.nan])  # a training value in every bin

    refined, values = _feature_table("x", stats, 2.0, trees, column=0, n_columns=1, seen=seen)

    assert refined.splits == (1.0, math.nextafter(1.5, math.inf), 2.0)
    assert refined.special_values == (-9.0,)
    expected = (
        2 * -0.5 - 0.3,  # below 1
        2 * 0.1 - 0.3,  # [1, 1.5]: x <= 1.5 goes left
        2 * 0.1 + 0.7,  # (1.5, 2)
        2 * 0.6 + 0.7,  # 2 and above
        2 * 0.3 - 0.3,  # special: missing for the stumps, which send it left
        2 * 0.2 - 0.3,  # missing
    )
    assert values == pytest.approx(expected)
    assert refined.assign_one(1.5) == 1
    assert refined.assign_one(1.5000001) == 2
    assert refined.assign_one(-9.0) == refined.special_bin


def test_a_cut_that_leaves_a_bin_without_rows_is_dropped() -> None:
    bins = FeatureBins("x", "numerical", splits=(1.0,))
    stats = BinStats(bins, (1, 1, 0, 0), (0, 0, 0, 0), (-0.5, 0.5, 0.0, 0.0), 0.1, 1)
    # LightGBM's split between 0 and what is below it, and a split with nothing above it
    trees = [
        stump(-1.0000000180025095e-35, -0.1, 0.1, default_left=True),
        stump(7.5, 0.0, 0.2, default_left=True),
    ]
    seen = np.array([-3.0, 0.0, 0.5, 2.0, 5.0])

    refined, values = _feature_table("x", stats, 1.0, trees, column=0, n_columns=2, seen=seen)

    assert refined.splits == (0.0, 1.0)
    assert values[:3] == pytest.approx((-0.5 - 0.1, -0.5 + 0.1, 0.5 + 0.1))


def test_a_categorical_feature_keeps_its_groups_and_the_stumps_read_their_woe() -> None:
    bins = FeatureBins("c", "categorical", groups=(("a",), ("b", "c")))
    woe = (-0.4, 0.5, 0.0, 0.9)  # groups, special (unused), missing
    stats = BinStats(bins, (1, 1, 0, 1), (0, 0, 0, 0), woe, 0.1, 0)
    trees = [stump(0.2, 0.1, -0.2, default_left=False)]

    refined, values = _feature_table(
        "c", stats, 1.5, trees, column=0, n_columns=1, seen=np.array([0.1, 0.2])
    )

    assert refined == bins
    expected = (1.5 * -0.4 + 0.1, 1.5 * 0.5 - 0.2, 0.0 + 0.1, 1.5 * 0.9 - 0.2)
    assert values == pytest.approx(expected)
