"""Compare feature tables from different engines: exact for integers, 1e-9 for ratios."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pyarrow.parquet as pq

from creditline.features.domain.definitions import FEATURES

TOLERANCE = 1e-9


def read_rows(path: Path) -> dict[str, dict[str, object]]:
    return {row["customer_id"]: row for row in pq.read_table(path).to_pylist()}


def differences(
    expected: Mapping[str, Mapping[str, object]], actual: Mapping[str, Mapping[str, object]]
) -> list[str]:
    """Every (customer, feature) where the two tables disagree, described."""
    found = []
    if set(expected) != set(actual):
        found.append(f"customers differ: {sorted(set(expected) ^ set(actual))[:5]}")
    for customer in sorted(set(expected) & set(actual)):
        for feature in FEATURES:
            left, right = expected[customer][feature.name], actual[customer][feature.name]
            if not _same(left, right, exact=feature.is_integral):
                found.append(f"{customer}.{feature.name}: {left!r} != {right!r}")
    return found


def _same(left: object, right: object, *, exact: bool) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if exact:
        return isinstance(left, int) and isinstance(right, int) and left == right
    if not (isinstance(left, float) and isinstance(right, float)):
        return False
    return not math.isnan(left) and math.isclose(left, right, rel_tol=0.0, abs_tol=TOLERANCE)
