"""Benchmark the population simulator: events per second and peak memory.

    .venv/bin/python bench/simulator_run.py --customers 100000 --months 12

Writes to a temporary folder (deleted afterwards) and prints one table row per run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
from pathlib import Path

from creditline.data.simulator.population import SimulationConfig
from creditline.data.simulator.run import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="creditline-sim-"))
    try:
        config = SimulationConfig(customers=args.customers, months=args.months, seed=args.seed)
        summary = simulate(config, folder / "out")
        size = sum(p.stat().st_size for p in (folder / "out").rglob("*") if p.is_file())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mib = usage.ru_maxrss / 1024
    cpu = usage.ru_utime + usage.ru_stime  # the whole process, start-up and writer included
    rows = [
        ("customers", f"{summary.customers:,}"),
        ("months", str(args.months)),
        ("events", f"{summary.events:,}"),
        ("seconds", f"{summary.seconds:.1f}"),
        ("process CPU s", f"{cpu:.1f}"),
        ("events/s", f"{summary.events / summary.seconds:,.0f}"),
        ("peak RSS (MiB)", f"{peak_mib:,.0f}"),
        ("on disk (MiB)", f"{size / 2**20:,.0f}"),
        ("bad rate", f"{summary.base_rate:.4f}"),
    ]
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| " + " | ".join(name for name, _ in rows) + " |")
    print("|" + "---|" * len(rows))
    print("| " + " | ".join(value for _, value in rows) + " |")


if __name__ == "__main__":
    main()
