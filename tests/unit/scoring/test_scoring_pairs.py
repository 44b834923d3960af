"""Pair cells of the scorecard: trees on pairs folded into exact tables, kept when they help."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from creditline.scoring import metrics
from creditline.scoring.binning import FeatureBins
from creditline.scoring.training import pairs as pairs_module
from creditline.scoring.training.gbm import gbm_matrix
from creditline.scoring.training.pairs import add_pairs, pair_capacity, pair_counts, pair_tables
from creditline.scoring.training.scorecard import (
    FittedScorecard,
    ScorecardParams,
    bin_stats,
    fit_scorecard,
)

pytestmark = pytest.mark.slow  # optbinning and LightGBM fits

SPECIAL = -999.0


def interacting(n: int, seed: int) -> tuple[pd.DataFrame, NDArray[np.int8]]:
    """Risk rises with `a` and `b`, and is much higher where both are high or both low."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    c = rng.normal(size=n)
    logit = -1.0 + 1.5 * np.sign(a) * np.sign(b) + 0.8 * a + 0.8 * b + 0.5 * c
    y: NDArray[np.int8] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return pd.DataFrame({"a": a, "b": b, "c": c}), y


def many_pairs(n: int, seed: int) -> tuple[pd.DataFrame, NDArray[np.int8]]:
    """Risk in every combination of eight features: each pair adds ±0.45 to the log-odds."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{k}": rng.normal(size=n) for k in range(8)})
    signs = np.sign(frame.to_numpy())
    logit = -1.0 + 0.3 * frame.to_numpy().sum(axis=1)
    for i in range(8):
        for j in range(i + 1, 8):
            logit += 0.45 * signs[:, i] * signs[:, j]
    y: NDArray[np.int8] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return frame, y


def every_pair(n: int, seed: int) -> tuple[pd.DataFrame, NDArray[np.int8]]:
    """Risk in all 45 combinations of ten features: each pair adds ±0.35 to the log-odds."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{k}": rng.normal(size=n) for k in range(10)})
    signs = np.sign(frame.to_numpy())
    logit = -1.0 + 0.3 * frame.to_numpy().sum(axis=1)
    for i in range(10):
        for j in range(i + 1, 10):
            logit += 0.35 * signs[:, i] * signs[:, j]
    y: NDArray[np.int8] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return frame, y


def additive(n: int, seed: int) -> tuple[pd.DataFrame, NDArray[np.int8]]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({k: rng.normal(size=n) for k in "abc"})
    logit = -1.5 + frame["a"] + 0.6 * frame["b"] + 0.4 * frame["c"]
    y: NDArray[np.int8] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return frame, y


def with_pairs(
    frame: pd.DataFrame, y: NDArray[np.int8], params: ScorecardParams
) -> tuple[FittedScorecard, FittedScorecard]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        card = fit_scorecard(frame, y, params=params)
        return card, add_pairs(card, frame, y, params=params)


def test_pairs_are_kept_where_risk_lies_in_a_combination() -> None:
    frame, y = interacting(6000, seed=1)
    fresh, y_fresh = interacting(6000, seed=2)

    card, paired = with_pairs(frame, y, ScorecardParams(refine_rounds=0))

    assert paired.pair_search["applied"] is True
    assert ["a", "b"] in paired.pair_search["pairs"]
    assert paired.pair_search["refined_auc"] > paired.pair_search["scorecard_auc"]
    gain = metrics.auc(y_fresh, paired.logit(fresh)) - metrics.auc(y_fresh, card.logit(fresh))
    assert gain > 0.05
    # the per-feature points are the card's, shifted by the new calibration only
    assert paired.selected == card.selected
    assert paired.contributions == card.contributions


def test_an_additive_book_keeps_its_card() -> None:
    frame, y = additive(6000, seed=3)

    card, paired = with_pairs(frame, y, ScorecardParams(refine_rounds=0))

    assert paired.pair_search["applied"] is False
    assert paired.pairs == ()
    assert paired.points == card.points
    assert paired.calibration == card.calibration


def test_pair_counts_go_by_steps_up_to_the_maximum_and_the_ranked_pairs() -> None:
    assert pair_counts(ScorecardParams(), 66) == [10, 20, 30, 40, 50, 60, 66]
    assert pair_counts(ScorecardParams(), 45) == [10, 20, 30, 40, 45]
    assert pair_counts(ScorecardParams(), 25) == [10, 20, 25]
    assert pair_counts(ScorecardParams(), 3) == [3]
    assert pair_counts(ScorecardParams(), 500) == list(range(10, 101, 10))
    assert pair_counts(ScorecardParams(pair_max=30), 66) == [10, 20, 30]
    assert pair_counts(ScorecardParams(pair_max=10), 66) == [10]
    assert pair_counts(ScorecardParams(pair_max=5, pair_step=10), 66) == [5]


def test_later_steps_of_the_ladder_get_deeper_trees_on_finer_bins() -> None:
    params = ScorecardParams()
    assert [pair_capacity(params, k) for k in range(6)] == [
        (2, 16),
        (3, 32),
        (3, 32),
        (4, 32),
        (4, 32),
        (4, 32),
    ]


def scripted_ladder(
    monkeypatch: pytest.MonkeyPatch, aucs: dict[int, float], available: int
) -> tuple[Any, dict[str, Any], list[tuple[int, int, int]]]:
    """`_fewest_pairs` with each count's validation AUC given (card's: 0.80); the fits
    asked for as (count, depth, bins)."""
    asked: list[tuple[int, int, int]] = []

    def judged(
        matrix: Any, y: Any, z0: Any, lgb_params: dict[str, Any], params: Any, budget: Any
    ) -> tuple[Any, dict[str, Any]]:
        count = len(lgb_params["interaction_constraints"])
        asked.append((count, lgb_params["max_depth"], lgb_params["max_bin"]))
        auc = aucs[count]
        info = {"scorecard_auc": 0.80, "refined_auc": auc, "calibration": (0.0, 1.0)}
        return (f"booster {count}" if auc >= 0.80 + budget.margin else None), info

    monkeypatch.setattr(pairs_module, "boost_on_card", judged)
    ranked = [(k, k + 1) for k in range(available)]
    empty = np.zeros((0, 0))
    final: Any
    final, info = pairs_module._fewest_pairs(
        empty, np.zeros(0, dtype=np.int8), np.zeros(0), ranked, ScorecardParams()
    )
    return final, info, asked


def test_the_ladder_goes_past_thirty_pairs_while_validation_gains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Gains of 0.01, 0.005, 0.003, 0.0025 (each ≥ the 0.002 margin), then 0.001 and 0.0015
    over 50: two counts in a row that gain too little, so 50 pairs are kept and 80 is never
    fitted."""
    aucs = {10: 0.82, 20: 0.83, 30: 0.835, 40: 0.838, 50: 0.8405, 60: 0.8415, 70: 0.842, 80: 0.9}

    final, info, asked = scripted_ladder(monkeypatch, aucs, available=80)

    assert final == "booster 50"
    assert info["pair_count"] == 50
    assert (info["depth"], info["max_bin"]) == (4, 32)
    assert info["pair_counts_tried"] == {str(k): aucs[k] for k in (10, 20, 30, 40, 50, 60, 70)}
    assert asked == [
        (10, 2, 16),
        (20, 3, 32),
        (30, 3, 32),
        (40, 4, 32),
        (50, 4, 32),
        (60, 4, 32),
        (70, 4, 32),
    ]


def test_one_count_that_gains_too_little_does_not_stop_the_ladder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """30 pairs gain only 0.001 over 20, but 40 gain 0.006 over 20: 40 are kept; 45 (all the
    ranked pairs) gain 0.001 over 40 and end the ladder."""
    aucs = {10: 0.82, 20: 0.83, 30: 0.831, 40: 0.836, 45: 0.837}

    final, info, asked = scripted_ladder(monkeypatch, aucs, available=45)

    assert final == "booster 40"
    assert (info["pair_count"], info["depth"]) == (40, 4)
    assert [a[0] for a in asked] == [10, 20, 30, 40, 45]


def test_the_ladder_stops_after_two_counts_that_gain_too_little(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """20 and 30 pairs gain 0.0015 and 0.0019 over 10 (< 0.002): 10 are kept, however much
    40 would gain."""
    aucs = {10: 0.82, 20: 0.8215, 30: 0.8219, 40: 0.90}

    final, info, asked = scripted_ladder(monkeypatch, aucs, available=45)

    assert final == "booster 10"
    assert info["pair_count"] == 10
    assert info["depth"] == 2
    assert [a[0] for a in asked] == [10, 20, 30]


def test_the_ladder_keeps_no_pair_when_the_first_step_does_not_help(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    final, info, asked = scripted_ladder(monkeypatch, {10: 0.801}, available=45)

    assert final is None
    assert info["pair_count"] == 10
    assert [a[0] for a in asked] == [10]


def test_a_single_interaction_keeps_the_first_step() -> None:
    """Three features give three pairs: one step of depth-2 trees, nothing deeper tried."""
    frame, y = interacting(6000, seed=1)

    _, paired = with_pairs(frame, y, ScorecardParams(refine_rounds=0))

    assert paired.pair_search["pair_count"] == 3
    assert paired.pair_search["depth"] == 2
    assert list(paired.pair_search["pair_counts_tried"]) == ["3"]


def test_risk_in_many_combinations_earns_more_pairs_and_deeper_trees() -> None:
    frame, y = many_pairs(8000, seed=11)
    fresh, y_fresh = many_pairs(8000, seed=12)
    ten = ScorecardParams(refine_rounds=0, pair_max=10)

    _, first_step = with_pairs(frame, y, ten)
    card, paired = with_pairs(frame, y, ScorecardParams(refine_rounds=0))

    search = paired.pair_search
    assert search["pair_count"] >= 20
    assert search["depth"] == 3
    assert len(paired.pairs) == search["pair_count"]
    tried = search["pair_counts_tried"]
    assert tried[str(search["pair_count"])] >= tried["10"] + ScorecardParams().pair_margin
    # on fresh rows the extra pairs help too
    more = metrics.auc(y_fresh, paired.logit(fresh))
    assert (
        more
        > metrics.auc(y_fresh, first_step.logit(fresh))
        > metrics.auc(y_fresh, card.logit(fresh))
    )


def test_risk_in_every_combination_takes_the_ladder_past_thirty_pairs() -> None:
    """Ten features, risk in all 45 pairs: validation keeps gaining beyond 30 pairs, so the
    ladder goes on with depth-4 trees, and on fresh rows the card beats the 30-pair one."""
    frame, y = every_pair(8000, seed=21)
    fresh, y_fresh = every_pair(8000, seed=22)
    params = ScorecardParams(refine_rounds=0)

    card, paired = with_pairs(frame, y, params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        thirty = add_pairs(card, frame, y, params=replace(params, pair_max=30))

    search = paired.pair_search
    assert search["pair_count"] > 30
    assert search["depth"] == 4
    assert len(paired.pairs) == search["pair_count"]
    tried = search["pair_counts_tried"]
    assert tried[str(search["pair_count"])] >= tried["30"] + params.pair_margin
    assert thirty.pair_search["pair_count"] == 30
    assert (
        metrics.auc(y_fresh, paired.logit(fresh)) > metrics.auc(y_fresh, thirty.logit(fresh)) + 0.01
    )


def test_large_books_judge_the_pairs_on_a_holdout() -> None:
    frame, y = interacting(6000, seed=1)

    _, paired = with_pairs(frame, y, ScorecardParams(refine_rounds=0, refine_cv_max_rows=5000))

    assert "holdout" in paired.pair_search["method"]
    assert paired.pair_search["applied"] is True


def test_zero_pairs_keep_the_card() -> None:
    frame, y = interacting(2000, seed=4)

    card, paired = with_pairs(frame, y, ScorecardParams(refine_rounds=0, pair_max=0))

    assert paired.pair_search["applied"] is False
    assert paired.points == card.points


def test_points_and_pair_cells_add_up_to_the_calibrated_logit() -> None:
    frame, y = interacting(4000, seed=5)

    _, paired = with_pairs(frame, y, ScorecardParams())

    scale = paired.scale
    total = sum(
        np.asarray(paired.points[n])[paired.table[n].bins.assign(frame[n])] for n in paired.selected
    )
    for pair in paired.pairs:
        total += pair.points(paired.calibration, scale).reshape(-1)[pair.cells(frame)]
    np.testing.assert_allclose(total, scale.offset - scale.factor * paired.logit(frame))


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_pair_tables_reproduce_lightgbms_margin(depth: int) -> None:
    """Trees restricted to pairs, folded into tables: LightGBM's own prediction is the judge,
    on the training rows and on new rows with missing values, special codes, values on
    thresholds and unseen categories. Depth 3 and 4: a path may split on its root's
    feature twice, and the two subtrees under the root may belong to different pairs."""
    rng = np.random.default_rng(7)
    n = 3000
    frame = pd.DataFrame(
        {
            "x0": rng.normal(size=n),
            "x1": rng.integers(0, 6, n).astype(float),
            "x2": rng.normal(size=n),
            "channel": rng.choice(["app", "web", "partner"], n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "x0"] = np.nan
    frame.loc[rng.random(n) < 0.05, "x2"] = SPECIAL
    # the new rows test x0 = 0; deeper trees cut at LightGBM's ±1e-35 around it, and the
    # tables are exact only where training rows were (a zero-width interval has none)
    frame.loc[1, "x0"] = 0.0
    y = (rng.random(n) < 0.3).astype(np.int8)
    stats = [
        bin_stats(FeatureBins("x0", "numerical", splits=(0.0,)), frame["x0"], y),
        bin_stats(FeatureBins("x1", "numerical", splits=(2.0,)), frame["x1"], y),
        bin_stats(
            FeatureBins("x2", "numerical", splits=(0.5,), special_values=(SPECIAL,)),
            frame["x2"],
            y,
        ),
        bin_stats(
            FeatureBins("channel", "categorical", groups=(("app",), ("web", "partner"))),
            frame["channel"],
            y,
        ),
    ]
    names = tuple(s.bins.name for s in stats)
    woe_maps = {"channel": stats[3]}
    specials: dict[str, tuple[float, ...]] = {"x2": (SPECIAL,)}
    matrix = gbm_matrix(frame, names, woe_maps, specials)
    logit = np.nan_to_num(matrix[:, 0]) * matrix[:, 1] - np.nan_to_num(matrix[:, 2]) * matrix[:, 3]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    candidates = [(0, 1), (2, 3), (0, 2)]
    params = {
        "objective": "binary",
        "max_depth": depth,
        "num_leaves": 2**depth,
        "interaction_constraints": [list(p) for p in candidates],
        "verbose": -1,
        "seed": 1,
    }
    booster = lgb.train(params, lgb.Dataset(matrix, y), num_boost_round=60)

    tables, constant = pair_tables(booster, stats, candidates, frame, y)

    fresh = pd.DataFrame(
        {
            "x0": [np.nan, 0.0, -1.3, 2.0, 0.25, np.nan],
            "x1": [0.0, 2.0, 5.0, 3.0, 1.0, 4.0],
            "x2": [SPECIAL, 0.5, np.nan, -0.7, 1.9, SPECIAL],
            "channel": ["app", "web", "partner", "offline", None, "web"],
        }
    )
    rows = pd.concat([frame, fresh], ignore_index=True)
    total = constant + sum(t.contributions.reshape(-1)[t.cells(rows)] for t in tables)
    expected = booster.predict(gbm_matrix(rows, names, woe_maps, specials), raw_score=True)
    np.testing.assert_allclose(total, expected, atol=1e-9)
    assert {(t.first.name, t.second.name) for t in tables} <= {
        (names[a], names[b]) for a, b in candidates
    }
    # every training row is counted in exactly one cell of each table
    assert all(int(t.counts.sum()) == n for t in tables)
