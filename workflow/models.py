"""The tables of the web app, on the catalog's declarative Base so one database holds everything.

Portable SQL only. Money is Numeric(14, 2). Times are stored in UTC; SQLite hands them back
naive, so readers go through `utc()`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

import mail.models  # noqa: F401  (the outbox's tables join the same metadata)
from catalog.db import Base


def now() -> datetime:
    return datetime.now(UTC)


def utc(moment: datetime | None) -> datetime | None:
    """Aware UTC datetime from what the database returned (SQLite drops the zone)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # operator | admin | vendor
    password_hash: Mapped[str] = mapped_column(String(200))
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    # TOTP two-factor (workflow/totp.py): the base32 secret once enrolled, and the last time step
    # accepted, so the same code is never accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class CustomerRequest(Base):
    """One customer's photo and wishes; the token is the customer's only key to it, and only its hash
    (and the salt it is derived from, `workflow.request_tokens`) is kept."""

    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_salt: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    email: Mapped[str] = mapped_column(String(254))
    words: Mapped[str] = mapped_column(Text, default="")
    budget: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), nullable=True)
    budget_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)  # None: before currencies
    photo_sha256: Mapped[str] = mapped_column(String(64))
    photo_width: Mapped[int] = mapped_column(Integer)
    photo_height: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The claim: a lock with an expiry. Abandoned work (expiry passed) is open again.
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)  # who sent offers
    accepted_offer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    claimed_by: Mapped[User | None] = relationship(foreign_keys=[claimed_by_id])
    operator: Mapped[User | None] = relationship(foreign_keys=[operator_id])
    candidates: Mapped[list[Candidate]] = relationship(
        back_populates="request", order_by="(Candidate.round.desc(), Candidate.rank)", cascade="all, delete-orphan"
    )
    offers: Mapped[list[Offer]] = relationship(back_populates="request", order_by="Offer.id")
    messages: Mapped[list[Message]] = relationship(back_populates="request", order_by="Message.id")


class Candidate(Base):
    """A ranked search hit stored with the request; round 0 is the instant search at submission."""

    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer, default=0)
    rank: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[int] = mapped_column(BigInteger)
    image_id: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[float] = mapped_column(Float)
    query: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # how this round searched

    request: Mapped[CustomerRequest] = relationship(back_populates="candidates")


class Offer(Base):
    """A priced proposal; product facts are copied so a later catalog change does not alter it."""

    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    product_id: Mapped[int] = mapped_column(BigInteger)
    vendor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    vendor: Mapped[str] = mapped_column(String(200))
    image_sha256: Mapped[str] = mapped_column(String(64), default="")
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="sent")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    request: Mapped[CustomerRequest] = relationship(back_populates="offers")


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    author: Mapped[str] = mapped_column(String(20))  # customer | operator | system
    author_name: Mapped[str] = mapped_column(String(100), default="")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)

    request: Mapped[CustomerRequest] = relationship(back_populates="messages")


class Payment(Base):
    """One authorisation attempt. `live_request_id` equals `request_id` while the money is held or
    taken and NULL otherwise: its unique constraint lets the database itself refuse a second live
    payment for one request (NULLs never collide, in SQLite and PostgreSQL alike).

    The row is the saga's record (`workflow.payment_saga`): written `pending` before the provider is
    called, with the provider's reference and outcome after. `request_digest` is a keyed hash of what
    the accept asked for (offer and card), so a replayed idempotency key with another body is refused;
    `attempts` counts failed voids, which reconciliation retries."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("live_request_id", name="uq_payment_one_live_per_request"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id"))
    live_request_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    request_digest: Mapped[str] = mapped_column(String(64), default="", server_default="")
    provider: Mapped[str] = mapped_column(String(40))
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    provider_ref: Mapped[str] = mapped_column(String(200), default="")
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    # pending|authorised|declined|failed|captured|capture_failed|voided|void_failed|refunded
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60))
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, index=True)


class StaffSession(Base):
    """A signed-in staff member's session. The cookie holds a random token; only its sha256 is stored,
    a new one is made at every sign-in (no fixation) and signing out deletes it (revocation)."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConfirmedPair(Base):
    """A person's word that a customer photo shows a product (or, `rejected`, that it does not).

    `offered`: an operator sent an offer for it; `accepted`: the customer accepted that offer (the
    stronger label); `rejected`: the operator said none of the shown candidates match. Each label is
    its own row, so an accepted pair keeps its `offered` row (who offered it, when) beside the
    `accepted` one; the unique key makes re-sending or re-importing the same pair add nothing.
    Vendor and sku are copied, so a pair outlives its product's removal from the catalog.
    """

    __tablename__ = "confirmed_pairs"
    __table_args__ = (UniqueConstraint("photo_sha256", "product_id", "label", name="uq_confirmed_pair"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), nullable=True, index=True)
    photo_sha256: Mapped[str] = mapped_column(String(64))
    crop: Mapped[list | None] = mapped_column(JSON, nullable=True)  # x, y, w, h fractions, as searched
    product_id: Mapped[int] = mapped_column(BigInteger, index=True)
    vendor: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(10))  # offered | accepted | rejected
    source: Mapped[str] = mapped_column(String(10))  # offer | import
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id"), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class CustomerView(Base):
    """A confirmed customer photo kept as one more vector of its product (`catalog.ids.view_image_id`).

    `image_id` is the vector id while this view holds its slot; when a newer view takes the slot over
    (see `workflow.customer_views`), the row stays as history with `image_id` NULL, so a view an
    operator removed is never added again. No foreign key to products: a product removed from the
    catalog must not be held back by its views (search drops hits of products no longer listed).
    """

    __tablename__ = "customer_views"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column(BigInteger, index=True)
    slot: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[int | None] = mapped_column(BigInteger, unique=True, nullable=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("confirmed_pairs.id"), index=True)
    photo_sha256: Mapped[str] = mapped_column(String(64))
    crop: Mapped[list | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


# Tables that live with their logic, imported here so they join the same metadata: orders (delivery,
# tracking) and exchange rates (workflow/orders.py, workflow/rates.py), the sign-in lockout
# (workflow/sign_in_throttle.py).
from workflow import fulfilment as _fulfilment  # noqa: E402, F401  (an order's fulfilment steps, issue 15)
from workflow import locations as _locations  # noqa: E402, F401  (a request's shared location, issue 15)
from workflow import offer_flags as _offer_flags  # noqa: E402, F401  (a vendor's "not available", issue 15)
from workflow import orders as _orders  # noqa: E402, F401
from workflow import pickups as _pickups  # noqa: E402, F401  (an offer's pickup store, issue 15)
from workflow import rates as _rates  # noqa: E402, F401
from workflow import sign_in_throttle as _sign_in_throttle  # noqa: E402, F401
