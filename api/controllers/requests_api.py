"""The JSON API for programs: create a request (multipart upload), read it by its token, accept an
offer. Described by the OpenAPI document at /schema. No cookies: the
token is the credential."""

from __future__ import annotations

import asyncio
import functools
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, HeaderParameter, JSONBody, MultipartBody

from api.controllers.customer import customer_page_view
from api.dependencies import AppSettings, Db, Mail, Payments, RequestLink, Search
from api.forms import upload_bytes
from workflow import offers_service
from workflow.intake import submit_request
from workflow.payments import PaymentProvider


@dataclass
class NewRequestForm:
    """A customer request: the photo, a contact e-mail, optional words and budget."""

    photo: UploadFile
    email: str
    words: str | None = None
    budget: str | None = None


@dataclass
class AcceptBody:
    """The card to authorise (the test provider's magic numbers decide the outcome in test mode)."""

    card_number: str


def _as_json(request: Request, view: dict[str, Any], payments: PaymentProvider) -> dict[str, Any]:
    view["url"] = f"{str(request.base_url).rstrip('/')}/r/{view['token']}"
    view["test_mode"] = payments.is_test  # TEST MODE: no money moves
    return view


class RequestsApiController(Controller):
    path = "/api/requests"
    tags = ("requests",)

    @post("/", name="api_create_request", status_code=201, operation_id="ApiRequestsApiCreateRequest")
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
    ) -> dict[str, Any]:
        """Create a request from a photo; the answer holds its token, its page address and the instant matches."""
        photo = await upload_bytes(data.photo, settings.max_upload_bytes)
        token = await submit_request(
            settings, db, search, outbox, link, photo, data.email, data.words or "", data.budget or ""
        )
        return _as_json(request, await asyncio.to_thread(customer_page_view, db, token), payments)

    @get("/{token:str}", name="api_get_request", operation_id="ApiRequestsTokenApiGetRequest")
    async def read(self, request: Request, token: FromPath[str], db: Db, payments: Payments) -> dict[str, Any]:
        """A request by its token: status, expected reply time, matches, offers, messages, payment."""
        return _as_json(request, await asyncio.to_thread(customer_page_view, db, token), payments)

    @post(
        "/{token:str}/offers/{offer_id:int}/accept",
        name="api_accept_offer",
        status_code=200,
        operation_id="ApiRequestsTokenOffersOfferIdAcceptApiAcceptOffer",
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
    ) -> dict[str, Any]:
        """Accept one offer and authorise its price on the card. Repeating the call with the same
        Idempotency-Key returns the first outcome; the same key with another offer or card is refused
        (422); a second accept on the request is refused (409)."""
        result = await asyncio.to_thread(
            functools.partial(offers_service.accept_offer, secret=settings.secret_key),
            db,
            payments,
            token,
            offer_id,
            data.card_number,
            idempotency_key or secrets.token_urlsafe(16),
            outbox,
        )
        view = _as_json(request, await asyncio.to_thread(customer_page_view, db, token), payments)
        view["accept"] = {"payment_id": result.payment_id, "status": result.status, "replayed": result.replayed}
        return view
