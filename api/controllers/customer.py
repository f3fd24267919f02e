"""Customer pages: the upload form, the request page (status, matches, offers, messages), accepting
an offer with a card. No account: the unguessable link is the key."""

from __future__ import annotations

import asyncio
import functools
import secrets

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import File, Redirect, Template
from sqlalchemy.orm import sessionmaker

from api.closed_beta import invitation_of, is_invited, require_invitation
from api.controllers.nearby import nearby_context
from api.dependencies import AppSettings, Db, Mail, Payments, RequestLink, Search, Viewer
from api.errors import IMAGE_TITLE, status_of
from api.forms import Accept, Confirm, FindRequests, NewMessage, NewRequest, Pick, require_confirmation, upload_bytes
from api.limits import UPLOAD_BODY_BYTES
from api.pages import notice_redirect, page
from catalog.nearby import NearbyStock
from vision.errors import ImageRejected
from workflow import (
    customer_picks,
    locations,
    nearby_view,
    offers_service,
    orders,
    pickups,
    rates,
    request_finder,
    requests_service,
)
from workflow.errors import Invalid, NotFound, ServiceError
from workflow.intake import submit_request
from workflow.uploads import image_path
from workflow.views import customer_view

#: A customer's photo is theirs: no shared cache may keep it, and the browser keeps no copy either.
PRIVATE_FILE = {"Cache-Control": "private, no-store"}
ACCEPTED_TYPES = "image/jpeg,image/png,image/webp,image/heic,image/heif,image/avif,image/gif,image/bmp,image/tiff"


def order_receipt(db: sessionmaker, token: str) -> dict:
    """The request's receipt; NotFound until it has been paid."""
    with db() as session:
        found = orders.receipt(session, requests_service.load_by_token(session, token))
    if found is None:
        raise NotFound("This request has no order yet.", "Accept and pay an offer first; the receipt appears then.")
    return found


def order_number_of(db: sessionmaker, token: str) -> str:
    with db() as session:
        order = orders.order_of(session, requests_service.load_by_token(session, token).id)
        return order.number or "" if order else ""


def customer_page_view(db: sessionmaker, token: str, stock: NearbyStock | None = None) -> dict:
    """The request as its customer sees it (offers past their expiry read as expired; the sweeper,
    `workflow.sweeper`, records that in the background). With `stock` (`SearchService.nearby`) and
    a shared location, its matches and offers list the nearest stores holding them."""
    with db() as session:
        found = requests_service.load_by_token(session, token)
        return nearby_view.add_for_customer(session, found, customer_view(session, found, token), stock)


class CustomerController(Controller):
    include_in_schema = False

    @get("/", name="home")
    async def home(self, request: Request, settings: AppSettings, db: Db, viewer: Viewer) -> Template:
        invited = await is_invited(settings, db, invitation_of(request))
        currencies, default_currency = await asyncio.to_thread(rates.currency_choices, db)
        return page(
            request,
            "index.html",
            user=viewer,
            max_bytes=settings.max_upload_bytes,
            accept=ACCEPTED_TYPES,
            invited=invited,
            currencies=currencies,
            default_currency=default_currency,
        )

    @post("/requests", name="create_request", request_max_body_size=UPLOAD_BODY_BYTES)
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
            await require_invitation(settings, db, invitation_of(request))
            photo = await upload_bytes(data.chosen_photo(), settings.max_upload_bytes)
            where = await asyncio.to_thread(
                locations.from_form, data.place, data.lat, data.lon
            )  # before: no half-made request
            token = await submit_request(
                settings, db, search, outbox, link, photo, data.email, data.words, data.budget, data.budget_currency
            )
            if where is not None:
                await asyncio.to_thread(locations.set_for_token, db, token, where)
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
            typed = {"email": data.email, "words": data.words, "budget": data.budget, "place": data.place}
            currencies, default_currency = await asyncio.to_thread(rates.currency_choices, db)
            return page(
                request,
                "index.html",
                status_code=status_of(exc),
                user=viewer,
                max_bytes=settings.max_upload_bytes,
                accept=ACCEPTED_TYPES,
                currencies=currencies,
                default_currency=data.budget_currency or default_currency,
                error=error,
                typed=typed,
            )
        return Redirect(f"/r/{token}", status_code=303)

    @get("/r/{token:str}", name="request_page")
    async def request_page(
        self,
        request: Request,
        token: FromPath[str],
        db: Db,
        viewer: Viewer,
        search: Search,
        settings: AppSettings,
        within_km: FromQuery[str | None] = None,
    ) -> Template:
        """The request; `?within_km=N` (with a shared location) shows the matches in stock within N km."""
        view = await asyncio.to_thread(customer_page_view, db, token, search.nearby)
        nearby = await nearby_context(db, search, settings, token, view, within_km)
        return page(
            request,
            "request.html",
            user=viewer,
            r=view,
            idempotency_key=secrets.token_urlsafe(16),
            countries=orders.countries(),
            **nearby,
        )

    @get("/r/{token:str}/receipt", name="receipt_page")
    async def receipt_page(self, request: Request, token: FromPath[str], db: Db, viewer: Viewer) -> Template:
        """The order's receipt: number, product, price with currency, address, card's last 4, tracking."""
        found = await asyncio.to_thread(order_receipt, db, token)
        return page(request, "receipt.html", user=viewer, receipt=found, token=token)

    @get("/r/{token:str}/photo", name="request_photo", sync_to_thread=True)
    def request_photo(self, token: FromPath[str], db: Db, settings: AppSettings) -> File:
        """The customer's own photo, to the holder of the request's link only (staff see it at /images)."""
        with db() as session:
            sha256 = requests_service.load_by_token(session, token).photo_sha256
        path = image_path(settings.workspace, sha256)
        if path is None:
            raise NotFound("The photo of this request is no longer kept.", "Your request itself is unchanged.")
        return File(path, media_type="image/jpeg", content_disposition_type="inline", headers=PRIVATE_FILE)

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
        viewer: Viewer,
    ) -> Redirect | Template:
        key = data.idempotency_key or secrets.token_urlsafe(16)
        try:
            pickup = await asyncio.to_thread(pickups.offer_pickup, db, offer_id) if data.kind == "pickup" else None
            delivery = orders.check_delivery(data.delivery(), pickup)
            await asyncio.to_thread(
                functools.partial(offers_service.accept_offer, secret=settings.secret_key, delivery=delivery),
                db,
                payments,
                token,
                offer_id,
                data.card_number,
                key,
                outbox,
            )
        except Invalid as exc:  # the page again, the address as typed (never the card number)
            view = await asyncio.to_thread(customer_page_view, db, token)
            error = {"status": status_of(exc), "title": exc.title, "message": exc.message, "hint": exc.hint}
            return page(
                request,
                "request.html",
                status_code=status_of(exc),
                user=viewer,
                r=view,
                idempotency_key=secrets.token_urlsafe(16),
                countries=orders.countries(),
                error=error,
                typed={"offer_id": offer_id, **data.delivery()},
            )
        number = await asyncio.to_thread(order_number_of, db, token)
        return notice_redirect(
            request,
            f"/r/{token}",
            f"Thank you: the offer is accepted. Your order {number} is placed and your card is authorised; "
            "it is charged when the order ships.",
        )

    @post("/r/{token:str}/offers/{offer_id:int}/decline", name="decline_offer", sync_to_thread=True)
    def decline_offer(self, token: FromPath[str], offer_id: FromPath[int], db: Db) -> Redirect:
        offers_service.decline_offer(db, token, offer_id)
        return Redirect(f"/r/{token}", status_code=303)

    @post("/r/{token:str}/messages", name="customer_message", sync_to_thread=True)
    def customer_message(self, token: FromPath[str], data: NewMessage, db: Db, outbox: Mail) -> Redirect:
        requests_service.add_message(db, token, data.body, data.something_else == "1", outbox)
        return Redirect(f"/r/{token}", status_code=303)

    @get("/my-requests", name="find_requests")
    async def find_requests_page(self, request: Request) -> Template:
        return page(request, "my_requests.html")

    @post("/my-requests", name="mail_requests")
    async def mail_requests(
        self, request: Request, data: FindRequests, db: Db, outbox: Mail, link: RequestLink, settings: AppSettings
    ) -> Template:
        """E-mail the address the links to its requests; the page says the same whether it has any or not."""
        await asyncio.to_thread(request_finder.mail_my_requests, db, data.email, outbox, link, settings.secret_key)
        return page(request, "my_requests.html", sent_to=data.email.strip())

    @post("/r/{token:str}/pick", name="pick_match")
    async def pick_match(self, request: Request, token: FromPath[str], data: Pick, db: Db) -> Redirect:
        """The customer's "this is the one" on an instant match: it goes to the operators as their pick."""
        try:
            product_id = int(data.product_id)
        except ValueError:
            raise Invalid("Pick one of your matches.") from None
        title = await asyncio.to_thread(customer_picks.pick_instant_match, db, token, product_id)
        return notice_redirect(
            request,
            f"/r/{token}",
            f"We told your operator that {title} is the one: they confirm the price and stock and send you an offer.",
        )

    @post("/r/{token:str}/cancel", name="cancel_request", sync_to_thread=True)
    def cancel_request(self, token: FromPath[str], data: Confirm, db: Db) -> Redirect:
        require_confirmation(data.confirm, "cancel your request")
        requests_service.cancel(db, token)
        return Redirect(f"/r/{token}", status_code=303)
