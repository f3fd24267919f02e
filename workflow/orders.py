"""Orders: what a paid offer becomes, and where it goes.

The customer's delivery choice is checked here (`check_delivery`), before any money moves, and kept
in an `orders` row written in the same transaction as the payment's intent (`offers_service.accept_offer`,
step 1 of `workflow.payment_saga`): a crash between the card hold and completion never loses the
address, and reconciliation completes the order with it. The row only becomes an order when its
payment completes: `number_order` gives it its number (V-YYYY-NNNNNN) in the transaction that marks
the request paid. Failed or voided payments leave rows without a number, which nobody lists.

Delivery is shipping to an address or pickup at a store (`kind`, `store_id`): pickup only for an
offer the operator made collectable at a store (`workflow.pickups`), and only at that store.
Fulfilment records the carrier and tracking number (`mark_shipped`, in the capture's transaction).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pycountry
from sqlalchemy import DateTime, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from catalog.db import Base
from catalog.phones import PhoneInvalid, to_e164
from workflow.errors import Invalid
from workflow.models import CustomerRequest, Offer, Payment, now, utc

if TYPE_CHECKING:
    from workflow.pickups import PickupStore

KINDS = ("ship", "pickup")
LIMITS = {"name": 200, "line1": 200, "line2": 200, "city": 120, "postcode": 20, "carrier": 80, "tracking": 80}


class DeliveryInvalid(Invalid):
    """A delivery field that cannot be used; `field` names it (`delivery.postcode`) for the JSON API."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, "Correct the delivery details and accept again. Nothing was charged.")
        self.field = field


class Order(Base):
    """One accept's delivery, its order number once paid, and its shipment once fulfilled."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True, nullable=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    vendor_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(10))  # ship | pickup
    store_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # pickup, once stores exist
    name: Mapped[str] = mapped_column(String(200), default="")
    line1: Mapped[str] = mapped_column(String(200), default="")
    line2: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(120), default="")
    postcode: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(2), default="")  # ISO 3166-1 alpha-2
    phone: Mapped[str] = mapped_column(String(20), default="")  # E.164
    carrier: Mapped[str] = mapped_column(String(80), default="")
    tracking: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class Delivery:
    """A checked delivery choice (build it with `check_delivery`)."""

    kind: str
    name: str
    line1: str
    line2: str
    city: str
    postcode: str
    country: str
    phone: str
    store_id: int | None = None


def countries() -> list[tuple[str, str]]:
    """(alpha-2 code, name) of every ISO 3166 country, by name: the delivery form's choices."""
    return sorted(((c.alpha_2, c.name) for c in pycountry.countries), key=lambda pair: pair[1])


def country_name(code: str) -> str:
    found = pycountry.countries.get(alpha_2=code) if code else None
    return found.name if found else code


def check_delivery(fields: dict[str, object] | None, pickup: PickupStore | None = None) -> Delivery:
    """The delivery choice from what the customer sent (`kind`, `name`, `line1`, `line2`, `city`,
    `postcode`, `country`, `phone`), or `DeliveryInvalid` naming the first field to fix. `pickup` is
    the offer's pickup store (`workflow.pickups.pickup_of`): `kind` "pickup" is refused without one."""
    if not isinstance(fields, dict) or not fields:
        raise DeliveryInvalid("delivery", "Please give a delivery address (name, street, city, postcode, country).")
    text = {key: str(value if value is not None else "").strip() for key, value in fields.items()}
    kind = text.get("kind") or "ship"
    if kind == "pickup":
        return _check_pickup(text, pickup)
    if kind not in KINDS:
        raise DeliveryInvalid("delivery.kind", "The delivery must be `ship` (to an address) or `pickup` (at a store).")
    for key, label in (("name", "name"), ("line1", "street address"), ("city", "city"), ("postcode", "postcode")):
        if not text.get(key):
            raise DeliveryInvalid(f"delivery.{key}", f"Please give the {label} to deliver to.")
    for key, limit in LIMITS.items():
        if len(text.get(key, "")) > limit:
            raise DeliveryInvalid(f"delivery.{key}", f"The {key} is too long (at most {limit} characters).")
    country = text.get("country", "").upper()
    if len(country) != 2 or pycountry.countries.get(alpha_2=country) is None:
        raise DeliveryInvalid("delivery.country", "Please choose the country (a two-letter ISO code such as DE or IN).")
    return Delivery(
        kind="ship",
        name=text["name"],
        line1=text["line1"],
        line2=text.get("line2", ""),
        city=text["city"],
        postcode=text["postcode"].upper() if country in ("GB", "NL", "CA") else text["postcode"],
        country=country,
        phone=check_phone(text.get("phone", ""), country),
    )


def _check_pickup(text: dict[str, str], pickup: PickupStore | None) -> Delivery:
    """Collecting at the offer's store: no address, but a name (to hand it over) and a phone."""
    if pickup is None:
        raise DeliveryInvalid(
            "delivery.kind", "This offer cannot be picked up at a store: please give an address to ship to."
        )
    if not text.get("name"):
        raise DeliveryInvalid("delivery.name", "Please give the name of who collects the order.")
    if len(text["name"]) > LIMITS["name"]:
        raise DeliveryInvalid("delivery.name", f"The name is too long (at most {LIMITS['name']} characters).")
    country = pickup.country or text.get("country", "").upper()
    return Delivery(
        kind="pickup",
        name=text["name"],
        line1="",
        line2="",
        city=pickup.city,
        postcode=pickup.postcode,
        country=country,
        phone=check_phone(text.get("phone", ""), country),
        store_id=pickup.id,
    )


def check_phone(raw: str, country: str) -> str:
    """`raw` as dialled in `country`, in E.164, for the carrier to call; `DeliveryInvalid` saying why not."""
    if not raw:
        raise DeliveryInvalid("delivery.phone", "Please give a phone number for the carrier.")
    try:
        return to_e164(raw, country)
    except PhoneInvalid as exc:
        raise DeliveryInvalid("delivery.phone", str(exc)) from None


def record_intent(session: Session, payment: Payment, offer: Offer, delivery: Delivery) -> Order:
    """The delivery kept with the payment's intent (same transaction, no number yet)."""
    if delivery.kind == "pickup":  # only at the offer's own pickup store, whatever the client sent
        from workflow.pickups import require_offer_store

        require_offer_store(session, offer.id, delivery.store_id)
    fields = asdict(delivery)
    order = Order(request_id=payment.request_id, offer_id=offer.id, vendor_id=offer.vendor_id, **fields)
    order.payment_id = payment.id
    session.add(order)
    return order


def order_number(order_id: int, moment: datetime) -> str:
    """Human-friendly and unique: the year paid and the row's id (`V-2026-000123`)."""
    return f"V-{moment.year}-{order_id:06d}"


def number_order(session: Session, payment_id: int) -> Order | None:
    """Give the payment's order its number (in the transaction that marks the request paid)."""
    order = session.scalar(select(Order).where(Order.payment_id == payment_id))
    if order is not None and order.number is None:
        moment = now()
        order.number, order.paid_at = order_number(order.id, moment), moment
    return order


def order_of(session: Session, request_id: int) -> Order | None:
    """The request's order (the one with a number), if it has been paid."""
    return session.scalar(
        select(Order)
        .where(Order.request_id == request_id, Order.number.is_not(None))
        .order_by(Order.id.desc())
        .limit(1)
    )


def check_shipment(carrier: str, tracking: str, *, pickup: bool = False) -> tuple[str, str]:
    """Carrier and tracking number as typed, both required for a shipped order (a pickup needs neither)."""
    carrier, tracking = (carrier or "").strip(), (tracking or "").strip()
    if pickup and not (carrier or tracking):
        return "", ""
    if not carrier:
        raise Invalid("Please give the carrier (e.g. DHL) to fulfil the order.", "Nothing was charged or changed.")
    if not tracking:
        raise Invalid("Please give the tracking number to fulfil the order.", "Nothing was charged or changed.")
    if len(carrier) > LIMITS["carrier"] or len(tracking) > LIMITS["tracking"]:
        raise Invalid("The carrier or tracking number is too long (at most 80 characters).")
    return carrier, tracking


def mark_shipped(session: Session, request_id: int, carrier: str, tracking: str) -> Order | None:
    order = order_of(session, request_id)
    if order is not None:
        order.carrier, order.tracking, order.shipped_at = carrier, tracking, now()
    return order


def order_dict(order: Order | None) -> dict | None:
    """The order as the customer, the staff and the vendor see it (pages, JSON, e-mail)."""
    if order is None:
        return None
    shipped = utc(order.shipped_at)
    return {
        "number": order.number,
        "delivery": {
            "kind": order.kind,
            "name": order.name,
            "line1": order.line1,
            "line2": order.line2,
            "city": order.city,
            "postcode": order.postcode,
            "country": order.country,
            "country_name": country_name(order.country),
            "phone": order.phone,
        },
        "tracking": (
            {"carrier": order.carrier, "number": order.tracking, "shipped_at": shipped.isoformat(timespec="seconds")}
            if order.tracking and shipped
            else None
        ),
        "paid_at": utc(order.paid_at).isoformat(timespec="seconds") if order.paid_at else None,
    }


def receipt(session: Session, request: CustomerRequest) -> dict | None:
    """What the receipt page and e-mail show: the order, its product, price and payment."""
    order = order_of(session, request.id)
    if order is None:
        return None
    offer = session.get(Offer, order.offer_id)
    payment = session.get(Payment, order.payment_id)
    return {
        **order_dict(order),
        "store": pickup_store_json(session, order),
        "title": offer.title,
        "vendor": offer.vendor,
        "price": str(payment.amount),
        "currency": payment.currency,
        "card_last4": payment.card_last4,
        "payment_status": payment.status,
        "test": payment.test,
    }


def pickup_store_json(session: Session, order: Order) -> dict | None:
    """Where a pickup order is collected (address and opening hours); None for shipping."""
    if order.kind != "pickup":
        return None
    from workflow.pickups import store_by_id

    store = store_by_id(session, order.store_id)
    return store.to_json() if store else None
