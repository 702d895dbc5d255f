"""Structured logs: one JSON object per line with the current request's trace and request ids.

Fields: ``ts`` (UTC, ISO-8601, milliseconds), ``level``, ``logger``, ``msg``, ``request_id``,
``trace_id`` (null outside a request) and ``exc`` for a traceback. Log messages never carry
user ids or client addresses: uvicorn's access log (which has the client IP) stays off, and
the service's own messages name routes, versions and counts only.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from app.observability.tracing import CURRENT


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = CURRENT.get()
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": context.request_id if context is not None else None,
            "trace_id": context.trace_id if context is not None else None,
        }
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document (uvicorn's ``log_config``): every logger,
    uvicorn's included, writes JSON lines to stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        # A warning repeated on every request during an outage is written once per window.
        "filters": {"repeats": {"()": "app.observability.log_repeats.RepeatFilter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
                "filters": ["repeats"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"level": level},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"level": "WARNING"},  # off: its lines carry client addresses
            "feast": {"level": "WARNING"},
        },
    }


def configure_batch_logging(log_format: str | None, level: int = logging.INFO) -> None:
    """Log the batch commands' lines as ``log_format`` says (``json``, ``text``, or None:
    JSON unless stderr is a terminal), so a scheduler's log has the server's format."""
    use_json = log_format == "json" or (log_format is None and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if use_json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("feast").setLevel(logging.WARNING)
