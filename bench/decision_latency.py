"""In-process credit decision latency on the embedded default (issue 7's first target).

Each decision runs the whole path `POST /v1/applications` runs, minus HTTP: lock the
customer, read privacy, lending and online features, score with the champion, evaluate
the four policy tables, limit and price, open the credit line, store the decision.
Run: `python -m bench.decision_latency [--applications N]`. Prints p50/p95/p99 in ms of
wall time, and the p50 of the process's CPU time per decision (all its threads, so
zen-engine's worker is counted): on a shared machine the wall figures grow with the
load of other processes, the CPU figure much less. The first 50 decisions warm up.
The policy is the one shipped in `policies/v2` (named explicitly, whatever the default).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from creditline.bootstrap import build_container
from creditline.config import Settings
from creditline.decisioning import service
from creditline.features.domain.online import FeatureVector
from creditline.jobs.seed_demo import seed_demo
from creditline.privacy import service as privacy
from creditline.shared.clock import FixedClock

POLICIES = Path(__file__).resolve().parents[1] / "policies" / "v2"
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def national_id(n: int) -> str:
    first17 = f"110105{1980 + n % 20}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return (
        first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]
    )


class Vectors:
    """The simulated population's feature vectors, handed to the benchmark's customers in
    turn (the online store's own read path is measured in bench/features_online.py)."""

    def __init__(self, vectors: list[FeatureVector]) -> None:
        self._vectors = vectors
        self._assigned: dict[str, FeatureVector] = {}

    def apply(self, events: object) -> int:
        return 0

    def read(self, customer_id: str, as_of: date) -> FeatureVector:
        if customer_id not in self._assigned:
            self._assigned[customer_id] = self._vectors[len(self._assigned) % len(self._vectors)]
        return self._assigned[customer_id]

    def customers(self) -> list[str]:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--applications", type=int, default=2000)
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="move everything built at start-up out of the collector's reach (gc.freeze) "
        "before deciding, as a server could once it is wired",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clock = FixedClock(datetime(2026, 1, 15, 2, tzinfo=UTC))
        settings = Settings(
            data_dir=Path(tmp), initial_business_date=date(2026, 1, 15), policy_dir=POLICIES
        )
        seed_demo(settings, clock, customers=2000)
        container = build_container(settings, clock=clock, apply_migrations=True)
        frame = pd.read_parquet(Path(tmp) / "demo" / "features.parquet")
        records = frame.drop(columns="customer_id").to_dict("records")
        vectors: list[FeatureVector] = [
            {str(k): (None if pd.isna(v) else v) for k, v in row.items()} for row in records
        ]
        container._feature_store = Vectors(vectors)
        wiring = container.decisioning()
        today = container.business_date()
        ids = []
        for n in range(args.applications):
            customer, _ = privacy.register_customer(
                container.privacy_uow(),
                clock,
                privacy.RegistrationRequest(f"c{n}", national_id(n), f"139{n:08d}", "240000.00"),
                today=today,
            )
            privacy.grant_consents(
                container.privacy_uow(),
                clock,
                customer.customer_id,
                ["credit_assessment", "credit_bureau_query"],
                notice_version="2026-01",
            )
            ids.append(customer.customer_id)
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        timings = []
        cpu = []
        outcomes: dict[str, int] = {}
        for n, customer_id in enumerate(ids):
            started = time.perf_counter()
            started_cpu = time.process_time()
            decision, _ = service.apply_for_credit(
                wiring.uow(),
                clock,
                policies=wiring.policies,
                scorer=wiring.scorer,
                apr_of=wiring.apr_of,
                application_id=f"app-{n}",
                customer_id=customer_id,
                requested_limit=None,
                business_date=today,
            )
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            first = decision.draft.reasons[0].code if decision.draft.reasons else "-"
            key = f"{decision.outcome.value}:{first}"
            outcomes[key] = outcomes.get(key, 0) + 1
        warm = sorted(timings[50:])
        q = statistics.quantiles(warm, n=100)
        cpu_p50 = statistics.median(cpu[50:])
        head = ("decisions", "p50 ms", "p95 ms", "p99 ms", "cpu p50 ms")
        print(f"{head[0]:<12}{head[1]:>10}{head[2]:>10}{head[3]:>10}{head[4]:>12}   outcomes")
        cells = f"{len(warm):<12}{q[49]:>10.2f}{q[94]:>10.2f}{q[98]:>10.2f}{cpu_p50:>12.2f}"
        print(f"{cells}   {outcomes}")
        container.close()


if __name__ == "__main__":
    main()
