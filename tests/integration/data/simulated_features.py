"""Per-customer aggregates over simulated events, computed independently of the simulator.

Used by the learnability test: a handful of sensible features, a logistic regression,
and the test AUC it reaches.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

FEATURES_SQL = """
WITH e AS (SELECT * FROM read_parquet('{events}/**/*.parquet', hive_partitioning = false)),
rep AS (
    SELECT customer_id,
           avg(CASE WHEN (occurred_at + INTERVAL 8 HOUR)::DATE > due_on THEN 1 ELSE 0 END)
               AS late_rate,
           avg(amount_minor::DOUBLE / greatest(amount_due_minor, 1)) AS paid_share,
           count(*) AS repayments
    FROM e WHERE event_type = 'bill_repayment' GROUP BY 1),
bil AS (
    SELECT customer_id, avg(amount_due_minor::DOUBLE / credit_limit_minor) AS utilisation,
           count(*) AS bills
    FROM e WHERE event_type = 'bill' GROUP BY 1),
alt AS (
    SELECT customer_id,
           avg(CASE WHEN (occurred_at + INTERVAL 8 HOUR)::DATE > due_on THEN 1 ELSE 0 END)
               AS alt_late_rate
    FROM e WHERE event_type = 'alternative_payment' AND due_on IS NOT NULL GROUP BY 1),
pay AS (
    SELECT customer_id, count(*) AS payments,
           avg(CASE WHEN category = 'gaming' THEN 1 ELSE 0 END) AS gaming_share
    FROM e WHERE event_type = 'payment' GROUP BY 1),
bal AS (
    SELECT customer_id, avg(ln(1 + amount_minor)) AS log_savings
    FROM e WHERE event_type = 'balance' AND category = 'savings' GROUP BY 1),
dev AS (
    SELECT customer_id, sum(CASE WHEN is_sim_change THEN 1 ELSE 0 END) AS sim_changes
    FROM e WHERE event_type = 'device_login' GROUP BY 1),
pro AS (
    SELECT customer_id, max(ln(1 + amount_minor)) AS log_income
    FROM e WHERE event_type = 'profile_update' GROUP BY 1)
SELECT o.customer_id, o.bad,
       coalesce(rep.late_rate, 0) AS late_rate, coalesce(rep.paid_share, 1) AS paid_share,
       coalesce(bil.utilisation, 0) AS utilisation,
       coalesce(bil.bills, 0) - coalesce(rep.repayments, 0) AS missed,
       coalesce(alt.alt_late_rate, 0) AS alt_late_rate,
       coalesce(pay.payments, 0) AS payments, coalesce(pay.gaming_share, 0) AS gaming_share,
       coalesce(bal.log_savings, 0) AS log_savings, coalesce(dev.sim_changes, 0) AS sim_changes,
       coalesce(pro.log_income, 0) AS log_income
FROM read_parquet('{outcomes}') o
LEFT JOIN rep USING (customer_id) LEFT JOIN bil USING (customer_id)
LEFT JOIN alt USING (customer_id) LEFT JOIN pay USING (customer_id)
LEFT JOIN bal USING (customer_id) LEFT JOIN dev USING (customer_id)
LEFT JOIN pro USING (customer_id)
ORDER BY o.customer_id
"""


def customer_features(out: Path) -> pd.DataFrame:
    sql = FEATURES_SQL.format(events=out / "events", outcomes=out / "outcomes.parquet")
    with duckdb.connect() as connection:
        frame: pd.DataFrame = connection.execute(sql).df()
    return frame
