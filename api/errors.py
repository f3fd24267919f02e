"""Errors as people see them: a page under the site, JSON under /api; never a traceback.

Status codes come from the error's type (the most specific class listed wins), never from its
message text: the workflow's refusals, the vision core's image refusals and Litestar's own errors.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.response import Redirect, Template
from sqlalchemy.exc import DataError

from vision.errors import ImageRejected, ImageTooLarge, ImageUnsupported
from workflow.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PaymentFailed,
    ServiceError,
    SignInRequired,
)

log = logging.getLogger("vitrine.web")

STATUS_OF: dict[type[Exception], int] = {
    ServiceError: 400,
    SignInRequired: 401,
    PaymentFailed: 402,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    ImageRejected: 400,
    ImageTooLarge: 413,
    ImageUnsupported: 415,
}
IMAGE_TITLE = "This photo cannot be used"
IMAGE_HINT = "Nothing was saved. Please choose another photo."

_HTTP_HINTS = {
    400: ("The request was not understood", "Check the form and try again."),
    403: (
        "This form has expired or was not sent by this site",
        "Reload the page and submit again (your browser must accept cookies from this site).",
    ),
    404: ("Page not found", "Check the address, or start from the home page."),
    405: ("That action is not available here", "Use the buttons on the page."),
    408: ("The request took too long to arrive", "Check your connection and send it again."),
    429: ("Too many requests", "Please wait a little and try again."),
    413: (
        "The upload is too large",
        "Nothing was saved. Please send a smaller photo (most phone photos are well under the limit).",
    ),
}


def status_of(error: Exception) -> int:
    """The status of the nearest class of `error` in `STATUS_OF`."""
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500


def _wants_json(request: Request) -> bool:
    """JSON under /api, and everywhere in an app without pages (the search-only app)."""
    if getattr(request.app.state, "payments", None) is None:
        return True
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def same_site_back(referer: str, host: str) -> str:
    """Where the error page's "Go back" leads: the referring page's path when it was on this site,
    else "/". Only a path is ever returned, never `//host` or `/\\host` (which browsers read as
    another site), so a crafted Referer cannot turn the link into a way off the site."""
    try:
        parts = urlsplit(referer)
    except ValueError:
        return "/"
    if not host or parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
        return "/"
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//") or any(c in path for c in "\\\r\n\t"):
        return "/"
    return path + (f"?{parts.query}" if parts.query else "")


def error_response(request: Request, status: int, title: str, message: str, hint: str) -> Response:
    """JSON under /api (`detail` as Litestar writes it, plus title and hint), else the error page."""
    if _wants_json(request):
        body = {"error": title, "message": message, "hint": hint, "status_code": status, "detail": message}
        return Response(body, status_code=status)
    back = same_site_back(request.headers.get("referer", ""), request.headers.get("host", ""))
    return Template(
        template_name="error.html",
        context={
            "status": status,
            "title": title,
            "message": message,
            "hint": hint,
            "back": back,
            "test_mode": request.app.state.payments.is_test,
            "user": None,
        },
        status_code=status,
        media_type=MediaType.HTML,
    )


def service_error(request: Request, exc: ServiceError) -> Response:
    if isinstance(exc, SignInRequired) and not _wants_json(request):
        return Redirect(f"/login?next={request.url.path}", status_code=303)
    response = error_response(request, status_of(exc), exc.title, exc.message, exc.hint)
    field = getattr(exc, "field", None)  # access.errors.FieldInvalid: the JSON names the field refused
    if field and isinstance(response.content, dict):
        response.content["field"] = field
    return response


def image_rejected(request: Request, exc: ImageRejected) -> Response:
    return error_response(request, status_of(exc), IMAGE_TITLE, str(exc), IMAGE_HINT)


def http_error(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    title, hint = _HTTP_HINTS.get(status, ("That did not work", "Go back and try again."))
    generic = status in (403, 404, 405) or not exc.detail or exc.detail == str(status)
    message = title + "." if generic else exc.detail
    problems = getattr(exc, "extra", None)
    if status == 400 and isinstance(problems, list) and problems:
        message = "; ".join(
            f"{p.get('key', 'field')}: {p.get('message', 'invalid')}" for p in problems if isinstance(p, dict)
        )
    settings = getattr(request.app.state, "settings", None)  # the search-only app has none
    if status == 413 and settings is not None and isinstance(exc, RequestEntityTooLarge):
        message = _body_too_large(request, settings.max_upload_bytes)
    if status == 403 and "CSRF" in (exc.detail or ""):
        message = "The security token of this form is missing or out of date."
    if status >= 500:
        log.error("HTTP %s on %s: %s", status, request.url.path, exc.detail, exc_info=exc)
        return error_response(
            request,
            status,
            "Something went wrong on our side",
            "The server could not finish this.",
            "Please try again in a minute.",
        )
    response = error_response(request, status, title, message, hint)
    for name, value in (exc.headers or {}).items():  # Retry-After and the RateLimit-* headers of a 429
        response.headers.setdefault(name, value)
    return response


def _body_too_large(request: Request, photo_limit: int) -> str:
    """The body limit as the route has it: the photo limit on photo routes, a few KB on text forms."""
    handler = request.scope.get("route_handler")
    limit = handler.resolve_request_max_body_size() if handler is not None else None
    if limit is None or limit >= photo_limit:
        return f"The upload is larger than the limit of {photo_limit / 1e6:.0f} MB."
    return f"The form is larger than the limit of {limit // 1024} KB; please shorten it."


def crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(
        request,
        500,
        "Something went wrong on our side",
        "The server hit an unexpected problem and nothing was changed by it.",
        "Please try again in a minute. If it keeps happening, contact support.",
    )


#: The ids in addresses are SQLite/PostgreSQL 64-bit integers: a larger number names nothing.
ROW_ID_RANGE = range(-(2**63), 2**63)


def number_too_large(request: Request, exc: Exception) -> Response:
    """An id in the address beyond 64 bits is a 404, as any unknown id is: SQLite cannot even bind it
    (OverflowError), PostgreSQL refuses it ("bigint out of range", a DataError). Either error anywhere
    else stays a crash (found by tests/api/test_schemathesis.py)."""
    params = request.scope.get("path_params") or {}
    if any(isinstance(v, int) and v not in ROW_ID_RANGE for v in params.values()):
        title, hint = _HTTP_HINTS[404]
        return error_response(request, 404, title, "No such record: that number is too large to be an id.", hint)
    return crash(request, exc)


EXCEPTION_HANDLERS = {
    ServiceError: service_error,
    ImageRejected: image_rejected,
    HTTPException: http_error,
    OverflowError: number_too_large,
    DataError: number_too_large,
    Exception: crash,
}
