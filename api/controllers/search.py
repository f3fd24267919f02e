"""`POST /api/search`: a form (photo and/or words, crop, filters, k) in, ranked products out.

Form fields, all optional but a photo or words must be given:
  photo          the image file (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF)
  text           words, alone or refining the photo
  text_weight    weight of the words when both are given (0..1, default 0.35)
  crop           x,y,w,h of the region of the photo to search for, as fractions of the image
  k              how many products (1..200, default 24)
  min_price, max_price, category (repeatable), vendor (repeatable), in_stock (true/false)
  near           "lat,lon" of the customer: each hit then lists the stores holding it, nearest first
  within_km      the radius for those stores and for in_stock_nearby (km, default 10 with in_stock_nearby)
  in_stock_nearby  true: only products some store within `within_km` of `near` has in stock

Both form encodings are read (a search by words alone is often sent URL-encoded), so the body is
decoded here into a typed `SearchForm` rather than by a Body annotation, which names one encoding.
Errors are JSON `{"status_code", "detail"}`: 400 for a bad field or a damaged image, 413 for a too
large upload or image, 415 for a body that is not a form or a file that is not a supported image,
422 for a place or radius the nearby search refuses (`near`, `within_km`, `in_stock_nearby`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import Annotated, Any, TypedDict

from litestar import Controller, Request, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_415_UNSUPPORTED_MEDIA_TYPE, HTTP_422_UNPROCESSABLE_ENTITY

from api.dependencies import Search
from api.limits import read_form
from api.openapi_docs import SearchFormOperation, described, refusals
from catalog.geocoding import parse_near
from catalog.money import PriceError, parse_price
from catalog.nearby import DEFAULT_WITHIN_KM, Location, check_within_km
from catalog.search_service import QueryInput
from index.filters import SearchFilter
from vision.decode import UPLOAD_LIMITS
from vision.errors import ImageRejected

#: The photo at the upload byte limit (the customer form's too) plus room for the other fields and framing.
MAX_BODY_BYTES = UPLOAD_LIMITS.max_bytes + 1_000_000
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bad(detail: str) -> HTTPException:
    return HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=detail)


def _refused(detail: str) -> HTTPException:
    """422: a well-formed value the nearby search cannot use (a place off the globe, a radius of 0)."""
    return HTTPException(status_code=HTTP_422_UNPROCESSABLE_ENTITY, detail=detail)


@dataclass
class SearchForm:
    """The search form's fields as sent: text fields at most once, `category` and `vendor` repeatable."""

    photo: UploadFile | None = None
    text: str | None = None
    text_weight: str | None = None
    crop: str | None = None
    k: str | None = None
    min_price: str | None = None
    max_price: str | None = None
    in_stock: str | None = None
    near: str | None = None
    within_km: str | None = None
    in_stock_nearby: str | None = None
    category: list[str] = field(default_factory=list)
    vendor: list[str] = field(default_factory=list)

    @classmethod
    def from_form(cls, form: Any) -> SearchForm:
        """Each known field from the decoded form; a single-valued field given twice is refused."""
        values: dict[str, Any] = {}
        for spec in fields(cls):
            given = form.getall(spec.name, [])
            if spec.name in ("category", "vendor"):
                values[spec.name] = [v.strip() for v in given if isinstance(v, str) and v.strip()]
            elif spec.name == "photo":
                uploads = [v for v in given if isinstance(v, UploadFile)]
                if len(uploads) > 1:
                    raise _bad("send one photo per search")
                if not uploads and any(isinstance(v, str) and v for v in given):
                    raise _bad("field 'photo' must be a file upload")
                values["photo"] = uploads[0] if uploads else None
            else:
                texts = [v for v in given if isinstance(v, str)]
                if len(texts) > 1:
                    raise _bad(f"field {spec.name!r} was given {len(texts)} times; give it once")
                values[spec.name] = (texts[0].strip() or None) if texts else None
        return cls(**values)

    async def query(self) -> QueryInput:
        """The search as the query service takes it; 400 naming the field for anything malformed."""
        weight = _number(self.text_weight, "text_weight")
        near, within_km, in_stock_nearby = self._nearby()
        return QueryInput(
            image_bytes=await self.photo.read() if self.photo is not None else None,
            text=self.text,
            crop=self._crop(),
            search_filter=self._filter(),
            k=self._k(),
            text_weight=QueryInput.text_weight if weight is None else weight,
            near=near,
            within_km=within_km,
            in_stock_nearby=in_stock_nearby,
        )

    def _nearby(self) -> tuple[Location | None, float | None, bool]:
        """`near`, `within_km` and `in_stock_nearby` checked; 422 naming the field refused."""
        near = None
        if self.near is not None:
            try:
                near = parse_near(self.near)
            except ValueError as exc:
                raise _refused(f"field 'near': {exc}") from None
        nearby = _flag(self.in_stock_nearby, "in_stock_nearby", _refused)
        if nearby and near is None:
            raise _refused("field 'near' is needed with in_stock_nearby=true: give 'lat,lon'")
        within_km = None
        if self.within_km is not None:
            try:
                within_km = check_within_km(float(self.within_km))
            except ValueError:
                raise _refused(
                    f"field 'within_km' must be a distance in km above 0 and at most 500, not {self.within_km[:40]!r}"
                ) from None
        elif nearby:
            within_km = DEFAULT_WITHIN_KM
        return near, within_km, bool(nearby)

    def _k(self) -> int:
        if self.k is None:
            return QueryInput.k
        try:
            return int(self.k)
        except ValueError:
            raise _bad(f"field 'k' must be a whole number, not {self.k[:40]!r}") from None

    def _crop(self) -> tuple[float, float, float, float] | None:
        if self.crop is None:
            return None
        try:
            x, y, w, h = (float(p) for p in self.crop.replace(" ", "").split(","))
        except ValueError:
            raise _bad(
                f"field 'crop' must be four numbers x,y,w,h (fractions of the image), not {self.crop[:60]!r}"
            ) from None
        return (x, y, w, h)

    def _in_stock(self) -> bool | None:
        return _flag(self.in_stock, "in_stock", _bad)

    def _filter(self) -> SearchFilter | None:
        try:
            search_filter = SearchFilter.of(
                min_price=_price(self.min_price, "min_price"),
                max_price=_price(self.max_price, "max_price"),
                categories=self.category or None,
                vendors=self.vendor or None,
                in_stock=self._in_stock(),
            )
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return None if search_filter.is_empty else search_filter


def _flag(value: str | None, name: str, refuse: Any) -> bool | None:
    if value is None:
        return None
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise refuse(f"field {name!r} must be true or false, not {value[:20]!r}")


def _price(value: str | None, name: str) -> float | None:
    """A price bound read by the one price grammar (`catalog.money`): `1,299` is 1299, as everywhere."""
    if value is None:
        return None
    try:
        return float(parse_price(value))
    except PriceError as exc:
        raise _bad(f"field {name!r} must be a number, a price like 40 or 1,299.00 ({exc})") from None


def _number(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise _bad(f"field {name!r} must be a number, not {value[:40]!r}") from None
    if not math.isfinite(number):
        raise _bad(f"field {name!r} must be a finite number")
    return number


async def read_search_form(request: Request) -> SearchForm:
    """The body as a `SearchForm`: 415 for a body that is not a form; an empty body is an empty search."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not media_type and not await request.body():
        return SearchForm()  # the service says what a search needs
    if media_type not in _FORM_TYPES:
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"send the search as multipart/form-data (a photo and/or text), not {media_type or 'no type'}",
        )
    return SearchForm.from_form(await read_form(request))


class StoreShape(TypedDict):
    """A store holding the product, as seen from `near`."""

    code: Annotated[str, described("The vendor's code for the store")]
    name: Annotated[str, described("The store's name")]
    address: Annotated[str, described("The store's street address; may be empty")]
    vendor: Annotated[str, described("The vendor the store belongs to")]
    distance_km: Annotated[float, described("Great-circle distance from `near`, in km")]
    quantity: Annotated[int, described("How many the store holds (always above 0)")]
    open_now: Annotated[bool | None, described("Whether it is open now on its own clock; null: no opening hours")]


class _ProductHitBase(TypedDict):
    """One product found by `POST /api/search`."""

    product_id: Annotated[int, described("The catalog product's id")]
    sku: Annotated[str, described("The vendor's stock-keeping unit for it")]
    vendor: Annotated[str, described("The vendor selling it")]
    title: Annotated[str, described("The product's title")]
    price: Annotated[str, described("The catalog price, a decimal as text, in `currency`")]
    currency: Annotated[str, described("The price's currency, ISO 4217")]
    category: Annotated[str, described("The product's catalog category; may be empty")]
    in_stock: Annotated[bool, described("Whether the vendor has it in stock")]
    score: Annotated[float, described("How close it is to the query: cosine similarity, higher is closer")]
    image_id: Annotated[int, described("The id of the product image (or customer view) that matched best")]


class ProductHitShape(_ProductHitBase, total=False):
    """One product found by `POST /api/search`; `stores` only when the search gave `near`."""

    stores: Annotated[
        list[StoreShape],
        described("With `near`: up to 3 stores holding it (within `within_km` if given), nearest first"),
    ]


class SearchResults(TypedDict):
    """Ranked products, best first, one entry per product."""

    model: Annotated[str, described("The embedding model that searched (e.g. `vit-b-32-laion2b`)")]
    count: Annotated[int, described("How many products are in `results`")]
    took_ms: Annotated[float, described("How long the search took on the server, in milliseconds")]
    results: Annotated[list[ProductHitShape], described("The products, best first")]


class SearchController(Controller):
    path = "/api/search"
    tags = ("search",)

    @post(
        "/",
        request_max_body_size=MAX_BODY_BYTES,
        status_code=200,
        name="api_search",
        operation_id="ApiSearchSearchProductsHandler",  # the 0.1.0 name: generated clients keep working
        operation_class=SearchFormOperation,  # the form this handler decodes itself, in the document
        responses=refusals(400, 413, 415, 422, 429),
    )
    async def search_products(self, request: Request, search: Search) -> SearchResults:
        """Ranked products for a photo and/or words, best first (one entry per product)."""
        began = time.perf_counter()
        query = await (await read_search_form(request)).query()
        try:
            hits = await search.search(query)
        except ImageRejected:
            raise  # its type decides the status (413, 415 or 400)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return {
            "model": search.model_id,
            "count": len(hits),
            "took_ms": round((time.perf_counter() - began) * 1000, 1),
            "results": [hit.to_json() for hit in hits],
        }
