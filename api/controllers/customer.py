"""Customer pages: the upload form, the request page (status, matches, offers, messages), accepting
an offer with a card. No account: the unguessable link is the key."""

from __future__ import annotations

import asyncio
import functools
import secrets

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.orm import sessionmaker

from api.dependencies import AppSettings, Db, Mail, Payments, RequestLink, Search, Viewer
from api.errors import IMAGE_TITLE, status_of
from api.forms import Accept, NewMessage, NewRequest, upload_bytes
from api.pages import notice_redirect, page
from vision.errors import ImageRejected
from workflow import offers_service, requests_service
from workflow.errors import ServiceError
from workflow.intake import submit_request
from workflow.views import customer_view

ACCEPTED_TYPES = "image/jpeg,image/png,image/webp,image/heic,image/heif,image/avif,image/gif,image/bmp,image/tiff"


def customer_page_view(db: sessionmaker, token: str) -> dict:
    """The request as its customer sees it; offers past their expiry are expired first."""
    offers_service.expire_offers(db, token)
    with db() as session:
        return customer_view(session, requests_service.load_by_token(session, token))


class CustomerController(Controller):
    include_in_schema = False

    @get("/", name="home")
    async def home(self, request: Request, settings: AppSettings, viewer: Viewer) -> Template:
        return page(request, "index.html", user=viewer, max_bytes=settings.max_upload_bytes, accept=ACCEPTED_TYPES)

    @post("/requests", name="create_request")
    async def create_request(
        self,
        request: Request,
        data: NewRequest,
        settings: AppSettings,
        db: Db,
        search: Search,
        outbox: Mail,
        link: RequestLink,
        viewer: Viewer,
    ) -> Redirect | Template:
        try:
            photo = await upload_bytes(data.chosen_photo(), settings.max_upload_bytes)
            token = await submit_request(settings, db, search, outbox, link, photo, data.email, data.words, data.budget)
        except (ServiceError, ImageRejected) as exc:
            # The form again, with the refusal and what was typed; a browser never refills a file input.
            rejected = isinstance(exc, ImageRejected)
            error = {
                "status": status_of(exc),
                "title": IMAGE_TITLE if rejected else exc.title,  # type: ignore[union-attr]
                "message": str(exc) if rejected else exc.message,  # type: ignore[union-attr]
                "hint": (
                    "Nothing was saved. Your words, budget and e-mail are kept below; "
                    "the photo cannot be kept by the browser, so please choose it (or another one) again."
                ),
            }
            typed = {"email": data.email, "words": data.words, "budget": data.budget}
            return page(
                request,
                "index.html",
                status_code=status_of(exc),
                user=viewer,
                max_bytes=settings.max_upload_bytes,
                accept=ACCEPTED_TYPES,
                error=error,
                typed=typed,
            )
        return Redirect(f"/r/{token}", status_code=303)

    @get("/r/{token:str}", name="request_page")
    async def request_page(self, request: Request, token: FromPath[str], db: Db, viewer: Viewer) -> Template:
        view = await asyncio.to_thread(customer_page_view, db, token)
        return page(request, "request.html", user=viewer, r=view, idempotency_key=secrets.token_urlsafe(16))

    @post("/r/{token:str}/offers/{offer_id:int}/accept", name="accept_offer")
    async def accept_offer(
        self,
        request: Request,
        token: FromPath[str],
        offer_id: FromPath[int],
        data: Accept,
        db: Db,
        payments: Payments,
        outbox: Mail,
        settings: AppSettings,
    ) -> Redirect:
        key = data.idempotency_key or secrets.token_urlsafe(16)
        await asyncio.to_thread(
            functools.partial(offers_service.accept_offer, secret=settings.secret_key),
            db,
            payments,
            token,
            offer_id,
            data.card_number,
            key,
            outbox,
        )
        return notice_redirect(
            request,
            f"/r/{token}",
            "Thank you: the offer is accepted and your card is authorised. It is charged when the order ships.",
        )

    @post("/r/{token:str}/offers/{offer_id:int}/decline", name="decline_offer", sync_to_thread=True)
    def decline_offer(self, token: FromPath[str], offer_id: FromPath[int], db: Db) -> Redirect:
        offers_service.decline_offer(db, token, offer_id)
        return Redirect(f"/r/{token}", status_code=303)

    @post("/r/{token:str}/messages", name="customer_message", sync_to_thread=True)
    def customer_message(self, token: FromPath[str], data: NewMessage, db: Db) -> Redirect:
        requests_service.add_message(db, token, data.body, data.something_else == "1")
        return Redirect(f"/r/{token}", status_code=303)

    @post("/r/{token:str}/cancel", name="cancel_request", sync_to_thread=True)
    def cancel_request(self, token: FromPath[str], db: Db) -> Redirect:
        requests_service.cancel(db, token)
        return Redirect(f"/r/{token}", status_code=303)
