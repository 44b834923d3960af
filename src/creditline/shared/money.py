"""Exact money. Never a float.

An amount is a whole number of minor units (fen for CNY) with its currency, the way
TigerBeetle stores balances. Rates and interest maths use `Decimal` and become `Money`
once, through `Money.from_decimal`, which must name its rounding mode. `allocate` splits
an amount so that the parts always add back to the whole.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

#: Rounding modes by name, so a call site says which rule it follows.
ROUND_HALF_EVEN = decimal.ROUND_HALF_EVEN
ROUND_HALF_UP = decimal.ROUND_HALF_UP
ROUND_DOWN = decimal.ROUND_DOWN
ROUND_UP = decimal.ROUND_UP
ROUND_FLOOR = decimal.ROUND_FLOOR
ROUND_CEILING = decimal.ROUND_CEILING

#: No amount has more than this many digits before the point (10^15 yuan is absurd).
_MAX_DIGITS = 15

_ROUNDINGS = frozenset(
    {ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_DOWN, ROUND_UP, ROUND_FLOOR, ROUND_CEILING}
)


class Currency(StrEnum):
    """ISO 4217 currencies that creditline books, with their minor-unit exponent."""

    CNY = "CNY"
    USD = "USD"
    HKD = "HKD"

    @property
    def exponent(self) -> int:
        return 2


class CurrencyMismatchError(ValueError):
    """Two amounts in different currencies were combined."""


class MoneyFormatError(ValueError):
    """A decimal string could not be read as an amount of money."""


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount: `minor_units` of `currency` (may be negative for balances)."""

    minor_units: int
    currency: Currency

    def __post_init__(self) -> None:
        if isinstance(self.minor_units, bool) or not isinstance(self.minor_units, int):
            raise TypeError(f"minor_units must be an int, got {type(self.minor_units).__name__}")
        if not isinstance(self.currency, Currency):
            raise TypeError(f"currency must be a Currency, got {self.currency!r}")

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def zero(cls, currency: Currency) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, amount: Decimal, currency: Currency, *, rounding: str) -> Money:
        """Round a decimal amount in major units (yuan) to minor units, by the named mode.

        >>> Money.from_decimal(Decimal("1.005"), Currency.CNY, rounding=ROUND_HALF_EVEN)
        Money(minor_units=100, currency=<Currency.CNY: 'CNY'>)
        """
        if rounding not in _ROUNDINGS:
            raise ValueError(f"unknown rounding mode {rounding!r}")
        if not amount.is_finite():
            raise MoneyFormatError(f"amount must be finite, got {amount}")
        scaled = amount.scaleb(currency.exponent).quantize(Decimal(1), rounding=rounding)
        return cls(int(scaled), currency)

    @classmethod
    def parse(cls, text: str, currency: Currency = Currency.CNY) -> Money:
        """Read an exact decimal string in major units ("10000.00"); no rounding happens.

        More decimal places than the currency has is an error, not a silent rounding.

        >>> Money.parse("10000.5").minor_units
        1000050
        """
        if not isinstance(text, str):
            raise MoneyFormatError('amount must be a decimal string such as "1000.00"')
        stripped = text.strip()
        try:
            value = Decimal(stripped)
        except decimal.InvalidOperation:
            raise MoneyFormatError(f"{text!r} is not a decimal number") from None
        if not value.is_finite() or stripped.lower().startswith(("+inf", "-inf", "inf", "nan")):
            raise MoneyFormatError(f"{text!r} is not a finite amount")
        if value.adjusted() > _MAX_DIGITS:
            raise MoneyFormatError(f"{text!r} is too large to be an amount of money")
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > currency.exponent:
            raise MoneyFormatError(f"{text!r} has more than {currency.exponent} decimal places")
        return cls(int(value.scaleb(currency.exponent)), currency)

    @classmethod
    def yuan(cls, text: str | int) -> Money:
        """CNY from a decimal string or a whole number of yuan (tests and examples)."""
        return cls.parse(str(text), Currency.CNY)

    # -- reading --------------------------------------------------------------------------

    @property
    def amount(self) -> Decimal:
        """The exact amount in major units."""
        return Decimal(self.minor_units).scaleb(-self.currency.exponent)

    def to_str(self) -> str:
        """The API form: a decimal string with exactly the currency's places ("10000.00")."""
        return f"{self.amount:.{self.currency.exponent}f}"

    def __str__(self) -> str:
        return f"{self.to_str()} {self.currency}"

    @property
    def is_zero(self) -> bool:
        return self.minor_units == 0

    @property
    def is_positive(self) -> bool:
        return self.minor_units > 0

    @property
    def is_negative(self) -> bool:
        return self.minor_units < 0

    # -- arithmetic -----------------------------------------------------------------------

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency is not self.currency:
            raise CurrencyMismatchError(f"{self.currency} and {other.currency} do not mix")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor_units + other.minor_units, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor_units - other.minor_units, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor_units, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor_units < other.minor_units

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor_units <= other.minor_units

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor_units > other.minor_units

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor_units >= other.minor_units

    def times(self, factor: Decimal, *, rounding: str) -> Money:
        """Multiply by an exact decimal factor and round once, by the named mode."""
        return Money.from_decimal(self.amount * factor, self.currency, rounding=rounding)

    def allocate(self, ratios: Sequence[int]) -> list[Money]:
        """Split into parts proportional to `ratios`; the parts always sum to `self`.

        Leftover minor units go, one each, to the parts with the largest remainders
        (ties to the earlier part): 100.01 split 1:1:1 is 33.34 + 33.34 + 33.33.

        >>> [m.to_str() for m in Money.yuan("100.01").allocate([1, 1, 1])]
        ['33.34', '33.34', '33.33']
        """
        if not ratios:
            raise ValueError("allocate needs at least one ratio")
        if any(isinstance(r, bool) or not isinstance(r, int) or r < 0 for r in ratios):
            raise ValueError(f"ratios must be non-negative integers, got {list(ratios)}")
        total = sum(ratios)
        if total == 0:
            raise ValueError("ratios must not all be zero")
        sign = -1 if self.minor_units < 0 else 1
        units = abs(self.minor_units)
        shares = [units * r // total for r in ratios]
        remainders = [units * r % total for r in ratios]
        leftover = units - sum(shares)
        order = sorted(range(len(ratios)), key=lambda i: (-remainders[i], i))
        for i in order[:leftover]:
            shares[i] += 1
        return [Money(sign * s, self.currency) for s in shares]


def total(amounts: Sequence[Money], currency: Currency) -> Money:
    """The sum of `amounts` (zero when empty), all in `currency`."""
    result = Money.zero(currency)
    for amount in amounts:
        result += amount
    return result
