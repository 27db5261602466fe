"""Logging for the gateway, with a filter that masks identifiers in every record.

The gateway never logs brand member ids (they are opaque strings no pattern could find, so
the code simply never passes them to a logger). What a pattern can find is masked on the
way out, whoever logged it (our code, uvicorn, a library's traceback):

- alliance member ids `mbr_<24 hex>` keep their first 4 hex digits: `mbr_1a2b…`;
- 0x addresses (40 hex digits) keep their first 6 and last 4 characters: `0x1a2b…9f0e`
  (64-digit transaction hashes are public chain data and stay whole);
- anything that looks like an email keeps the first character and the domain: `j…@example.com`.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

MEMBER_ID = re.compile(r"\bmbr_([0-9a-f]{4})[0-9a-f]{20}\b")
ADDRESS = re.compile(r"\b(0x[0-9a-fA-F]{4})[0-9a-fA-F]{32}([0-9a-fA-F]{4})\b")
EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\b")
ELLIPSIS = "…"

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def mask_identifiers(text: str) -> str:
    """`text` with member ids, addresses and emails shortened so they identify no one."""
    text = MEMBER_ID.sub(lambda m: f"mbr_{m[1]}{ELLIPSIS}", text)
    text = ADDRESS.sub(lambda m: f"{m[1]}{ELLIPSIS}{m[2]}", text)
    return EMAIL.sub(lambda m: f"{m[1]}{ELLIPSIS}@{m[2]}", text)


class MaskingFilter(logging.Filter):
    """Masks identifiers in a record's message, exception text and stack (never drops it).

    The message is rendered once here (`msg % args`) and stored masked, so no handler or
    formatter later sees the raw arguments."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_identifiers(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_identifiers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_identifiers(record.stack_info)
        return True


def configure_logging(level: int | str = logging.INFO) -> None:
    """Log to stderr through the masking filter (idempotent: safe to call more than once).

    The filter sits on the root handlers, not on loggers, because a logger's own filters
    do not see records propagated from its children (uvicorn's, a library's)."""
    root = logging.getLogger()
    if not any(isinstance(handler, _GatewayHandler) for handler in root.handlers):
        ours = _GatewayHandler(sys.stderr)
        ours.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(ours)
    for handler in root.handlers:
        if not any(isinstance(existing, MaskingFilter) for existing in handler.filters):
            handler.addFilter(MaskingFilter())
    logging.getLogger("gateway").setLevel(level)


class _GatewayHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs (a distinct type, so it is installed once)."""
