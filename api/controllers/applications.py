"""Applying to work as an operator (the form and `POST /api/applications/operator`), and the
one-time page where an approved applicant sets a password."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any

import phonenumbers
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body, FromPath, JSONBody
from litestar.response import Redirect, Template
from sqlalchemy.orm import sessionmaker

from access import applications, password_links
from access.errors import FieldInvalid
from api.controllers.waitlist import ApiError
from api.dependencies import Db, Mail, Viewer
from api.openapi_docs import described
from api.pages import notice_redirect, page

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)


@dataclass
class OperatorApplicationBody:
    """An application to work as an operator. `phone` as dialled in `country` (ISO 3166 alpha-2);
    `categories` from the catalog's own."""

    name: Annotated[str, described("The applicant's full name")]
    email: Annotated[str, described("Where the receipt and the review's outcome are e-mailed")]
    phone: Annotated[str, described("A phone number as dialled in `country`, or in international form (+...)")]
    country: Annotated[str, described("The country the applicant works from, ISO 3166 alpha-2 (e.g. `DE`)")]
    languages: Annotated[list[str], described("Languages the applicant can answer customers in, e.g. `English`")] = (
        field(default_factory=list)
    )
    categories: Annotated[
        list[str], described("Catalog categories the applicant knows well (names as in the catalog)")
    ] = field(default_factory=list)
    note: Annotated[str, described("Anything else for the reviewing admin; may be empty")] = ""


@dataclass
class ApplicationReceived:
    """The application's id; it waits for an admin's review (the outcome is e-mailed)."""

    id: Annotated[int, described("The application's number (quote it when writing to the admins)")]
    status: Annotated[str, described("`pending`: it waits for an admin's review, whose outcome is e-mailed")]


@dataclass
class PasswordForm:
    password: str = ""
    repeated: str = ""


def _countries() -> list[tuple[str, str]]:
    """(code, label) for the country list: `DE (+49)`."""
    return [
        (code, f"{code} (+{phonenumbers.country_code_for_region(code)})")
        for code in sorted(phonenumbers.SUPPORTED_REGIONS)
        if code != "001"
    ]


def _categories(db: sessionmaker) -> list[str]:
    with db() as session:
        return applications.catalog_categories(session)


def _listed(value: Any) -> list[str]:
    """A repeated form field (one value arrives as a string)."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


class ApplicationPagesController(Controller):
    include_in_schema = False

    @get("/apply/operator", name="apply_operator_form")
    async def form(self, request: Request, db: Db, viewer: Viewer) -> Template:
        categories = await asyncio.to_thread(_categories, db)
        return page(
            request, "apply.html", user=viewer, countries=_countries(), categories=categories, typed={}, error=None
        )

    @post("/apply/operator", name="apply_operator")
    async def apply(
        self, request: Request, data: Annotated[dict[str, Any], FORM], db: Db, outbox: Mail, viewer: Viewer
    ) -> Template | Redirect:
        def text(key: str) -> str:
            value = data.get(key)
            return value[-1] if isinstance(value, list) else (value or "")

        form = applications.Application(
            name=text("name"),
            email=text("email"),
            phone=text("phone"),
            country=text("country"),
            languages=[lang for lang in text("languages").split(",") if lang.strip()],
            categories=_listed(data.get("categories")),
            note=text("note"),
        )
        try:
            await asyncio.to_thread(applications.submit, db, outbox, form)
        except FieldInvalid as exc:
            categories = await asyncio.to_thread(_categories, db)
            typed = {**form.__dict__, "languages": text("languages")}
            return page(
                request,
                "apply.html",
                status_code=422,
                user=viewer,
                countries=_countries(),
                categories=categories,
                typed=typed,
                error={"field": exc.field, "message": exc.message},
            )
        return notice_redirect(request, "/apply/operator/sent", "Thank you: your application is sent.")

    @get("/apply/operator/sent", name="apply_operator_sent")
    async def sent(self, request: Request, viewer: Viewer) -> Template:
        return page(request, "apply_sent.html", user=viewer)

    @get("/set-password/{token:str}", name="set_password_form", sync_to_thread=True)
    def set_password_form(self, request: Request, token: FromPath[str], db: Db) -> Template:
        name = password_links.holder(db, token)
        return page(request, "set_password.html", name=name, token=token, error=None)

    @post("/set-password/{token:str}", name="set_password")
    async def set_password(
        self, request: Request, token: FromPath[str], data: Annotated[PasswordForm, FORM], db: Db
    ) -> Template | Redirect:
        try:
            name = await asyncio.to_thread(password_links.redeem, db, token, data.password, data.repeated)
        except FieldInvalid as exc:
            name = await asyncio.to_thread(password_links.holder, db, token)
            return page(request, "set_password.html", status_code=422, name=name, token=token, error=exc.message)
        return notice_redirect(request, "/login", f"Your password is set. Sign in as {name}.")


class ApplicationsApiController(Controller):
    path = "/api/applications"
    tags = ("applications",)

    @post(
        "/operator",
        name="api_apply_operator",
        status_code=201,
        responses={
            400: ResponseSpec(
                ApiError, description="The body is not JSON or lacks a required field; `detail` names it"
            ),
            409: ResponseSpec(ApiError, description="An application from this address is already waiting"),
            422: ResponseSpec(ApiError, description="A field is refused (`field` names it, e.g. `phone`)"),
            429: ResponseSpec(ApiError, description="Too many from this address; `Retry-After` says when to retry"),
        },
    )
    async def apply(self, data: JSONBody[OperatorApplicationBody], db: Db, outbox: Mail) -> ApplicationReceived:
        """Apply to work as an operator; the applicant is e-mailed on receipt and after review."""
        form = applications.Application(**data.__dict__)
        application_id = await asyncio.to_thread(applications.submit, db, outbox, form)
        return ApplicationReceived(application_id, "pending")
