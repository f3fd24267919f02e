"""What one request may cost the server: body sizes per route, a JSON nesting refusal, and the
sign-in lockout as the pages show it.

Bodies: the app's default limit is `Settings.max_form_bytes` (32 KB), enough for every text form and
JSON body (a 2,000-character message, percent-encoded, is under 20 KB) and small enough that parsing
one on the event loop takes well under a millisecond. Only the photo routes declare
`UPLOAD_BODY_BYTES` (the photo limit plus room for the other fields); they are multipart, which
Litestar parses as the body streams in (at most `MULTIPART_PARTS` parts, files spooled to disk off the
loop). A URL-encoded body on such a route is read whole and parsed in a worker thread
(`read_form`), so it never holds the loop either.
"""

from __future__ import annotations

import asyncio

from litestar import Request, Response
from litestar._parsers import parse_url_encoded_form_data
from litestar.datastructures import FormMultiDict
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE
from sqlalchemy.orm import sessionmaker

from api.errors import crash, error_response
from vision.decode import UPLOAD_LIMITS
from workflow import sign_in_throttle
from workflow.settings import Settings

#: The photo routes' body: the photo at the upload limit plus the form's other fields and framing.
UPLOAD_BODY_BYTES = UPLOAD_LIMITS.max_bytes + 64 * 1024
#: The offers form: a price and a note of up to 1,000 characters for each of a few dozen candidates.
OFFERS_FORM_BYTES = 256 * 1024
#: Parts of a multipart body (the request form has six; a search has a dozen with repeated filters).
MULTIPART_PARTS = 100


async def read_form(request: Request) -> FormMultiDict:
    """The body as a form. Multipart streams through Litestar's parser; URL-encoded is refused over
    the form limit (413) and parsed off the event loop."""
    if request.content_type[0] != "application/x-www-form-urlencoded":
        return await request.form()
    settings = getattr(request.app.state, "settings", None)  # the search-only app has none
    max_urlencoded = settings.max_form_bytes if settings is not None else Settings.max_form_bytes
    body = await request.body()
    if len(body) > max_urlencoded:
        raise HTTPException(
            status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            detail=(
                f"A URL-encoded form may carry {max_urlencoded // 1024} KB at most; "
                "send a photo as multipart/form-data."
            ),
        )
    return FormMultiDict(await asyncio.to_thread(parse_url_encoded_form_data, body))


def nested_too_deep(request: Request, exc: RecursionError) -> Response:
    """A JSON body nested past what the decoder recurses into is the sender's mistake (400), not ours."""
    if request.content_type[0].endswith("json"):
        return error_response(
            request,
            400,
            "The request was not understood",
            "The JSON body is nested too deeply to read.",
            "Send a flat JSON object as the API documentation at /schema describes.",
        )
    return crash(request, exc)  # a recursion anywhere else is a bug of ours: the usual 500 page, logged


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _wait(seconds: float) -> str:
    return f"{int(seconds // 60) + 1} minutes" if seconds >= 60 else f"{max(1, round(seconds))} seconds"


async def sign_in_lock(request: Request, db: sessionmaker, name: str) -> str | None:
    """The refusal for a locked account name (recorded in the audit trail), or None."""
    seconds = await asyncio.to_thread(sign_in_throttle.locked_for, db, name, _client(request))
    if not seconds:
        return None
    await asyncio.to_thread(sign_in_throttle.record_refused, db, name, seconds, _client(request))
    return f"Too many wrong sign-ins for this account or from your address. Try again in {_wait(seconds)}."


async def sign_in_failed(request: Request, db: sessionmaker, settings: Settings, name: str, error: str) -> str:
    """Count a failed sign-in; `error`, or the lock it caused."""
    policy = sign_in_throttle.Policy(settings.sign_in_failures, settings.sign_in_lockout_s)
    per_client = sign_in_throttle.Policy(settings.sign_in_client_failures, settings.sign_in_lockout_s)
    lock = await asyncio.to_thread(sign_in_throttle.record_failure, db, name, policy, _client(request), per_client)
    if lock:
        return f"{error} Too many wrong sign-ins: try again in {_wait(lock)}."
    return error
