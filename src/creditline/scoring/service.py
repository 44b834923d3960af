"""Scoring use cases: the champion for the decision pipeline, batch scoring of a file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from creditline.scoring.ports import ModelRegistry, Role
from creditline.scoring.serving import Scorer, load_model
from creditline.shared.errors import NotFoundError


def champion(registry: ModelRegistry) -> Scorer:
    """The model the decision pipeline scores with; `NotFoundError` if none is promoted."""
    entry = registry.holder(Role.CHAMPION)
    if entry is None:
        raise NotFoundError(
            "no champion model: promote one with `creditline model promote`", field="role"
        )
    return load_model(entry.folder)


def score_file(model: Scorer, data: pd.DataFrame, out: Path) -> int:
    """Score every row of `data`; write score, PD, tier and four reason codes (CSV/Parquet)."""
    frame = model.score_batch(data).frame()
    frame.insert(0, "model_version", model.version)
    if out.suffix.lower() in {".parquet", ".pq"}:
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    return len(frame)
