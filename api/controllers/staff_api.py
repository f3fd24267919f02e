"""The staff JSON API: every operator action of the browser's workbench, for programs, with a bearer token.

`POST /api/staff/token` trades a name and password (and the TOTP code of an enrolled account) for a
token under the same rules as the sign-in form: the per-account and per-address lockout, the
sign-in rate limit, admins' two-factor, disabled accounts refused. Vendor accounts get tokens the
same way (for the vendor routes); on these staff routes their token is 403.

Each action calls the same workflow function as the browser's (`api.controllers.operator`), so the
claim rules, validation and audit trail are the same; only the confirmation differs: the browser asks
for a ticked box before a fulfil or a cancel, here the explicit call is the confirmation.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, cast

from litestar import Controller, Request, delete, get, post
from litestar.exceptions import TooManyRequestsException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.orm import sessionmaker

from access import applications, vendor_keys
from api.bearer import EXCEPTION_HANDLERS, SECURITY, bearer_as, bearer_token, staff_bearer
from api.controllers.sign_in import second_factor_refusal
from api.dependencies import AppSettings, Db, Mail, Payments, RequestLink, Search, SignedIn
from api.hosts import public_base
from api.limits import sign_in_failed, sign_in_lock
from api.openapi_docs import ErrorBody, described
from api.request_shapes import ListCounts, StaffRequestView
from catalog.nearby import NearbyStock
from workflow import (
    api_tokens,
    claims,
    customer_links,
    customer_views,
    nearby_view,
    offers_service,
    operator_views,
    pairs,
    pickups,
    requests_service,
    sign_in_throttle,
    users,
    workbench,
)
from workflow.errors import Forbidden, NotFound, SignInRequired
from workflow.models import User
from workflow.offers_service import OfferDraft
from workflow.settings import Settings
from workflow.views import image_url, operator_view

View = Literal["queue", "mine", "offers_out", "to_fulfil", "unavailable", "messages", "closed"]
TOKEN_NOTE = (
    "`token` is the customer's key to the request and `url` its page; both are null when the token "
    "cannot be derived again (a request made before tokens were salted, or after the app's secret "
    "changed): only a hash of each token is stored."
)


@dataclass
class StaffApiError(ErrorBody):
    """A refusal as JSON; on a 409 for a claim, `holder` names the operator holding it."""

    holder: Annotated[str | None, described("On a 409 for a claim: the operator holding it; otherwise null")] = None


_WHY = {
    400: "The body or a parameter is malformed; `detail` names it",
    401: "No bearer token, or one that is unknown, expired or revoked, or its account is switched off",
    402: "The payment service refused the capture; the order was not marked fulfilled",
    403: "The token is not a staff token (a vendor's), or the account may not do this",
    404: "No such request (or offer)",
    409: "The request's state or another operator's claim does not allow it; `holder` names the claim's holder",
    422: "A value is refused by the workflow's rules; `detail` says which and why",
    429: "Too many tries (sign-ins, messages) from this address or for this account; `Retry-After` says when",
}


def refusals(*codes: int) -> dict[int, ResponseSpec]:
    """`responses=` entries for the error statuses a staff route can answer."""
    return {code: ResponseSpec(StaffApiError, description=_WHY[code]) for code in codes}


ACTION = refusals(400, 401, 403, 404, 409, 422)


# --- bodies ------------------------------------------------------------------------------------


@dataclass
class TokenRequest:
    """A staff or vendor account's name and password; `code` is the current 6-digit TOTP code for an
    account with two-factor sign-in."""

    name: Annotated[str, described("The staff or vendor account's name, as on the sign-in form")]
    password: Annotated[str, described("The account's password")]
    code: Annotated[str, described("The current 6-digit TOTP code; empty for an account without two-factor")] = ""


@dataclass
class IssuedToken:
    """Send `token` as `Authorization: Bearer <token>`; it stops working at `expires_at`."""

    token: Annotated[str, described("The bearer token; send it as `Authorization: Bearer <token>`")]
    token_type: Annotated[str, described("Always `bearer`")]
    expires_at: Annotated[datetime, described("When the token stops working (UTC, ISO 8601)")]
    expires_in: Annotated[int, described("The token's lifetime from now, in seconds")]
    name: Annotated[str, described("The account the token acts as")]
    role: Annotated[
        str, described("The account's role: `operator`, `admin` or `vendor` (vendors only reach vendor routes)")
    ]


@dataclass
class RequestRow:
    """One request of a list. `holder` is who holds the claim (queue) or handles it (other lists);
    `last_message` is the customer's unanswered words (messages list)."""

    id: Annotated[int, described("The request's number, for `/api/staff/requests/{request_id}`")]
    token: Annotated[str | None, described("The customer's key to the request; null when it cannot be derived again")]
    url: Annotated[str | None, described("The customer's page of the request; null with `token`")]
    status: Annotated[str, described("The request's state, e.g. `queued`, `claimed`, `offers_sent`, `paid`, `closed`")]
    waiting_s: Annotated[float, described("Seconds since the request last changed (the queue: since it was sent)")]
    words: Annotated[str, described("What the customer wrote with the photo; may be empty")]
    category: Annotated[str, described("The catalog category the request was filed under; empty when unknown")]
    holder: Annotated[
        str | None, described("Who holds the claim (queue) or handles the request (other lists); null if no one")
    ]
    claim_expires_at: Annotated[datetime | None, described("When the current claim lapses (UTC); null when unclaimed")]
    last_message: Annotated[str, described("The customer's unanswered message (the messages list); empty elsewhere")]
    photo_url: Annotated[str, described("The customer's photo, a staff-only address relative to the site")]


@dataclass
class ReasonBody:
    """Why (releasing: for the next operator; cancelling: the customer is told)."""

    reason: Annotated[
        str, described("Why, in words; required (releasing: for the next operator; cancelling: sent to the customer)")
    ]


@dataclass
class Crop:
    """The region to search for, as fractions of the photo (x + w and y + h at most 1)."""

    x: Annotated[float, described("Left edge, as a fraction of the photo's width (0..1)")]
    y: Annotated[float, described("Top edge, as a fraction of the photo's height (0..1)")]
    w: Annotated[float, described("Width, as a fraction of the photo's width (x + w at most 1)")]
    h: Annotated[float, described("Height, as a fraction of the photo's height (y + h at most 1)")]


@dataclass
class SearchBody:
    """A search again: the photo (optionally cropped) and/or words, with filters. Prices are written
    as in offers (`40`, `1,299.00`); `in_stock` true or false filters on stock, null does not."""

    crop: Annotated[Crop | None, described("Search only this region of the photo; null for the whole photo")] = None
    words: Annotated[str, described("Words to search for, alone or refining the photo; may be empty")] = ""
    use_photo: Annotated[bool, described("Whether to search with the customer's photo (false: the words alone)")] = True
    min_price: Annotated[
        str | None, described("Lowest price, written as in offers (`40`, `1,299.00`); null for none")
    ] = None
    max_price: Annotated[str | None, described("Highest price, written as in offers; null for none")] = None
    category: Annotated[str, described("Only products of this catalog category; empty for all")] = ""
    vendor: Annotated[str, described("Only products of this vendor (its name); empty for all")] = ""
    in_stock: Annotated[bool | None, described("true: only in stock; false: only out of stock; null: either")] = None


@dataclass
class MessageBody:
    """A message to the customer (at most 2,000 characters); they get it by e-mail too."""

    body: Annotated[str, described("The message, plain text, at most 2,000 characters")]


@dataclass
class OfferItem:
    """One product offered at a price in the product's currency (`39.90`, `1,299.00`)."""

    product_id: Annotated[int, described("The catalog product offered (a candidate's `product_id`)")]
    price: Annotated[str, described("The price asked, in the product's currency, e.g. `39.90` or `1,299.00`")]
    note: Annotated[str, described("A note for the customer about this offer; may be empty")] = ""
    pickup_store_id: Annotated[
        int | None,
        described(
            "A store where the customer may collect it instead of having it shipped: one of the candidate's "
            "`pickup_choices` (`store_id`); null or absent: shipping only"
        ),
    ] = None


@dataclass
class OffersBody:
    """One to ten offers; `expires_in_hours` between 0.25 and 720 (default: the site's offer lifetime).
    An empty list is refused (422), as the form refuses sending with nothing ticked."""

    offers: Annotated[list[OfferItem], described("One to ten offers, shown to the customer in this order")]
    expires_in_hours: Annotated[
        float | None, described("Hours until the offers expire, 0.25 to 720; null for the site's default")
    ] = None


@dataclass
class FulfilBody:
    """The shipment: carrier (e.g. DHL) and tracking number, at most 80 characters each; both
    required for a shipped order, neither for one picked up at a store."""

    carrier: Annotated[str, described("The carrier, e.g. `DHL`, at most 80 characters; empty for a pickup")] = ""
    tracking: Annotated[str, described("The carrier's tracking number, at most 80 characters; empty for a pickup")] = ""


# --- helpers -----------------------------------------------------------------------------------


def _page_url(request: Request, token: str | None) -> str | None:
    return f"{public_base(request)}/r/{token}" if token else None


def _request_view(
    db: sessionmaker, request_id: int, user: User, settings: Settings, stock: NearbyStock | None
) -> dict[str, Any]:
    """The request as the workbench shows it (the claim renewed if the user holds it), with its token
    and, as on the workbench, the stores near the customer and each candidate's pickup choices."""
    claims.renew_if_held(db, request_id, user, settings.claim_ttl_s)
    with db() as session:
        found = requests_service.load_by_id(session, request_id)
        view = nearby_view.add_for_operator(session, found, operator_view(session, found), stock)
        view["empty_search"] = workbench.last_empty_search(session, request_id)
    view["token"] = customer_links.tokens_of(db, [request_id], settings.secret_key).get(request_id)
    return view


async def _respond(
    request: Request, db: sessionmaker, request_id: int, user: User, settings: Settings
) -> StaffRequestView:
    stock = getattr(getattr(request.app.state, "search", None), "nearby", None)  # stores near the customer
    view = await asyncio.to_thread(_request_view, db, request_id, user, settings, stock)
    view["url"] = _page_url(request, view["token"])
    return cast(StaffRequestView, view)


def _rows(request: Request, found: list, tokens: dict[int, str | None]) -> list[RequestRow]:
    """Queue rows (`claims.QueueRow`) and list rows (`operator_views.ViewRow`) in one shape."""
    out = []
    for row in found:
        token = tokens.get(row.id)
        out.append(
            RequestRow(
                id=row.id,
                token=token,
                url=_page_url(request, token),
                status=row.status,
                waiting_s=round(row.waiting_s, 1),
                words=row.words,
                category=getattr(row, "category", ""),
                holder=getattr(row, "holder", None) or getattr(row, "operator", None),
                claim_expires_at=getattr(row, "claim_expires_at", None),
                last_message=getattr(row, "last_message", ""),
                photo_url=image_url(row.photo_sha256),
            )
        )
    return out


def _refinement_form(data: SearchBody) -> dict[str, str]:
    """The body as the workbench's form fields, so `workbench.parse_refinement` checks it as it checks the form."""
    form = {
        "words": data.words,
        "use_photo": "1" if data.use_photo else "0",
        "min_price": data.min_price or "",
        "max_price": data.max_price or "",
        "category": data.category,
        "vendor": data.vendor,
        "in_stock": "" if data.in_stock is None else "yes" if data.in_stock else "no",
    }
    if data.crop is not None:
        form.update({f"crop_{n}": repr(getattr(data.crop, n)) for n in ("x", "y", "w", "h")})
    return form


# --- routes ------------------------------------------------------------------------------------


class StaffTokenController(Controller):
    path = "/api/staff/token"
    tags = ("staff",)

    @post(
        "/",
        name="api_staff_token",
        status_code=200,
        responses=refusals(400, 401, 403, 429),
        exception_handlers=EXCEPTION_HANDLERS,
    )
    async def issue(self, request: Request, data: JSONBody[TokenRequest], db: Db, settings: AppSettings) -> IssuedToken:
        """A bearer token for a staff or vendor account. Wrong credentials (or a wrong two-factor code)
        are 401 and count toward the account's and the address's lockout (then 429); a switched-off
        account gets none; an admin without two-factor is refused (403) where the site requires it."""
        locked = await sign_in_lock(request, db, data.name)
        if locked is not None:
            client = request.client.host if request.client else ""
            wait = await asyncio.to_thread(sign_in_throttle.locked_for, db, data.name, client)
            raise TooManyRequestsException(detail=locked, headers={"Retry-After": str(max(1, round(wait)))})
        user = await asyncio.to_thread(users.authenticate, db, data.name.strip(), data.password)
        if user is None:
            error = await sign_in_failed(request, db, settings, data.name, "The name or the password is not right.")
            raise SignInRequired(error, "Check the name and the password of your staff account.")
        refusal = await second_factor_refusal(user, data.code, db, settings)
        if refusal is not None:
            status, error = refusal
            if status == 401:
                raise SignInRequired(await sign_in_failed(request, db, settings, data.name, error))
            raise Forbidden(error)
        await asyncio.to_thread(sign_in_throttle.record_success, db, data.name)
        issued = await asyncio.to_thread(api_tokens.issue, db, user)
        lifetime = int(api_tokens.LIFETIME.total_seconds())
        return IssuedToken(issued.token, "bearer", issued.expires_at, lifetime, user.name, user.role)

    @delete(
        "/",
        name="api_staff_token_revoke",
        guards=[bearer_as("operator", "admin", "vendor")],
        security=SECURITY,
        responses=refusals(401, 403),
        exception_handlers=EXCEPTION_HANDLERS,
    )
    async def revoke(self, request: Request, db: Db) -> None:
        """End the token this request carries (sign out); the account's other tokens and sessions stay.
        A vendor API key is not a sign-in: it is 403 here and is revoked on /vendor/team."""
        token = bearer_token(request) or ""
        if vendor_keys.is_key(token):
            raise Forbidden(
                "An API key is not signed out: this would leave it working.",
                "Revoke the key on /vendor/team, or with DELETE /api/vendor/keys/{id} and a vendor user's token.",
            )
        await asyncio.to_thread(api_tokens.revoke, db, token)


class StaffApiController(Controller):
    path = "/api/staff/requests"
    tags = ("staff",)
    guards = (staff_bearer,)
    security = SECURITY
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="api_staff_list", responses=refusals(400, 401, 403), description=TOKEN_NOTE)
    async def list_requests(
        self, request: Request, user: SignedIn, db: Db, settings: AppSettings, view: FromQuery[View] = "queue"
    ) -> list[RequestRow]:
        """One of the operator's lists: the queue (oldest first, the operator's categories first), mine,
        offers out, to fulfil, waiting for a reply, closed (the others newest change first)."""
        mine = await asyncio.to_thread(applications.categories_of, db, user.id)
        found = await asyncio.to_thread(operator_views.rows, db, user, view, mine)
        tokens = await asyncio.to_thread(customer_links.tokens_of, db, [r.id for r in found], settings.secret_key)
        return _rows(request, found, tokens)

    @get("/counts", name="api_staff_counts", sync_to_thread=True, responses=refusals(401, 403))
    def counts(self, user: SignedIn, db: Db) -> ListCounts:
        """How many requests each list holds now."""
        return cast(ListCounts, operator_views.counts(db, user))

    @post("/next", name="api_staff_claim_next", status_code=200, responses=refusals(401, 403, 404))
    async def claim_next(self, request: Request, user: SignedIn, db: Db, settings: AppSettings) -> StaffRequestView:
        """Claim the request at the head of the queue (404 when the queue is empty); answers it."""
        mine = await asyncio.to_thread(applications.categories_of, db, user.id)
        request_id = await asyncio.to_thread(claims.claim_next, db, user, settings.claim_ttl_s, mine)
        if request_id is None:
            raise NotFound("The queue is empty: nothing to claim.", "Try again later.")
        return await _respond(request, db, request_id, user, settings)

    @get("/{request_id:int}", name="api_staff_request", responses=refusals(400, 401, 403, 404), description=TOKEN_NOTE)
    async def read(
        self, request: Request, request_id: FromPath[int], user: SignedIn, db: Db, settings: AppSettings
    ) -> StaffRequestView:
        """The request as the workbench shows it: status, claim, candidates of the latest search,
        offers, messages, payments and audit trail (reading it renews the reader's own claim)."""
        return await _respond(request, db, request_id, user, settings)

    @post("/{request_id:int}/claim", name="api_staff_claim", status_code=200, responses=ACTION)
    async def claim(
        self, request: Request, request_id: FromPath[int], user: SignedIn, db: Db, settings: AppSettings
    ) -> StaffRequestView:
        """Claim the request (or renew one's own claim). 409 when another operator holds it (`holder`)."""
        await asyncio.to_thread(claims.claim, db, request_id, user, settings.claim_ttl_s)
        return await _respond(request, db, request_id, user, settings)

    @post("/{request_id:int}/release", name="api_staff_release", status_code=200, responses=ACTION)
    async def release(
        self,
        request: Request,
        request_id: FromPath[int],
        data: JSONBody[ReasonBody],
        user: SignedIn,
        db: Db,
        settings: AppSettings,
    ) -> StaffRequestView:
        """Put the claimed request back in the queue, saying why (422 without a reason)."""
        await asyncio.to_thread(claims.release, db, request_id, user, data.reason)
        return await _respond(request, db, request_id, user, settings)

    @post("/{request_id:int}/search", name="api_staff_search", status_code=200, responses=ACTION)
    async def search(
        self,
        request: Request,
        request_id: FromPath[int],
        data: JSONBody[SearchBody],
        user: SignedIn,
        db: Db,
        search: Search,
        settings: AppSettings,
    ) -> StaffRequestView:
        """Search again (the claim holder, or the sender of the offers). The hits become the new
        candidates; with none, the previous candidates stay and `search.hits` is 0."""
        how = workbench.parse_refinement(_refinement_form(data))
        await asyncio.to_thread(claims.renew_if_held, db, request_id, user, settings.claim_ttl_s)
        found = await workbench.refine(db, search, settings.workspace, request_id, user, how)
        view = await _respond(request, db, request_id, user, settings)
        view["search"] = {"round": found.round, "hits": found.hits}
        return view

    @post("/{request_id:int}/none-match", name="api_staff_none_match", status_code=200, responses=ACTION)
    async def none_match(
        self, request: Request, request_id: FromPath[int], user: SignedIn, db: Db, settings: AppSettings
    ) -> StaffRequestView:
        """None of the shown candidates is the product: recorded as rejected pairs; nothing else changes."""
        await asyncio.to_thread(pairs.reject_shown, db, request_id, user)
        return await _respond(request, db, request_id, user, settings)

    @post(
        "/{request_id:int}/messages",
        name="api_staff_message",
        status_code=200,
        responses={**ACTION, **refusals(429)},
    )
    async def message(
        self,
        request: Request,
        request_id: FromPath[int],
        data: JSONBody[MessageBody],
        user: SignedIn,
        db: Db,
        outbox: Mail,
        link: RequestLink,
        settings: AppSettings,
    ) -> StaffRequestView:
        """Write to the customer (e-mailed to them with their link)."""
        await asyncio.to_thread(
            offers_service.post_operator_message, db, request_id, user, data.body, outbox, link, settings.secret_key
        )
        return await _respond(request, db, request_id, user, settings)

    @post("/{request_id:int}/offers", name="api_staff_offers", status_code=200, responses=ACTION)
    async def send_offers(
        self,
        request: Request,
        request_id: FromPath[int],
        data: JSONBody[OffersBody],
        user: SignedIn,
        db: Db,
        outbox: Mail,
        link: RequestLink,
        search: Search,
        settings: AppSettings,
    ) -> StaffRequestView:
        """Send offers (validated as the workbench's form: prices, notes, expiry, products in the
        catalog, pickup stores among the candidate's `pickup_choices`); the claim is released and the
        customer e-mailed. The sender (or an admin) may send
        more while they are out."""
        drafts = [OfferDraft(item.product_id, item.price, item.note) for item in data.offers]
        hours = data.expires_in_hours if data.expires_in_hours is not None else float(settings.offer_ttl_hours)
        chosen = pickups.chosen_stores({item.product_id: item.pickup_store_id for item in data.offers})
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
        await asyncio.to_thread(customer_views.add_views_for_offers, db, search, settings.workspace, ids, user)
        view = await _respond(request, db, request_id, user, settings)
        view["sent_offer_ids"] = ids
        return view

    @post(
        "/{request_id:int}/offers/{offer_id:int}/withdraw",
        name="api_staff_withdraw",
        status_code=200,
        responses=ACTION,
    )
    async def withdraw(
        self,
        request: Request,
        request_id: FromPath[int],
        offer_id: FromPath[int],
        user: SignedIn,
        db: Db,
        settings: AppSettings,
    ) -> StaffRequestView:
        """Withdraw one offer (its sender or an admin); the call is the confirmation."""
        await asyncio.to_thread(offers_service.withdraw_offer, db, request_id, offer_id, user)
        return await _respond(request, db, request_id, user, settings)

    @post(
        "/{request_id:int}/fulfil",
        name="api_staff_fulfil",
        status_code=200,
        responses=refusals(400, 401, 402, 403, 404, 409, 422),
    )
    async def fulfil(
        self,
        request: Request,
        request_id: FromPath[int],
        data: JSONBody[FulfilBody],
        user: SignedIn,
        db: Db,
        payments: Payments,
        outbox: Mail,
        link: RequestLink,
        settings: AppSettings,
    ) -> StaffRequestView:
        """Capture the paid request's payment and mark it shipped with the carrier and tracking number
        (both required unless the customer picks the order up; 422 before any money moves); the
        customer gets a receipt with both. The browser asks for a ticked confirmation: here this
        explicit call is the confirmation."""
        shipment = {"carrier": data.carrier, "tracking": data.tracking, "link": link, "secret": settings.secret_key}
        await asyncio.to_thread(
            functools.partial(offers_service.fulfil, **shipment), db, payments, request_id, user, outbox
        )
        return await _respond(request, db, request_id, user, settings)

    @post("/{request_id:int}/close", name="api_staff_close", status_code=200, responses=ACTION)
    async def close(
        self, request: Request, request_id: FromPath[int], user: SignedIn, db: Db, settings: AppSettings
    ) -> StaffRequestView:
        """Close the request (no offer will follow)."""
        await asyncio.to_thread(offers_service.close, db, request_id, user)
        return await _respond(request, db, request_id, user, settings)

    @post("/{request_id:int}/cancel", name="api_staff_cancel", status_code=200, responses=ACTION)
    async def cancel(
        self,
        request: Request,
        request_id: FromPath[int],
        data: JSONBody[ReasonBody],
        user: SignedIn,
        db: Db,
        payments: Payments,
        outbox: Mail,
        settings: AppSettings,
    ) -> StaffRequestView:
        """Cancel the request for the customer, who is told the reason; a held payment is released.
        The browser asks for a ticked confirmation: here this explicit call is the confirmation."""
        await asyncio.to_thread(offers_service.cancel_by_operator, db, payments, request_id, user, data.reason, outbox)
        return await _respond(request, db, request_id, user, settings)
