"""The bodies the pages post, as typed forms: Litestar decodes and checks them before a handler runs.

Every form also carries `_csrf_token`, which the CSRF middleware checks and the forms ignore.
Fields are text because people type them: the workflow reads each one and says what is wrong
(a price in words, a crop outside the photo) in the customer's or operator's terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body

from vision.errors import ImageTooLarge
from workflow.errors import Invalid
from workflow.offers_service import OfferDraft

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
UPLOAD = Body(media_type=RequestEncodingType.MULTI_PART)


@dataclass
class SignInForm:
    name: str = ""
    password: str = ""
    code: str = ""  # the TOTP code, for accounts with two-factor sign-in
    next: str | None = None


@dataclass
class RequestForm:
    """The customer's upload form: one photo input (phones offer the camera and the gallery from it;
    two inputs let a forgotten gallery photo silently win over a fresh camera shot), e-mail, words, budget."""

    email: str = ""
    words: str = ""
    budget: str = ""
    budget_currency: str = ""
    photo: UploadFile | None = None
    # Where the customer is, only if they chose to say (`workflow.locations`): a typed postcode or
    # city, or the browser's position after they pressed "Use my location".
    place: str = ""
    lat: str = ""
    lon: str = ""

    def chosen_photo(self) -> UploadFile | None:
        return self.photo


@dataclass
class AcceptForm:
    """Accepting an offer: the card and the delivery address (`workflow.orders.check_delivery` checks it)."""

    card_number: str = ""
    idempotency_key: str = ""
    kind: str = "ship"
    name: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    postcode: str = ""
    country: str = ""
    phone: str = ""

    def delivery(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("kind", "name", "line1", "line2", "city", "postcode", "country", "phone")}


@dataclass
class MessageForm:
    body: str = ""
    something_else: str = ""


@dataclass
class ReasonForm:
    reason: str = ""


@dataclass
class ConfirmForm:
    """A destructive action's form: `confirm` must be ticked (no script needed to ask)."""

    confirm: str = ""


@dataclass
class FindRequestsForm:
    """The "find my requests" form: the address the requests were made with."""

    email: str = ""


@dataclass
class PickForm:
    """The customer's "this is the one" on an instant match."""

    product_id: str = ""


@dataclass
class FulfilForm:
    """Fulfilling a paid order: the shipment's carrier and tracking number, and the ticked confirmation."""

    confirm: str = ""
    carrier: str = ""
    tracking: str = ""


@dataclass
class ConfirmedReasonForm:
    """Cancelling as staff: the reason the customer is told, and the ticked confirmation."""

    reason: str = ""
    confirm: str = ""


def require_confirmation(confirm: str, what: str) -> None:
    """Refuse a destructive action whose confirmation box was not ticked (422, nothing changes)."""
    if confirm != "yes":
        raise Invalid(f"Tick the box to confirm that you want to {what}.", "Nothing was changed.")


@dataclass
class RefineForm:
    """The workbench's search form: crop fractions, words, price range, category, vendor, stock."""

    crop_x: str = ""
    crop_y: str = ""
    crop_w: str = ""
    crop_h: str = ""
    words: str = ""
    use_photo: str = "1"
    min_price: str = ""
    max_price: str = ""
    category: str = ""
    vendor: str = ""
    in_stock: str = ""


SignIn = Annotated[SignInForm, FORM]
NewRequest = Annotated[RequestForm, UPLOAD]
Accept = Annotated[AcceptForm, FORM]
NewMessage = Annotated[MessageForm, FORM]
Reason = Annotated[ReasonForm, FORM]
Refine = Annotated[RefineForm, FORM]
Confirm = Annotated[ConfirmForm, FORM]
Fulfil = Annotated[FulfilForm, FORM]
ConfirmedReason = Annotated[ConfirmedReasonForm, FORM]
Pick = Annotated[PickForm, FORM]
FindRequests = Annotated[FindRequestsForm, FORM]
#: The offers form names its fields after the picked products (`price_<id>`, `note_<id>`).
OffersForm = Annotated[dict[str, Any], FORM]


def offer_drafts(form: dict[str, Any]) -> list[OfferDraft]:
    """The ticked products of the offers form, each with its price and note as typed."""
    picked = form.get("product_id") or []
    drafts = []
    for value in [picked] if isinstance(picked, str) else picked:
        if not value:
            continue
        try:
            product = int(value)
        except ValueError:
            raise Invalid("A picked product is not valid; reload the page.") from None
        drafts.append(OfferDraft(product, _text(form.get(f"price_{product}")), _text(form.get(f"note_{product}"))))
    return drafts


def typed_offers(form: dict[str, Any]) -> dict[str, Any]:
    """What the offers form carried, to fill it again after a refusal: the ticked product ids (as
    text), each `price_<id>` / `note_<id>` and the expiry, as typed (a repeated field: its last value)."""
    picked = form.get("product_id") or []
    typed: dict[str, Any] = {"picked": [picked] if isinstance(picked, str) else [str(p) for p in picked]}
    for key, value in form.items():
        if key.startswith(("price_", "note_", "pickup_")) or key == "expires_in_hours":
            typed[key] = value[-1] if isinstance(value, list) and value else value
    return typed


def offer_hours(form: dict[str, Any], default: float) -> float:
    text = _text(form.get("expires_in_hours"))
    try:
        return float(text) if text else default
    except ValueError:
        raise Invalid("The expiry must be a number of hours.") from None


def _text(value: Any) -> str:
    if isinstance(value, list):
        raise Invalid("A field of the form was sent twice; reload the page and send it again.")
    return value or ""


async def upload_bytes(upload: UploadFile | None, limit: int) -> bytes:
    """The uploaded photo's bytes, refused early when missing, empty or over `limit`."""
    if upload is None:
        raise Invalid("Please choose a photo of the product, or take one (no file was sent).")
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(f"The file is too large; the limit is {limit / 1e6:.0f} MB. Please send a smaller photo.")
    if not data and not upload.filename:
        raise Invalid("Please choose a photo of the product, or take one (no file was sent).")
    if not data:
        raise Invalid("The photo file is empty (0 bytes); please choose the photo again.")
    return data
