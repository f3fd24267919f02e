"""Vendor accounts over HTTP: applying as a vendor (the form and `POST /api/applications/vendor`),
the admin's approve / decline of vendor applications, and the vendor's own team page (colleagues,
invitations, API keys). The rules live in `access/` (vendor_applications, vendor_team,
vendor_keys); these handlers only read forms, call them and pick the page or redirect."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.response import Redirect, Template

from access import vendor_applications, vendor_keys, vendor_team
from access.errors import FieldInvalid
from access.vendor_applications import VendorApplicationForm
from api.auth import admin_only, vendor_staff_only
from api.bearer import EXCEPTION_HANDLERS, SECURITY, bearer_as, bearer_token
from api.controllers.applications import _countries
from api.controllers.waitlist import ApiError
from api.dependencies import Db, Mail, SignedIn, Viewer
from api.forms import FORM, Reason, require_confirmation
from api.hosts import public_base
from api.openapi_docs import ErrorBody, described
from api.pages import notice_redirect, page
from workflow.errors import Forbidden, Invalid
from workflow.models import User, utc


@dataclass
class VendorApplicationBody:
    """An application to supply products as a vendor. `phone` as dialled in `country` (ISO 3166
    alpha-2); `website` an http(s) address."""

    company: Annotated[str, described("The company's name; an approved application creates the vendor by it")]
    contact_name: Annotated[str, described("The person Vitrine writes to, who becomes the vendor's first user")]
    email: Annotated[str, described("Where the receipt, the review's outcome and the set-password link go")]
    phone: Annotated[str, described("A phone number as dialled in `country`, or in international form (+...)")]
    country: Annotated[str, described("The country the company trades from, ISO 3166 alpha-2 (e.g. `DE`)")]
    website: Annotated[str, described("The company's website, an http:// or https:// address; may be empty")] = ""
    note: Annotated[str, described("Anything else for the reviewing admin (what you sell); may be empty")] = ""


@dataclass
class VendorApplicationReceived:
    """The application's id; it waits for an admin's review (the outcome is e-mailed)."""

    id: Annotated[int, described("The application's number (quote it when writing to the admins)")]
    status: Annotated[str, described("`pending`: it waits for an admin's review, whose outcome is e-mailed")]
    existing: Annotated[
        bool, described("True when an application from this address was already waiting: this is that one")
    ]


@dataclass
class InviteForm:
    email: str = ""


@dataclass
class KeyForm:
    name: str = ""


@dataclass
class ConfirmForm:
    confirm: str = ""


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value[-1] if isinstance(value, list) else (value or "")


def _iso(moment: datetime | None) -> str | None:
    return utc(moment).isoformat() if moment else None  # type: ignore[union-attr]


class VendorApplicationPagesController(Controller):
    include_in_schema = False

    @get("/apply/vendor", name="apply_vendor_form")
    async def form(self, request: Request, viewer: Viewer) -> Template:
        return page(request, "apply_vendor.html", user=viewer, countries=_countries(), typed={}, error=None)

    @post("/apply/vendor", name="apply_vendor")
    async def apply(
        self, request: Request, data: Annotated[dict[str, Any], FORM], db: Db, outbox: Mail, viewer: Viewer
    ) -> Template | Redirect:
        form = VendorApplicationForm(
            **{k: _text(data, k) for k in ("company", "contact_name", "email", "phone", "country", "website", "note")}
        )
        try:
            await asyncio.to_thread(vendor_applications.submit, db, outbox, form)
        except FieldInvalid as exc:
            return page(
                request,
                "apply_vendor.html",
                status_code=422,
                user=viewer,
                countries=_countries(),
                typed=form.__dict__,
                error={"field": exc.field, "message": exc.message},
            )
        return notice_redirect(request, "/apply/vendor/sent", "Thank you: your application is sent.")

    @get("/apply/vendor/sent", name="apply_vendor_sent")
    async def sent(self, request: Request, viewer: Viewer) -> Template:
        return page(request, "apply_sent.html", user=viewer)


class VendorApplicationsApiController(Controller):
    path = "/api/applications"
    tags = ("applications",)

    @post(
        "/vendor",
        name="api_apply_vendor",
        status_code=201,
        responses={
            400: ResponseSpec(
                ApiError, description="The body is not JSON or lacks a required field; `detail` names it"
            ),
            422: ResponseSpec(ApiError, description="A field is refused (`field` names it, e.g. `phone`, `website`)"),
            429: ResponseSpec(ApiError, description="Too many from this address; `Retry-After` says when to retry"),
        },
    )
    async def apply(self, data: JSONBody[VendorApplicationBody], db: Db, outbox: Mail) -> VendorApplicationReceived:
        """Apply to supply products as a vendor; the applicant is e-mailed on receipt and after review.
        Applying again while one waits returns that one (`existing`), not a second."""
        form = VendorApplicationForm(**data.__dict__)
        submitted = await asyncio.to_thread(vendor_applications.submit, db, outbox, form)
        return VendorApplicationReceived(submitted.id, "pending", submitted.existing)


class AdminVendorApplicationsController(Controller):
    """Approve or decline a vendor application (listed on /admin/applications beside the operators')."""

    path = "/admin/vendor-applications"
    guards = (admin_only,)
    include_in_schema = False

    @post("/{application_id:int}/approve", name="admin_approve_vendor")
    async def approve(
        self, request: Request, application_id: FromPath[int], user: SignedIn, db: Db, outbox: Mail
    ) -> Redirect:
        done = await asyncio.to_thread(
            vendor_applications.approve, db, outbox, public_base(request), application_id, user
        )
        return notice_redirect(
            request,
            "/admin/applications",
            f"Approved: vendor {done.vendor} is created; its user {done.user_name} has a link to set a password.",
        )

    @post("/{application_id:int}/decline", name="admin_decline_vendor")
    async def decline(
        self, request: Request, application_id: FromPath[int], data: Reason, user: SignedIn, db: Db, outbox: Mail
    ) -> Redirect:
        await asyncio.to_thread(vendor_applications.decline, db, outbox, application_id, user, data.reason)
        return notice_redirect(request, "/admin/applications", "Declined; the applicant is told why.")


def _team_context(db: Db, user: User) -> dict[str, Any]:
    members = vendor_team.members(db, user)
    keys = vendor_keys.keys(db, user)
    return {
        "members": [{**m.__dict__, "created_at": _iso(m.created_at)} for m in members],
        "keys": [
            {
                **k.__dict__,
                "active": k.active,
                "created_at": _iso(k.created_at),
                "last_used_at": _iso(k.last_used_at),
                "revoked_at": _iso(k.revoked_at),
            }
            for k in keys
        ],
    }


class VendorTeamController(Controller):
    """/vendor/team: the vendor's users and API keys. Every action is scoped to the signed-in user's
    vendor by `access` (another vendor's user or key is 404)."""

    path = "/vendor/team"
    guards = (vendor_staff_only,)
    include_in_schema = False

    async def _page(self, request: Request, user: User, db: Db, status_code: int = 200, **extra: Any) -> Template:
        context = await asyncio.to_thread(_team_context, db, user)
        extra.setdefault("typed", {})
        extra.setdefault("error", None)
        extra.setdefault("new_key", None)
        return page(request, "vendor_team.html", status_code=status_code, user=user, **context, **extra)

    @get("/", name="vendor_team")
    async def team(self, request: Request, user: SignedIn, db: Db) -> Template:
        return await self._page(request, user, db)

    @post("/invite", name="vendor_team_invite")
    async def invite(
        self, request: Request, data: Annotated[InviteForm, FORM], user: SignedIn, db: Db, outbox: Mail
    ) -> Template | Redirect:
        try:
            name = await asyncio.to_thread(vendor_team.invite, db, outbox, public_base(request), user, data.email)
        except FieldInvalid as exc:
            error = {"form": "invite", "field": exc.field, "message": exc.message}
            return await self._page(request, user, db, 422, typed={"email": data.email}, error=error)
        return notice_redirect(
            request,
            "/vendor/team",
            f"Invited: {name} can set a password with the link e-mailed to {data.email.strip()}.",
        )

    @post("/members/{member_id:int}/off", name="vendor_team_off")
    async def switch_off(
        self, request: Request, member_id: FromPath[int], data: Annotated[ConfirmForm, FORM], user: SignedIn, db: Db
    ) -> Redirect:
        require_confirmation(data.confirm, "switch this colleague off")
        name = await asyncio.to_thread(vendor_team.set_active, db, user, member_id, False)
        return notice_redirect(request, "/vendor/team", f"{name} is switched off and signed out everywhere.")

    @post("/members/{member_id:int}/on", name="vendor_team_on")
    async def switch_on(self, request: Request, member_id: FromPath[int], user: SignedIn, db: Db) -> Redirect:
        name = await asyncio.to_thread(vendor_team.set_active, db, user, member_id, True)
        return notice_redirect(request, "/vendor/team", f"{name} can sign in again.")

    @post("/keys", name="vendor_key_create")
    async def create_key(self, request: Request, data: Annotated[KeyForm, FORM], user: SignedIn, db: Db) -> Template:
        """The new key's secret is on this response only: it is not stored, so it cannot be shown again."""
        try:
            new_key = await asyncio.to_thread(vendor_keys.create, db, user, data.name)
        except Invalid as exc:
            error = {"form": "key", "field": "name", "message": exc.message}
            return await self._page(request, user, db, 422, typed={"key_name": data.name}, error=error)
        return await self._page(request, user, db, new_key=new_key)

    @post("/keys/{key_id:int}/revoke", name="vendor_key_revoke")
    async def revoke_key(
        self, request: Request, key_id: FromPath[int], data: Annotated[ConfirmForm, FORM], user: SignedIn, db: Db
    ) -> Redirect:
        require_confirmation(data.confirm, "revoke this API key")
        name = await asyncio.to_thread(vendor_keys.revoke, db, user, key_id)
        return notice_redirect(request, "/vendor/team", f"The key {name!r} is revoked: programs using it are refused.")


@dataclass
class KeyBody:
    """A new API key's name."""

    name: Annotated[str, described("What the key is for, e.g. the program that will use it (1-100 characters)")]


@dataclass
class ApiKeyListed:
    """One of the vendor's API keys as listed (never its secret, which is not stored)."""

    id: Annotated[int, described("The key's number, for revoking it")]
    name: Annotated[str, described("What the key is for, as named when it was made")]
    prefix: Annotated[str, described("The key's first characters (`vvk_...`), to tell keys apart")]
    created_by: Annotated[str, described("The vendor user who made it; the key acts as this user")]
    created_at: Annotated[str, described("When it was made, ISO 8601 UTC")]
    last_used_at: Annotated[str | None, described("When it last let a call in (updated at most once a minute)")]
    revoked_at: Annotated[str | None, described("When it was revoked; null while it works")]


@dataclass
class ApiKeyMade:
    """A new key: `key` is shown in this answer only (only its sha256 is kept)."""

    id: Annotated[int, described("The key's number, for revoking it")]
    name: Annotated[str, described("What the key is for")]
    prefix: Annotated[str, described("The key's first characters, as lists show them")]
    key: Annotated[str, described("The secret: send it as `Authorization: Bearer <key>`; it cannot be shown again")]


KEY_REFUSALS = {
    401: ResponseSpec(ErrorBody, description="No bearer token, or one that is unknown, expired or revoked"),
    403: ResponseSpec(
        ErrorBody, description="Not a vendor's token, or an API key (keys are managed with a signed-in token)"
    ),
}


def _token_only(request: Request) -> None:
    """Keys are managed with a person's token, not with a key: a leaked key cannot mint more keys."""
    if vendor_keys.is_key(bearer_token(request)):
        raise Forbidden(
            "An API key cannot manage API keys.", "Use a token from POST /api/staff/token, or the /vendor/team page."
        )


def _listed(row: vendor_keys.KeyRow) -> ApiKeyListed:
    return ApiKeyListed(
        row.id,
        row.name,
        row.prefix,
        row.created_by,
        _iso(row.created_at) or "",
        _iso(row.last_used_at),
        _iso(row.revoked_at),
    )


class VendorKeysApiController(Controller):
    """The vendor's API keys over JSON, with a vendor user's token (as on /vendor/team)."""

    path = "/api/vendor/keys"
    tags = ("vendor",)
    guards = (bearer_as("vendor"),)
    security = SECURITY
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="api_vendor_keys", responses=KEY_REFUSALS)
    async def list_keys(self, request: Request, user: SignedIn, db: Db) -> list[ApiKeyListed]:
        """This vendor's API keys, working ones first, newest first; never their secrets."""
        _token_only(request)
        rows = await asyncio.to_thread(vendor_keys.keys, db, user)
        return [_listed(row) for row in rows]

    @post(
        "/",
        name="api_vendor_key_create",
        status_code=201,
        responses={
            **KEY_REFUSALS,
            400: ResponseSpec(ErrorBody, description="The body is not JSON or lacks `name`"),
            422: ResponseSpec(ErrorBody, description="The name is empty or longer than 100 characters"),
        },
    )
    async def create_key(self, request: Request, data: JSONBody[KeyBody], user: SignedIn, db: Db) -> ApiKeyMade:
        """Make a key acting as the token's user; the secret is in this answer only."""
        _token_only(request)
        made = await asyncio.to_thread(vendor_keys.create, db, user, data.name)
        return ApiKeyMade(made.id, made.name, made.prefix, made.secret)

    @delete(
        "/{key_id:int}",
        name="api_vendor_key_revoke",
        status_code=204,
        responses={
            **KEY_REFUSALS,
            400: ResponseSpec(ErrorBody, description="The key number is not a whole number"),
            404: ResponseSpec(ErrorBody, description="No such key of this vendor"),
        },
    )
    async def revoke_key(self, request: Request, key_id: FromPath[int], user: SignedIn, db: Db) -> None:
        """Revoke a key for good: calls with it are 401 from now on. Another vendor's key is 404."""
        _token_only(request)
        await asyncio.to_thread(vendor_keys.revoke, db, user, key_id)
