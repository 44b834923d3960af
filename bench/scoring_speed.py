"""Scoring speed: training with the report, batch scoring with reasons, one in-process score.

Run: `.venv/bin/python bench/scoring_speed.py [--rows 150000] [--score-rows 1000000]`.
Synthetic book of 10 features (8 numerical with missing values, 2 categorical), bad rate
about 15 %. optbinning's BinningProcess + Scorecard is trained and scores the same rows
in the same run, for comparison. Peak memory is the resident set of a child process that
only loads the artefact and scores the rows (`ru_maxrss`). Notes give the CPU time too:
on a shared machine it is the steadier figure (wall time there follows the load).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from creditline.data.datasets import Dataset
from creditline.scoring.serving import load_model
from creditline.scoring.training.pipeline import train
from creditline.shared.clock import FixedClock


def book(n: int, seed: int = 42) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {
        "utilisation": rng.beta(2, 3, n) * 1.3,
        "on_time_rate": rng.beta(8, 1.5, n),
        "tenure_months": rng.integers(1, 180, n).astype(float),
        "income": rng.lognormal(9, 0.6, n),
        "inquiries_90d": rng.poisson(1.2, n).astype(float),
        "max_dpd_365d": rng.choice([0, 0, 0, 0, 5, 15, 35, 65], n).astype(float),
        "age": rng.integers(18, 70, n).astype(float),
        "shared_device_default_rate": rng.beta(1, 12, n),
        "channel": rng.choice(["app", "web", "partner", "offline"], n, p=[0.5, 0.25, 0.15, 0.1]),
        "education": rng.choice(["primary", "secondary", "bachelor", "master"], n),
    }
    logit = (
        -2.2
        + 2.0 * cols["utilisation"]
        - 4.0 * (cols["on_time_rate"] - 0.85)
        - 0.006 * cols["tenure_months"]
        - 0.3 * (np.log(cols["income"]) - 9)
        + 0.25 * cols["inquiries_90d"]
        + 0.025 * cols["max_dpd_365d"]
        - 0.01 * (cols["age"] - 40)
        + 4 * cols["shared_device_default_rate"]
        + 0.5 * (cols["channel"] == "partner")
        - 0.2 * (cols["education"] == "master")
        + 0.8 * cols["utilisation"] * (cols["inquiries_90d"] > 2)
    )
    frame = pd.DataFrame(cols)
    for name in ("income", "tenure_months", "shared_device_default_rate"):
        frame.loc[rng.random(n) < 0.05, name] = np.nan
    frame["bad"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int8")
    return frame


def child(folder: str, rows: int) -> None:
    frame = book(rows, seed=7).drop(columns="bad")
    scorer = load_model(folder)
    start, cpu = time.perf_counter(), time.process_time()
    out = scorer.score_batch(frame)
    codes = out.frame()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "peak_mb": peak_mb, "rows": len(codes)}))


def optbinning_side(frame: pd.DataFrame, score_frame: pd.DataFrame) -> tuple[float, float]:
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression

    x = frame.drop(columns="bad")
    cats = ["channel", "education"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        sc = Scorecard(
            binning_process=BinningProcess(list(x.columns), categorical_variables=cats),
            estimator=LogisticRegression(max_iter=1000),
            scaling_method="pdo_odds",
            scaling_method_params={"pdo": 50, "odds": 19, "scorecard_points": 600},
        )
        sc.fit(x, frame["bad"])
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        sc.score(score_frame)
        score_s = time.perf_counter() - start
    return fit_s, score_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--score-rows", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=5_000)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    frame = book(args.rows)
    dataset = Dataset(
        "bench",
        frame.drop(columns="bad").astype({"channel": "category", "education": "category"}),
        frame["bad"],
    )
    clock = FixedClock(datetime(2026, 1, 15, tzinfo=UTC))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("scorecard", "gbm"):
            start, cpu = time.perf_counter(), time.process_time()
            (artefact,) = train(dataset, Path(tmp) / kind, clock=clock, model=kind)
            rows.append(
                (
                    f"train {kind} + report, {args.rows:,} x 10",
                    time.perf_counter() - start,
                    f"test AUC {artefact.test_auc:.4f}, CPU {time.process_time() - cpu:.2f} s",
                )
            )
        for kind in ("scorecard", "gbm"):
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(Path(tmp) / kind), str(args.score_rows)],
                check=True,
                capture_output=True,
                text=True,
            )
            child_out = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append(
                (
                    f"batch score {kind} + 4 reasons, {args.score_rows:,} rows",
                    child_out["seconds"],
                    f"peak RSS {child_out['peak_mb']:.0f} MB, CPU {child_out['cpu']:.2f} s",
                )
            )
        sample: list[dict[str, Any]] = [
            {str(k): v for k, v in row.items()}
            for row in book(args.single, seed=9).drop(columns="bad").to_dict("records")
        ]
        for kind in ("scorecard", "gbm"):
            scorer = load_model(Path(tmp) / kind)
            for record in sample[:200]:
                scorer.score(record)
            times = []
            cpu = time.process_time()
            for record in sample:
                start = time.perf_counter_ns()
                scorer.score(record)
                times.append(time.perf_counter_ns() - start)
            cpu_us = (time.process_time() - cpu) / len(sample) * 1e6
            p50, p99 = np.percentile(times, [50, 99]) / 1000
            rows.append(
                (
                    f"one in-process score {kind} + reasons",
                    p99 / 1e6,
                    f"p50 {p50:.0f} µs, p99 {p99:.0f} µs, CPU {cpu_us:.0f} µs per call",
                )
            )
    fit_s, score_s = optbinning_side(frame, book(args.score_rows, seed=7).drop(columns="bad"))
    rows.append((f"optbinning Scorecard fit, {args.rows:,} x 10 (no report)", fit_s, ""))
    rows.append((f"optbinning Scorecard.score, {args.score_rows:,} rows (no reasons)", score_s, ""))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'seconds':>8}  note")  # seconds: wall time (p99 for one score)
    for name, seconds, note in rows:
        print(f"{name:<{width}}  {seconds:8.3f}  {note}")


if __name__ == "__main__":
    main()
