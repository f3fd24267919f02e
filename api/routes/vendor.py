"""The vendor's page: their products and the requests their products were offered for."""

from __future__ import annotations

from litestar import Request, get
from sqlalchemy import func, select

from api.routes.common import page, require_user, state, to_thread
from catalog.db import Product, Vendor
from workflow.errors import Forbidden
from workflow.models import Offer


@get("/vendor", name="vendor_home", include_in_schema=False)
async def vendor_home(request: Request) -> object:
    user = await require_user(request, "vendor", "admin")
    if user.vendor_id is None:
        raise Forbidden(
            "This account is not linked to a vendor.", "Ask an admin to link it (vitrine users add --vendor)."
        )

    def load() -> dict:
        with state(request).sessions() as session:
            vendor = session.get(Vendor, user.vendor_id)
            products = session.scalars(
                select(Product).where(Product.vendor_id == user.vendor_id).order_by(Product.title).limit(200)
            ).all()
            total = session.scalar(select(func.count()).select_from(Product).where(Product.vendor_id == user.vendor_id))
            offers = session.scalars(
                select(Offer).where(Offer.vendor_id == user.vendor_id).order_by(Offer.id.desc()).limit(200)
            ).all()
            return {"vendor": vendor.name if vendor else "", "products": products, "total": total, "offers": offers}

    data = await to_thread(load)
    return await page(request, "vendor.html", user=user, **data)


vendor_routes = [vendor_home]
