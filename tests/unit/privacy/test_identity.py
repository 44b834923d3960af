"""Resident ID numbers, phones and names: what is accepted, what is refused, and why.

Expected values come from the standard (GB 11643-1999's example 11010519491231002X) and
from computing the ISO 7064 MOD 11-2 check digit by hand in `_check_digit` below.
"""

from __future__ import annotations

from datetime import date

import pytest

from creditline.privacy.domain.identity import (
    mask_name,
    mask_national_id,
    mask_phone,
    parse_mobile,
    parse_name,
    parse_national_id,
)
from creditline.shared.errors import FieldIssue

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def _check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2, written out independently of python-stdnum."""
    remainder = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11
    return "10X98765432"[remainder]


def test_the_standards_example_is_valid_and_gives_its_birth_date() -> None:
    assert parse_national_id("11010519491231002X") == ("11010519491231002X", date(1949, 12, 31))


def test_a_lower_case_x_is_accepted_and_normalised() -> None:
    assert parse_national_id("11010519491231002x") == ("11010519491231002X", date(1949, 12, 31))


def test_an_id_built_with_an_independent_check_digit_is_valid() -> None:
    first17 = "44030419900307123"
    result = parse_national_id(first17 + _check_digit(first17))

    assert not isinstance(result, FieldIssue)
    assert result[1] == date(1990, 3, 7)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("110105194912310021", "invalid_check_digit"),
        ("11010519491331002" + _check_digit("11010519491331002"), "invalid_birth_date"),
        ("11010519490230002" + _check_digit("11010519490230002"), "invalid_birth_date"),
        ("1101051949123100", "invalid_length"),
        ("110105491231002", "invalid_length"),
        ("1101051949123100AX", "invalid_format"),
        ("", "invalid_length"),
    ],
)
def test_bad_id_numbers_are_refused_with_the_reason(text: str, code: str) -> None:
    result = parse_national_id(text)

    assert isinstance(result, FieldIssue)
    assert (result.field, result.code) == ("national_id", code)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13812345678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("199-1234-5678", "19912345678"),
    ],
)
def test_mainland_mobile_numbers_are_normalised(text: str, expected: str) -> None:
    assert parse_mobile(text) == expected


@pytest.mark.parametrize("text", ["12812345678", "1381234567", "138123456789", "02112345678", ""])
def test_other_numbers_are_not_mobiles(text: str) -> None:
    result = parse_mobile(text)

    assert isinstance(result, FieldIssue)
    assert result.code == "invalid_phone"


@pytest.mark.parametrize(
    ("text", "code"),
    [("  ", "required"), ("a" * 65, "too_long"), ("张\x00三", "invalid_characters")],
)
def test_bad_names_are_refused(text: str, code: str) -> None:
    result = parse_name(text)

    assert isinstance(result, FieldIssue)
    assert result.code == code


def test_masks_keep_only_what_a_customer_recognises() -> None:
    assert mask_national_id("11010519491231002X") == "110105********002X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三") == "张*"
    assert mask_name("李") == "李*"
