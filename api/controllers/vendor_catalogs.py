"""Catalog uploads without a shell: the vendor's /vendor/catalogs page and `POST /api/vendor/catalogs`.

An upload streams to disk (Litestar spools the multipart file; it is then copied, a chunk at a time,
into a private folder of the data folder) and becomes a queued job that the app's runner carries
out in the background (`catalog_ingest.jobs`). The file's header is read at once, so a file of an
unknown format, or one whose columns the chosen mapping does not cover, is answered now rather than
failing later: the API says which columns are missing (422), the page offers a form mapping each
field to one of the file's columns, which can be saved under a name for the next upload.

A vendor's id always comes from the signed-in account, never from the client: another vendor's job
or report is 404, exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, MediaType, Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body, FromPath, MultipartBody
from litestar.response import File, Redirect, Template

from api.auth import vendor_staff_only
from api.bearer import EXCEPTION_HANDLERS, SECURITY, bearer_as
from api.dependencies import Db, SignedIn
from api.openapi_docs import ErrorBody, described, refusals
from api.pages import notice_redirect, page
from catalog.workspace import Workspace
from catalog_ingest import jobs
from catalog_ingest.errors import CatalogError
from catalog_ingest.mapping import OPTIONAL_FIELDS, REQUIRED_FIELDS, ColumnMapping
from workflow.errors import Forbidden, Invalid, NotFound

#: A catalog upload's body: big catalogs (a zip of images) are gigabytes; the body streams to disk.
CATALOG_BODY_BYTES = 4 * 2**30
_STAGED = re.compile(r"^[0-9a-f]{24}$")
_FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
_MAPPED_FIELDS = tuple(f for f in REQUIRED_FIELDS + OPTIONAL_FIELDS if f != "images")


def _vendor_of(user: Any) -> int:
    if user.vendor_id is None:
        raise Forbidden(
            "This account is not linked to a vendor.", "Ask an admin to link it (vitrine users add --vendor)."
        )
    return int(user.vendor_id)


def _workspace(request: Request) -> Workspace:
    return request.app.state.settings.workspace


def _wake(request: Request) -> None:
    runner = getattr(request.app.state, "ingest_jobs", None)
    if runner is not None:
        runner.wake()


def _truthy(value: str | bool | None) -> bool:
    return value is True or str(value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class _Staged:
    """An upload whose columns need mapping before it can be queued (kept beside the file)."""

    path: Path
    vendor_id: int
    file_name: str
    sync: bool
    headers: list[str]
    queued: bool = False  # its form was sent already and the job queued


def _stage(upload: Path, vendor_id: int, file_name: str, sync: bool, headers: list[str]) -> str:
    meta = {"vendor_id": vendor_id, "file_name": file_name, "sync": sync, "headers": headers, "file": upload.name}
    (upload.parent / "staged.json").write_text(json.dumps(meta))
    return upload.parent.name


def _staged(workspace: Workspace, vendor_id: int, token: str, *, queued_too: bool = False) -> _Staged:
    """The vendor's upload `token` waiting on the mapping form; with `queued_too`, also one whose
    form was sent already (a double submit is told so, not sent to a 404)."""
    gone = NotFound("This upload is not waiting for a mapping (any more).", "Upload the file again.")
    if not _STAGED.match(token):
        raise gone
    folder = jobs.uploads_dir(workspace) / token
    for name in ("staged.json", "queued.json") if queued_too else ("staged.json",):
        try:
            meta = json.loads((folder / name).read_text())
        except FileNotFoundError:  # the other name, or renamed meanwhile: looked up in that order
            continue
        if meta["vendor_id"] != vendor_id:
            raise gone
        return _Staged(
            folder / meta["file"],
            vendor_id,
            meta["file_name"],
            bool(meta["sync"]),
            list(meta["headers"]),
            queued=name == "queued.json",
        )
    raise gone


def _claim(staged: _Staged) -> bool:
    """Take the upload off the mapping form for one request only: the rename is atomic, so a double
    submit of the form queues one job, not two ingests of the same file."""
    folder = staged.path.parent
    try:
        (folder / "staged.json").rename(folder / "queued.json")
    except FileNotFoundError:
        return False
    return True


def _unclaim(staged: _Staged) -> None:
    """Put the upload back on the mapping form (queuing it failed), so it is neither lost nor kept forever."""
    folder = staged.path.parent
    (folder / "queued.json").rename(folder / "staged.json")


def _check_and_queue(
    db: Any, workspace: Workspace, vendor_id: int, user_id: int, upload: Path, file_name: str, mapping: str, sync: bool
) -> tuple[int | None, list[str]]:
    """Read the header; queue the job when the mapping covers the required fields: (job id, headers),
    or (None, headers) when the columns need mapping. `CatalogError` for an unreadable file or an
    unknown saved mapping (the upload is removed then)."""
    try:
        headers = jobs.file_headers(upload)
        toml = ""
        if mapping:
            with db() as session:
                toml = jobs.mapping_for(session, vendor_id, mapping).toml
        try:
            (ColumnMapping.parse(toml, mapping) if toml else ColumnMapping()).check_headers(headers)
        except CatalogError:
            if mapping:
                raise
            return None, headers
    except CatalogError as exc:
        jobs.discard_upload(upload)
        raise CatalogError(jobs.public_message(str(exc), upload, file_name)) from None
    job_id = jobs.submit(
        db, vendor_id, upload, file_name, mapping_name=mapping, mapping_text=toml, sync=sync, requested_by=user_id
    )
    return job_id, headers


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _job_json(view: jobs.JobView, report_url: str) -> dict[str, Any]:
    return {
        "id": view.id,
        "status": view.status,
        "file_name": view.file_name,
        "sync": view.sync,
        "mapping": view.mapping_name or None,
        "rows_total": view.rows_total,
        "rows_done": view.rows_done,
        "images_done": view.images_done,
        "accepted": view.accepted,
        "rejected": view.rejected,
        "percent": view.percent,
        "rows_per_s": view.rows_per_s,
        "eta_s": view.eta_s,
        "queued_at": _iso(view.queued_at),
        "started_at": _iso(view.started_at),
        "finished_at": _iso(view.finished_at),
        "error": view.error,
        "report_url": report_url if view.has_report else None,
        "summary": {k: view.summary[k] for k in _SUMMARY_KEYS if k in view.summary},
    }


_SUMMARY_KEYS = ("rows", "accepted", "updated", "unchanged", "removed", "rejected", "images_embedded", "duration_s")


def _job(db: Any, vendor_id: int, job_id: int) -> jobs.JobView:
    try:
        return jobs.job_of(db, vendor_id, job_id)
    except jobs.JobNotFound:
        raise NotFound(f"No upload job {job_id} of yours.", "See your jobs on /vendor/catalogs.") from None


def _report(db: Any, vendor_id: int, job_id: int) -> Path:
    try:
        return jobs.report_of(db, vendor_id, job_id)
    except jobs.JobNotFound:
        raise NotFound(
            f"No reject report for job {job_id} of yours (yet).", "A report exists once the job is done."
        ) from None


def _csv_file(path: Path, job_id: int) -> File:
    return File(path, filename=f"rejects-job-{job_id}.csv", media_type="text/csv; charset=utf-8")


# --- the page ----------------------------------------------------------------------------------------


@dataclass
class UploadForm:
    file: UploadFile | None = None
    mapping: str = ""
    sync: str = ""
    sync_confirmed: str = ""


class VendorCatalogsPagesController(Controller):
    path = "/vendor/catalogs"
    guards = (vendor_staff_only,)
    include_in_schema = False

    async def _page(self, request: Request, user: Any, db: Any, status_code: int = 200, **context: Any) -> Template:
        vendor_id = _vendor_of(user)
        listed, mappings = await asyncio.gather(
            asyncio.to_thread(jobs.jobs_of, db, vendor_id),
            asyncio.to_thread(jobs.saved_mappings, db, vendor_id),
        )
        context.setdefault("error", None)
        context.setdefault("typed", {})
        return page(
            request,
            "vendor_catalogs.html",
            status_code=status_code,
            user=user,
            jobs=listed,
            mappings=mappings,
            max_gb=CATALOG_BODY_BYTES // 2**30,
            **context,
        )

    @get("/", name="vendor_catalogs")
    async def catalogs(self, request: Request, user: SignedIn, db: Db) -> Template:
        """The upload form, the saved mappings and the latest jobs with their live progress."""
        return await self._page(request, user, db)

    @post("/", name="vendor_catalog_upload", request_max_body_size=CATALOG_BODY_BYTES)
    async def upload(
        self,
        request: Request,
        user: SignedIn,
        db: Db,
        data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Template | Redirect:
        vendor_id = _vendor_of(user)
        typed = {"mapping": data.mapping, "sync": _truthy(data.sync)}
        if data.file is None or not data.file.filename:
            return await self._refused(request, user, db, "file", "Choose a catalog file to upload.", typed)
        if typed["sync"] and not _truthy(data.sync_confirmed):
            return await self._refused(
                request,
                user,
                db,
                "sync_confirmed",
                "Removing products missing from the file needs your confirmation: tick the box below it.",
                typed,
            )
        workspace = _workspace(request)
        upload = await asyncio.to_thread(jobs.save_upload, workspace, data.file.file, data.file.filename)
        try:
            job_id, headers = await asyncio.to_thread(
                _check_and_queue,
                db,
                workspace,
                vendor_id,
                user.id,
                upload,
                data.file.filename,
                data.mapping,
                typed["sync"],
            )
        except CatalogError as exc:
            return await self._refused(request, user, db, "file", str(exc), typed)
        if job_id is None:
            token = await asyncio.to_thread(_stage, upload, vendor_id, data.file.filename, typed["sync"], headers)
            return Redirect(f"/vendor/catalogs/map/{token}", status_code=303)
        _wake(request)
        return notice_redirect(request, "/vendor/catalogs", f"Uploaded {data.file.filename}: job {job_id} is queued.")

    async def _refused(self, request: Request, user: Any, db: Any, field: str, message: str, typed: dict) -> Template:
        error = {"status": 422, "field": field, "title": "Please check the upload", "message": message}
        return await self._page(request, user, db, status_code=422, error=error, typed=typed)

    @get("/map/{token:str}", name="vendor_catalog_map")
    async def mapping_form(self, request: Request, user: SignedIn, db: Db, token: FromPath[str]) -> Template:
        """Map each field to one of the file's columns (those named like the field are chosen already)."""
        staged = await asyncio.to_thread(_staged, _workspace(request), _vendor_of(user), token)
        return self._mapping_page(request, user, token, staged, {}, None)

    def _mapping_page(
        self,
        request: Request,
        user: Any,
        token: str,
        staged: _Staged,
        typed: dict[str, str],
        error: dict | None,
        status_code: int = 200,
    ) -> Template:
        lower = {h.lower(): h for h in staged.headers}
        chosen = {f: typed.get(f, lower.get(f, "")) for f in _MAPPED_FIELDS}
        return page(
            request,
            "vendor_catalog_map.html",
            status_code=status_code,
            user=user,
            token=token,
            staged=staged,
            required=REQUIRED_FIELDS,
            fields=_MAPPED_FIELDS,
            chosen=chosen,
            missing=[f for f in REQUIRED_FIELDS if not chosen[f]],
            typed=typed,
            error=error,
        )

    @post("/map/{token:str}", name="vendor_catalog_map_save")
    async def map_and_queue(
        self, request: Request, user: SignedIn, db: Db, token: FromPath[str], data: Annotated[dict[str, Any], _FORM]
    ) -> Template | Redirect:
        vendor_id = _vendor_of(user)
        staged = await asyncio.to_thread(_staged, _workspace(request), vendor_id, token, queued_too=True)
        if staged.queued:
            return notice_redirect(request, "/vendor/catalogs", f"{staged.file_name} is queued already.")

        def text(key: str) -> str:
            value = data.get(key)
            return str(value[-1] if isinstance(value, list) else (value or "")).strip()

        typed = {f: text(f"column_{f}") for f in _MAPPED_FIELDS}
        typed["currency_constant"] = text("currency_constant")
        typed["save_as"] = text("save_as")
        columns = {f: c for f, c in typed.items() if f in _MAPPED_FIELDS and c}
        unknown = [c for c in columns.values() if c not in staged.headers]
        constants = {"currency": typed["currency_constant"].upper()} if typed["currency_constant"] else {}
        toml = jobs.mapping_toml(columns, constants)
        try:
            if unknown:
                raise CatalogError(f"The file has no column {unknown[0]!r}.")
            if constants and not re.fullmatch(r"[A-Z]{3}", constants["currency"]):
                raise CatalogError("A currency is three letters, ISO 4217 (e.g. EUR).")
            ColumnMapping.parse(toml).check_headers(staged.headers)
            if len(typed["save_as"]) > 100:
                raise CatalogError("A mapping's name is 100 characters at most.")
        except CatalogError as exc:
            message = str(exc).replace(" Rename them or pass a column mapping (--mapping FILE).", "")
            error = {"status": 422, "title": "Please check the mapping", "message": message}
            return self._mapping_page(request, user, token, staged, typed, error, status_code=422)
        if not await asyncio.to_thread(_claim, staged):  # the same form sent twice: the first queued it
            return notice_redirect(request, "/vendor/catalogs", f"{staged.file_name} is queued already.")
        try:
            if typed["save_as"]:
                await asyncio.to_thread(jobs.save_mapping, db, vendor_id, typed["save_as"], toml)
            job_id = await asyncio.to_thread(
                jobs.submit,
                db,
                vendor_id,
                staged.path,
                staged.file_name,
                mapping_name=typed["save_as"],
                mapping_text=toml,
                sync=staged.sync,
                requested_by=user.id,
            )
        except Exception:  # not a cancellation: its thread may still queue the job
            await asyncio.to_thread(_unclaim, staged)
            raise
        _wake(request)
        return notice_redirect(request, "/vendor/catalogs", f"Mapped {staged.file_name}: job {job_id} is queued.")

    @get("/jobs/{job_id:int}/progress.json", name="vendor_catalog_job", media_type=MediaType.JSON)
    async def job_status(self, user: SignedIn, db: Db, job_id: FromPath[int]) -> dict[str, Any]:
        """A job's progress for the page's script (the signed-in vendor's own jobs only)."""
        view = await asyncio.to_thread(_job, db, _vendor_of(user), job_id)
        return _job_json(view, f"/vendor/catalogs/jobs/{job_id}/rejects.csv")

    @get("/jobs/{job_id:int}/rejects.csv", name="vendor_catalog_report")
    async def report(self, user: SignedIn, db: Db, job_id: FromPath[int]) -> File:
        path = await asyncio.to_thread(_report, db, _vendor_of(user), job_id)
        return _csv_file(path, job_id)


# --- the JSON API ------------------------------------------------------------------------------------


@dataclass
class CatalogUploadBody:
    """A catalog file and how to read it."""

    file: Annotated[
        UploadFile, described("The catalog: CSV, JSONL or Parquet, or a zip holding one of them with its images")
    ]
    mapping: Annotated[
        str | None, described("The name of a column mapping saved on /vendor/catalogs; omit for Vitrine's own headers")
    ] = None
    sync: Annotated[
        bool, described("`true`: remove the vendor's products that this file no longer lists (like `--sync`)")
    ] = False


@dataclass
class JobQueued:
    """The upload is kept and waits for the runner; poll `status_url` for its progress."""

    job_id: Annotated[int, described("The job's id")]
    status: Annotated[str, described("`queued`")]
    status_url: Annotated[str, described("Where the job's progress is: `GET /api/vendor/jobs/{job_id}`")]


@dataclass
class JobSummary:
    """What a finished job did."""

    rows: Annotated[int | None, described("Rows read from the file")] = None
    accepted: Annotated[int | None, described("New products")] = None
    updated: Annotated[int | None, described("Products that changed")] = None
    unchanged: Annotated[int | None, described("Products as they were")] = None
    removed: Annotated[int | None, described("Products removed because the file no longer lists them (`sync`)")] = None
    rejected: Annotated[int | None, described("Rows refused (see the report)")] = None
    images_embedded: Annotated[int | None, described("Images embedded (unchanged images are reused)")] = None
    duration_s: Annotated[float | None, described("How long the ingest ran, in seconds")] = None


@dataclass
class JobStatus:
    """An upload job: its state, live progress while it runs, and its reject report once done."""

    id: Annotated[int, described("The job's id")]
    status: Annotated[str, described("`queued`, `running`, `done` or `failed`")]
    file_name: Annotated[str, described("The uploaded file's name")]
    sync: Annotated[bool, described("Whether products missing from the file are removed")]
    mapping: Annotated[str | None, described("The saved mapping used, if any")]
    rows_total: Annotated[int | None, described("Rows in the file, once counted (null before the job runs)")]
    rows_done: Annotated[int, described("Rows read so far")]
    images_done: Annotated[int, described("Images embedded so far")]
    accepted: Annotated[int, described("Rows that became (or updated, or kept) products so far")]
    rejected: Annotated[int, described("Rows refused so far (reasons in the report)")]
    percent: Annotated[int | None, described("Rows done of the total, 0-100 (null while the total is unknown)")]
    rows_per_s: Annotated[float | None, described("Rows per second while running (over the whole run once done)")]
    eta_s: Annotated[float | None, described("Seconds left at the current rate (null while unknown)")]
    queued_at: Annotated[str | None, described("When it was uploaded (UTC, ISO 8601)")]
    started_at: Annotated[str | None, described("When its run began (UTC, ISO 8601); null while queued")]
    finished_at: Annotated[str | None, described("When it ended (UTC, ISO 8601); null until then")]
    error: Annotated[str | None, described("Why it failed, for `failed`; otherwise null")]
    report_url: Annotated[str | None, described("The reject report (CSV: row, line, sku, field, reason), once done")]
    summary: Annotated[JobSummary, described("What the job did, once done (empty before)")]


_REFUSED = refusals(400, 401, 403, 404)


class VendorCatalogsApiController(Controller):
    path = "/api/vendor"
    tags = ("vendor",)
    guards = (bearer_as("vendor"),)
    security = SECURITY
    exception_handlers = EXCEPTION_HANDLERS

    @post(
        "/catalogs",
        name="api_vendor_catalog_upload",
        status_code=202,
        request_max_body_size=CATALOG_BODY_BYTES,
        responses={
            **refusals(400, 401, 403, 413),
            422: ResponseSpec(
                ErrorBody,
                description="An unknown format or mapping name, or required columns the mapping does not cover",
            ),
        },
    )
    async def upload(
        self, request: Request, user: SignedIn, db: Db, data: MultipartBody[CatalogUploadBody]
    ) -> JobQueued:
        """Upload a catalog (multipart: `file`, optional `mapping`, `sync`); it is ingested in the
        background, one job of a vendor at a time. The file's header is checked at once: a 422 names
        the missing columns. Rejected rows do not fail the job; they are listed in its report."""
        vendor_id = _vendor_of(user)
        workspace = _workspace(request)
        name = data.file.filename or "catalog"
        upload = await asyncio.to_thread(jobs.save_upload, workspace, data.file.file, name)
        try:
            job_id, _headers = await asyncio.to_thread(
                _check_and_queue, db, workspace, vendor_id, user.id, upload, name, data.mapping or "", data.sync
            )
        except CatalogError as exc:
            raise Invalid(str(exc), "Fix the file or choose a mapping saved on /vendor/catalogs.") from None
        if job_id is None:
            await asyncio.to_thread(jobs.discard_upload, upload)
            try:
                ColumnMapping().check_headers(_headers)
            except CatalogError as exc:
                message = str(exc).replace("pass a column mapping (--mapping FILE)", "name a saved mapping (`mapping`)")
                raise Invalid(message, "Save a mapping on /vendor/catalogs, then pass its name.") from None
        _wake(request)
        return JobQueued(job_id=job_id, status="queued", status_url=f"/api/vendor/jobs/{job_id}")  # type: ignore[arg-type]

    @get("/jobs/{job_id:int}", name="api_vendor_job", responses=_REFUSED)
    async def job(self, user: SignedIn, db: Db, job_id: FromPath[int]) -> JobStatus:
        """An upload job's state and progress: rows and images done, accepted, rejected, rate and ETA;
        once done its summary and `report_url`. Another vendor's job is 404."""
        view = await asyncio.to_thread(_job, db, _vendor_of(user), job_id)
        body = _job_json(view, f"/api/vendor/jobs/{job_id}/report")
        body["summary"] = JobSummary(**body["summary"])
        return JobStatus(**body)

    @get(
        "/jobs/{job_id:int}/report",
        name="api_vendor_job_report",
        media_type="text/csv",
        responses={**_REFUSED},
    )
    async def report(self, user: SignedIn, db: Db, job_id: FromPath[int]) -> File:
        """The job's reject report as CSV (`row,line,sku,field,reason`), once the job is done."""
        path = await asyncio.to_thread(_report, db, _vendor_of(user), job_id)
        return _csv_file(path, job_id)
