"""The JSON API for programs: create a request (multipart upload), read it by its token, accept an
offer. Described by the OpenAPI document at /schema. No cookies: the token is the credential."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, HeaderParameter, JSONBody, MultipartBody

from api.routes.common import state, to_thread
from api.routes.customer import create_from_upload, read_upload
from workflow import offers_service, requests_service
from workflow.views import customer_view


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


def _view(request: Request, token: str) -> dict[str, Any]:
    with state(request).sessions() as session:
        view = customer_view(session, requests_service.load_by_token(session, token))
    view["url"] = f"{str(request.base_url).rstrip('/')}/r/{token}"
    view["test_mode"] = state(request).payments.is_test  # TEST MODE: no money moves
    return view


@post("/api/requests", name="api_create_request", status_code=201, tags=["requests"])
async def api_create_request(request: Request, data: MultipartBody[NewRequestForm]) -> dict[str, Any]:
    """Create a request from a photo; the answer holds its token, its page address and the instant matches."""
    photo = await read_upload(request, data.photo)
    token = await create_from_upload(request, photo, data.email, data.words or "", data.budget or "")
    return await to_thread(_view, request, token)


@get("/api/requests/{token:str}", name="api_get_request", tags=["requests"])
async def api_get_request(request: Request, token: FromPath[str]) -> dict[str, Any]:
    """A request by its token: status, expected reply time, matches, offers, messages, payment."""
    await to_thread(offers_service.expire_offers, state(request).sessions, token)
    return await to_thread(_view, request, token)


@post(
    "/api/requests/{token:str}/offers/{offer_id:int}/accept",
    name="api_accept_offer",
    status_code=200,
    tags=["requests"],
)
async def api_accept_offer(
    request: Request,
    token: FromPath[str],
    offer_id: FromPath[int],
    data: JSONBody[AcceptBody],
    idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)] = None,
) -> dict[str, Any]:
    """Accept one offer and authorise its price on the card. Repeating the call with the same
    Idempotency-Key returns the first outcome; a second accept on the request is refused (409)."""
    st = state(request)
    result = await to_thread(
        offers_service.accept_offer,
        st.sessions,
        st.payments,
        token,
        offer_id,
        data.card_number,
        idempotency_key or secrets.token_urlsafe(16),
        st.outbox,
    )
    view = await to_thread(_view, request, token)
    view["accept"] = {"payment_id": result.payment_id, "status": result.status, "replayed": result.replayed}
    return view


@get("/api/health", name="api_health", tags=["service"])
async def api_health(request: Request) -> dict[str, Any]:
    """Liveness, and whether payments run in test mode."""
    return {"ok": True, "test_mode": state(request).payments.is_test}


json_routes = [api_create_request, api_get_request, api_accept_offer, api_health]
