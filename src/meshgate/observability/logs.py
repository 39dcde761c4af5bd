"""Structured logs: JSON lines in production, readable lines in a terminal, each with the trace and span
ids, the request id and the organization of the request that wrote it.

Nothing here logs argument values or credentials; code that logs must not either (a test greps the logs
of the test run for every secret it used).
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace

from meshgate.observability import context

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class RequestContextFilter(logging.Filter):
    """Adds request id, organization and trace/span ids to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = context.request_id.get()
        record.organization_id = context.organization_id.get()
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        else:
            ids = context.trace_ids.get()
            record.trace_id, record.span_id = ids if ids is not None else (None, None)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "organization_id", "trace_id", "span_id"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """A readable line for terminals, with the request context appended when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = [
            f"{key}={value}"
            for key in ("request_id", "organization_id", "trace_id")
            if (value := getattr(record, key, None)) is not None
        ]
        return f"{line} [{' '.join(extra)}]" if extra else line


# Secrets that travel in URLs: invitation tokens in the path, OAuth codes and states in the query.
_SECRET_IN_URL = re.compile(r"(/invite/|/api/storage/objects/)[^/?#\s]+|([?&](?:code|state)=)[^&#\s]+")


def redact_url(path: str) -> str:
    """`path` with the secrets it may carry replaced by `[redacted]`."""
    return _SECRET_IN_URL.sub(lambda match: (match.group(1) or match.group(2)) + "[redacted]", path)


class AccessLogRedaction(logging.Filter):
    """uvicorn's access lines carry the full path and query (`MESHGATE_ACCESS_LOG=1`): mask their secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_url(args[2]), *args[3:])
        return True


def configure_logging(level: str, log_format: str = "auto") -> None:
    """`log_format` is json, text, or auto (text on a terminal, JSON otherwise)."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDK logs every stateless request at INFO; that is noise for a gateway. SQLAlchemy at DEBUG/INFO
    # would log statements with their parameters: never, whatever the level.
    quiet = "WARNING" if level in ("DEBUG", "INFO") else level
    # botocore at DEBUG logs every S3 request with its signed headers and the canonical request.
    for name in ("mcp", "sqlalchemy", "aiosqlite", "asyncio", "alembic", "botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(name).setLevel(quiet)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogRedaction) for f in access.filters):
        access.addFilter(AccessLogRedaction())


def uvicorn_log_config() -> dict[str, Any]:
    """Let uvicorn's loggers go through the root handler configured above."""
    return {"version": 1, "disable_existing_loggers": False}
