"""The shapes of the request views the JSON API answers with (`workflow.views` builds them as plain
dictionaries), for `/schema` and `/docs`.

The workflow builds one dictionary for the pages and the JSON API alike; these TypedDicts only
describe it (a handler annotated with one returns the same dictionary, encoded unchanged), so a
client author reads every field's meaning in the document. When a view gains a key, add it here:
tests/api/test_openapi_descriptions.py checks that every field is described.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from api.controllers.orders import DeliveryAddress, Tracking
from api.openapi_docs import described
from workflow.nearby_view import PICKUP_CHOICES

ISO_UTC = "(UTC, ISO 8601 to the second)"


class Converted(TypedDict):
    """A price in the budget's currency, by the stored exchange rates."""

    amount: Annotated[str, described("The price converted to the budget's currency, a decimal as text")]
    currency: Annotated[str, described("The budget's currency, ISO 4217 (e.g. `EUR`)")]
    as_of: Annotated[str | None, described("The date of the older of the two rates used (ISO 8601); null if unknown")]


class NearbyStore(TypedDict):
    """A store holding the product near the customer's shared location (as `/api/search` hits' `stores`)."""

    code: Annotated[str, described("The vendor's code for the store")]
    name: Annotated[str, described("The store's name")]
    distance_km: Annotated[float, described("Distance from the customer's location in km (great circle)")]
    quantity: Annotated[int, described("How many the store holds now")]
    open_now: Annotated[bool | None, described("Whether the store is open at this moment (its own time zone)")]
    address: Annotated[str, described("The store's street address; may be empty")]


class SharedLocation(TypedDict):
    """Where the customer said they are, by their consent (a typed place or their device's position)."""

    lat: Annotated[float, described("Latitude in degrees, rounded to about 100 m")]
    lon: Annotated[float, described("Longitude in degrees, rounded to about 100 m")]
    label: Annotated[str, described("What it is shown as: the place as found, or `your device's location`")]
    source: Annotated[str, described("`typed` (a postcode or city), `device` (the browser) or `api` (`near`)")]


class PickupStoreShape(TypedDict):
    """A store where an offer may be (or an order is to be) collected."""

    id: Annotated[int, described("The store's id")]
    code: Annotated[str, described("The vendor's code for the store")]
    name: Annotated[str, described("The store's name")]
    address: Annotated[str, described("Street address")]
    postcode: Annotated[str, described("Postcode")]
    city: Annotated[str, described("City")]
    country: Annotated[str, described("Country, ISO 3166-1 alpha-2")]
    opening_hours: Annotated[str, described("Opening hours as text (e.g. `Mo-Fr 09:00-18:00`); empty if not given")]


class _NearbyFacts(TypedDict, total=False):
    """Keys present only where nearby applies (a page with a shared location, offers with pickup)."""

    stores: Annotated[
        list[NearbyStore],
        described("With a shared location: the nearest stores holding it, nearest first (absent without one)"),
    ]


class _OfferNearby(_NearbyFacts, total=False):
    pickup: Annotated[
        PickupStoreShape | None,
        described("The store where this offer may be collected instead of shipped; null: shipping only"),
    ]


class _OrderNearby(TypedDict, total=False):
    store: Annotated[PickupStoreShape | None, described("For a pickup order: where to collect it; null when shipped")]


class _RequestNearby(TypedDict, total=False):
    location: Annotated[
        SharedLocation | None,
        described("Where the customer said they are (for nearby stores); null when they shared none"),
    ]


class Match(_NearbyFacts):
    """A product found for the request's photo (an instant match, or an operator's candidate)."""

    product_id: Annotated[int, described("The catalog product's id")]
    rank: Annotated[int, described("Its place in the results, 1 is the best match")]
    score: Annotated[float, described("How close it looks to the photo: cosine similarity, higher is closer (-1..1)")]
    title: Annotated[str, described("The product's title in the catalog")]
    vendor: Annotated[str, described("The name of the vendor selling it")]
    price: Annotated[str, described("The catalog price, a decimal as text, in `currency`")]
    currency: Annotated[str, described("The price's currency, ISO 4217")]
    category: Annotated[str, described("The product's catalog category; may be empty")]
    in_stock: Annotated[bool, described("Whether the vendor has it in stock now")]
    url: Annotated[str, described("The product's page at the vendor")]
    image_url: Annotated[str, described("The product's photo, an address relative to the site; empty if none")]
    budget_state: Annotated[
        str | None,
        described("The price against the budget: `within`, `over`, `no_rate` (no rate to compare); null without one"),
    ]
    converted: Annotated[
        Converted | None, described("The price in the budget's currency, when that differs; null otherwise")
    ]


class MatchedView(TypedDict):
    """A customer photo kept as an extra view of a product, through which a candidate was found."""

    id: Annotated[int | None, described("The view's id; null if the view was removed and its slot reused")]
    photo_url: Annotated[str, described("The view's photo (staff only); empty when it is gone")]
    live: Annotated[bool, described("Whether the view still takes part in searches")]


class PickupChoice(TypedDict):
    """A store an operator may offer a candidate for pickup at: one of the product's own vendor's
    stores that holds it now."""

    store_id: Annotated[int, described("The store's id: an offer's `pickup_store_id`")]
    code: Annotated[str, described("The vendor's code for the store")]
    name: Annotated[str, described("The store's name")]
    city: Annotated[str, described("The store's city; may be empty")]
    quantity: Annotated[int, described("How many the store holds now")]
    distance_km: Annotated[
        float | None, described("Distance from the customer's shared location in km; null when they shared none")
    ]
    open_now: Annotated[bool, described("Whether the store is open at this moment (its own time zone)")]


class Candidate(Match):
    """A candidate as the workbench shows it, with the customer view it was found through and, as on
    the workbench, the stores near the customer (`stores`, with a shared location) and the stores it
    may be offered for pickup at."""

    customer_view: Annotated[
        MatchedView | None, described("The customer view it matched through; null when it matched a catalog photo")
    ]
    pickup_choices: Annotated[
        list[PickupChoice],
        described(
            "Stores of its vendor holding it, nearest the customer first (by name without a location), "
            f"at most {PICKUP_CHOICES}; empty when none does"
        ),
    ]


class OfferShape(_OfferNearby):
    """An offer made to the customer, with how its price stands against the budget."""

    id: Annotated[int, described("The offer's id, for `.../offers/{offer_id}/accept` or `/withdraw`")]
    product_id: Annotated[int, described("The catalog product offered")]
    title: Annotated[str, described("The product's title")]
    vendor: Annotated[str, described("The vendor selling it")]
    price: Annotated[str, described("The price asked, a decimal as text, in `currency`")]
    currency: Annotated[str, described("The price's currency, ISO 4217")]
    note: Annotated[str, described("The operator's note about this offer; may be empty")]
    status: Annotated[
        str,
        described("`sent` (open), `accepted`, `declined`, `expired`, `withdrawn` or `superseded` (by newer offers)"),
    ]
    expires_at: Annotated[str | None, described(f"When an open offer expires {ISO_UTC}")]
    image_url: Annotated[str, described("The product's photo, relative to the site; empty if none")]
    budget_state: Annotated[
        str | None, described("`within`, `over` or `no_rate` against the budget; null without a budget")
    ]
    converted: Annotated[Converted | None, described("The price in the budget's currency, when that differs")]
    unavailable: Annotated[
        bool, described("True when the vendor says the product is not available: the offer cannot be accepted")
    ]


class MessageShape(TypedDict):
    """One message between the customer and the operators."""

    author: Annotated[str, described("Who wrote it: `customer`, `operator` or `system`")]
    name: Annotated[str, described("The operator's name, for an operator's message; empty otherwise")]
    body: Annotated[str, described("The message, plain text")]
    at: Annotated[str | None, described(f"When it was written {ISO_UTC}")]


class PaymentShape(TypedDict):
    """The latest payment of the request."""

    status: Annotated[
        str,
        described("`authorised` (held), `captured` (charged), `declined`, `voided` (released), `refunded` or `failed`"),
    ]
    amount: Annotated[str, described("The amount, a decimal as text, in `currency`")]
    currency: Annotated[str, described("The amount's currency, ISO 4217")]
    card_last4: Annotated[str, described("The last four digits of the card")]
    test: Annotated[bool, described("True in test mode: no money moved")]
    message: Annotated[str, described("The payment service's words about it (e.g. why a card was declined)")]


class StaffPaymentShape(PaymentShape):
    """One payment attempt, as the staff see it."""

    id: Annotated[int, described("The payment's id")]
    provider: Annotated[str, described("The payment service that handled it (e.g. `test`)")]
    at: Annotated[str | None, described(f"When it was made {ISO_UTC}")]


class Estimate(TypedDict):
    """When an operator is expected to answer, from the queue and recent handling times."""

    minutes_low: Annotated[int, described("The earliest expected reply, in minutes from now")]
    minutes_high: Annotated[int, described("The latest expected reply, in minutes from now")]
    requests_ahead: Annotated[int, described("Open requests ahead of this one in the queue")]
    typical_handling_minutes: Annotated[float, described("Minutes an operator typically takes per request lately")]
    operators_recently_active: Annotated[int, described("Operators who worked on requests recently")]
    based_on_history: Annotated[bool, described("False when there is too little history and a default was used")]


class OrderShape(_OrderNearby):
    """The order made when an offer was accepted and paid."""

    number: Annotated[str, described("The order number, quoted on the receipt and to the vendor")]
    delivery: Annotated[DeliveryAddress, described("Where the order goes")]
    tracking: Annotated[Tracking | None, described("The shipment; null until it ships")]
    paid_at: Annotated[str | None, described(f"When the payment was authorised {ISO_UTC}")]


class _RequestFields(_RequestNearby):
    """What the customer and the staff both see of a request (`workflow.views.customer_view`)."""

    token: Annotated[
        str | None, described("The request's token: the customer's key to it (null when staff cannot derive it)")
    ]
    url: Annotated[str | None, described("The customer's page of the request; null with `token`")]
    status: Annotated[
        str,
        described(
            "The request's state: `queued`, `claimed`, `offers_sent`, `accepted`, `paid`, `fulfilled`, `closed`, ..."
        ),
    ]
    status_label: Annotated[str, described("The state in words, as the customer's page shows it")]
    created_at: Annotated[str | None, described(f"When the request was sent {ISO_UTC}")]
    words: Annotated[str, described("What the customer wrote with the photo; may be empty")]
    budget: Annotated[str | None, described("The customer's budget, a decimal as text; null without one")]
    budget_currency: Annotated[str | None, described("The budget's currency, ISO 4217; null without a budget")]
    order: Annotated[OrderShape | None, described("The order once an offer is accepted and paid; null before")]
    photo_url: Annotated[str, described("The customer's photo, an address relative to the site")]
    estimate: Annotated[
        Estimate | None,
        described("When an operator is expected to answer; null once offers are out (or the request ended)"),
    ]
    operator: Annotated[str | None, described("The name of the operator who handles the request; null before one does")]
    instant_matches: Annotated[list[Match], described("Products found at once for the photo, best first")]
    offers: Annotated[list[OfferShape], described("The offers made, oldest first")]
    messages: Annotated[list[MessageShape], described("The conversation with the operators, oldest first")]
    payment: Annotated[PaymentShape | None, described("The latest payment; null before the customer pays")]


class CustomerRequestView(_RequestFields):
    """A request as its customer sees it (`GET /api/requests/{token}`)."""

    test_mode: Annotated[bool, described("True when payments run in test mode: no money moves")]


class AcceptOutcome(TypedDict):
    """What the accept did with the card."""

    payment_id: Annotated[int, described("The payment's id")]
    status: Annotated[
        str, described("The payment's status: `authorised` (held until the order ships); a replay gives its status now")
    ]
    replayed: Annotated[bool, described("True when this repeats an earlier call with the same Idempotency-Key")]


class AcceptedRequestView(CustomerRequestView):
    """The request after an accept, with what happened to the payment."""

    accept: Annotated[AcceptOutcome, described("The outcome of this accept")]


class AuditShape(TypedDict):
    """One entry of the request's audit trail."""

    at: Annotated[str | None, described(f"When it happened {ISO_UTC}")]
    actor: Annotated[str, described("Who did it: `role:name` for staff (e.g. `operator:ana`), `customer` or `system`")]
    action: Annotated[str, described("What was done, e.g. `request.claimed`, `offers.sent`")]
    detail: Annotated[dict[str, Any], described("The action's particulars (its keys depend on the action)")]


class SearchRound(TypedDict):
    """The outcome of a search again."""

    round: Annotated[int | None, described("The search round its hits became; null when it found nothing")]
    hits: Annotated[int, described("How many products it found (0: the previous candidates stay)")]


class _StaffFields(_RequestFields):
    """What every staff answer about a request has (`workflow.views.operator_view`)."""

    id: Annotated[int, described("The request's number")]
    email: Annotated[str, described("The customer's e-mail address")]
    category: Annotated[str, described("The catalog category the request was filed under; empty when unknown")]
    photo_size: Annotated[str, described("The photo's size in pixels, `WIDTHxHEIGHT`")]
    claimed_by: Annotated[str | None, described("The operator holding the claim; null when unclaimed")]
    claim_expires_at: Annotated[str | None, described(f"When the claim lapses unless renewed {ISO_UTC}")]
    round: Annotated[int, described("The latest search round (0: the instant matches)")]
    last_query: Annotated[dict[str, Any], described("The filters of the latest round's search (words, prices, ...)")]
    candidates: Annotated[list[Candidate], described("The latest round's products, best first")]
    payments: Annotated[list[StaffPaymentShape], described("Every payment attempt, oldest first")]
    audit: Annotated[list[AuditShape], described("The audit trail, oldest first")]
    customer_pick: Annotated[
        dict[str, Any] | None,
        described("The product the customer picked on their page (`product_id`, `title`); null if none"),
    ]
    empty_search: Annotated[
        dict[str, Any] | None, described("The filters of the latest search again if it found nothing; null otherwise")
    ]


class StaffRequestView(_StaffFields, total=False):
    """A request as the workbench shows it; two keys only in the answers to one action each
    (`total=False` marks them optional: `NotRequired` is not seen under `from __future__ import annotations`)."""

    search: Annotated[SearchRound, described("Only in the answer to a search again: what it found")]
    sent_offer_ids: Annotated[list[int], described("Only in the answer to sending offers: the new offers' ids")]


class ListCounts(TypedDict):
    """How many requests each of the operator's lists holds now (`GET /api/staff/requests?view=...`)."""

    queue: Annotated[int, described("Open requests, claimed or not")]
    mine: Annotated[int, described("Live requests the caller holds the claim of or sent the offers of")]
    offers_out: Annotated[
        int, described("Requests whose offers wait for the customer (or an accepted one for its payment)")
    ]
    to_fulfil: Annotated[int, described("Paid requests waiting to be shipped")]
    unavailable: Annotated[int, described("Requests with an open offer its vendor flagged not available")]
    messages: Annotated[int, described("Live requests whose newest message is the customer's")]
    closed: Annotated[int, described("Requests ended in the last 30 days: fulfilled, closed, cancelled or expired")]
