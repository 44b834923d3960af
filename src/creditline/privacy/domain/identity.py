"""Identity data and its checks: the resident ID number, the mobile number, the name.

The 18-digit resident identity number (GB 11643-1999) is checked with python-stdnum:
the ISO 7064 MOD 11-2 check digit and a real birth date. Its 7th to 14th digits are the
holder's birth date, from which the age is computed on a given date. A mainland mobile
number is 11 digits starting 13–19. Masking follows the habit of Chinese apps: the ID keeps
its region code and its last four characters, the phone its first three and last four.
"""

from __future__ import annotations

import re
from datetime import date

from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

from creditline.shared.errors import FieldIssue

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_NAME_MAX = 64


def parse_national_id(text: str, *, field: str = "national_id") -> tuple[str, date] | FieldIssue:
    """The normalised ID number and the birth date it encodes, or why it is refused."""
    compact = ric.compact(text) if isinstance(text, str) else ""
    reason: tuple[str, str] | None = None
    try:
        ric.validate(compact)
    except InvalidLength:
        reason = ("invalid_length", "a resident ID number has 18 characters")
    except InvalidFormat:
        reason = ("invalid_format", "a resident ID number is 17 digits and a digit or X")
    except InvalidComponent:
        reason = ("invalid_birth_date", "the birth date in the resident ID number is not real")
    except InvalidChecksum:
        reason = ("invalid_check_digit", "the check digit of the resident ID number is wrong")
    if reason is not None:
        return FieldIssue(field, *reason)
    if len(compact) != 18:
        # stdnum also accepts the retired 15-digit form; we take only today's 18 digits.
        return FieldIssue(field, "invalid_length", "a resident ID number has 18 characters")
    return compact, ric.get_birth_date(compact)


def parse_mobile(text: str, *, field: str = "phone") -> str | FieldIssue:
    """A mainland mobile number, with an optional +86 or 86 prefix, spaces and dashes."""
    compact = re.sub(r"[\s-]", "", text) if isinstance(text, str) else ""
    if compact.startswith("+86"):
        compact = compact[3:]
    elif compact.startswith("86") and len(compact) == 13:
        compact = compact[2:]
    if not _MOBILE.match(compact):
        return FieldIssue(field, "invalid_phone", "a mainland mobile number is 11 digits from 13…")
    return compact


def parse_name(text: str, *, field: str = "name") -> str | FieldIssue:
    name = " ".join(text.split()) if isinstance(text, str) else ""
    if not name:
        return FieldIssue(field, "required", "the name must not be empty")
    if len(name) > _NAME_MAX:
        return FieldIssue(field, "too_long", f"the name has at most {_NAME_MAX} characters")
    if any(not ch.isprintable() for ch in name):
        return FieldIssue(field, "invalid_characters", "the name has control characters")
    return name


def mask_national_id(national_id: str) -> str:
    """The ID with its middle eight characters (the birth date) hidden.

    >>> mask_national_id("11010519491231002X")
    '110105********002X'
    """
    return national_id[:6] + "*" * (len(national_id) - 10) + national_id[-4:]


def mask_phone(phone: str) -> str:
    """The phone with its middle four digits hidden.

    >>> mask_phone("13812345678")
    '138****5678'
    """
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str) -> str:
    """The name with all but its first character hidden.

    >>> mask_name("张三丰")
    '张**'
    """
    return name[:1] + "*" * max(len(name) - 1, 1)
