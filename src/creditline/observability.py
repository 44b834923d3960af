"""Structured JSON logs that never carry personal data in the clear.

Every log event passes through `mask_personal_data`: values of keys that name personal
data are masked, and resident-ID-like and mobile-like numbers inside any string are masked
too, so a careless `log.info("…", body=raw_request)` cannot leak them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

_PERSONAL_KEYS = frozenset(
    {"name", "national_id", "phone", "id_number", "mobile", "bank_card", "card_number"}
)
_NATIONAL_ID = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?![\dXx])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_text(text: str) -> str:
    """Mask resident-ID-like and mobile-like numbers anywhere in a text.

    >>> mask_text("id 11010519491231002X phone 13812345678")
    'id 110105********002X phone 138****5678'
    """
    return _MOBILE.sub(r"\1****\2", _NATIONAL_ID.sub(r"\1********\2", text))


def _mask(value: Any, key: str | None = None) -> Any:
    if key is not None and key.lower() in _PERSONAL_KEYS and value is not None:
        return "***"
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: _mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def mask_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = _mask(event_dict[key], key if key != "event" else None)
    return event_dict


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Set up structlog and the standard library's logging once, at start-up.

    Standard-library records (uvicorn's, SQLAlchemy's) go through the same processors,
    so every line is JSON and masked, whoever wrote it. `level` is a level name in any
    case ("warning" or "WARNING"); events below it cost only a method call.
    """
    level = level.upper()
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, mask_personal_data, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # Look sys.stderr up on every call, so a redirected stderr (tests, daemons) is honoured.
        logger_factory=lambda *_args: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            mask_personal_data,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
