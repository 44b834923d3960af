"""The train/test split: stratified 70/30 with seed 42, or out-of-time on a time column."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.model_selection import train_test_split

TEST_SHARE = 0.3
SEED = 42


def split_indices(
    y: pd.Series, *, time: pd.Series | None = None, test_share: float = TEST_SHARE, seed: int = SEED
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Row positions of the train and test parts.

    Without `time`: stratified on the outcome (scikit-learn's `train_test_split`, so the
    split is the one other tools produce with the same seed). With `time`: the latest
    `test_share` of rows (stable sort on time) are the test part.
    """
    positions = np.arange(len(y))
    if time is not None:
        order = np.argsort(np.asarray(time), kind="mergesort")
        n_test = round(len(y) * test_share)
        return np.sort(order[: len(y) - n_test]), np.sort(order[len(y) - n_test :])
    train, test = train_test_split(
        positions, test_size=test_share, stratify=np.asarray(y), random_state=seed
    )
    return np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)
