"""Customer tokens (and the one-time links' tokens) never reach a log line.

A customer's request page is `/r/<token>` (and the JSON API's `/api/requests/<token>`): the path is
the key, and uvicorn's access log writes every path it serves. The same holds for the invitation,
waitlist-verification, set-password and unsubscribe links (`TOKEN_PREFIXES`). `RedactTokens` is a logging filter
that rewrites such paths, wherever they appear in a record (the message, its arguments, `extra=`
fields), to `/r/[token]` before any handler formats it. `vitrine serve` puts it on every handler
(`REDACTION_FILTERS`, given to `api.logging_config.logging_config`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: The paths whose next part is a bearer token: a customer's request, and the one-time links of the
#: waitlist, invitations, set-password and unsubscribe pages.
TOKEN_PREFIXES = ("/r/", "/api/requests/", "/invite/", "/set-password/", "/waitlist/verify/", "/mail/unsubscribe/")
#: A token is 16-128 URL-safe characters after one of those prefixes.
_TOKEN_PATH = re.compile("(" + "|".join(re.escape(p) for p in TOKEN_PREFIXES) + r")[A-Za-z0-9_.~-]{16,128}")
REDACTED = r"\1[token]"
#: Attributes every LogRecord has; anything else came from `extra=` and is checked too.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    """`text` with every customer token in a request path replaced by `[token]`."""
    return _TOKEN_PATH.sub(REDACTED, text)


def _redacted(value: Any) -> Any:
    """`value` without tokens; an object whose text holds one (an httpx.URL, say) becomes that text."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("latin-1")).encode("latin-1")
    if isinstance(value, int | float | bool) or value is None:
        return value
    shown = str(value)
    cleaned = redact(shown)
    return cleaned if cleaned != shown else value


class RedactTokens(logging.Filter):
    """Rewrites customer tokens out of a record; never drops the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted(v) for k, v in record.args.items()}
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str | bytes):
                setattr(record, key, _redacted(value))
        return True


#: For `logging_config(filters=...)`: the redaction on every handler.
REDACTION_FILTERS: dict[str, dict[str, Any]] = {"redact_tokens": {"()": "api.log_redaction.RedactTokens"}}
