"""The JSON API for programs: create a request (multipart upload), read it by its token, accept an
offer. Described by the OpenAPI document at /schema. No cookies: the
token is the credential."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, cast

from litestar import Controller, Request, delete, get, post, put
from litestar.datastructures import UploadFile
from litestar.params import FromPath, HeaderParameter, JSONBody, MultipartBody

from api.closed_beta import require_invitation
from api.controllers.customer import customer_page_view
from api.dependencies import AppSettings, Db, Mail, Payments, RequestLink, Search
from api.forms import upload_bytes
from api.hosts import public_base
from api.limits import UPLOAD_BODY_BYTES
from api.openapi_docs import described, refusals
from api.request_shapes import AcceptedRequestView, CustomerRequestView
from workflow import locations, offers_service, orders, pickups
from workflow.intake import submit_request
from workflow.payments import PaymentProvider


@dataclass
class NewRequestForm:
    """A customer request: the photo, a contact e-mail, optional words and budget with its currency
    (`budget_currency`, ISO 4217 like EUR; default: the catalog's most common currency; instant matches
    then stay within it, converted by the exchange rates where needed); `invitation` (the
    token of the invitation link) is needed while the site is in closed beta (VITRINE_ACCESS=waitlist)."""

    photo: Annotated[UploadFile, described("The photo of the product: JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC or AVIF")]
    email: Annotated[str, described("Where the customer is told of offers and messages (with the request's link)")]
    words: Annotated[
        str | None, described("What the customer is looking for, in words (size, colour, ...); optional")
    ] = None
    budget: Annotated[
        str | None, described("The most the customer wants to pay, e.g. `40` or `1,299.00`; optional")
    ] = None
    budget_currency: Annotated[
        str | None, described("The budget's currency, ISO 4217 (e.g. `EUR`); default: the catalog's most common")
    ] = None
    invitation: Annotated[
        str | None, described("The invitation link's token; required only while the site is in closed beta")
    ] = None
    near: Annotated[
        str | None,
        described("Where the customer is, `lat,lon` in degrees (e.g. `52.52,13.40`), to see nearby stores; optional"),
    ] = None
    location: Annotated[
        str | None,
        described("Where the customer is as a postcode or city, geocoded offline (unknown: 422); optional"),
    ] = None


@dataclass
class LocationBody:
    """Where the customer is, to see nearby stores on the matches and offers: `near` ("lat,lon")
    or `location` (a postcode or city, geocoded offline); `near` wins when both are given."""

    near: Annotated[str | None, described("`lat,lon` in degrees, e.g. `48.8566,2.3522`")] = None
    location: Annotated[str | None, described("A postcode or a city (unknown: 422 naming `location`)")] = None


@dataclass
class DeliveryBody:
    """Where the order goes. `kind` is `ship` (to an address) or `pickup` (at the offer's pickup
    store, `offers[].pickup`; refused for an offer without one). Shipping requires name, line1, city,
    postcode, country (ISO 3166 alpha-2, e.g. DE) and phone (valid in that country; stored in E.164);
    pickup only name and phone. A missing or bad one is a 422 whose `field` names it (`delivery.postcode`)."""

    name: Annotated[str, described("The recipient's full name (required)")] = ""
    line1: Annotated[str, described("Street and number (required)")] = ""
    line2: Annotated[str, described("A second address line: flat, floor, c/o; optional")] = ""
    city: Annotated[str, described("The city or town (required)")] = ""
    postcode: Annotated[str, described("The postcode (required)")] = ""
    country: Annotated[str, described("The country, ISO 3166-1 alpha-2 such as `DE` or `IN` (required)")] = ""
    phone: Annotated[str, described("A phone number for the carrier, valid in `country` (required; kept in E.164)")] = (
        ""
    )
    kind: Annotated[
        str, described("`ship` to the address, or `pickup` at the offer's pickup store (then no address is needed)")
    ] = "ship"


@dataclass
class AcceptBody:
    """The card to authorise (the test provider's magic numbers decide the outcome in test mode) and
    the delivery. `card_number` is the older name of `card`, still accepted. Without `delivery` the
    answer is 422 with `field: "delivery"`."""

    card: Annotated[str | None, described("The card number, 12-19 digits (spaces are fine)")] = None
    delivery: Annotated[
        DeliveryBody | None, described("Where the order goes (required: without it the answer is 422)")
    ] = None
    card_number: Annotated[str | None, described("The older name of `card`, still accepted")] = None


def _location_of(data: NewRequestForm | LocationBody) -> locations.SharedLocation | None:
    """`near` ("lat,lon") wins over `location` (a postcode or city); neither: no location shared."""
    if data.near and data.near.strip():
        return locations.from_near(data.near)
    if data.location and data.location.strip():
        return locations.from_place(data.location, source="api")
    return None


def _as_json(request: Request, view: dict[str, Any], payments: PaymentProvider) -> CustomerRequestView:
    view["url"] = f"{public_base(request)}/r/{view['token']}"
    view["test_mode"] = payments.is_test  # TEST MODE: no money moves
    return cast(CustomerRequestView, view)


class RequestsApiController(Controller):
    path = "/api/requests"
    tags = ("requests",)

    @post(
        "/",
        name="api_create_request",
        status_code=201,
        operation_id="ApiRequestsApiCreateRequest",
        request_max_body_size=UPLOAD_BODY_BYTES,
        responses=refusals(400, 403, 413, 415, 422, 429),
    )
    async def create(
        self,
        request: Request,
        data: MultipartBody[NewRequestForm],
        settings: AppSettings,
        db: Db,
        search: Search,
        payments: Payments,
        outbox: Mail,
        link: RequestLink,
    ) -> CustomerRequestView:
        """Create a request from a photo; the answer holds its token, its page address and the instant matches.
        In closed beta, without a valid `invitation` the answer is 403 saying how to join the waitlist."""
        await require_invitation(settings, db, data.invitation)
        photo = await upload_bytes(data.photo, settings.max_upload_bytes)
        where = await asyncio.to_thread(_location_of, data)  # checked first: a bad one keeps nothing
        token = await submit_request(
            settings,
            db,
            search,
            outbox,
            link,
            photo,
            data.email,
            data.words or "",
            data.budget or "",
            data.budget_currency or "",
        )
        if where is not None:
            await asyncio.to_thread(locations.set_for_token, db, token, where)
        return _as_json(request, await asyncio.to_thread(customer_page_view, db, token, search.nearby), payments)

    @get(
        "/{token:str}",
        name="api_get_request",
        operation_id="ApiRequestsTokenApiGetRequest",
        responses=refusals(400, 404),
    )
    async def read(
        self, request: Request, token: FromPath[str], db: Db, payments: Payments, search: Search
    ) -> CustomerRequestView:
        """A request by its token: status, expected reply time, matches, offers, messages, payment. With
        a shared `location`, matches and offers carry `stores` (nearest first) and offers their `pickup`."""
        return _as_json(request, await asyncio.to_thread(customer_page_view, db, token, search.nearby), payments)

    @put(
        "/{token:str}/location",
        name="api_share_location",
        operation_id="ApiRequestsTokenLocationApiShareLocation",
        responses=refusals(400, 404, 422),
    )
    async def share_location(
        self,
        request: Request,
        token: FromPath[str],
        data: JSONBody[LocationBody],
        db: Db,
        payments: Payments,
        search: Search,
    ) -> CustomerRequestView:
        """Share (or change) where the customer is; the answer is the request with `location` and
        each match's and offer's `stores`. Neither field given: 422."""
        where = await asyncio.to_thread(_location_of, data)
        if where is None:
            raise locations.LocationInvalid("location", 'Give `near` ("lat,lon") or `location` (a postcode or city).')
        await asyncio.to_thread(locations.set_for_token, db, token, where)
        return _as_json(request, await asyncio.to_thread(customer_page_view, db, token, search.nearby), payments)

    @delete(
        "/{token:str}/location",
        name="api_forget_location",
        operation_id="ApiRequestsTokenLocationApiForgetLocation",
        status_code=200,
        responses=refusals(400, 404),
    )
    async def forget_location(
        self, request: Request, token: FromPath[str], db: Db, payments: Payments
    ) -> CustomerRequestView:
        """Forget where the customer is: the request no longer shows nearby stores."""
        await asyncio.to_thread(locations.set_for_token, db, token, None)
        return _as_json(request, await asyncio.to_thread(customer_page_view, db, token), payments)

    @post(
        "/{token:str}/offers/{offer_id:int}/accept",
        name="api_accept_offer",
        status_code=200,
        operation_id="ApiRequestsTokenOffersOfferIdAcceptApiAcceptOffer",
        responses=refusals(400, 402, 404, 409, 422),
    )
    async def accept(
        self,
        request: Request,
        token: FromPath[str],
        offer_id: FromPath[int],
        data: JSONBody[AcceptBody],
        db: Db,
        payments: Payments,
        outbox: Mail,
        settings: AppSettings,
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)] = None,
    ) -> AcceptedRequestView:
        """Accept one offer and authorise its price on the card. Repeating the call with the same
        Idempotency-Key returns the first outcome; the same key with another offer or card is refused
        (422); a second accept on the request is refused (409). The answer's `order` holds the order
        number and delivery once paid."""
        fields = dataclasses.asdict(data.delivery) if data.delivery else None
        wants_pickup = bool(fields) and fields.get("kind") == "pickup"  # type: ignore[union-attr]
        pickup = await asyncio.to_thread(pickups.offer_pickup, db, offer_id) if wants_pickup else None
        delivery = orders.check_delivery(fields, pickup)
        result = await asyncio.to_thread(
            functools.partial(offers_service.accept_offer, secret=settings.secret_key, delivery=delivery),
            db,
            payments,
            token,
            offer_id,
            data.card or data.card_number or "",
            idempotency_key or secrets.token_urlsafe(16),
            outbox,
        )
        view = cast(dict[str, Any], _as_json(request, await asyncio.to_thread(customer_page_view, db, token), payments))
        view["accept"] = {"payment_id": result.payment_id, "status": result.status, "replayed": result.replayed}
        return cast(AcceptedRequestView, view)
