"""The admin area: operator applications, the waitlist and its invitations, staff accounts, and the
trail of every admin action. Admins only (the guard); every action is a POST with a CSRF token,
is audited by the domain layer (access/) and ends in a redirect with a notice."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from access import applications, staff, vendor_applications, waitlist
from api.auth import admin_only
from api.dependencies import AppSettings, Db, Mail, SignedIn
from api.forms import Reason
from api.hosts import public_base
from api.pages import notice_redirect, page
from workflow.errors import Invalid

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)


@dataclass
class InviteNextForm:
    count: str = "1"


@dataclass
class InviteForm:
    email: str = ""


@dataclass
class ActiveForm:
    active: str = ""


class AdminController(Controller):
    path = "/admin"
    guards = (admin_only,)
    include_in_schema = False

    @get("/", name="admin_home")
    async def home(self, request: Request, user: SignedIn, db: Db, settings: AppSettings) -> Template:
        apps = await asyncio.to_thread(applications.applications, db)
        vendor_apps = await asyncio.to_thread(vendor_applications.vendor_applications, db)
        line = await asyncio.to_thread(waitlist.line, db, settings.referral_bonus)
        trail = await asyncio.to_thread(staff.admin_trail, db, 10)
        counts = {
            "pending": sum(a.status == "pending" for a in [*apps, *vendor_apps]),  # operators' and vendors'
            "waiting": sum(e.position is not None and e.verified for e in line),
            "invited": sum(e.invited for e in line),
        }
        return page(request, "admin.html", user=user, counts=counts, trail=trail, access=settings.access)

    @get("/applications", name="admin_applications")
    async def applications_page(self, request: Request, user: SignedIn, db: Db) -> Template:
        rows = await asyncio.to_thread(applications.applications, db)
        vendor_rows = await asyncio.to_thread(vendor_applications.vendor_applications, db)
        return page(request, "admin_applications.html", user=user, rows=rows, vendor_rows=vendor_rows)

    @post("/applications/{application_id:int}/approve", name="admin_approve")
    async def approve(
        self, request: Request, application_id: FromPath[int], user: SignedIn, db: Db, outbox: Mail
    ) -> Redirect:
        name = await asyncio.to_thread(applications.approve, db, outbox, public_base(request), application_id, user)
        return notice_redirect(
            request, "/admin/applications", f"Approved: operator {name} is created and has a link to set a password."
        )

    @post("/applications/{application_id:int}/decline", name="admin_decline")
    async def decline(
        self, request: Request, application_id: FromPath[int], data: Reason, user: SignedIn, db: Db, outbox: Mail
    ) -> Redirect:
        await asyncio.to_thread(applications.decline, db, outbox, application_id, user, data.reason)
        return notice_redirect(request, "/admin/applications", "Declined; the applicant is told why.")

    @get("/waitlist", name="admin_waitlist")
    async def waitlist_page(self, request: Request, user: SignedIn, db: Db, settings: AppSettings) -> Template:
        line = await asyncio.to_thread(waitlist.line, db, settings.referral_bonus)
        return page(
            request, "admin_waitlist.html", user=user, line=line, bonus=settings.referral_bonus, access=settings.access
        )

    @post("/waitlist/invite-next", name="admin_invite_next")
    async def invite_next(
        self,
        request: Request,
        data: Annotated[InviteNextForm, FORM],
        user: SignedIn,
        db: Db,
        outbox: Mail,
        settings: AppSettings,
    ) -> Redirect:
        try:
            count = int(data.count.strip())
        except ValueError:
            raise Invalid("How many people to invite: a whole number, such as 10.") from None
        sent = await asyncio.to_thread(
            waitlist.invite_next, db, outbox, public_base(request), count, user, settings.referral_bonus
        )
        text = f"Invited {len(sent)}: {', '.join(sent)}." if sent else "Nobody is waiting with a confirmed address."
        return notice_redirect(request, "/admin/waitlist", text)

    @post("/waitlist/invite", name="admin_invite")
    async def invite(
        self, request: Request, data: Annotated[InviteForm, FORM], user: SignedIn, db: Db, outbox: Mail
    ) -> Redirect:
        email = await asyncio.to_thread(waitlist.invite, db, outbox, public_base(request), data.email, user)
        return notice_redirect(request, "/admin/waitlist", f"Invited {email}.")

    @get("/staff", name="admin_staff")
    async def staff_page(self, request: Request, user: SignedIn, db: Db) -> Template:
        rows = await asyncio.to_thread(staff.staff, db)
        return page(request, "admin_staff.html", user=user, rows=rows)

    @post("/staff/{user_id:int}/active", name="admin_staff_active")
    async def set_active(
        self, request: Request, user_id: FromPath[int], data: Annotated[ActiveForm, FORM], user: SignedIn, db: Db
    ) -> Redirect:
        active = data.active == "1"
        name = await asyncio.to_thread(staff.set_active, db, user_id, active, user)
        return notice_redirect(request, "/admin/staff", f"{name} is {'switched on' if active else 'switched off'}.")

    @get("/audit", name="admin_audit")
    async def audit_page(self, request: Request, user: SignedIn, db: Db) -> Template:
        rows = await asyncio.to_thread(staff.admin_trail, db)
        return page(request, "admin_audit.html", user=user, rows=rows)
