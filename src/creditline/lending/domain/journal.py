"""Journal entries: the only way money moves in the lending ledger (CONVENTIONS C1, C3).

An entry is immutable and balanced: per currency, debits equal credits. A mistake is put
right by another entry, never by editing one. Account codes name their normal balance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import NewType

from creditline.shared.money import Currency, Money

AccountCode = NewType("AccountCode", str)
EntryId = NewType("EntryId", str)

PRINCIPAL_RECEIVABLE = AccountCode("asset:loans_receivable:principal")
INTEREST_RECEIVABLE = AccountCode("asset:loans_receivable:interest")
PENALTY_RECEIVABLE = AccountCode("asset:loans_receivable:penalty")
CASH = AccountCode("asset:cash:settlement")
INTEREST_INCOME = AccountCode("income:interest")
PENALTY_INCOME = AccountCode("income:penalty_interest")
RECOVERY_INCOME = AccountCode("income:recoveries")
CREDIT_LOSSES = AccountCode("expense:credit_losses")

ACCOUNTS: tuple[AccountCode, ...] = (
    PRINCIPAL_RECEIVABLE,
    INTEREST_RECEIVABLE,
    PENALTY_RECEIVABLE,
    CASH,
    INTEREST_INCOME,
    PENALTY_INCOME,
    RECOVERY_INCOME,
    CREDIT_LOSSES,
)


class UnbalancedEntryError(ValueError):
    """An entry whose debits and credits differ."""


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


@dataclass(frozen=True, slots=True)
class Posting:
    account: AccountCode
    side: Side
    amount: Money

    def __post_init__(self) -> None:
        if self.amount.minor_units <= 0:
            raise ValueError(f"a posting moves a positive amount, got {self.amount}")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    entry_id: EntryId
    effective_on: date
    kind: str
    memo: str
    postings: tuple[Posting, ...]
    loan_id: str | None = None

    def __post_init__(self) -> None:
        if len(self.postings) < 2:
            raise UnbalancedEntryError(f"{self.entry_id}: an entry needs at least two postings")
        for currency, net in _net_by_currency(self.postings).items():
            if net != 0:
                raise UnbalancedEntryError(f"{self.entry_id}: {currency} off by {net} minor units")


def _net_by_currency(postings: Iterable[Posting]) -> dict[Currency, int]:
    nets: dict[Currency, int] = defaultdict(int)
    for posting in postings:
        sign = 1 if posting.side is Side.DEBIT else -1
        nets[posting.amount.currency] += sign * posting.amount.minor_units
    return dict(nets)


def entry(
    entry_id: EntryId,
    on: date,
    kind: str,
    memo: str,
    legs: Iterable[tuple[AccountCode, AccountCode, Money]],
    loan_id: str | None = None,
) -> JournalEntry | None:
    """An entry from (debit account, credit account, amount) legs; zero legs are dropped.

    Returns None when every leg is zero: nothing moved, so nothing is recorded.
    """
    postings: list[Posting] = []
    for debit, credit, amount in legs:
        if amount.is_zero:
            continue
        postings += [Posting(debit, Side.DEBIT, amount), Posting(credit, Side.CREDIT, amount)]
    if not postings:
        return None
    return JournalEntry(entry_id, on, kind, memo, tuple(postings), loan_id)


def net_movements(entries: Iterable[JournalEntry]) -> dict[tuple[AccountCode, Currency], int]:
    """Debits minus credits per account and currency, in minor units."""
    nets: dict[tuple[AccountCode, Currency], int] = defaultdict(int)
    for item in entries:
        for posting in item.postings:
            sign = 1 if posting.side is Side.DEBIT else -1
            nets[posting.account, posting.amount.currency] += sign * posting.amount.minor_units
    return dict(nets)
