"""A vendor's stores in: one from a form or the API, many from a CSV file, each checked field by field.

A store is known by the vendor's own code (unique per vendor), so sending the same code again
updates it: the vendor's back office can send its whole store list every night without creating
duplicates. Every field is checked the same way wherever it comes from, and a refusal names the
field and says why, so a form can show it beside the field and a CSV row can be reported like a
catalog reject (row number and reason) while the good rows are applied.

Each change raises the vendor's stock version (`catalog.db.StockVersion`): nearby search keeps an
in-memory map of stores and stock, and one small query tells it the map is stale.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog.db import StockVersion, Store, StoreStock
from catalog.opening_hours import format_opening_hours, parse_opening_hours, valid_timezone
from catalog.phones import PhoneInvalid, is_region, to_e164
from catalog_ingest.csv_rows import csv_records, text_lines

STORE_COLUMNS: tuple[str, ...] = (
    "code",
    "name",
    "address",
    "postcode",
    "city",
    "country",
    "lat",
    "lon",
    "opening_hours",
    "phone",
    "timezone",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("code", "name", "lat", "lon")
#: The most characters each text field may hold (as the stores table declares them).
MAX_LENGTH = {"code": 64, "name": 200, "postcode": 20, "city": 120, "address": 2000, "opening_hours": 2000}


class StoreInvalid(ValueError):
    """A store that cannot be saved; `errors` maps each wrong field to why, in the vendor's terms."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in errors.items()))

    @property
    def field(self) -> str:
        return next(iter(self.errors))


@dataclass(frozen=True)
class StoreFields:
    """A checked store: coordinates in range, hours parsed, phone in E.164, a real time zone."""

    code: str
    name: str
    lat: float
    lon: float
    address: str = ""
    postcode: str = ""
    city: str = ""
    country: str = ""
    opening_hours: dict = field(default_factory=dict)
    phone: str = ""
    timezone: str = "UTC"


def _text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name)
    return "" if value is None else str(value).strip()


def _coordinate(values: Mapping[str, Any], name: str, limit: float, errors: dict[str, str]) -> float:
    raw = values.get(name)
    what = "latitude" if name == "lat" else "longitude"
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        errors[name] = f"the {what} is required"
        return 0.0
    try:
        number = float(str(raw).strip().replace(",", ".")) if not isinstance(raw, int | float) else float(raw)
    except ValueError:
        errors[name] = f"the {what} {str(raw).strip()!r} is not a number"
        return 0.0
    if not math.isfinite(number) or not -limit <= number <= limit:
        errors[name] = f"the {what} must be between {-limit:g} and {limit:g}, not {number:g}"
        return 0.0
    return number


def check_store(values: Mapping[str, Any]) -> StoreFields:
    """The checked fields of a store from form, JSON or CSV values (strings or numbers);
    StoreInvalid with every wrong field and why. `opening_hours` may be text or the parsed table."""
    errors: dict[str, str] = {}
    text = {name: _text(values, name) for name in ("code", "name", "address", "postcode", "city", "phone")}
    for name in ("code", "name"):
        if not text[name]:
            errors[name] = f"the store's {name} is required"
    if text["code"] and any(ch.isspace() or ch in ",;\"'/\\?#%" for ch in text["code"]):
        errors["code"] = (
            "the code may not contain spaces, commas, semicolons, quotes, slashes, ?, # or % "
            "(stock files and addresses name it)"
        )
    for name, limit in MAX_LENGTH.items():
        if name in text and len(text[name]) > limit:
            errors[name] = f"at most {limit} characters, not {len(text[name])}"
    lat = _coordinate(values, "lat", 90.0, errors)
    lon = _coordinate(values, "lon", 180.0, errors)
    country = _text(values, "country").upper()
    if country and not is_region(country):
        errors["country"] = f"{country!r} is not an ISO 3166 two-letter country code (e.g. DE, FR, GB)"
    timezone = _text(values, "timezone") or "UTC"
    if not valid_timezone(timezone):
        errors["timezone"] = f"{timezone!r} is not an IANA time zone name (e.g. Europe/Berlin)"
    hours_value = values.get("opening_hours")
    hours: dict = {}
    try:
        if isinstance(hours_value, dict):
            hours = parse_opening_hours(format_opening_hours(hours_value))
        else:
            hours_text = _text(values, "opening_hours")
            if len(hours_text) > MAX_LENGTH["opening_hours"]:
                raise ValueError(f"at most {MAX_LENGTH['opening_hours']} characters")
            hours = parse_opening_hours(hours_text)
    except ValueError as exc:
        errors["opening_hours"] = str(exc)
    phone = ""
    if text["phone"]:
        if not country:
            errors.setdefault("phone", "give the store's country so the phone number can be checked")
        elif "country" not in errors:
            try:
                phone = to_e164(text["phone"], country)
            except PhoneInvalid as exc:
                errors["phone"] = str(exc)
    if errors:
        raise StoreInvalid(errors)
    return StoreFields(
        code=text["code"],
        name=text["name"],
        lat=lat,
        lon=lon,
        address=text["address"],
        postcode=text["postcode"],
        city=text["city"],
        country=country,
        opening_hours=hours,
        phone=phone,
        timezone=timezone,
    )


def bump_stock_version(session: Session, vendor_id: int) -> None:
    """Raise the vendor's stock version by one in the caller's transaction (one upsert, no race:
    two writers each add one)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(StockVersion).values(vendor_id=vendor_id, version=1, updated_at=func.now())
    statement = statement.on_conflict_do_update(
        index_elements=[StockVersion.vendor_id],
        set_={"version": StockVersion.version + 1, "updated_at": func.now()},
    )
    session.execute(statement)


def stock_version(session: Session, vendor_id: int) -> int:
    return int(session.scalar(select(StockVersion.version).where(StockVersion.vendor_id == vendor_id)) or 0)


def _apply(session: Session, vendor_id: int, fields: StoreFields) -> tuple[Store, bool]:
    store = session.scalar(select(Store).where(Store.vendor_id == vendor_id, Store.code == fields.code))
    created = store is None
    if store is None:
        store = Store(vendor_id=vendor_id, code=fields.code)
        session.add(store)
    for name, value in asdict(fields).items():
        if name != "code":
            setattr(store, name, value)
    store.active = True
    return store, created


def save_store(session: Session, vendor_id: int, fields: StoreFields) -> tuple[Store, bool]:
    """Create or update the vendor's store `fields.code` and commit: (the store, whether it is new).

    The stock version is raised first: its upsert locks the vendor's version row (PostgreSQL) or
    takes the write lock (SQLite) before the store is looked up, so two writers of the same new code
    run one after the other and the second updates what the first created (both inserting it was a
    unique-key error and a 500)."""
    bump_stock_version(session, vendor_id)
    store, created = _apply(session, vendor_id, fields)
    session.commit()
    return store, created


def store_of(session: Session, vendor_id: int, code: str) -> Store | None:
    """The vendor's store with this code; None for another vendor's (callers answer 404 for both)."""
    return session.scalar(select(Store).where(Store.vendor_id == vendor_id, Store.code == code))


def stores_page(session: Session, vendor_id: int, page: int = 1, per_page: int = 50, q: str = "") -> dict[str, Any]:
    """One page of the vendor's stores by code, with the total and how many products each stocks."""
    query = select(Store).where(Store.vendor_id == vendor_id)
    if q.strip():
        needle = f"%{q.strip().lower()}%"
        query = query.where(
            func.lower(Store.code).like(needle)
            | func.lower(Store.name).like(needle)
            | func.lower(Store.city).like(needle)
        )
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    stores = list(session.scalars(query.order_by(Store.code).offset((page - 1) * per_page).limit(per_page)))
    counts: dict[int, tuple[int, int]] = {}
    if stores:
        rows = session.execute(
            select(StoreStock.store_id, func.count(), func.coalesce(func.sum(StoreStock.quantity), 0))
            .where(StoreStock.store_id.in_([s.id for s in stores]), StoreStock.quantity > 0)
            .group_by(StoreStock.store_id)
        )
        counts = {store_id: (int(n), int(units)) for store_id, n, units in rows}
    return {
        "stores": stores,
        "stocked": {s.id: counts.get(s.id, (0, 0)) for s in stores},
        "total": total,
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "q": q,
    }


def store_json(store: Store) -> dict[str, Any]:
    """A store as the API and the CSV export give it (hours as text, as a vendor writes them)."""
    return {
        "code": store.code,
        "name": store.name,
        "address": store.address,
        "postcode": store.postcode,
        "city": store.city,
        "country": store.country,
        "lat": store.lat,
        "lon": store.lon,
        "opening_hours": format_opening_hours(store.opening_hours or {}),
        "phone": store.phone,
        "timezone": store.timezone,
        "active": store.active,
    }


@dataclass(frozen=True)
class StoreReject:
    """One CSV row that was not applied: its data row number (the first row under the header is 1),
    its line in the file, the store code, the field and why."""

    row: int
    line: int
    code: str
    field: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StoresImport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    rejects: list[StoreReject] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return self.created + self.updated

    @property
    def rejected(self) -> int:
        return len({r.row for r in self.rejects})

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "applied": self.applied,
            "created": self.created,
            "updated": self.updated,
            "rejected": self.rejected,
            "rejects": [r.to_json() for r in self.rejects],
        }


def import_stores(
    session: Session,
    vendor_id: int,
    source: Path | bytes | str | IO[bytes],
    progress: Callable[[int], None] | None = None,
) -> StoresImport:
    """Stores from a CSV (`code,name,address,postcode,city,country,lat,lon,opening_hours,phone,timezone`;
    code, name, lat and lon required): each good row created or updated, each bad one reported with
    its row, field and reason; a code twice in one file is a reject the second time. Commits once.

    Every row is read and checked before the first write, so the database's write lock (the whole
    database on SQLite) is held for the writes only, not while a big file is parsed; the writes then
    begin with the stock version, as in `save_store`."""
    result = StoresImport()
    seen: set[str] = set()
    good: list[StoreFields] = []
    for row, line, values, problem in csv_records(text_lines(source), REQUIRED_COLUMNS, STORE_COLUMNS):
        result.rows = row
        code = values.get("code", "").strip()
        if problem is not None:
            result.rejects.append(StoreReject(row, line, code, "", problem.reason))
            continue
        try:
            fields = check_store(values)
        except StoreInvalid as exc:
            result.rejects.extend(StoreReject(row, line, code, name, reason) for name, reason in exc.errors.items())
            continue
        if fields.code in seen:
            result.rejects.append(StoreReject(row, line, code, "code", "the same store code is on an earlier row"))
            continue
        seen.add(fields.code)
        good.append(fields)
        if progress is not None:
            progress(row)
    if good:
        bump_stock_version(session, vendor_id)
    for fields in good:
        _, created = _apply(session, vendor_id, fields)
        if created:
            result.created += 1
        else:
            result.updated += 1
    session.commit()  # one transaction: a file is applied whole (its good rows) or, on a crash, not at all
    return result
