"""Where a customer is, by their consent only: the place they typed (a postcode or a city, geocoded
offline by `catalog.geocoding`) or the browser's position after they pressed "Use my location".

Kept in its own table (one row per request, replaced when the customer changes it) so a request
without a location is simply a request without a row, and nothing else in the request changes.
The label is what the customer sees back ("10115 Berlin", "your device's location"); the position
is what nearby search measures from. Coordinates are rounded to about 100 m: enough to rank stores,
not a customer's front door."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from catalog.db import Base
from workflow.errors import Invalid
from workflow.models import CustomerRequest, now

SOURCES = ("typed", "device", "api")
PRECISION = 3  # decimal places kept: about 110 m of latitude
MAX_LABEL = 200


class RequestLocation(Base):
    """The customer's shared location for one request (absent: they shared none)."""

    __tablename__ = "request_locations"

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(MAX_LABEL), default="")
    source: Mapped[str] = mapped_column(String(10))  # typed | device | api
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now, onupdate=now)


class LocationInvalid(Invalid):
    """A location that cannot be used; `field` names what to correct (`near`, `place`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, "Type a postcode or a city, or press “Use my location”. Nothing else changed.")
        self.field = field


@dataclass(frozen=True)
class SharedLocation:
    """A checked position with what to show for it."""

    lat: float
    lon: float
    label: str
    source: str

    def to_json(self) -> dict:
        return {"lat": self.lat, "lon": self.lon, "label": self.label, "source": self.source}


def _checked(lat: float, lon: float, label: str, source: str, field: str) -> SharedLocation:
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0) or lat != lat or lon != lon:
        raise LocationInvalid(field, "A location needs a latitude from -90 to 90 and a longitude from -180 to 180.")
    if source not in SOURCES:
        raise LocationInvalid(field, f"The location's source must be one of {', '.join(SOURCES)}.")
    return SharedLocation(round(lat, PRECISION), round(lon, PRECISION), label.strip()[:MAX_LABEL], source)


def from_place(text: str, country: str | None = None, *, source: str = "typed") -> SharedLocation:
    """A postcode or a city as typed, geocoded offline (`catalog.geocoding.locate`); an unknown
    place is a `LocationInvalid` saying so."""
    from catalog import geocoding

    field = "location" if source == "api" else "place"  # the name the caller sent it under
    text = (text or "").strip()
    if not text:
        raise LocationInvalid(field, "Type a postcode or a city to see stores near you.")
    if len(text) > 120:
        raise LocationInvalid(field, "The place is too long: type a postcode or a city (at most 120 characters).")
    try:
        found = geocoding.locate(text, country)
    except ValueError as exc:  # geocoding's typed errors are ValueErrors
        raise LocationInvalid(field, f"We could not find that place: {exc}.") from None
    return _checked(found.lat, found.lon, getattr(found, "label", "") or text, source, field)


def from_coordinates(lat: str | float, lon: str | float, *, source: str = "device", label: str = "") -> SharedLocation:
    """A position sent as two numbers (the browser's geolocation, or the API's `location`)."""
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError):
        raise LocationInvalid("near", "The location must be two numbers: latitude and longitude.") from None
    return _checked(lat_f, lon_f, label or "your device's location", source, "near")


def from_near(text: str, *, source: str = "api") -> SharedLocation:
    """`"lat,lon"` as the JSON API takes it (same grammar as `POST /api/search`'s `near`)."""
    parts = (text or "").split(",")
    if len(parts) != 2:
        raise LocationInvalid("near", '`near` must be "lat,lon", e.g. "52.52,13.40".')
    return from_coordinates(parts[0].strip(), parts[1].strip(), source=source, label="the position you sent")


def save(session: Session, request: CustomerRequest, location: SharedLocation | None) -> None:
    """Keep (or, with None, forget) the request's location, in the caller's transaction."""
    row = session.get(RequestLocation, request.id)
    if location is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        row = RequestLocation(request_id=request.id, source=location.source)
        session.add(row)
    row.lat, row.lon, row.label, row.source = location.lat, location.lon, location.label, location.source
    row.updated_at = now()


def set_for_token(db: sessionmaker, token: str, location: SharedLocation | None) -> None:
    """The customer shares (or withdraws) a location on their request page."""
    from workflow.requests_service import load_by_token

    with db() as session:
        save(session, load_by_token(session, token), location)
        session.commit()


def location_of(session: Session, request_id: int) -> SharedLocation | None:
    row = session.scalar(select(RequestLocation).where(RequestLocation.request_id == request_id))
    return SharedLocation(row.lat, row.lon, row.label, row.source) if row else None


def from_form(place: str, lat: str, lon: str) -> SharedLocation | None:
    """What a page's location fields carry: the browser's position when the customer pressed "Use my
    location" (it wins: they asked for it last), else a typed place, else nothing shared."""
    if (lat or "").strip() or (lon or "").strip():
        return from_coordinates(lat, lon, source="device")
    if (place or "").strip():
        return from_place(place)
    return None
