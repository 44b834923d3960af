"""Money: exact parsing, named rounding, and splits that always add back up."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditline.shared.money import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Currency,
    CurrencyMismatchError,
    Money,
    MoneyFormatError,
    total,
)

amounts = st.integers(min_value=-(10**15), max_value=10**15).map(lambda n: Money(n, Currency.CNY))
ratios = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=12).filter(
    lambda rs: sum(rs) > 0
)


@given(amounts, ratios)
def test_allocated_parts_always_sum_to_the_whole(amount: Money, parts: list[int]) -> None:
    split = amount.allocate(parts)

    assert total(split, Currency.CNY) == amount
    assert len(split) == len(parts)


@given(amounts, ratios)
def test_each_part_is_within_one_fen_of_its_exact_share(amount: Money, parts: list[int]) -> None:
    split = amount.allocate(parts)

    for part, ratio in zip(split, parts, strict=True):
        exact = Decimal(amount.minor_units) * ratio / sum(parts)
        assert abs(Decimal(part.minor_units) - exact) < 1


def test_leftover_fen_go_to_the_largest_remainders_first() -> None:
    assert [m.to_str() for m in Money.yuan("100.01").allocate([1, 1, 1])] == [
        "33.34",
        "33.34",
        "33.33",
    ]
    # 1.5 and 3.5 fen: equal remainders, so the earlier part takes the leftover fen.
    assert [m.minor_units for m in Money(5, Currency.CNY).allocate([30, 70])] == [2, 3]


def test_a_zero_ratio_gets_nothing() -> None:
    assert [m.minor_units for m in Money(101, Currency.CNY).allocate([0, 1])] == [0, 101]


@pytest.mark.parametrize("bad", [[], [0, 0], [-1, 2], [1.5]])
def test_allocate_refuses_meaningless_ratios(bad: list[int]) -> None:
    with pytest.raises(ValueError, match="ratio"):
        Money.yuan(1).allocate(bad)


@pytest.mark.parametrize(
    ("amount", "rounding", "fen"),
    [
        ("0.125", ROUND_HALF_EVEN, 12),
        ("0.135", ROUND_HALF_EVEN, 14),
        ("0.125", ROUND_HALF_UP, 13),
        ("0.129", ROUND_DOWN, 12),
        ("-0.125", ROUND_HALF_UP, -13),
    ],
)
def test_from_decimal_rounds_once_by_the_named_mode(amount: str, rounding: str, fen: int) -> None:
    assert Money.from_decimal(Decimal(amount), Currency.CNY, rounding=rounding).minor_units == fen


def test_from_decimal_refuses_an_unknown_rounding_mode() -> None:
    with pytest.raises(ValueError, match="rounding"):
        Money.from_decimal(Decimal(1), Currency.CNY, rounding="ROUND_SOMETIMES")


@pytest.mark.parametrize(
    ("text", "fen"), [("10000.00", 1_000_000), ("0.01", 1), ("7", 700), (" 12.5 ", 1250)]
)
def test_parse_reads_decimal_strings_exactly(text: str, fen: int) -> None:
    assert Money.parse(text).minor_units == fen


@pytest.mark.parametrize("text", ["1.001", "abc", "", "NaN", "Infinity", "1e400000", "1,000"])
def test_parse_refuses_what_is_not_an_exact_amount(text: str) -> None:
    with pytest.raises(MoneyFormatError):
        Money.parse(text)


def test_parse_refuses_a_float() -> None:
    with pytest.raises(MoneyFormatError):
        Money.parse(0.1)  # type: ignore[arg-type]


def test_currencies_do_not_mix() -> None:
    with pytest.raises(CurrencyMismatchError):
        Money(1, Currency.CNY) + Money(1, Currency.USD)


def test_money_refuses_a_float_amount() -> None:
    with pytest.raises(TypeError):
        Money(1.0, Currency.CNY)  # type: ignore[arg-type]


@given(amounts)
def test_to_str_and_parse_round_trip(amount: Money) -> None:
    assert Money.parse(amount.to_str()) == amount
