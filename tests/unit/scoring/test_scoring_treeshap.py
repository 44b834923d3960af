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


@pytest.fixture(scope="module")
def deep_booster_and_data() -> tuple[lgb.Booster, np.ndarray]:
    """Deeper, unconstrained trees on more features: some trees' grids exceed a small budget."""
    rng = np.random.default_rng(11)
    n = 4000
    x = rng.normal(size=(n, 8))
    x[rng.random(n) < 0.1, 3] = np.nan
    x[:, 7] = rng.integers(0, 5, n)
    logit = x[:, 0] * x[:, 1] - x[:, 2] + np.nan_to_num(x[:, 3]) * x[:, 4] + 0.2 * x[:, 7]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"objective": "binary", "max_depth": 5, "num_leaves": 24, "verbose": -1, "seed": 2}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=15)
    return booster, x


@pytest.mark.parametrize("max_cells", [64, 2048])
def test_trees_cut_into_leaf_groups_keep_exact_contributions(
    deep_booster_and_data: tuple[lgb.Booster, np.ndarray], max_cells: int
) -> None:
    booster, x = deep_booster_and_data
    trees = treeshap.flatten_lightgbm(booster.dump_model())
    probe = np.vstack([x[:1500], [[np.nan] * 8], [[0.0] * 8]])
    expected = np.asarray(booster.predict(probe, pred_contrib=True))

    tables = treeshap.build_tables(trees, 8, max_cells=max_cells)
    phi = np.zeros((len(probe), 8))
    margin = np.zeros(len(probe))
    for table in tables:
        cell = table.cell(probe)
        phi[:, table.features] += table.phi[cell]
        margin += table.margin[cell]

    if max_cells == 64:  # the budget forces cuts: some trees give more than one table
        assert sum(len(treeshap.tree_tables(t, 8, 64)) for t in trees) > len(trees)
    np.testing.assert_allclose(phi, expected[:, :-1], atol=1e-9)
    np.testing.assert_allclose(margin, booster.predict(probe, raw_score=True), atol=1e-9)


def _stored(tables: list[treeshap.ShapTable]) -> int:
    return sum(t.margin.size + t.phi.size for t in tables)


def test_planned_entries_count_what_build_tables_stores(
    deep_booster_and_data: tuple[lgb.Booster, np.ndarray],
) -> None:
    booster, _ = deep_booster_and_data
    trees = treeshap.flatten_lightgbm(booster.dump_model())
    for max_cells in (32768, 2048, 512, 64):
        stored = _stored(treeshap.build_tables(trees, 8, max_cells=max_cells))
        assert treeshap.planned_entries(trees, max_cells) == stored


def test_table_budget_picks_the_largest_cell_limit_whose_tables_fit(
    deep_booster_and_data: tuple[lgb.Booster, np.ndarray],
) -> None:
    booster, x = deep_booster_and_data
    trees = treeshap.flatten_lightgbm(booster.dump_model())
    steps = (32768, 8192, 2048, 512, 128)
    stored = {c: _stored(treeshap.build_tables(trees, 8, max_cells=c)) for c in steps}
    assert stored[32768] > stored[128]  # a budget between them forces a smaller limit
    budget = (stored[32768] + stored[128]) // 2
    expected = next(c for c in steps if stored[c] <= budget)

    chosen = treeshap.table_budget(trees, budget, min_cells=128)

    assert chosen == expected
    assert treeshap.table_budget(trees, stored[32768]) == 32768  # fits: nothing changes
    assert treeshap.table_budget(trees, 1, min_cells=128) == 128  # never below the floor
    tables = treeshap.build_tables(trees, 8, max_cells=chosen)
    probe = x[:500]
    phi = np.zeros((len(probe), 8))
    for table in tables:
        phi[:, table.features] += table.phi[table.cell(probe)]
    expected_phi = np.asarray(booster.predict(probe, pred_contrib=True))[:, :-1]
    np.testing.assert_allclose(phi, expected_phi, atol=1e-9)
