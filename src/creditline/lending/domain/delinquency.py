"""Days past due, delinquency buckets and the regulatory loan classes (DOMAIN.md).

DPD is the number of days since the oldest unpaid instalment fell due (grace 0: the day
after the due date is DPD 1). Buckets: current, 1–30, 31–60, 61–90, 91–180, 180+.
Regulatory five-class: overdue ⇒ at least 关注 (special mention), > 90 ⇒ 次级
(substandard), > 270 ⇒ 可疑 (doubtful), > 360 ⇒ 损失 (loss).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum


class Bucket(StrEnum):
    CURRENT = "current"
    DPD_1_30 = "1-30"
    DPD_31_60 = "31-60"
    DPD_61_90 = "61-90"
    DPD_91_180 = "91-180"
    DPD_180_PLUS = "180+"


class RegulatoryClass(StrEnum):
    NORMAL = "normal"  # 正常
    SPECIAL_MENTION = "special_mention"  # 关注
    SUBSTANDARD = "substandard"  # 次级
    DOUBTFUL = "doubtful"  # 可疑
    LOSS = "loss"  # 损失


#: Upper bounds (inclusive) of each bucket; the SQL job uses the same table.
BUCKET_BOUNDS: tuple[tuple[int, Bucket], ...] = (
    (0, Bucket.CURRENT),
    (30, Bucket.DPD_1_30),
    (60, Bucket.DPD_31_60),
    (90, Bucket.DPD_61_90),
    (180, Bucket.DPD_91_180),
)


def days_past_due(oldest_unpaid_due_on: date | None, on: date, grace_days: int = 0) -> int:
    if oldest_unpaid_due_on is None:
        return 0
    late = (on - oldest_unpaid_due_on).days
    return late if late > grace_days else 0


def bucket(dpd: int) -> Bucket:
    if dpd < 0:
        raise ValueError(f"DPD cannot be negative, got {dpd}")
    for upper, name in BUCKET_BOUNDS:
        if dpd <= upper:
            return name
    return Bucket.DPD_180_PLUS


def regulatory_class(dpd: int) -> RegulatoryClass:
    if dpd > 360:
        return RegulatoryClass.LOSS
    if dpd > 270:
        return RegulatoryClass.DOUBTFUL
    if dpd > 90:
        return RegulatoryClass.SUBSTANDARD
    if dpd > 0:
        return RegulatoryClass.SPECIAL_MENTION
    return RegulatoryClass.NORMAL
