"""The vendor's page: their products and the requests their products were offered for."""

from __future__ import annotations

import asyncio

from litestar import Controller, Request, get
from litestar.params import FromQuery
from litestar.response import Template

from api.auth import vendor_staff_only
from api.dependencies import Db, SignedIn
from api.pages import page as render_page
from workflow.errors import Forbidden
from workflow.views import vendor_overview


class VendorController(Controller):
    path = "/vendor"
    guards = (vendor_staff_only,)
    include_in_schema = False

    @get("/", name="vendor_home")
    async def vendor_home(
        self, request: Request, user: SignedIn, db: Db, page: FromQuery[int] = 1, q: FromQuery[str] = ""
    ) -> Template:
        """Orders, offers and one page of the vendor's products (`?q=` searches title and SKU)."""
        if user.vendor_id is None:
            raise Forbidden(
                "This account is not linked to a vendor.", "Ask an admin to link it (vitrine users add --vendor)."
            )
        data = await asyncio.to_thread(vendor_overview, db, user.vendor_id, page, q)
        return render_page(request, "vendor.html", user=user, **data)
