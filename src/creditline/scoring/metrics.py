"""Model-validation metrics on a scored sample: AUC, KS, Gini, Brier, log loss, PSI, tables.

Plain numpy so that serving, governance and the report share one implementation.
AUC is the Mann–Whitney statistic with ties counted as one half; KS is the largest gap
between the cumulative bad and good distributions over the score; PSI uses the deciles
of the expected (train) scores as bins and floors empty shares at 1e-4.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def _check(y: NDArray[Any], p: NDArray[Any]) -> tuple[NDArray[np.int8], FloatArray]:
    y_arr = np.asarray(y).astype(np.int8)
    p_arr = np.asarray(p, dtype=np.float64)
    if y_arr.shape != p_arr.shape or y_arr.ndim != 1:
        raise ValueError("outcomes and predictions must be 1-d arrays of one length")
    if not (y_arr.min() == 0 and y_arr.max() == 1):
        raise ValueError("AUC needs both outcomes in the sample")
    return y_arr, p_arr


def auc(y: NDArray[Any], risk: NDArray[Any]) -> float:
    """Area under the ROC curve, `risk` higher for bads (ties count one half)."""
    y_arr, p_arr = _check(y, risk)
    order = np.argsort(p_arr, kind="mergesort")
    ranks = np.empty(len(p_arr), dtype=np.float64)
    sorted_p = p_arr[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    n_bad = float(y_arr.sum())
    n_good = float(len(y_arr) - n_bad)
    return float((ranks[y_arr == 1].sum() - n_bad * (n_bad + 1) / 2.0) / (n_bad * n_good))


def roc_curve(y: NDArray[Any], risk: NDArray[Any]) -> tuple[FloatArray, FloatArray]:
    """False- and true-positive rates at each distinct threshold, from (0, 0) to (1, 1)."""
    y_arr, p_arr = _check(y, risk)
    order = np.argsort(-p_arr, kind="mergesort")
    ys, ps = y_arr[order], p_arr[order]
    last_of_tie = np.r_[np.nonzero(np.diff(ps))[0], len(ps) - 1]
    tps = np.cumsum(ys)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    tpr = np.r_[0.0, tps / ys.sum()]
    fpr = np.r_[0.0, fps / (len(ys) - ys.sum())]
    return fpr, tpr


def ks(y: NDArray[Any], risk: NDArray[Any]) -> float:
    fpr, tpr = roc_curve(y, risk)
    return float(np.max(np.abs(tpr - fpr)))


def brier(y: NDArray[Any], pd: NDArray[Any]) -> float:
    y_arr, p_arr = _check(y, pd)
    return float(np.mean((p_arr - y_arr) ** 2))


def log_loss(y: NDArray[Any], pd: NDArray[Any]) -> float:
    y_arr, p_arr = _check(y, pd)
    p = np.clip(p_arr, 1e-15, 1 - 1e-15)
    return float(-np.mean(y_arr * np.log(p) + (1 - y_arr) * np.log(1 - p)))


def calibration_by_decile(
    y: NDArray[Any], pd: NDArray[Any], bins: int = 10
) -> list[dict[str, float]]:
    """Mean predicted PD and observed bad rate per decile of predicted PD (lowest first)."""
    y_arr, p_arr = _check(y, pd)
    order = np.argsort(p_arr, kind="mergesort")
    rows = []
    for k, idx in enumerate(np.array_split(order, bins)):
        if len(idx) == 0:
            continue
        rows.append(
            {
                "decile": k + 1,
                "count": len(idx),
                "mean_pd": float(p_arr[idx].mean()),
                "bad_rate": float(y_arr[idx].mean()),
            }
        )
    return rows


def gains_table(y: NDArray[Any], score: NDArray[Any], bins: int = 10) -> list[dict[str, float]]:
    """Deciles of score, riskiest (lowest score) first: bads caught, cumulative capture, lift."""
    y_arr, s_arr = _check(y, score)
    order = np.argsort(s_arr, kind="mergesort")
    total_bad = float(y_arr.sum())
    overall = total_bad / len(y_arr)
    rows, cum_bad, cum_n = [], 0.0, 0
    for k, idx in enumerate(np.array_split(order, bins)):
        if len(idx) == 0:
            continue
        bad = float(y_arr[idx].sum())
        cum_bad += bad
        cum_n += len(idx)
        rows.append(
            {
                "decile": k + 1,
                "count": len(idx),
                "min_score": float(s_arr[idx].min()),
                "max_score": float(s_arr[idx].max()),
                "bads": int(bad),
                "bad_rate": bad / len(idx),
                "cum_capture": cum_bad / total_bad,
                "lift": (bad / len(idx)) / overall,
                "cum_lift": (cum_bad / cum_n) / overall,
            }
        )
    return rows


def psi(expected: NDArray[Any], actual: NDArray[Any], bins: int = 10) -> float:
    """Population stability index of `actual` against `expected` on expected's quantile bins."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    edges = np.unique(np.quantile(e, np.linspace(0, 1, bins + 1)[1:-1]))
    e_share = np.bincount(np.searchsorted(edges, e, side="right"), minlength=len(edges) + 1) / len(
        e
    )
    a_share = np.bincount(np.searchsorted(edges, a, side="right"), minlength=len(edges) + 1) / len(
        a
    )
    e_share = np.maximum(e_share, 1e-4)
    a_share = np.maximum(a_share, 1e-4)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def summary(y: NDArray[Any], pd: NDArray[Any], score: NDArray[Any]) -> dict[str, Any]:
    a = auc(y, pd)
    return {
        "n": len(y),
        "bad_rate": float(np.mean(y)),
        "auc": a,
        "gini": 2 * a - 1,
        "ks": ks(y, pd),
        "brier": brier(y, pd),
        "log_loss": log_loss(y, pd),
        "calibration_by_decile": calibration_by_decile(y, pd),
        "gains": gains_table(y, score),
    }
