"""Operator pages: the queue, claiming, the workbench (search, offers, messages) and fulfilment.
Every action is a POST with a CSRF token and ends in a redirect (no double submits). Signed-in
operators and admins only (the guard); refunds are for admins."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import asdict

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.orm import sessionmaker

from access import applications
from api.auth import admin_only, staff_only
from api.dependencies import AppSettings, Db, Mail, Payments, RequestLink, Search, SignedIn
from api.errors import status_of
from api.forms import (
    Confirm,
    ConfirmedReason,
    Fulfil,
    NewMessage,
    OffersForm,
    Reason,
    Refine,
    offer_drafts,
    offer_hours,
    require_confirmation,
    typed_offers,
)
from api.limits import OFFERS_FORM_BYTES
from api.pages import notice_redirect, page
from catalog.nearby import NearbyStock
from workflow import (
    claims,
    customer_views,
    nearby_view,
    offers_service,
    operator_views,
    pairs,
    pickups,
    requests_service,
    workbench,
)
from workflow.errors import Invalid
from workflow.models import User
from workflow.settings import Settings
from workflow.views import operator_view


def _workbench_view(
    db: sessionmaker, request_id: int, user: User, settings: Settings, stock: NearbyStock | None = None
) -> dict:
    """The request as the workbench shows it, with the catalog's filter choices and the latest
    re-search if it found nothing (the candidates shown are then the previous round's)."""
    claims.renew_if_held(db, request_id, user, settings.claim_ttl_s)
    with db() as session:
        found = requests_service.load_by_id(session, request_id)
        view = nearby_view.add_for_operator(session, found, operator_view(session, found), stock)
        view["choices"] = workbench.filter_choices(session)
        view["empty_search"] = workbench.last_empty_search(session, request_id)
        return view


async def _workbench_page(
    request: Request,
    db: sessionmaker,
    request_id: int,
    user: User,
    settings: Settings,
    status_code: int = 200,
    form_error: dict | None = None,
) -> Template:
    """The workbench; with `form_error` ({"form", "message", "typed"}) it is shown again after a refused
    form, with the refusal next to the form and what the person typed still in it."""
    stock = getattr(getattr(request.app.state, "search", None), "nearby", None)  # stores near the customer
    view = await asyncio.to_thread(_workbench_view, db, request_id, user, settings, stock)
    # May search and send offers: the claim holder, or once offers are out their sender (or an admin: follow-ups).
    holds = (view["status"] == "claimed" and view["claimed_by"] == user.name) or (
        view["status"] == "offers_sent" and (view["operator"] == user.name or user.role == "admin")
    )
    query = view["empty_search"] or view["last_query"]
    return page(
        request,
        "workbench.html",
        status_code=status_code,
        user=user,
        r=view,
        holds=holds,
        offer_hours=settings.offer_ttl_hours,
        q=query,
        form_error=form_error,
    )


class OperatorController(Controller):
    path = "/operator"
    guards = (staff_only,)
    include_in_schema = False

    @get("/", name="queue")
    async def queue(
        self,
        request: Request,
        user: SignedIn,
        db: Db,
        view: FromQuery[str] = "queue",
    ) -> Template:
        """The operator's lists (`?view=`), each with its count; the queue is the default."""
        if view not in operator_views.VIEWS:
            raise Invalid(f"There is no list called {view!r}.", "Choose one of the tabs.")
        mine = await asyncio.to_thread(applications.categories_of, db, user.id)
        rows = await asyncio.to_thread(operator_views.rows, db, user, view, mine)
        counts = await asyncio.to_thread(operator_views.counts, db, user)
        return page(request, "queue.html", user=user, rows=rows, view=view, views=operator_views.VIEWS, counts=counts)

    @get("/counts", name="queue_counts", sync_to_thread=True)
    def queue_counts(self, user: SignedIn, db: Db) -> dict[str, int]:
        """The lists' counts, for the queue page to update in place (no reload)."""
        return operator_views.counts(db, user)

    @post("/next", name="claim_next")
    async def claim_next(self, request: Request, user: SignedIn, db: Db, settings: AppSettings) -> Redirect:
        mine = await asyncio.to_thread(applications.categories_of, db, user.id)
        request_id = await asyncio.to_thread(claims.claim_next, db, user, settings.claim_ttl_s, mine)
        if request_id is None:
            return notice_redirect(request, "/operator", "The queue is empty: nothing to claim.")
        return Redirect(f"/operator/requests/{request_id}", status_code=303)

    @post("/requests/{request_id:int}/claim", name="claim", sync_to_thread=True)
    def claim(self, request_id: FromPath[int], user: SignedIn, db: Db, settings: AppSettings) -> Redirect:
        claims.claim(db, request_id, user, settings.claim_ttl_s)
        return Redirect(f"/operator/requests/{request_id}", status_code=303)

    @get("/requests/{request_id:int}", name="workbench")
    async def workbench_page(
        self, request: Request, request_id: FromPath[int], user: SignedIn, db: Db, settings: AppSettings
    ) -> Template:
        return await _workbench_page(request, db, request_id, user, settings)

    @post("/requests/{request_id:int}/search", name="refine")
    async def refine(
        self,
        request: Request,
        request_id: FromPath[int],
        data: Refine,
        user: SignedIn,
        db: Db,
        search: Search,
        settings: AppSettings,
    ) -> Redirect:
        how = workbench.parse_refinement(asdict(data))
        await asyncio.to_thread(claims.renew_if_held, db, request_id, user, settings.claim_ttl_s)
        found = await workbench.refine(db, search, settings.workspace, request_id, user, how)
        if not found.hits:
            return notice_redirect(
                request,
                f"/operator/requests/{request_id}#candidates",
                "No products match these filters; the candidates shown are the previous round's.",
            )
        return Redirect(f"/operator/requests/{request_id}#candidates", status_code=303)

    @post("/requests/{request_id:int}/offers", name="send_offers", request_max_body_size=OFFERS_FORM_BYTES)
    async def send_offers(
        self,
        request: Request,
        request_id: FromPath[int],
        data: OffersForm,
        user: SignedIn,
        db: Db,
        outbox: Mail,
        settings: AppSettings,
        link: RequestLink,
        search: Search,
    ) -> Redirect | Template:
        try:
            drafts = offer_drafts(data)
            hours = offer_hours(data, settings.offer_ttl_hours)
            chosen = pickups.parse_choices(data, [d.product_id for d in drafts])  # "pickup at store X"
            await asyncio.to_thread(pickups.check_choices, db, chosen)
            ids = await asyncio.to_thread(
                offers_service.send_offers,
                db,
                request_id,
                user,
                drafts,
                hours,
                outbox,
                link,
                settings.secret_key,
                chosen,
            )
        except Invalid as exc:  # shown again with what was typed: the ticks, prices, notes, expiry
            error = {"form": "offers", "message": exc.message, "typed": typed_offers(data)}
            return await _workbench_page(request, db, request_id, user, settings, status_of(exc), error)
        # The customer's photo becomes a view of each offered product, searchable at once (never fails).
        await asyncio.to_thread(customer_views.add_views_for_offers, db, search, settings.workspace, ids, user)
        return notice_redirect(
            request, f"/operator/requests/{request_id}", f"{len(drafts)} offer(s) sent to the customer."
        )

    @post("/requests/{request_id:int}/none-match", name="none_match")
    async def none_match(self, request: Request, request_id: FromPath[int], user: SignedIn, db: Db) -> Redirect:
        """None of the shown candidates is the product: recorded as rejected pairs, nothing else changes."""
        added = await asyncio.to_thread(pairs.reject_shown, db, request_id, user)
        return notice_redirect(
            request,
            f"/operator/requests/{request_id}#candidates",
            f"Noted: none of these match ({added} new judgement(s)). Search again to find the product.",
        )

    @post("/requests/{request_id:int}/views/{view_id:int}/remove", name="remove_view")
    async def remove_view(
        self,
        request: Request,
        request_id: FromPath[int],
        view_id: FromPath[int],
        data: Confirm,
        user: SignedIn,
        db: Db,
        search: Search,
    ) -> Redirect:
        """Take a wrong customer view out of the search (after the operator ticked the confirmation)."""
        if data.confirm != "yes":
            raise Invalid("Tick the box to confirm that this customer photo is not this product.")
        sink = customer_views.ServingSink(search)
        await asyncio.to_thread(customer_views.remove_view, db, sink, view_id, user, request_id)
        return notice_redirect(
            request, f"/operator/requests/{request_id}#candidates", "The customer photo no longer finds that product."
        )

    @post("/requests/{request_id:int}/offers/{offer_id:int}/withdraw", name="withdraw_offer", sync_to_thread=True)
    def withdraw_offer(
        self, request_id: FromPath[int], offer_id: FromPath[int], data: Confirm, user: SignedIn, db: Db
    ) -> Redirect:
        require_confirmation(data.confirm, "withdraw this offer")
        offers_service.withdraw_offer(db, request_id, offer_id, user)
        return Redirect(f"/operator/requests/{request_id}", status_code=303)

    @post("/requests/{request_id:int}/messages", name="operator_message")
    async def operator_message(
        self,
        request: Request,
        request_id: FromPath[int],
        data: NewMessage,
        user: SignedIn,
        db: Db,
        outbox: Mail,
        link: RequestLink,
        settings: AppSettings,
    ) -> Redirect:
        await asyncio.to_thread(
            offers_service.post_operator_message, db, request_id, user, data.body, outbox, link, settings.secret_key
        )
        return notice_redirect(request, f"/operator/requests/{request_id}#messages", "Message sent.")

    @post("/requests/{request_id:int}/release", name="release")
    async def release(
        self, request: Request, request_id: FromPath[int], data: Reason, user: SignedIn, db: Db
    ) -> Redirect:
        await asyncio.to_thread(claims.release, db, request_id, user, data.reason)
        return notice_redirect(request, "/operator", f"Request {request_id} is back in the queue.")

    @post("/requests/{request_id:int}/fulfil", name="fulfil")
    async def fulfil(
        self,
        request: Request,
        request_id: FromPath[int],
        data: Fulfil,
        user: SignedIn,
        db: Db,
        payments: Payments,
        outbox: Mail,
        link: RequestLink,
        settings: AppSettings,
    ) -> Redirect:
        require_confirmation(data.confirm, "capture the payment and mark the order fulfilled")
        shipment = {"carrier": data.carrier, "tracking": data.tracking, "link": link, "secret": settings.secret_key}
        await asyncio.to_thread(
            functools.partial(offers_service.fulfil, **shipment), db, payments, request_id, user, outbox
        )
        return notice_redirect(
            request, f"/operator/requests/{request_id}", "Payment captured; the request is fulfilled."
        )

    @post("/requests/{request_id:int}/close", name="close", sync_to_thread=True)
    def close(self, request_id: FromPath[int], user: SignedIn, db: Db) -> Redirect:
        offers_service.close(db, request_id, user)
        return Redirect(f"/operator/requests/{request_id}", status_code=303)

    @post("/requests/{request_id:int}/refund", name="refund", guards=[admin_only])
    async def refund(
        self, request: Request, request_id: FromPath[int], data: Confirm, user: SignedIn, db: Db, payments: Payments
    ) -> Redirect:
        require_confirmation(data.confirm, "refund the whole payment")
        await asyncio.to_thread(offers_service.refund, db, payments, request_id, user)
        return notice_redirect(request, f"/operator/requests/{request_id}", "The payment was refunded.")

    @post("/requests/{request_id:int}/cancel", name="operator_cancel")
    async def cancel(
        self,
        request: Request,
        request_id: FromPath[int],
        data: ConfirmedReason,
        user: SignedIn,
        db: Db,
        payments: Payments,
        outbox: Mail,
    ) -> Redirect:
        require_confirmation(data.confirm, "cancel this request")
        await asyncio.to_thread(offers_service.cancel_by_operator, db, payments, request_id, user, data.reason, outbox)
        return notice_redirect(request, f"/operator/requests/{request_id}", "The request is cancelled.")
