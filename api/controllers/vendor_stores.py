"""A vendor's stores and stock per store: the /vendor/stores pages and `/api/vendor/stores`, `/api/vendor/stock`.

HTTP only: the checks, the CSV readers and the bulk stock writes are `catalog_ingest.stores` and
`catalog_ingest.stock`. A vendor's id always comes from the signed-in account, never from the
client; another vendor's store is 404, exactly like one that does not exist (a store code is the
vendor's own name, so two vendors may both have a "B-01").
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from typing import IO, Annotated, Any

from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import Body, FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Template
from sqlalchemy.orm import sessionmaker

from access.errors import FieldInvalid
from api.auth import vendor_staff_only
from api.bearer import EXCEPTION_HANDLERS, SECURITY, bearer_as
from api.dependencies import Db, SignedIn
from api.openapi_docs import ErrorBody, described, refusals
from api.pages import notice_redirect, page
from catalog.workspace import Workspace
from catalog_ingest import stock as stock_in
from catalog_ingest import stores as stores_in
from catalog_ingest.errors import CatalogError
from workflow.errors import Conflict, Forbidden, NotFound

#: A stock file of a big vendor (a million rows is about 25 MB); it streams to a temporary file.
STOCK_BODY_BYTES = 512 * 2**20
STORES_BODY_BYTES = 32 * 2**20
_FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
_MULTIPART = Body(media_type=RequestEncodingType.MULTI_PART)
FORM_FIELDS = (
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


def _vendor_of(user: Any) -> int:
    if user.vendor_id is None:
        raise Forbidden(
            "This account is not linked to a vendor.", "Ask an admin to link it (vitrine users add --vendor)."
        )
    return int(user.vendor_id)


def _no_store(code: str) -> NotFound:
    return NotFound(f"You have no store with the code {code!r}.", "See your stores on /vendor/stores.")


def _store_json(db: sessionmaker, vendor_id: int, code: str) -> dict[str, Any]:
    with db() as session:
        store = stores_in.store_of(session, vendor_id, code)
        if store is None:
            raise _no_store(code)
        return stores_in.store_json(store)


def _save(db: sessionmaker, vendor_id: int, values: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Check and save; FieldInvalid naming the first wrong field (all of them are in the message)."""
    try:
        fields = stores_in.check_store(values)
    except stores_in.StoreInvalid as exc:
        raise FieldInvalid(exc.field, str(exc), "Correct the field and send it again. Nothing was saved.") from None
    with db() as session:
        store, created = stores_in.save_store(session, vendor_id, fields)
        return stores_in.store_json(store), created


def _stores_page(db: sessionmaker, vendor_id: int, page_number: int, q: str, per_page: int = 50) -> dict[str, Any]:
    with db() as session:
        data = stores_in.stores_page(session, vendor_id, page_number, per_page, q)
        data["rows"] = [
            {**stores_in.store_json(s), "products": data["stocked"][s.id][0], "units": data["stocked"][s.id][1]}
            for s in data["stores"]
        ]
        del data["stores"], data["stocked"]
        return data


def _import_stores(db: sessionmaker, vendor_id: int, source: IO[bytes]) -> dict[str, Any]:
    with db() as session:
        return stores_in.import_stores(session, vendor_id, source).to_json()


def _workspace(request: Request) -> Workspace:
    return request.app.state.settings.workspace


def _import_stock(
    db: sessionmaker, workspace: Workspace, vendor_id: int, source: IO[bytes], mode: str
) -> dict[str, Any]:
    """`StockImportBusy` at once while another import of the vendor's stock runs."""
    with stock_in.one_import_per_vendor(workspace, vendor_id), db() as session:
        return stock_in.import_stock(session, vendor_id, source, mode).to_json()  # type: ignore[arg-type]


def _store_with_stock(db: sessionmaker, vendor_id: int, code: str, page_number: int, q: str) -> dict[str, Any]:
    with db() as session:
        store = stores_in.store_of(session, vendor_id, code)
        if store is None:
            raise _no_store(code)
        return {
            "store": stores_in.store_json(store),
            "stock": stock_in.store_stock_page(session, store.id, page_number, 50, q),
        }


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return str(value[-1] if isinstance(value, list) else (value or "")).strip()


def _truthy(value: Any) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


# --- the pages -------------------------------------------------------------------------------------------------


@dataclass
class FileForm:
    file: UploadFile | None = None
    mode: str = "snapshot"
    confirm_snapshot: str = ""


class VendorStoresPagesController(Controller):
    path = "/vendor/stores"
    guards = (vendor_staff_only,)
    include_in_schema = False

    async def _list(
        self,
        request: Request,
        user: Any,
        db: Any,
        status_code: int = 200,
        page_number: int = 1,
        q: str = "",
        **context: Any,
    ) -> Template:
        vendor_id = _vendor_of(user)
        data = await asyncio.to_thread(_stores_page, db, vendor_id, page_number, q)
        context.setdefault("typed", {"timezone": "UTC"})
        context.setdefault("errors", {})
        context.setdefault("stock_mode", "snapshot")
        return page(request, "vendor_stores.html", status_code=status_code, user=user, listing=data, **context)

    @get("/", name="vendor_stores")
    async def stores(
        self, request: Request, user: SignedIn, db: Db, page: FromQuery[int] = 1, q: FromQuery[str] = ""
    ) -> Template:
        """The vendor's stores (paged, searchable), a form for a new one, and the two file uploads."""
        return await self._list(request, user, db, page_number=page, q=q)

    @post("/", name="vendor_store_save")
    async def save(
        self, request: Request, user: SignedIn, db: Db, data: Annotated[dict[str, Any], _FORM]
    ) -> Template | Redirect:
        """Create or update one store from the form; a refusal shows every wrong field beside it, the
        form keeping what was typed."""
        vendor_id = _vendor_of(user)
        typed = {name: _text(data, name) for name in FORM_FIELDS}
        editing = _text(data, "editing")
        try:
            fields = stores_in.check_store(typed)
        except stores_in.StoreInvalid as exc:
            context = {"typed": typed, "errors": exc.errors, "error_summary": str(exc)}
            if editing:
                shown = await asyncio.to_thread(_store_with_stock, db, vendor_id, editing, 1, "")
                return page(request, "vendor_store.html", status_code=422, user=user, **shown, **context)
            return await self._list(request, user, db, status_code=422, **context)

        def save_now() -> bool:
            with db() as session:
                return stores_in.save_store(session, vendor_id, fields)[1]

        created = await asyncio.to_thread(save_now)
        what = "added" if created else "saved"
        return notice_redirect(request, f"/vendor/stores/{fields.code}", f"Store {fields.code} {what}.")

    @post("/import", name="vendor_stores_import", request_max_body_size=STORES_BODY_BYTES)
    async def import_file(
        self, request: Request, user: SignedIn, db: Db, data: Annotated[FileForm, _MULTIPART]
    ) -> Template:
        """A stores CSV: the good rows applied, the bad ones listed with row and reason."""
        vendor_id = _vendor_of(user)
        if data.file is None or not data.file.filename:
            return await self._list(
                request, user, db, 422, upload_error={"form": "stores", "message": "Choose a CSV file of stores."}
            )
        try:
            result = await asyncio.to_thread(_import_stores, db, vendor_id, data.file.file)
        except CatalogError as exc:
            return await self._list(request, user, db, 422, upload_error={"form": "stores", "message": str(exc)})
        return await self._list(request, user, db, stores_result=result, stores_file=data.file.filename)

    @post("/stock", name="vendor_stock_import", request_max_body_size=STOCK_BODY_BYTES)
    async def stock_file(
        self, request: Request, user: SignedIn, db: Db, data: Annotated[FileForm, _MULTIPART]
    ) -> Template:
        """A stock file (store,sku,quantity). A snapshot deletes the named stores' unlisted rows, so it
        needs the confirmation box; a delta does not."""
        vendor_id = _vendor_of(user)
        mode = data.mode if data.mode in ("snapshot", "delta") else ""

        def refused(field: str, message: str) -> Any:
            error = {"form": "stock", "field": field, "message": message}
            return self._list(request, user, db, 422, upload_error=error, stock_mode=mode or "snapshot")

        if not mode:
            return await refused("mode", "Choose snapshot or delta.")
        if data.file is None or not data.file.filename:
            return await refused("file", "Choose a stock file (CSV with store,sku,quantity).")
        if mode == "snapshot" and not _truthy(data.confirm_snapshot):
            return await refused(
                "confirm_snapshot",
                "A snapshot sets the named stores' stock of every product it does not list to 0: "
                "tick the box to confirm.",
            )
        try:
            result = await asyncio.to_thread(_import_stock, db, _workspace(request), vendor_id, data.file.file, mode)
        except CatalogError as exc:
            return await refused("file", str(exc))
        except stock_in.StockImportBusy as exc:
            error = {"form": "stock", "field": "file", "message": str(exc)}
            return await self._list(request, user, db, 409, upload_error=error, stock_mode=mode)
        return await self._list(request, user, db, stock_result=result, stock_file=data.file.filename, stock_mode=mode)

    @get("/{code:str}", name="vendor_store")
    async def store(
        self,
        request: Request,
        user: SignedIn,
        db: Db,
        code: FromPath[str],
        page: FromQuery[int] = 1,
        q: FromQuery[str] = "",
    ) -> Template:
        """One store: its form (hours shown back formatted) and its stock, paged, by SKU or title."""
        shown = await asyncio.to_thread(_store_with_stock, db, _vendor_of(user), code, page, q)
        typed = {name: "" if shown["store"][name] is None else str(shown["store"][name]) for name in FORM_FIELDS}
        return _store_page(request, user, shown, typed)


def _store_page(request: Request, user: Any, shown: dict[str, Any], typed: dict[str, str]) -> Template:
    return page(request, "vendor_store.html", user=user, typed=typed, errors={}, **shown)


# --- the JSON API ------------------------------------------------------------------------------------------------


@dataclass
class StoreBody:
    """A store as sent to `PUT /api/vendor/stores/{code}` (the code is in the path)."""

    name: Annotated[str, described("The store's name as customers see it")]
    lat: Annotated[float, described("Latitude in degrees, -90 to 90 (WGS 84)")]
    lon: Annotated[float, described("Longitude in degrees, -180 to 180 (WGS 84)")]
    address: Annotated[str, described("Street and number")] = ""
    postcode: Annotated[str, described("The postcode")] = ""
    city: Annotated[str, described("The city or town")] = ""
    country: Annotated[str, described("ISO 3166-1 alpha-2, e.g. `DE`; needed when `phone` is given")] = ""
    opening_hours: Annotated[
        str,
        described(
            "Weekly hours, e.g. `Mo-Fr 09:00-18:00; Sa 10:00-14:00; Su closed`, `24/7`, "
            "`Fr 18:00-02:00` (past midnight), `Mo 09:00-12:00,13:00-18:00`; empty when unknown (never shown open)"
        ),
    ] = ""
    phone: Annotated[str, described("A phone number as dialled in `country`; stored in E.164")] = ""
    timezone: Annotated[str, described("The store's IANA time zone for opening hours, e.g. `Europe/Berlin`")] = "UTC"


@dataclass
class StoreOut:
    """A vendor's store as stored (phone in E.164, hours formatted back)."""

    code: Annotated[str, described("The vendor's own code for the store (what stock files name)")]
    name: Annotated[str, described("The store's name")]
    address: Annotated[str, described("Street and number")]
    postcode: Annotated[str, described("The postcode")]
    city: Annotated[str, described("The city or town")]
    country: Annotated[str, described("ISO 3166-1 alpha-2, or empty")]
    lat: Annotated[float, described("Latitude in degrees")]
    lon: Annotated[float, described("Longitude in degrees")]
    opening_hours: Annotated[str, described("Weekly hours as text, e.g. `Mo-Fr 09:00-18:00; Sa,Su closed`")]
    phone: Annotated[str, described("E.164, or empty")]
    timezone: Annotated[str, described("IANA time zone")]
    active: Annotated[bool, described("Whether the store is shown to customers")]


@dataclass
class StoresPage:
    """One page of the vendor's stores by code."""

    stores: Annotated[list[StoreOut], described("The stores on this page")]
    total: Annotated[int, described("Stores matching `q` in all")]
    page: Annotated[int, described("This page's number, from 1")]
    pages: Annotated[int, described("How many pages there are")]


@dataclass
class StockReject:
    """One row of the stock file not applied."""

    row: Annotated[int, described("The data row (the first row under the header is 1)")]
    line: Annotated[int, described("The line in the file")]
    store: Annotated[str, described("The store code as given")]
    sku: Annotated[str, described("The SKU as given")]
    reason: Annotated[
        str, described("Why: unknown store or SKU, a quantity that is not a whole number >= 0, a duplicate")
    ]


@dataclass
class StockResult:
    """What a stock file did."""

    mode: Annotated[str, described("`snapshot` or `delta`")]
    rows: Annotated[int, described("Data rows read")]
    applied: Annotated[int, described("Rows written")]
    rejected: Annotated[int, described("Rows refused (listed in `rejects`, the first 1,000)")]
    removed: Annotated[
        int, described("Snapshot: rows of the named stores that the file did not list, deleted (quantity 0)")
    ]
    stores: Annotated[int, described("Stores the file named")]
    duration_s: Annotated[float, described("How long it took, in seconds")]
    rows_per_s: Annotated[float, described("Rows per second")]
    rejected_by_reason: Annotated[dict[str, int], described("Rejected rows counted by kind of reason")]
    rejects: Annotated[list[StockReject], described("The rejected rows with row number and reason (first 1,000)")]
    rejects_truncated: Annotated[bool, described("Whether more rows were rejected than `rejects` lists")]


_STOCK_FILE = Schema(
    type=OpenAPIType.OBJECT,
    properties={
        "file": Schema(type=OpenAPIType.STRING, format="binary", description="CSV with the columns store,sku,quantity")  # type: ignore[arg-type]
    },
    required=["file"],
)


@dataclass
class StockBodyOperation(Operation):
    """The stock operation's body: a CSV as the body itself, or a multipart form with `file`."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={
                "text/csv": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, description="CSV: a header `store,sku,quantity`, then rows")
                ),
                "multipart/form-data": OpenAPIMediaType(schema=_STOCK_FILE),
            },
            description="Stock per store: `store` (a store code), `sku`, `quantity` (a whole number >= 0).",
            required=True,
        )


_REFUSED = {
    **refusals(400, 401, 404),
    403: ResponseSpec(ErrorBody, description="Not a vendor token, or the account is not linked to a vendor"),
}


async def _spooled_body(request: Request) -> IO[bytes]:
    """The request body in a temporary file (memory up to 8 MB, then disk), never all in memory."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 2**20)  # noqa: SIM115  (closed by the caller)
    async for chunk in request.stream():
        spool.write(chunk)
    spool.seek(0)
    return spool


class VendorStoresApiController(Controller):
    path = "/api/vendor"
    tags = ("vendor",)
    guards = (bearer_as("vendor"),)
    security = SECURITY
    exception_handlers = EXCEPTION_HANDLERS

    @get("/stores", name="api_vendor_stores", responses=_REFUSED)
    async def list_stores(
        self,
        user: SignedIn,
        db: Db,
        page: Annotated[FromQuery[int], described("The page, from 1 (50 stores a page)")] = 1,
        q: Annotated[FromQuery[str], described("Search in code, name and city")] = "",
    ) -> StoresPage:
        """The vendor's stores by code, 50 a page, with the total."""
        data = await asyncio.to_thread(_stores_page, db, _vendor_of(user), page, q)
        fields = StoreOut.__dataclass_fields__
        stores = [StoreOut(**{k: v for k, v in row.items() if k in fields}) for row in data["rows"]]
        return StoresPage(stores=stores, total=data["total"], page=data["page"], pages=data["pages"])

    @get("/stores/{code:str}", name="api_vendor_store", responses=_REFUSED)
    async def get_store(self, user: SignedIn, db: Db, code: FromPath[str]) -> StoreOut:
        """One of the vendor's stores; another vendor's store is 404."""
        return StoreOut(**await asyncio.to_thread(_store_json, db, _vendor_of(user), code))

    @put(
        "/stores/{code:str}",
        name="api_vendor_store_put",
        status_code=200,
        responses={
            201: ResponseSpec(StoreOut, description="The store was created"),
            **_REFUSED,
            422: ResponseSpec(ErrorBody, description="A field cannot be used; `field` names it, `detail` says why"),
        },
    )
    async def put_store(
        self, user: SignedIn, db: Db, code: FromPath[str], data: JSONBody[StoreBody]
    ) -> Response[StoreOut]:
        """Create (201) or update (200) the vendor's store `code`: position, hours (parsed; a wrong
        rule is 422 naming it), phone (checked for `country`), time zone. Raises the stock version so
        nearby search sees it at once."""
        values = {**data.__dict__, "code": code}
        saved, created = await asyncio.to_thread(_save, db, _vendor_of(user), values)
        return Response(StoreOut(**saved), status_code=201 if created else 200)

    @post(
        "/stock",
        name="api_vendor_stock",
        status_code=200,
        request_max_body_size=STOCK_BODY_BYTES,
        operation_class=StockBodyOperation,
        responses={
            **_REFUSED,
            413: ResponseSpec(ErrorBody, description="The body is over 512 MB: split the file"),
            409: ResponseSpec(ErrorBody, description="Another stock import of the vendor's stores is running"),
            415: ResponseSpec(ErrorBody, description="Neither `text/csv` nor `multipart/form-data` with `file`"),
            422: ResponseSpec(ErrorBody, description="The CSV lacks a column (store, sku, quantity), or a bad `mode`"),
        },
    )
    async def stock(
        self,
        request: Request,
        user: SignedIn,
        db: Db,
        mode: Annotated[
            FromQuery[str],
            described(
                "`snapshot` (default): the file is the whole truth for the stores it names, their unlisted rows are "
                "deleted; `delta`: only the listed rows are set"
            ),
        ] = "snapshot",
    ) -> StockResult:
        """Stock per store (`store,sku,quantity`) as a CSV body or a multipart `file`: good rows
        applied in bulk, bad ones (unknown store or SKU, bad quantity, duplicates) listed with row and
        reason. Fast enough to send every few minutes."""
        vendor_id = _vendor_of(user)
        if mode not in ("snapshot", "delta"):
            raise FieldInvalid("mode", f"The mode must be snapshot or delta, not {mode[:20]!r}.")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            form = await request.form()
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise FieldInvalid("file", "The form has no file `file`.", "Send the CSV as the form's `file`.")
            source: IO[bytes] = upload.file  # type: ignore[assignment]
        elif kind in ("text/csv", "text/plain", "application/csv"):
            source = await _spooled_body(request)
        else:
            raise HTTPException(
                status_code=415,
                detail=f"A stock body is text/csv or multipart/form-data (with `file`), not {kind or 'nothing'!r}.",
            )
        try:
            result = await asyncio.to_thread(_import_stock, db, _workspace(request), vendor_id, source, mode)
        except CatalogError as exc:
            raise FieldInvalid("file", str(exc), "Fix the file's header: store,sku,quantity.") from None
        except stock_in.StockImportBusy as exc:
            raise Conflict(str(exc), "Send it again in a minute; the running import is not changed.") from None
        finally:
            source.close()
        result["rejects"] = [StockReject(**r) for r in result["rejects"]]
        return StockResult(**result)
