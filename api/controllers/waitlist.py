"""The closed-beta waitlist over HTTP: the join form and the entry page, the verification and
invitation links, and the JSON API (`POST /api/waitlist`, `GET /api/waitlist/{id}`).

An invitation link leaves its token in a cookie; the request form reads it there (the JSON API takes
it as the `invitation` field) when the site runs with VITRINE_ACCESS=waitlist.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body, FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Template

from access import waitlist
from access.errors import FieldInvalid
from api.dependencies import AppSettings, Db, Mail, Viewer
from api.hosts import public_base
from api.openapi_docs import ErrorBody, described
from api.pages import notice_redirect, page
from workflow.settings import Settings

INVITATION_DAYS = 30


@dataclass
class JoinForm:
    email: str = ""
    ref: str = ""


@dataclass
class WaitlistJoin:
    """An address to put in line; `ref` is the share code of the person whose link brought you."""

    email: Annotated[str, described("The e-mail address to put in line; a verification link is sent to it")]
    ref: Annotated[str | None, described("The share code from the link that brought you (credits that person)")] = None


@dataclass
class WaitlistPlace:
    """An entry: its id (for `GET /api/waitlist/{id}`), the place in line (1 is next; null once
    invited), the personal share link, and whether the address is verified and the person invited."""

    id: Annotated[str, described("The entry's public id, for `GET /api/waitlist/{id}`")]
    position: Annotated[int | None, described("The place in line, 1 is next; null once invited")]
    share_url: Annotated[str, described("The personal link to share: each person joining through it moves you up")]
    verified: Annotated[
        bool, described("Whether the e-mailed verification link was followed (only then the place counts)")
    ]
    invited: Annotated[bool, described("Whether an invitation link was e-mailed (it lets the person send requests)")]


@dataclass
class ApiError(ErrorBody):
    """A refusal: `detail` says why, `field` names the field refused (422)."""


def _place(view: waitlist.EntryView, base: str) -> WaitlistPlace:
    return WaitlistPlace(view.public_id, view.position, view.share_url(base), view.verified, view.invited)


def invitation_cookie(settings: Settings, value: str, max_age: int) -> Cookie:
    return Cookie(
        key=waitlist.INVITE_COOKIE,
        value=value,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=max_age,
    )


class WaitlistPagesController(Controller):
    include_in_schema = False

    @get("/waitlist", name="waitlist_form")
    async def form(self, request: Request, viewer: Viewer, ref: FromQuery[str | None] = None) -> Template:
        return page(request, "waitlist.html", user=viewer, typed={"email": "", "ref": ref or ""}, error=None)

    @post("/waitlist", name="waitlist_join")
    async def join(
        self,
        request: Request,
        data: Annotated[JoinForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
        db: Db,
        outbox: Mail,
        settings: AppSettings,
        viewer: Viewer,
    ) -> Template | Redirect:
        try:
            joined = await asyncio.to_thread(
                waitlist.join, db, outbox, public_base(request), data.email, data.ref or None, settings.referral_bonus
            )
        except FieldInvalid as exc:
            typed = {"email": data.email, "ref": data.ref}
            return page(request, "waitlist.html", status_code=422, user=viewer, typed=typed, error=exc.message)
        if joined.created:
            text = "You are on the waitlist. Please confirm your address with the link we just e-mailed you."
        elif not joined.entry.verified and not joined.entry.invited:
            text = "You were already on the waitlist: here is your place. We e-mailed you a fresh confirmation link."
        else:
            text = "You were already on the waitlist: here is your place."
        return notice_redirect(request, f"/waitlist/{joined.entry.public_id}", text)

    @get("/waitlist/verify/{token:str}", name="waitlist_verify", sync_to_thread=True)
    def verify(self, request: Request, token: FromPath[str], db: Db) -> Redirect:
        public_id = waitlist.verify(db, token)
        return notice_redirect(request, f"/waitlist/{public_id}", "Thank you: your address is confirmed.")

    @get("/waitlist/{public_id:str}", name="waitlist_entry")
    async def entry(
        self, request: Request, public_id: FromPath[str], db: Db, settings: AppSettings, viewer: Viewer
    ) -> Template:
        view = await asyncio.to_thread(waitlist.entry_view, db, public_id, settings.referral_bonus)
        base = public_base(request)
        return page(request, "waitlist_entry.html", user=viewer, e=view, share_url=view.share_url(base))

    @get("/invite/{token:str}", name="accept_invitation")
    async def accept(self, request: Request, token: FromPath[str], db: Db, settings: AppSettings) -> Redirect:
        if not await asyncio.to_thread(waitlist.accept_invitation, db, token):
            return notice_redirect(request, "/waitlist", "This invitation link is not valid. Join the waitlist below.")
        response = notice_redirect(request, "/", "Welcome: your invitation is accepted. Send us a photo.")
        response.set_cookie(invitation_cookie(settings, token, INVITATION_DAYS * 24 * 3600))
        return response


class WaitlistApiController(Controller):
    path = "/api/waitlist"
    tags = ("waitlist",)

    @post(
        "/",
        name="api_waitlist_join",
        status_code=201,
        responses={
            200: ResponseSpec(WaitlistPlace, description="The address was already in line: its entry, unchanged"),
            400: ResponseSpec(ApiError, description="The body is not JSON or lacks `email`; `detail` says which"),
            422: ResponseSpec(ApiError, description="The address is not valid; `field` is `email`"),
            429: ResponseSpec(ApiError, description="Too many from this address; `Retry-After` says when to retry"),
        },
    )
    async def join(
        self, request: Request, data: JSONBody[WaitlistJoin], db: Db, outbox: Mail, settings: AppSettings
    ) -> Response[WaitlistPlace]:
        """Join the waitlist; a verification link is e-mailed (the place counts once it is followed).
        The same address again, in any case or spacing, answers 200 with the existing entry."""
        base = public_base(request)
        joined = await asyncio.to_thread(waitlist.join, db, outbox, base, data.email, data.ref, settings.referral_bonus)
        return Response(_place(joined.entry, base), status_code=201 if joined.created else 200)

    @get(
        "/{entry_id:str}",
        name="api_waitlist_entry",
        responses={
            400: ResponseSpec(ApiError, description="The request is malformed; `detail` says how"),
            404: ResponseSpec(ApiError, description="No entry has this id"),
        },
    )
    async def read(self, request: Request, entry_id: FromPath[str], db: Db, settings: AppSettings) -> WaitlistPlace:
        """An entry by the id from the join answer: its place in line, verified, invited."""
        view = await asyncio.to_thread(waitlist.entry_view, db, entry_id, settings.referral_bonus)
        return _place(view, public_base(request))
