"""The vendor's page: their products and the requests their products were offered for."""

from __future__ import annotations

import asyncio

from litestar import Controller, Request, get
from litestar.response import Template
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from api.auth import vendor_staff_only
from api.dependencies import Db, SignedIn
from api.pages import page
from catalog.db import Product, Vendor
from workflow.errors import Forbidden
from workflow.models import Offer

SHOWN = 200


def vendor_overview(db: sessionmaker, vendor_id: int) -> dict:
    """The vendor's name, first products by title, product count and latest offers."""
    with db() as session:
        vendor = session.get(Vendor, vendor_id)
        products = session.scalars(
            select(Product).where(Product.vendor_id == vendor_id).order_by(Product.title).limit(SHOWN)
        ).all()
        total = session.scalar(select(func.count()).select_from(Product).where(Product.vendor_id == vendor_id))
        offers = session.scalars(
            select(Offer).where(Offer.vendor_id == vendor_id).order_by(Offer.id.desc()).limit(SHOWN)
        ).all()
        return {"vendor": vendor.name if vendor else "", "products": products, "total": total, "offers": offers}


class VendorController(Controller):
    path = "/vendor"
    guards = (vendor_staff_only,)
    include_in_schema = False

    @get("/", name="vendor_home")
    async def vendor_home(self, request: Request, user: SignedIn, db: Db) -> Template:
        if user.vendor_id is None:
            raise Forbidden(
                "This account is not linked to a vendor.", "Ask an admin to link it (vitrine users add --vendor)."
            )
        data = await asyncio.to_thread(vendor_overview, db, user.vendor_id)
        return page(request, "vendor.html", user=user, **data)
