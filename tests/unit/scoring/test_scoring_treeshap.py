"""Our TreeSHAP tables against LightGBM's own pred_contrib (exact path-dependent SHAP)."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from creditline.scoring import treeshap


@pytest.fixture(scope="module")
def booster_and_data() -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.normal(size=(n, 5))
    x[rng.random(n) < 0.1, 1] = np.nan  # missing values follow the learnt default side
    x[:, 4] = rng.integers(0, 4, n)  # a few repeated values: thresholds hit exactly
    logit = x[:, 0] - 0.5 * np.nan_to_num(x[:, 1]) + x[:, 0] * x[:, 2] + 0.3 * x[:, 4]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"objective": "binary", "max_depth": 3, "num_leaves": 8, "verbose": -1, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=60)
    return booster, x


def test_direct_tree_shap_equals_lightgbm_pred_contrib(
    booster_and_data: tuple[lgb.Booster, np.ndarray],
) -> None:
    booster, x = booster_and_data
    trees = treeshap.flatten_lightgbm(booster.dump_model())
    expected = np.asarray(booster.predict(x[:300], pred_contrib=True))

    phi = sum(treeshap.tree_shap(t, x[:300], 5) for t in trees)

    np.testing.assert_allclose(phi, expected[:, :-1], atol=1e-10)
    assert treeshap.expected_value(trees) == pytest.approx(expected[0, -1], abs=1e-10)


def test_lookup_tables_give_the_same_contributions_and_margin(
    booster_and_data: tuple[lgb.Booster, np.ndarray],
) -> None:
    booster, x = booster_and_data
    trees = treeshap.flatten_lightgbm(booster.dump_model())
    tables = treeshap.build_tables(trees, 5)
    probe = np.vstack([x, [[np.nan] * 5], [[0.0] * 5]])
    expected = np.asarray(booster.predict(probe, pred_contrib=True))

    phi = np.zeros((len(probe), 5))
    margin = np.zeros(len(probe))
    for table in tables:
        cell = table.cell(probe)
        phi[:, table.features] += table.phi[cell]
        margin += table.margin[cell]

    np.testing.assert_allclose(phi, expected[:, :-1], atol=1e-10)
    np.testing.assert_allclose(margin, booster.predict(probe, raw_score=True), atol=1e-10)
