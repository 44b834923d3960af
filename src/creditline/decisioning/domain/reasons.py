"""Reason codes: a stable code and a text in English and Chinese for each factor.

Every rule returns a reason code or nothing; a decline or a reduced limit carries at most
four reasons (the "principal reasons" of ECOA/Reg B §1002.9, PIPL Art. 24's explanation).
Policy tables may only emit codes listed here (a test checks every table against this
catalogue), so every code a customer can see has a text in both languages.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_REASONS = 4


class ReasonSource(StrEnum):
    CONSENT = "consent"
    RULE = "rule"
    MODEL = "model"
    REGULATION = "regulation"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    text_en: str
    text_zh: str
    source: ReasonSource


def _r(code: str, en: str, zh: str, source: ReasonSource = ReasonSource.RULE) -> Reason:
    return Reason(code, en, zh, source)


CATALOGUE: dict[str, Reason] = {
    r.code: r
    for r in (
        _r(
            "CONSENT_CREDIT_ASSESSMENT_MISSING",
            "You have not consented to a credit assessment.",
            "您尚未同意信用评估授权。",
            ReasonSource.CONSENT,
        ),
        _r(
            "CONSENT_CREDIT_BUREAU_QUERY_MISSING",
            "You have not consented to a credit bureau query.",
            "您尚未同意征信查询授权。",
            ReasonSource.CONSENT,
        ),
        _r("AGE_BELOW_MINIMUM", "The applicant is younger than 18.", "申请人未满18周岁。"),
        _r("AGE_ABOVE_MAXIMUM", "The applicant is older than 60.", "申请人年龄超过60周岁。"),
        _r(
            "EXISTING_OPEN_LINE",
            "You already have an open credit line with us.",
            "您已有一个有效的授信额度。",
        ),
        _r(
            "CURRENTLY_DELINQUENT",
            "An account of yours is currently past due.",
            "您有逾期未还的账户。",
        ),
        _r(
            "FRAUD_RING_FLAG",
            "The application is linked to accounts flagged for fraud.",
            "申请关联到被标记为欺诈的账户。",
        ),
        _r(
            "SHARED_DEVICE_CLUSTER",
            "Your device is shared by an unusually large number of accounts.",
            "您的设备被异常多的账户共用。",
        ),
        _r(
            "THIN_FILE",
            "There is too little history to decide automatically; a person will review it.",
            "信用记录不足，需人工审核。",
        ),
        _r(
            "SCORE_BELOW_CUTOFF",
            "Your credit score is below the minimum for a credit line.",
            "您的信用评分低于授信最低要求。",
        ),
        _r(
            "SCORE_BORDERLINE",
            "Your credit score is close to the minimum; a person will review it.",
            "您的信用评分接近最低要求，需人工审核。",
        ),
        _r(
            "LIMIT_BELOW_MINIMUM",
            "The limit we could offer is below the product minimum of ¥1,000.",
            "可授信额度低于产品最低额度1,000元。",
            ReasonSource.REGULATION,
        ),
        _r(
            "LIMIT_CAPPED_BY_INCOME",
            "Your limit is capped at one third of your annual income across all lines.",
            "您的额度受年收入三分之一的上限限制。",
            ReasonSource.REGULATION,
        ),
        _r(
            "LIMIT_CAPPED_BY_REGULATION",
            "Your limit is capped by the regulatory maximum per customer.",
            "您的额度受单户监管上限限制。",
            ReasonSource.REGULATION,
        ),
        _r(
            "PRICE_CAPPED",
            "The rate was lowered to the maximum annual cost allowed.",
            "利率已降至允许的最高年化成本。",
            ReasonSource.REGULATION,
        ),
        _r(
            "NO_INCOME_DECLARED",
            "No income was declared, so no limit can be set.",
            "未申报收入，无法核定额度。",
        ),
    )
}


def model_reason(code: str, text_en: str, text_zh: str) -> Reason:
    """A reason that comes from the score (the model's own code and texts)."""
    return Reason(code, text_en, text_zh, ReasonSource.MODEL)


def reason(code: str) -> Reason:
    """The catalogue entry for `code` (KeyError names a code that has no texts)."""
    try:
        return CATALOGUE[code]
    except KeyError:
        raise KeyError(f"reason code {code!r} has no entry in the catalogue") from None
