"""`POST /api/search`: a multipart form (photo and/or words, crop, filters, k) in, ranked products out.

Form fields, all optional but a photo or words must be given:
  photo          the image file (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF)
  text           words, alone or refining the photo
  text_weight    weight of the words when both are given (0..1, default 0.35)
  crop           x,y,w,h of the region of the photo to search for, as fractions of the image
  k              how many products (1..200, default 24)
  min_price, max_price, category (repeatable), vendor (repeatable), in_stock (true/false)

Errors are JSON `{"status_code", "detail"}`: 400 for a bad field or a damaged image, 413 for a too
large upload or image, 415 for a body that is not a form or a file that is not a supported image.
The app provides the `SearchService` as `app.state.search`.
"""

from __future__ import annotations

import math
import time
from typing import Any

from litestar import Request, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
)

from catalog.search_service import QueryInput, SearchService
from index.filters import SearchFilter
from vision.decode import DEFAULT_LIMITS
from vision.errors import ImageRejected

#: The photo at the decoder's own byte limit plus room for the other fields and the form's framing.
MAX_BODY_BYTES = DEFAULT_LIMITS.max_bytes + 1_000_000
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def image_error_status(error: ImageRejected) -> int:
    """The HTTP status of a refused image: too big (413), not a supported image at all (415), else 400."""
    message = str(error)
    if "too large" in message or "too many pixels" in message:
        return HTTP_413_REQUEST_ENTITY_TOO_LARGE
    if "not an image we can read" in message or "not supported" in message:
        return HTTP_415_UNSUPPORTED_MEDIA_TYPE
    return HTTP_400_BAD_REQUEST


def _bad(detail: str) -> HTTPException:
    return HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=detail)


def _one(form: Any, name: str) -> str | None:
    values = [v for v in form.getall(name, []) if isinstance(v, str)]
    if len(values) > 1:
        raise _bad(f"field {name!r} was given {len(values)} times; give it once")
    value = values[0].strip() if values else ""
    return value or None


def _number(form: Any, name: str) -> float | None:
    value = _one(form, name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise _bad(f"field {name!r} must be a number, not {value[:40]!r}") from None
    if not math.isfinite(number):
        raise _bad(f"field {name!r} must be a finite number")
    return number


def _integer(form: Any, name: str, default: int) -> int:
    value = _one(form, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise _bad(f"field {name!r} must be a whole number, not {value[:40]!r}") from None


def _crop(form: Any) -> tuple[float, float, float, float] | None:
    value = _one(form, "crop")
    if value is None:
        return None
    parts = value.replace(" ", "").split(",")
    try:
        x, y, w, h = (float(p) for p in parts)
    except ValueError:
        raise _bad(f"field 'crop' must be four numbers x,y,w,h (fractions of the image), not {value[:60]!r}") from None
    return (x, y, w, h)


def _in_stock(form: Any) -> bool | None:
    value = _one(form, "in_stock")
    if value is None:
        return None
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _bad(f"field 'in_stock' must be true or false, not {value[:20]!r}")


def _names(form: Any, name: str) -> list[str] | None:
    values = [v.strip() for v in form.getall(name, []) if isinstance(v, str) and v.strip()]
    return values or None


def _search_filter(form: Any) -> SearchFilter | None:
    try:
        search_filter = SearchFilter.of(
            min_price=_number(form, "min_price"),
            max_price=_number(form, "max_price"),
            categories=_names(form, "category"),
            vendors=_names(form, "vendor"),
            in_stock=_in_stock(form),
        )
    except ValueError as exc:
        raise _bad(str(exc)) from None
    return None if search_filter.is_empty else search_filter


async def _photo(form: Any) -> bytes | None:
    uploads = [v for v in form.getall("photo", []) if isinstance(v, UploadFile)]
    if len(uploads) > 1:
        raise _bad("send one photo per search")
    if not uploads:
        if any(isinstance(v, str) and v for v in form.getall("photo", [])):
            raise _bad("field 'photo' must be a file upload")
        return None
    return await uploads[0].read()


async def parse_query(request: Request) -> QueryInput:
    """The search form as a `QueryInput`; HTTP errors for anything malformed."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not media_type and not await request.body():
        return QueryInput()  # an empty request: the service says what a search needs
    if media_type not in _FORM_TYPES:
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"send the search as multipart/form-data (a photo and/or text), not {media_type or 'no type'}",
        )
    form = await request.form()
    weight = _number(form, "text_weight")
    return QueryInput(
        image_bytes=await _photo(form),
        text=_one(form, "text"),
        crop=_crop(form),
        search_filter=_search_filter(form),
        k=_integer(form, "k", QueryInput.k),
        text_weight=QueryInput.text_weight if weight is None else weight,
    )


@post("/api/search", request_max_body_size=MAX_BODY_BYTES, status_code=200)
async def search_products_handler(request: Request) -> dict[str, Any]:
    """Ranked products for a photo and/or words, best first."""
    began = time.perf_counter()
    query = await parse_query(request)
    service: SearchService = request.app.state.search
    try:
        hits = await service.search(query)
    except ImageRejected as exc:
        raise HTTPException(status_code=image_error_status(exc), detail=str(exc)) from None
    except ValueError as exc:
        raise _bad(str(exc)) from None
    return {
        "model": service.model_id,
        "count": len(hits),
        "took_ms": round((time.perf_counter() - began) * 1000, 1),
        "results": [hit.to_json() for hit in hits],
    }


#: What an app includes to serve search: `Litestar(route_handlers=[*search_routes, ...])`.
search_routes = [search_products_handler]
