"""The vendor's area in the browser: the overview (/vendor) and their products (/vendor/products).

The overview counts what waits for the vendor and links to each page of the vendor nav. The product
pages search and page the catalog, show each product's images and how it did (candidate, offered,
sold), and edit price, online stock and whether it is active at all (`catalog_ingest.product_edits`,
which writes the change into the index as well, so searches see it at once).

The vendor is always the signed-in account's: another vendor's product is "not found".
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from api.auth import vendor_staff_only
from api.dependencies import Db, SignedIn
from api.pages import notice_redirect
from api.pages import page as render_page
from catalog_ingest.product_edits import ProductEditRefused, ProductNotFound, edit_product, sinks_of
from workflow import vendor_products
from workflow.errors import Forbidden, NotFound
from workflow.views import vendor_overview

_FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
MISSING = NotFound("There is no such product in your catalog.", "Go back to your products and pick one from the list.")


def vendor_of(user: Any) -> int:
    """The signed-in account's vendor; `Forbidden` for an account that has none."""
    if user.vendor_id is None:
        raise Forbidden(
            "This account is not linked to a vendor.", "Ask an admin to link it (vitrine users add --vendor)."
        )
    return int(user.vendor_id)


def edit_sinks(request: Request) -> list:
    """Where a product edit writes vectors: the serving index (live) and every other model's store."""
    return sinks_of(request.app.state.settings.workspace, getattr(request.app.state, "search", None))


def _product_page(db: Any, vendor_id: int, page: int, q: str) -> dict:
    with db() as session:
        return {
            "vendor": vendor_products.vendor_name(session, vendor_id),
            "listing": vendor_products.product_page(session, vendor_id, page, q),
        }


def _product(db: Any, vendor_id: int, product_id: int) -> dict:
    with db() as session:
        product = vendor_products.vendor_product(session, vendor_id, product_id)
        if product is None:
            raise MISSING
        return {"vendor": vendor_products.vendor_name(session, vendor_id), "product": product}


def _truthy(value: Any) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


class VendorController(Controller):
    path = "/vendor"
    guards = (vendor_staff_only,)
    include_in_schema = False

    @get("/", name="vendor_home")
    async def vendor_home(self, request: Request, user: SignedIn, db: Db) -> Template:
        """The overview: counts of products, offers waiting, orders to ship, stores and jobs, with links."""
        data = await asyncio.to_thread(vendor_overview, db, vendor_of(user))
        return render_page(request, "vendor.html", user=user, **data)

    @get("/products", name="vendor_products")
    async def products(
        self, request: Request, user: SignedIn, db: Db, page: FromQuery[int] = 1, q: FromQuery[str] = ""
    ) -> Template:
        """One page of the vendor's products (`?q=` searches title and SKU) with their counts."""
        data = await asyncio.to_thread(_product_page, db, vendor_of(user), page, q)
        return render_page(request, "vendor_products.html", user=user, **data)

    @get("/products/{product_id:int}", name="vendor_product")
    async def product(self, request: Request, user: SignedIn, db: Db, product_id: FromPath[int]) -> Template:
        """One product: every image, its counts, and the forms that edit it."""
        return await self._product_page(request, user, db, product_id)

    async def _product_page(
        self, request: Request, user: Any, db: Any, product_id: int, status_code: int = 200, **context: Any
    ) -> Template:
        data = await asyncio.to_thread(_product, db, vendor_of(user), product_id)
        context.setdefault("error", None)
        context.setdefault("typed", {})
        return render_page(request, "vendor_product.html", status_code=status_code, user=user, **data, **context)

    async def _edit(self, request: Request, user: Any, db: Any, product_id: int, note: str, **changes: Any) -> Any:
        try:
            await asyncio.to_thread(edit_product, db, edit_sinks(request), vendor_of(user), product_id, **changes)
        except ProductNotFound:
            raise MISSING from None
        except ProductEditRefused as exc:
            error = {"field": exc.field, "message": f"The {exc.field} was not changed: {exc.message}."}
            typed = {key: value for key, value in changes.items() if isinstance(value, str)}
            return await self._product_page(request, user, db, product_id, 422, error=error, typed=typed)
        return notice_redirect(request, f"/vendor/products/{product_id}", note)

    @post("/products/{product_id:int}/price", name="vendor_product_price")
    async def edit_price(
        self,
        request: Request,
        user: SignedIn,
        db: Db,
        product_id: FromPath[int],
        data: Annotated[dict[str, Any], _FORM],
    ) -> Template | Redirect:
        """A new price in the product's currency (the project's money parser: 12.50, 1,299.00, 12,50)."""
        price = str(data.get("price") or "")
        return await self._edit(request, user, db, product_id, f"Price changed to {price.strip()}.", price=price)

    @post("/products/{product_id:int}/stock", name="vendor_product_stock")
    async def edit_stock(
        self,
        request: Request,
        user: SignedIn,
        db: Db,
        product_id: FromPath[int],
        data: Annotated[dict[str, Any], _FORM],
    ) -> Template | Redirect:
        """Online stock: in stock or not (what the "in stock" search filter sees)."""
        in_stock = _truthy(data.get("in_stock"))
        note = "Marked in stock." if in_stock else "Marked out of stock."
        return await self._edit(request, user, db, product_id, note, in_stock=in_stock)

    @post("/products/{product_id:int}/active", name="vendor_product_active")
    async def edit_active(
        self,
        request: Request,
        user: SignedIn,
        db: Db,
        product_id: FromPath[int],
        data: Annotated[dict[str, Any], _FORM],
    ) -> Template | Redirect:
        """Deactivate (out of every search) or reactivate; the confirmation box must be ticked."""
        active = _truthy(data.get("active"))
        if not _truthy(data.get("confirm")):
            error = {
                "field": "confirm",
                "message": "Nothing changed: tick the box to confirm, then press the button again.",
            }
            return await self._product_page(request, user, db, product_id, 422, error=error)
        note = "Reactivated: customers can find it again." if active else "Deactivated: no search shows it now."
        return await self._edit(request, user, db, product_id, note, active=active)
