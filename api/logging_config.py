"""Logging for `vitrine serve`: one JSON object per line (or plain text), each with the request id.

The pieces are separate so others can be combined with them: `JsonFormatter` only formats,
`api.request_id.RequestIdFilter` only adds the request id, and a redacting filter (customer tokens in
access-log paths) goes in `logging_config(filters=...)` beside it. `logging_config` is a
`logging.config.dictConfig` dictionary that uvicorn takes as its `log_config`, so uvicorn's own
error and access logs come out the same way as the app's.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

#: LogRecord attributes that are not `extra=` fields, and uvicorn's coloured copy of its message.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
_STANDARD = _RECORD_FIELDS | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: time (UTC, ISO 8601), level, logger, message, request_id, any
    `extra=` fields, and the traceback as one string (so a line is always one event)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def logging_config(
    log_format: str = "json", level: str = "INFO", filters: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A dictConfig for the app and uvicorn: `log_format` "json" or "text"; `filters` are added to
    every handler after the request-id filter (name -> dictConfig filter definition)."""
    if log_format not in ("json", "text"):
        raise ValueError(f"VITRINE_LOG_FORMAT must be json or text, not {log_format!r}")
    extra = filters or {}
    formatter = {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "vitrine",
        "filters": ["request_id", *extra],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "api.request_id.RequestIdFilter"}, **extra},
        "formatters": {"vitrine": formatter},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        # uvicorn's loggers write through the root handler (propagate) instead of their own.
        "loggers": {name: {"handlers": [], "propagate": True, "level": level} for name in UVICORN_LOGGERS},
    }
