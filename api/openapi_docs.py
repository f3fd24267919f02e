"""What the OpenAPI document says about the JSON API's refusals and the search form, in one place.

Every status a route can answer must be in `/schema` (tests/api/test_schemathesis.py checks it with
Schemathesis against a running server): `refusals(...)` gives a route the `responses=` entries for
the error statuses it can return, each with the one JSON error body `api.errors` writes.

`POST /api/search` decodes its body itself (both form encodings, 415 for anything else; see
`api.controllers.search`), so no `data` parameter describes it: `SearchFormOperation` puts its
multipart form in the document instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import KwargDefinition


def described(text: str) -> KwargDefinition:
    """A field's description in `/schema` and `/docs`: `name: Annotated[str, described("...")]`.

    Litestar reads field descriptions of dataclasses and TypedDicts only from a `KwargDefinition` in
    `Annotated` (`dataclasses.field(metadata=...)` and `msgspec.Meta` are ignored there)."""
    return KwargDefinition(description=text)


@dataclass
class ErrorBody:
    """A refusal as JSON (`api.errors.error_response`): `detail` says why and what to fix; `field`
    names the form field refused, where one is."""

    status_code: Annotated[int, described("The HTTP status again, for clients that keep only the body")]
    detail: Annotated[str, described("Why it was refused, in a sentence (the same text as `message`)")]
    error: Annotated[str, described("A short title of what went wrong, e.g. `That did not work`")]
    message: Annotated[str, described("Why it was refused, in a sentence")]
    hint: Annotated[str, described("What to do about it, in a sentence")]
    field: Annotated[str | None, described("The body or form field refused; null when no single field is")] = None


#: Why each error status happens, as the routes of the JSON API use them.
DESCRIPTIONS = {
    400: "A field is malformed or the photo is damaged; `detail` names the field and what is wrong",
    401: "Sign-in required (a staff session cookie or an API token)",
    402: "The card was declined; nothing was charged",
    403: "Not allowed (in closed beta: no valid invitation; `detail` says how to join the waitlist)",
    404: "No such request, offer or entry",
    409: "The request's state does not allow it (e.g. an offer was already accepted)",
    413: "The upload or the image is too large; `detail` gives the limit",
    415: "The body is not a form, or the file is not a supported image",
    422: "A value is refused by the rules (e.g. a card number, or an Idempotency-Key reused for another offer)",
    429: "Too many requests from this address; `Retry-After` says when to try again",
    503: "The service cannot serve now; the body says why",
}


def refusals(*codes: int) -> dict[int, ResponseSpec]:
    """`responses=` entries for these error statuses, each with the JSON error body."""
    return {
        code: ResponseSpec(ErrorBody, description=DESCRIPTIONS.get(code) or HTTPStatus(code).phrase) for code in codes
    }


def _text(description: str, **constraints: object) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description, **constraints)  # type: ignore[arg-type]


SEARCH_FORM = Schema(
    type=OpenAPIType.OBJECT,
    description="A photo and/or words (at least one), with optional crop, weight, k and filters.",
    properties={
        "photo": Schema(
            type=OpenAPIType.STRING,
            format="binary",  # type: ignore[arg-type]
            description="JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC or AVIF",
        ),
        "text": _text("Words, alone or refining the photo"),
        "text_weight": _text("Weight of the words when both are given, 0..1 (default 0.35)"),
        "crop": _text("x,y,w,h of the region to search for, as fractions of the photo"),
        "k": _text("How many products, a whole number (default 24)"),
        "min_price": _text("Lowest price, e.g. 40 or 1,299.00"),
        "max_price": _text("Highest price"),
        "category": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING), description="Repeatable"),
        "vendor": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING), description="Repeatable"),
        "in_stock": _text("true or false"),
        "near": _text("The customer's place as 'lat,lon' in degrees: each hit then lists stores holding it"),
        "within_km": _text("Radius in km (above 0, at most 500) for the stores and for in_stock_nearby (default 10)"),
        "in_stock_nearby": _text("true: only products in stock in a store within within_km of near"),
    },
)


@dataclass
class SearchFormOperation(Operation):
    """The search operation with its form as the request body (multipart, or URL-encoded without a photo)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={
                "multipart/form-data": OpenAPIMediaType(schema=SEARCH_FORM),
                "application/x-www-form-urlencoded": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        properties={k: v for k, v in (SEARCH_FORM.properties or {}).items() if k != "photo"},
                    )
                ),
            },
            description="The search form. An empty body is an empty search (400: give a photo or words).",
            required=False,
        )
