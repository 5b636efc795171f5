"""Robot keys out of logs: a webhook URL's `key=` value is a secret, logged only as `abc…`.

Importing this module installs a filter on httpx's loggers, which log full request URLs.
"""

from __future__ import annotations

import logging
import re

_KEY_IN_URL = re.compile(r"(key=)([^&\s'\"]*)", re.IGNORECASE)


def redact_key(key: str) -> str:
    """`abc…` for a key (nothing of short ones), safe to log."""
    return f"{key[:3]}…" if len(key) >= 12 else "…"


def redact(text: str) -> str:
    """`text` with every `key=…` query value redacted."""
    return _KEY_IN_URL.sub(lambda m: m.group(1) + redact_key(m.group(2)), text)


class _RedactFilter(logging.Filter):
    """Redacts webhook keys in records of loggers we do not own (httpx logs full URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "key=" in message:
            record.msg, record.args = redact(message), None
        return True


def _install_redaction() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactFilter) for f in logger.filters):
            logger.addFilter(_RedactFilter())


_install_redaction()
