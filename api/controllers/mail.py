"""One-click unsubscribe for non-transactional mail (RFC 8058): mail clients POST to the link in the
`List-Unsubscribe` header without a cookie or a form token, so that path is outside the CSRF check;
the signed token in it is what proves the request. A person following the link gets a page with a
confirm button (a GET never changes anything: link scanners fetch every address in a mail)."""

from __future__ import annotations

import asyncio

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Template

from api.dependencies import AppSettings, Db
from api.pages import page
from mail import unsubscribe
from workflow.errors import NotFound


def _address(secret: str, token: str) -> str:
    try:
        return unsubscribe.address_of(secret, token)
    except unsubscribe.BadUnsubscribeToken as exc:
        raise NotFound(str(exc), "Use the unsubscribe link of the latest e-mail from us, unchanged.") from None


class MailController(Controller):
    path = "/mail/unsubscribe"
    include_in_schema = False  # pages, not the JSON API

    @get("/{token:str}", name="unsubscribe_form")
    async def form(self, request: Request, token: FromPath[str], settings: AppSettings) -> Template:
        address = _address(settings.secret_key, token)
        return page(request, "mail_unsubscribe.html", address=address, action=f"/mail/unsubscribe/{token}", done=False)

    @post("/{token:str}", name="unsubscribe", status_code=200)
    async def unsubscribe(self, request: Request, token: FromPath[str], settings: AppSettings, db: Db) -> Template:
        """The one click: the address gets no more non-transactional mail (posting again changes nothing)."""
        address = _address(settings.secret_key, token)
        await asyncio.to_thread(unsubscribe.suppress, db, address)
        return page(request, "mail_unsubscribe.html", address=address, done=True)
