"""How the GBM's capacity is chosen: k-fold CV on small books, a holdout on large ones."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from creditline.scoring.training.gbm import FittedGbm, GbmParams, fit_gbm
from creditline.scoring.training.scorecard import fit_scorecard

pytestmark = pytest.mark.slow  # a few LightGBM fits


def simpson(n: int, seed: int = 4) -> tuple[pd.DataFrame, NDArray[np.int8]]:
    """`x1` tracks `x2`: risk rises with `x1` on its own but falls with it given `x2`.

    The decile bad rates of `x1` rise steadily, so the scorecard trend (+1) is
    confirmed and the constrained GBM may only raise risk with `x1`: it cannot use
    the conditional effect, which a free GBM learns.
    """
    rng = np.random.default_rng(seed)
    x2 = rng.normal(size=n)
    x1 = x2 + 0.4 * rng.normal(size=n)
    logit = -1.0 + 4.0 * x2 - 3.0 * x1
    y: NDArray[np.int8] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return pd.DataFrame({"x1": x1, "x2": x2}), y


def fitted(frame: pd.DataFrame, y: NDArray[np.int8], params: GbmParams | None = None) -> FittedGbm:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc = fit_scorecard(frame, y)
    return fit_gbm(frame, y, sc.stats, params=params)


def test_small_books_drop_constraints_that_the_folds_reject_and_refit_on_all_rows() -> None:
    frame, y = simpson(3000)
    rates = pd.Series(y).groupby(pd.qcut(frame["x1"], 10, labels=False)).mean()
    assert rates.is_monotonic_increasing  # the marginal trend that makes the constraint look right

    g = fitted(frame, y)

    assert g.selection["method"].startswith("5-fold")
    assert len(g.selection["candidates"]) == 4
    assert g.selection["monotone"] is False
    assert g.constraints == (0, 0)
    # refitted on every training row: bagging (80 %) of 3,000 rows, not of a 2,400-row part
    root_count = g.booster.dump_model()["tree_info"][0]["tree_structure"]["internal_count"]
    assert root_count == pytest.approx(0.8 * 3000, abs=30)


def test_constraints_stay_when_the_data_agree() -> None:
    rng = np.random.default_rng(6)
    n = 3000
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    logit = -1.0 + 1.2 * frame["a"] - 0.8 * frame["b"]
    y: NDArray[np.int8] = np.asarray(rng.random(n) < 1 / (1 + np.exp(-logit)), dtype=np.int8)

    g = fitted(frame, y)

    assert g.selection["monotone"] is True
    assert g.constraints == (1, -1)


def test_large_books_keep_the_holdout_and_the_shallow_monotone_trees() -> None:
    frame, y = simpson(3000)

    g = fitted(frame, y, GbmParams(cv_max_rows=1000))

    assert g.selection == {
        "method": "holdout",
        "max_depth": 3,
        "num_leaves": 8,
        "monotone": True,
        "validation_share": 0.2,
    }
    assert g.constraints == (1, 1)  # x2's risk rises too
    root_count = g.booster.dump_model()["tree_info"][0]["tree_structure"]["internal_count"]
    assert root_count == pytest.approx(0.8 * 0.8 * 3000, abs=30)
