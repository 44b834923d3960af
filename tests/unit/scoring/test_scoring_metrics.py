"""Metrics against scikit-learn (an independent implementation) and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve

from creditline.scoring import metrics


@pytest.fixture
def sample() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 2000)
    p = np.clip(np.round(0.3 * y + rng.random(2000) * 0.7, 2), 0.01, 0.99)  # many ties
    return y, p


def test_auc_brier_and_log_loss_agree_with_scikit_learn(
    sample: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = sample

    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert metrics.brier(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert metrics.log_loss(y, p) == pytest.approx(log_loss(y, p), abs=1e-12)


def test_ks_is_the_largest_gap_of_scikit_learns_roc(sample: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = sample
    fpr, tpr, _ = roc_curve(y, p)

    assert metrics.ks(y, p) == pytest.approx(float(np.max(tpr - fpr)), abs=1e-12)


def test_psi_of_a_sample_against_itself_is_zero_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(600, 50, 10_000)

    assert metrics.psi(base, base) == pytest.approx(0.0, abs=1e-12)
    assert metrics.psi(base, base + 25) > 0.1


def test_gains_capture_all_bads_and_calibration_covers_every_row(
    sample: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = sample
    gains = metrics.gains_table(y, -p)

    assert gains[-1]["cum_capture"] == pytest.approx(1.0)
    assert sum(r["count"] for r in metrics.calibration_by_decile(y, p)) == len(y)
    assert gains[0]["lift"] > 1.0
