"""Train and write artefacts: split, scorecard, GBM, metrics, report, manifest.

An artefact is a folder. Its version id is ``<kind>-`` plus the first 12 hex digits of a
SHA-256 over the model files (scorecard.json or model.txt, gbm.json and shap_tables.npz),
the features and the parameters: the same data and settings give the same version,
whenever and wherever they are trained. The data fingerprint is a SHA-256 over the
feature frame and target (pandas' row hashes), so a model can be traced to its data.
"""

from __future__ import annotations

import hashlib
import json
import platform
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from creditline.data.datasets import Dataset
from creditline.scoring import metrics, treeshap
from creditline.scoring.domain.scale import ScoreScale
from creditline.scoring.pairs import PairCells
from creditline.scoring.serving import load_model
from creditline.scoring.training.gbm import FittedGbm, GbmParams, fit_gbm
from creditline.scoring.training.pairs import add_pairs
from creditline.scoring.training.refine import refine_scorecard
from creditline.scoring.training.report import write_report
from creditline.scoring.training.scorecard import (
    FittedScorecard,
    PairFit,
    ScorecardParams,
    cell_woe,
    fit_scorecard,
)
from creditline.scoring.training.split import split_indices
from creditline.shared.clock import Clock
from creditline.shared.errors import FieldIssue, InvalidInputError

MODEL_KINDS = ("scorecard", "gbm", "both")
LIBRARIES = ("numpy", "pandas", "optbinning", "lightgbm", "scikit-learn")


@dataclass(frozen=True, slots=True)
class TrainedArtefact:
    kind: str
    folder: Path
    version: str
    test_auc: float


def data_fingerprint(X: pd.DataFrame, y: pd.Series) -> str:
    digest = hashlib.sha256()
    digest.update(",".join(map(str, X.columns)).encode())
    digest.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    digest.update(np.asarray(y, dtype=np.int8).tobytes())
    return digest.hexdigest()


def validate(dataset: Dataset, *, strict_constant: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """The usable features; constant ones are listed (or refused when `strict_constant`)."""
    X = dataset.features.drop(columns=[c for c in [dataset.time_column] if c])
    if len(X) == 0:
        raise InvalidInputError(FieldIssue("data", "empty", "the data has no rows"))
    y = dataset.target
    if y.nunique() != 2:
        raise InvalidInputError(
            FieldIssue(str(y.name), "not_binary", "the target needs both outcomes, bad and good")
        )
    constant = [c for c in X.columns if X[c].nunique(dropna=False) <= 1]
    if constant and (strict_constant or len(constant) == X.shape[1]):
        raise InvalidInputError(
            [
                FieldIssue(
                    c,
                    "constant",
                    f"feature {c!r} takes a single value: it cannot separate bad from good",
                )
                for c in constant
            ]
        )
    return X.drop(columns=constant), constant


def train(
    dataset: Dataset,
    out: Path,
    *,
    clock: Clock,
    model: str = "both",
    time_column: str | None = None,
    scale: ScoreScale | None = None,
    scorecard_params: ScorecardParams | None = None,
    gbm_params: GbmParams | None = None,
    report: bool = True,
    strict_constant: bool = False,
    threads: int | None = 1,
) -> list[TrainedArtefact]:
    """Fit the asked models and write one artefact folder each (`out`, or `out/<kind>` for both).

    `threads` caps the BLAS and OpenMP thread pools of numpy and scikit-learn while
    training (None: the libraries' defaults). One thread is the default: the logistic
    regressions here are small (a handful of WoE columns), and on a shared 2-core machine
    their idle threads spun for about eight times the CPU of one thread (measured).
    LightGBM's threads are set apart, by `GbmParams.num_threads`.
    """
    limits = nullcontext() if threads is None else threadpool_limits(limits=threads)
    with limits:
        return _train(
            dataset,
            out,
            clock=clock,
            model=model,
            time_column=time_column,
            scale=scale,
            scorecard_params=scorecard_params,
            gbm_params=gbm_params,
            report=report,
            strict_constant=strict_constant,
        )


def _train(
    dataset: Dataset,
    out: Path,
    *,
    clock: Clock,
    model: str,
    time_column: str | None,
    scale: ScoreScale | None,
    scorecard_params: ScorecardParams | None,
    gbm_params: GbmParams | None,
    report: bool,
    strict_constant: bool,
) -> list[TrainedArtefact]:
    if model not in MODEL_KINDS:
        raise InvalidInputError(
            FieldIssue("model", "unknown", f"model must be one of {MODEL_KINDS}")
        )
    scale = scale or ScoreScale()
    scorecard_params = scorecard_params or ScorecardParams()
    gbm_params = gbm_params or GbmParams()
    time_col = time_column or dataset.time_column
    if time_col is not None and time_col not in dataset.features.columns:
        raise InvalidInputError(
            FieldIssue(time_col, "missing_column", f"time column {time_col!r} is absent")
        )
    time = dataset.features[time_col] if time_col else None
    ds = Dataset(
        dataset.name,
        dataset.features,
        dataset.target,
        dataset.description,
        dataset.special_values,
        time_col,
    )
    X, constant = validate(ds, strict_constant=strict_constant)
    y = dataset.target.to_numpy().astype(np.int8)
    tr, te = split_indices(dataset.target, time=time)
    if y[tr].min() == y[tr].max() or y[te].min() == y[te].max():
        raise InvalidInputError(
            FieldIssue("target", "not_binary", "train and test parts both need bads and goods")
        )
    X_tr, X_te = X.iloc[tr].reset_index(drop=True), X.iloc[te].reset_index(drop=True)
    specials = {k: tuple(v) for k, v in dataset.special_values.items() if k in X.columns}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc = fit_scorecard(
            X_tr, y[tr], special_values=specials, params=scorecard_params, scale=scale
        )
        if model != "gbm":  # the GBM uses the scorecard's bins only, never its points
            sc = refine_scorecard(sc, X_tr, y[tr], special_values=specials, params=scorecard_params)
            sc = add_pairs(sc, X_tr, y[tr], special_values=specials, params=scorecard_params)
    common = {
        "created_at": clock.now().isoformat(),
        "dataset": dataset.name,
        "data_fingerprint": data_fingerprint(dataset.features, dataset.target),
        "target": str(dataset.target.name),
        "rows": {"train": len(tr), "test": len(te)},
        "split": {
            "kind": "out_of_time" if time_col else "stratified",
            "test_share": 0.3,
            "seed": 42,
            "time_column": time_col,
        },
        "dropped_constant": constant,
        "scale": scale.to_dict(),
        "libraries": {lib: metadata.version(lib) for lib in LIBRARIES}
        | {"python": platform.python_version()},
    }
    kinds = ["scorecard", "gbm"] if model == "both" else [model]
    results = []
    for kind in kinds:
        folder = out / kind if model == "both" else out
        folder.mkdir(parents=True, exist_ok=True)
        if kind == "scorecard":
            files, features, params = _write_scorecard(folder, sc)
        else:
            g = fit_gbm(X_tr, y[tr], sc.stats, special_values=specials, params=gbm_params)
            files, features, params = _write_gbm(folder, g, gbm_params)
        params = {"scorecard": scorecard_params.to_dict()} | params
        digest = hashlib.sha256()
        for name in files:
            digest.update((folder / name).read_bytes())
        digest.update(
            json.dumps(
                {"features": features, "params": params, "scale": scale.to_dict()}, sort_keys=True
            ).encode()
        )
        version = f"{kind}-{digest.hexdigest()[:12]}"
        manifest = common | {
            "version": version,
            "kind": kind,
            "features": features,
            "parameters": params,
            "files": files,
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        scorer = load_model(folder)
        test = scorer.score_batch(X_te)
        train_scores = scorer.score_batch(X_tr)
        summary = metrics.summary(y[te], test.pd, test.score.astype(np.float64))
        summary["train_auc"] = metrics.auc(y[tr], train_scores.pd)
        summary["psi_train_test"] = metrics.psi(train_scores.score, test.score)
        summary["version"] = version
        (folder / "metrics.json").write_text(json.dumps(summary, indent=2))
        if report:
            write_report(
                folder / "report.html",
                manifest=manifest,
                summary=summary,
                # the scorecard's report shows the bins of its points table
                stats=sc.stats | sc.table if kind == "scorecard" else sc.stats,
                selected=features,
                y_test=y[te],
                test=test,
                dropped=sc.dropped,
                pairs=sc.pairs if kind == "scorecard" else (),
            )
        results.append(TrainedArtefact(kind, folder, version, summary["auc"]))
    return results


def _write_scorecard(
    folder: Path, sc: FittedScorecard
) -> tuple[list[str], list[str], dict[str, Any]]:
    described: list[dict[str, Any]] = []
    body = {"features": described, "intercept": sc.intercept, "calibration": list(sc.calibration)}
    rows = []
    for name in sc.selected:
        stats = sc.table[name]
        points = sc.points[name]
        described.append(
            {
                "bins": stats.bins.to_dict(),
                "woe": list(stats.woe),
                "points": list(points),
                "coefficient": sc.coefficients[name],
                "iv": stats.iv,
            }
        )
        table = stats.table()
        for k, (_, row) in enumerate(table.iterrows()):
            rows.append(
                {
                    "feature": name,
                    "bin_index": k,
                    "bin": row["bin"],
                    "count": row["count"],
                    "bad_rate": row["bad_rate"],
                    "woe": row["woe"],
                    "points": points[k],
                }
            )
    if sc.pairs:
        body["pairs"] = [_pair_cells(pair, sc).to_dict() for pair in sc.pairs]
        rows += [row for pair in sc.pairs for row in _pair_rows(pair, sc)]
    (folder / "scorecard.json").write_text(json.dumps(body, indent=1, ensure_ascii=False))
    pd.DataFrame(rows).to_csv(folder / "points.csv", index=False, float_format="%.6f")
    params = {"dropped": sc.dropped, "refinement": sc.refinement, "pairs": sc.pair_search}
    return ["scorecard.json", "points.csv"], list(sc.selected), params


def _pair_cells(pair: PairFit, sc: FittedScorecard) -> PairCells:
    return PairCells(pair.first, pair.second, pair.points(sc.calibration, sc.scale))


def _pair_rows(pair: PairFit, sc: FittedScorecard) -> list[dict[str, Any]]:
    """One points.csv row per cell of a pair table: feature ``A × B``, bin ``a-bin × b-bin``."""
    cells = _pair_cells(pair, sc)
    counts = pair.counts.reshape(-1)
    bads = pair.bads.reshape(-1)
    woe = cell_woe(pair.bads, pair.counts).reshape(-1)
    labels = [f"{a} × {b}" for a in pair.first.labels() for b in pair.second.labels()]
    return [
        {
            "feature": cells.label,
            "bin_index": k,
            "bin": label,
            "count": int(counts[k]),
            "bad_rate": bads[k] / counts[k] if counts[k] else np.nan,
            "woe": woe[k],
            "points": float(points),
        }
        for k, (label, points) in enumerate(zip(labels, cells.points.reshape(-1), strict=True))
    ]


def _write_gbm(
    folder: Path, g: FittedGbm, gbm_params: GbmParams
) -> tuple[list[str], list[str], dict[str, Any]]:
    g.booster.save_model(str(folder / "model.txt"))
    trees = treeshap.flatten_lightgbm(g.booster.dump_model())
    max_cells = treeshap.table_budget(trees, gbm_params.table_entries)
    tables = treeshap.build_tables(trees, len(g.features), max_cells=max_cells)
    arrays: dict[str, Any] = {"count": np.array(len(tables))}
    for t, table in enumerate(tables):
        arrays[f"t{t}_features"] = np.asarray(table.features, dtype=np.int64)
        arrays[f"t{t}_margin"] = table.margin
        arrays[f"t{t}_phi"] = table.phi
        for k, thr in enumerate(table.thresholds):
            arrays[f"t{t}_thr{k}"] = thr
    np.savez(folder / "shap_tables.npz", **arrays)
    body = {
        "features": list(g.features),
        "monotone_constraints": list(g.constraints),
        "woe_maps": {
            n: {"bins": s.bins.to_dict(), "woe": list(s.woe)} for n, s in g.woe_maps.items()
        },
        "special_values": {n: list(v) for n, v in g.special_values.items()},
        "calibration": list(g.calibration),
        "expected_value": treeshap.expected_value(trees),
        "constant_margin": float(sum(t.value[0] for t in trees if t.left[0] < 0)),
        "best_iteration": g.best_iteration,
        "shap_reference": (
            "path-dependent TreeSHAP: training row counts in each tree (LightGBM pred_contrib)"
        ),
    }
    (folder / "gbm.json").write_text(json.dumps(body, indent=1))
    params = {
        "gbm": gbm_params.to_dict() | {"best_iteration": g.best_iteration},
        "gbm_selection": g.selection,
        "shap_tables": {"max_cells": max_cells, "count": len(tables)},
        "monotone_constraints": dict(zip(g.features, g.constraints, strict=True)),
    }
    return ["model.txt", "gbm.json", "shap_tables.npz"], list(g.features), params
