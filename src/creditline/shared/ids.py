"""Identifiers: opaque, prefixed, and impossible to mix up by type.

A prefix tells a reader what an id names (`cus_…` a customer); `NewType` keeps a customer
id from being passed where a loan id is expected. New ids are random (uuid4, 128 bits), so
they leak neither counts nor creation order.
"""

from __future__ import annotations

import uuid
from typing import NewType

CustomerId = NewType("CustomerId", str)
ConsentId = NewType("ConsentId", str)
RequestId = NewType("RequestId", str)


def new_id(prefix: str) -> str:
    """A fresh opaque id such as `cus_5f0c…` (prefix, underscore, 32 hex digits)."""
    if not prefix.isalpha() or not prefix.islower():
        raise ValueError(f"an id prefix is lower-case letters, got {prefix!r}")
    return f"{prefix}_{uuid.uuid4().hex}"


def new_customer_id() -> CustomerId:
    return CustomerId(new_id("cus"))
