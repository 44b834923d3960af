"""Serving's vectorised batch path against its one-row path and against plain re-computations.

The batch path bins by comparison passes, looks categories up once per distinct value and
picks reasons with per-row `argmax` rounds; the one-row path bins with a Python binary
search and sorts the losses. Both must give the same score, PD, tier and reasons for any
input, including missing values, special codes, values on a split and unseen categories.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from creditline.scoring import treeshap
from creditline.scoring.binning import FeatureBins, count_at_or_below
from creditline.scoring.domain.reasons import MAX_REASONS
from creditline.scoring.serving import GbmScorer, ScorecardScorer, Scorer, load_model, top_reasons

SPLITS = (0.0, 1.5, 3.0, 10.0)
SPECIAL = -999.0
GROUPS = (("app",), ("web", "partner"), ("1",))

FEATURES: list[tuple[FeatureBins, list[float]]] = [
    (FeatureBins("utilisation", "numerical", splits=SPLITS), [40.0, 31.5, 22.0, 10.0, 3.0, 0, 25]),
    (
        FeatureBins("tenure", "numerical", splits=(12.0, 36.0), special_values=(SPECIAL,)),
        [5.0, 18.0, 27.0, 12.0, 9.0],
    ),
    (FeatureBins("channel", "categorical", groups=GROUPS), [30.0, 12.0, 30.0, 0.0, 20.0]),
    # equal points in two features: ties between their losses are common
    (FeatureBins("inquiries", "numerical", splits=(1.0, 3.0)), [20.0, 11.0, 2.0, 0.0, 11.0]),
    (FeatureBins("on_time", "numerical", splits=(0.5,)), [5.0, 20.0, 0.0, 0.0]),
]


def write_scorecard(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "version": "scorecard-test",
        "kind": "scorecard",
        "scale": {"base_score": 600.0, "base_odds": 19.0, "pdo": 50.0},
        "features": [b.name for b, _ in FEATURES],
    }
    body = {"features": [{"bins": b.to_dict(), "points": p} for b, p in FEATURES]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "scorecard.json").write_text(json.dumps(body))


@pytest.fixture(scope="module")
def scorecard(tmp_path_factory: pytest.TempPathFactory) -> Scorer:
    folder = tmp_path_factory.mktemp("serving") / "scorecard"
    write_scorecard(folder)
    return load_model(folder)


@pytest.fixture(scope="module")
def gbm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scorer, lgb.Booster]:
    """A GBM artefact written the way the training pipeline writes one."""
    rng = np.random.default_rng(11)
    n = 2000
    x = np.column_stack(
        [rng.normal(size=n), rng.integers(0, 8, n).astype(float), rng.normal(size=n)]
    )
    x[rng.random(n) < 0.1, 0] = np.nan
    logit = x[:, 0] * x[:, 2] - 0.2 * x[:, 1] + np.nan_to_num(x[:, 0])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"objective": "binary", "max_depth": 3, "num_leaves": 8, "verbose": -1, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=15)
    trees = treeshap.flatten_lightgbm(booster.dump_model())
    tables = treeshap.build_tables(trees, 3)
    folder = tmp_path_factory.mktemp("serving") / "gbm"
    folder.mkdir()
    arrays_: dict[str, Any] = {"count": np.array(len(tables))}
    for t, table in enumerate(tables):
        arrays_[f"t{t}_features"] = np.asarray(table.features, dtype=np.int64)
        arrays_[f"t{t}_margin"] = table.margin
        arrays_[f"t{t}_phi"] = table.phi
        for k, thr in enumerate(table.thresholds):
            arrays_[f"t{t}_thr{k}"] = thr
    np.savez(folder / "shap_tables.npz", **arrays_)
    body = {
        "woe_maps": {},
        "special_values": {"tenure": [SPECIAL]},
        "calibration": [0.1, 0.9],
        "expected_value": treeshap.expected_value(trees),
        "constant_margin": float(sum(t.value[0] for t in trees if t.left[0] < 0)),
    }
    (folder / "gbm.json").write_text(json.dumps(body))
    manifest = {
        "version": "gbm-test",
        "kind": "gbm",
        "scale": {"base_score": 600.0, "base_odds": 19.0, "pdo": 50.0},
        "features": ["utilisation", "tenure", "on_time"],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return load_model(folder), booster


numbers = st.one_of(
    st.none(),
    st.just(math.nan),
    st.sampled_from([*SPLITS, 12.0, 36.0, 1.0, 3.0, 0.5, SPECIAL]),  # on a split or special
    st.floats(min_value=-50, max_value=50, allow_nan=False),
)
categories = st.one_of(st.none(), st.sampled_from(["app", "web", "partner", "1", "offline", ""]))
rows = st.lists(
    st.fixed_dictionaries(
        {
            "utilisation": numbers,
            "tenure": numbers,
            "channel": categories,
            "inquiries": numbers,
            "on_time": numbers,
        }
    ),
    min_size=1,
    max_size=40,
)


def frame_of(records: list[dict[str, Any]], categorical: bool) -> pd.DataFrame:
    frame = pd.DataFrame(records)
    for name in ("utilisation", "tenure", "inquiries", "on_time"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    frame["channel"] = frame["channel"].astype("category" if categorical else object)
    return frame


def assert_batch_equals_single(
    scorer: Scorer, records: list[dict[str, Any]], frame: pd.DataFrame
) -> None:
    batch = scorer.score_batch(frame)
    table = batch.frame()
    for i, record in enumerate(records):
        single = scorer.score(record)
        assert batch.score[i] == single.score
        assert batch.pd[i] == pytest.approx(single.pd, rel=1e-12, abs=1e-15)
        assert table.tier[i] == single.tier.value
        codes = [table[f"reason_{k + 1}"][i] for k in range(MAX_REASONS)]
        assert codes == [r.code for r in single.reasons] + [""] * (
            MAX_REASONS - len(single.reasons)
        )
        impacts = batch.reason_points[i, : len(single.reasons)]
        np.testing.assert_allclose(impacts, [r.impact for r in single.reasons], rtol=1e-12)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=rows, categorical=st.booleans())
def test_scorecard_batch_agrees_with_one_row_scoring(
    scorecard: Scorer, records: list[dict[str, Any]], categorical: bool
) -> None:
    assert isinstance(scorecard, ScorecardScorer)
    assert_batch_equals_single(scorecard, records, frame_of(records, categorical))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=rows)
def test_gbm_batch_agrees_with_one_row_scoring_and_lightgbm(
    gbm: tuple[Scorer, lgb.Booster], records: list[dict[str, Any]]
) -> None:
    scorer, booster = gbm
    assert isinstance(scorer, GbmScorer)
    frame = frame_of(records, categorical=False)
    assert_batch_equals_single(scorer, records, frame)
    matrix = scorer.matrix(frame)
    margin, phi = scorer.contributions(matrix)
    np.testing.assert_allclose(margin, booster.predict(matrix, raw_score=True), atol=1e-9)
    contrib = np.asarray(booster.predict(matrix, pred_contrib=True))[:, :-1]
    np.testing.assert_allclose(phi, contrib, atol=1e-9)


def test_batch_scoring_spans_chunks(scorecard: Scorer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows on both sides of a chunk boundary get the same result as scored alone."""
    import creditline.scoring.serving as serving

    rng = np.random.default_rng(4)
    n = 23
    frame = pd.DataFrame(
        {
            "utilisation": rng.normal(3, 4, n),
            "tenure": rng.choice([5.0, 20.0, 40.0, SPECIAL, np.nan], n),
            "channel": rng.choice(["app", "web", "x"], n),
            "inquiries": rng.integers(0, 5, n).astype(float),
            "on_time": rng.random(n),
        }
    )
    whole = scorecard.score_batch(frame)
    monkeypatch.setattr(serving, "CHUNK", 5)
    chunked = scorecard.score_batch(frame)
    np.testing.assert_array_equal(whole.score, chunked.score)
    np.testing.assert_array_equal(whole.reason_features, chunked.reason_features)
    np.testing.assert_array_equal(whole.raw, chunked.raw)


@given(
    loss=arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.integers(1, 9)),
        elements=st.sampled_from([-2.0, 0.0, 1e-10, 0.5, 1.0, 1.0, 3.25, 7.0]),
    )
)
def test_top_reasons_are_the_largest_losses_in_feature_order_on_ties(loss: np.ndarray) -> None:
    idx, size = top_reasons(loss.copy())
    for i, row in enumerate(loss):
        expected = sorted(
            ((-v, j) for j, v in enumerate(row.tolist()) if v > 1e-9), key=lambda t: t
        )[:MAX_REASONS]
        want_idx = [j for _, j in expected] + [-1] * (MAX_REASONS - len(expected))
        want_size = [-v for v, _ in expected] + [0.0] * (MAX_REASONS - len(expected))
        assert idx[i].tolist() == want_idx
        assert size[i].tolist() == want_size


@given(
    edges=st.lists(st.floats(-100, 100), max_size=80, unique=True).map(sorted),
    x=st.lists(st.floats(-120, 120), min_size=1, max_size=50),
    inclusive=st.booleans(),
)
def test_count_at_or_below_equals_searchsorted(
    edges: list[float], x: list[float], inclusive: bool
) -> None:
    values = np.asarray(x + edges[:5], dtype=np.float64)  # some values exactly on an edge
    got = count_at_or_below(tuple(edges), values, inclusive=inclusive)
    side: Literal["left", "right"] = "right" if inclusive else "left"
    np.testing.assert_array_equal(got, np.searchsorted(np.asarray(edges), values, side=side))


@given(
    values=st.lists(
        st.one_of(st.none(), st.sampled_from(["app", "web", "1", "z"]), st.integers(0, 2)),
        min_size=1,
        max_size=30,
    )
)
def test_categorical_assign_matches_assign_one(values: list[Any]) -> None:
    bins = FeatureBins("channel", "categorical", groups=GROUPS)
    expected = [bins.assign_one(v) for v in values]
    assert bins.assign(pd.Series(values, dtype=object)).tolist() == expected
    strings = [None if v is None else str(v) for v in values]
    assert bins.assign(pd.Series(strings, dtype="category")).tolist() == expected


# a pair table: utilisation's own axis (split 1.5) × channel's groups; points[i, j]
PAIR_FIRST = FeatureBins("utilisation", "numerical", splits=(1.5,))
PAIR_POINTS = [
    [4.0, -6.0, 0.0, 0.0, 1.0],  # utilisation < 1.5 × app, web/partner, "1", special, missing
    [-9.0, 2.5, 0.0, 0.0, -3.0],  # ≥ 1.5
    [0.0, 0.0, 0.0, 0.0, 0.0],  # special (none declared)
    [-2.0, -2.0, -2.0, -2.0, -12.0],  # missing
]


@pytest.fixture(scope="module")
def paired(tmp_path_factory: pytest.TempPathFactory) -> Scorer:
    folder = tmp_path_factory.mktemp("serving") / "paired"
    write_scorecard(folder)
    body = json.loads((folder / "scorecard.json").read_text())
    body["pairs"] = [
        {
            "first": PAIR_FIRST.to_dict(),
            "second": FeatureBins("channel", "categorical", groups=GROUPS).to_dict(),
            "points": PAIR_POINTS,
        }
    ]
    (folder / "scorecard.json").write_text(json.dumps(body))
    return load_model(folder)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=rows, categorical=st.booleans())
def test_a_scorecard_with_pair_cells_scores_the_same_in_batch_and_one_row(
    paired: Scorer, records: list[dict[str, Any]], categorical: bool
) -> None:
    assert_batch_equals_single(paired, records, frame_of(records, categorical))


def test_a_pair_cell_adds_its_points_and_is_a_reason_naming_both_features(
    scorecard: Scorer, paired: Scorer
) -> None:
    record = {
        "utilisation": 2.0,
        "tenure": 40.0,
        "channel": "app",
        "inquiries": 0.5,
        "on_time": None,
    }
    both = paired.score(record)
    frame = frame_of([record], categorical=False)
    # features: utilisation 22, tenure 27, channel 30, inquiries 20, on_time missing 0;
    # utilisation 2.0 ≥ 1.5 and "app": the cell [1][0], -9 points, 4 + 9 = 13 below the best
    assert scorecard.score_batch(frame).raw[0] == 99.0
    assert paired.score_batch(frame).raw[0] == 90.0
    pair_reasons = [r for r in both.reasons if r.code == "R-UTILISATION-X-CHANNEL"]
    assert len(pair_reasons) == 1
    reason = pair_reasons[0]
    assert reason.impact == pytest.approx(13.0)
    assert reason.feature == "utilisation × channel"
    for text in (reason.text_en, reason.text_zh):
        assert "utilisation" in text
        assert "channel" in text
    assert "组合" in reason.text_zh
    batch = paired.score_batch(frame).frame()
    assert "R-UTILISATION-X-CHANNEL" in [batch[f"reason_{k + 1}"][0] for k in range(MAX_REASONS)]
