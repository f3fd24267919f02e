"""The admin's exchange-rates page (`/admin/rates`): the table with each rate's date and source, a
form to set one rate, a box to paste a CSV of many, and removal. Rates convert prices for budgets
(`workflow.rates`); a currency without one is never compared with a budget in another currency."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from api.auth import admin_only
from api.dependencies import Db, SignedIn
from api.errors import status_of
from api.pages import notice_redirect, page
from workflow import rates
from workflow.claims import actor
from workflow.errors import Invalid

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)


@dataclass
class RateForm:
    currency: str = ""
    rate: str = ""
    as_of: str = ""
    source: str = ""


@dataclass
class RatesCsvForm:
    csv: str = ""


class RatesController(Controller):
    path = "/admin/rates"
    guards = (admin_only,)
    include_in_schema = False

    async def _page(self, request: Request, user: SignedIn, db: Db, status: int = 200, **extra: object) -> Template:
        table = await asyncio.to_thread(rates.rates_view, db)
        return page(request, "admin_rates.html", status_code=status, user=user, rates=table, base=rates.BASE, **extra)

    @get("/", name="admin_rates")
    async def show(self, request: Request, user: SignedIn, db: Db) -> Template:
        return await self._page(request, user, db)

    @post("/", name="admin_rates_set")
    async def set_rate(
        self, request: Request, data: Annotated[RateForm, FORM], user: SignedIn, db: Db
    ) -> Redirect | Template:
        try:
            row = rates.check_rate(data.currency, data.rate, data.as_of, data.source)
        except Invalid as exc:  # the page again with what was typed
            error = {"status": status_of(exc), "title": exc.title, "message": exc.message, "hint": exc.hint}
            return await self._page(request, user, db, status_of(exc), error=error, typed=data)
        await asyncio.to_thread(rates.set_rates, db, [row], actor(user))
        return notice_redirect(
            request, "/admin/rates", f"1 {rates.BASE} = {row.per_base.normalize()} {row.currency}, as of {row.as_of}."
        )

    @post("/import", name="admin_rates_import")
    async def import_csv(
        self, request: Request, data: Annotated[RatesCsvForm, FORM], user: SignedIn, db: Db
    ) -> Redirect | Template:
        try:
            rows = rates.read_csv(data.csv)
        except Invalid as exc:
            error = {"status": status_of(exc), "title": exc.title, "message": exc.message, "hint": exc.hint}
            return await self._page(request, user, db, status_of(exc), error=error, typed_csv=data.csv)
        count = await asyncio.to_thread(rates.set_rates, db, rows, actor(user))
        return notice_redirect(request, "/admin/rates", f"{count} rate(s) saved.")

    @post("/{currency:str}/delete", name="admin_rates_delete")
    async def delete(self, request: Request, currency: FromPath[str], user: SignedIn, db: Db) -> Redirect:
        removed = await asyncio.to_thread(rates.remove_rate, db, currency, actor(user))
        text = f"The {currency.upper()} rate is removed." if removed else f"There was no {currency.upper()} rate."
        return notice_redirect(request, "/admin/rates", text)
