"""The credit line: available amount, refusals with reasons, history, freeze and cure."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from creditline.lending.domain.credit_line import (
    MAX_OPEN_DRAWS,
    CreditLine,
    LineStatus,
    ReasonCode,
)
from creditline.lending.domain.terms import Rounding
from creditline.shared.errors import BusinessRuleError
from creditline.shared.money import Money

ON = date(2026, 1, 15)


def a_line(limit: str = "10000") -> CreditLine:
    return CreditLine.open("CL1", "C1", Money.yuan(limit), Decimal("0.0003"), ON)


def test_repaid_principal_becomes_available_again() -> None:
    line = a_line()
    line.draw(Money.yuan(4000))

    line.restore(Money.yuan(1500), loan_closed=False)

    assert line.available == Money.yuan(7500)
    assert line.available + line.outstanding == line.limit


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (
            lambda line: line.change_status(LineStatus.FROZEN, ReasonCode.RISK_SIGNAL, ON),
            "line_frozen",
        ),
        (lambda line: line.draw(Money.yuan(9999)), "limit_exceeded"),
        (lambda line: setattr(line, "open_draws", MAX_OPEN_DRAWS), "too_many_open_draws"),
    ],
)
def test_a_refused_draw_names_its_reason(setup: object, code: str) -> None:
    line = a_line()
    setup(line)  # type: ignore[operator]

    with pytest.raises(BusinessRuleError) as refused:
        line.draw(Money.yuan(2))

    assert refused.value.code == code


def test_a_lower_limit_below_outstanding_leaves_nothing_available() -> None:
    line = a_line()
    line.draw(Money.yuan(6000))

    line.change_limit(Money.yuan(5000), ReasonCode.PERIODIC_REVIEW, ON)

    assert line.available == Money.yuan(0)
    assert [c.reason for c in line.history] == [ReasonCode.OPENED, ReasonCode.PERIODIC_REVIEW]


def test_overdue_freezes_and_cure_unfreezes_only_our_own_freeze() -> None:
    ours, theirs = a_line(), a_line()
    theirs.change_status(LineStatus.FROZEN, ReasonCode.RISK_SIGNAL, ON)

    ours.reflect_delinquency(True, ON)
    ours.reflect_delinquency(False, ON)
    theirs.reflect_delinquency(False, ON)

    assert ours.status is LineStatus.ACTIVE
    assert [c.reason for c in ours.history][-2:] == [ReasonCode.OVERDUE, ReasonCode.OVERDUE_CURED]
    assert theirs.status is LineStatus.FROZEN


@pytest.mark.parametrize(
    ("numerator", "denominator", "half_up", "half_even", "down"),
    [(5, 2, 3, 2, 2), (7, 2, 4, 4, 3), (7, 3, 2, 2, 2), (8, 3, 3, 3, 2), (0, 7, 0, 0, 0)],
)
def test_integer_rounding_modes(
    numerator: int, denominator: int, half_up: int, half_even: int, down: int
) -> None:
    assert Rounding.HALF_UP.divide(numerator, denominator) == half_up
    assert Rounding.HALF_EVEN.divide(numerator, denominator) == half_even
    assert Rounding.DOWN.divide(numerator, denominator) == down
