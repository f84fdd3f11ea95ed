"""Logging for every process: level and format from the Settings, and secrets never written.

``ENGAGE_LOG_FORMAT=json`` writes one JSON object per line, for a log platform to index:
``{"ts", "level", "logger", "component", "message"}`` plus the context a call passes with ``extra=``
(``partition``, ``topic``, ``events``, ``count``, ...; see :data:`CONTEXT_KEYS`) and the traceback as
``exc``. ``component`` is the sub-command (``worker``, ``ingest``, ...), so the lines of several processes
shipped to one place stay apart.

**Secrets.** :class:`RedactSecrets` replaces every configured secret value (webhook secrets, the Meta
verify token, the ClickHouse password) and any ``user:password@`` in a URL with ``<redacted>``, in the
message and its context, whatever logger wrote it, so a library that logs a DSN or a header cannot leak it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

import orjson

#: Context keys a log call may pass with ``extra=`` that the JSON format writes as fields.
CONTEXT_KEYS = (
    "partition",
    "platform",
    "partitions",
    "topic",
    "events",
    "count",
    "offset",
    "reason",
    "table",
    "rows",
    "duration_s",
)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@", re.IGNORECASE)
REDACTED = "<redacted>"


def secret_values(webhook_secrets: Iterable[str], verify_token: str, clickhouse_dsn: str) -> list[str]:
    """The strings that must never appear in a log line."""
    values = [*webhook_secrets, verify_token]
    if clickhouse_dsn:
        password = urlsplit(clickhouse_dsn).password
        if password:
            values.append(password)
    # Longest first, so a secret containing another is replaced whole; very short values would
    # redact ordinary words and are not secrets anyone should use.
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and context so that no secret value is in them."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = list(secrets)

    def redact(self, text: str) -> str:
        text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = self.redact(message), None
        for key in CONTEXT_KEYS:
            value = record.__dict__.get(key)
            if isinstance(value, str):
                record.__dict__[key] = self.redact(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            record.exc_info = None  # formatted (and redacted) above; not formatted again
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, one line."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self._component = component

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "component": self._component,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            if key in record.__dict__:
                document[key] = record.__dict__[key]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exc"] = record.exc_text
        return orjson.dumps(document, default=str).decode()


class _TextFormatter(logging.Formatter):
    """The plain format, with the context appended as ``key=value`` (only what the call passed)."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{k}={record.__dict__[k]}" for k in CONTEXT_KEYS if k in record.__dict__)
        if context and "\n" not in line:
            return f"{line} [{context}]"
        return line


def configure(
    *, level: str, fmt: str, component: str, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> logging.Handler:
    """Replace the root logger's handlers with one writing ``fmt`` at ``level`` to ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(component))
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
