"""The vendor's products over the JSON API: `GET /api/vendor/products?page=&q=` pages them with their
counts, `GET`/`PATCH /api/vendor/products/{id}` reads or edits one (price, online stock, active).

Edits go through `catalog_ingest.product_edits`, as the browser's do, so the index sees them at once:
a price filter finds the new price, a deactivated product leaves every search. The vendor is the
token's account's, never a parameter: another vendor's product answers 404 like a missing one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, patch
from litestar.params import FromPath, FromQuery, JSONBody

from api.bearer import EXCEPTION_HANDLERS, SECURITY, bearer_as
from api.controllers.vendor import MISSING, edit_sinks, vendor_of
from api.dependencies import Db, SignedIn
from api.openapi_docs import described, refusals
from catalog_ingest.product_edits import ProductEditRefused, ProductNotFound, edit_product
from workflow import vendor_products
from workflow.errors import Invalid


class FieldRefused(Invalid):
    """A refused body field: the JSON error names it (`field`)."""

    def __init__(self, field: str | None, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.field = field


@dataclass
class Counts:
    """How the product did in the concierge's work."""

    candidate: Annotated[int, described("Requests whose candidates (instant matches or operator searches) listed it")]
    offered: Annotated[int, described("Offers operators sent with it")]
    sold: Annotated[int, described("Paid orders of it")]


@dataclass
class VendorProductOut:
    """One of the vendor's products."""

    id: Annotated[int, described("The product's id (int64)")]
    sku: Annotated[str, described("The vendor's SKU")]
    title: Annotated[str, described("The title")]
    price: Annotated[str, described("The price, a decimal as text, in `currency`")]
    currency: Annotated[str, described("The price's currency, ISO 4217 (fixed by the catalog file)")]
    in_stock: Annotated[bool, described("Online stock: whether it can be ordered (what the `in_stock` filter sees)")]
    active: Annotated[bool, described("False once deactivated: no search shows it until it is reactivated")]
    image_url: Annotated[str | None, described("Its first image's thumbnail, a path under this site; null without one")]
    counts: Annotated[Counts, described("Candidate, offered and sold counts")]


@dataclass
class ProductList:
    """One page of the vendor's products, by title."""

    total: Annotated[int, described("How many products match (all of the vendor's without `q`)")]
    page: Annotated[int, described("This page's number, from 1 (a page past the end answers the last page)")]
    pages: Annotated[int, described("How many pages there are (at least 1)")]
    page_size: Annotated[int, described("Products per page")]
    products: Annotated[list[VendorProductOut], described("The products of this page")]


@dataclass
class ProductPatch:
    """What to change; leave out what stays as it is (at least one field)."""

    price: Annotated[
        str | float | None, described("A new price in the product's currency, e.g. `12.50` or `1,299.00`; above zero")
    ] = None
    in_stock: Annotated[bool | None, described("Online stock: true in stock, false out of stock")] = None
    active: Annotated[bool | None, described("false deactivates (out of every search), true reactivates")] = None


def _out(product: vendor_products.VendorProduct) -> VendorProductOut:
    data = product.to_json()
    return VendorProductOut(**{**data, "counts": Counts(**data["counts"])})


def _list(db: Any, vendor_id: int, page: int, q: str) -> ProductList:
    with db() as session:
        found = vendor_products.product_page(session, vendor_id, page, q)
    return ProductList(found.total, found.page, found.pages, found.page_size, [_out(p) for p in found.products])


def _one(db: Any, vendor_id: int, product_id: int) -> VendorProductOut:
    with db() as session:
        product = vendor_products.vendor_product(session, vendor_id, product_id)
    if product is None:
        raise MISSING
    return _out(product)


class VendorProductsApiController(Controller):
    path = "/api/vendor/products"
    tags = ("vendor",)
    guards = (bearer_as("vendor"),)
    security = SECURITY
    exception_handlers = EXCEPTION_HANDLERS

    @get("/", name="api_vendor_products", responses=refusals(400, 401, 403))
    async def list_products(
        self,
        user: SignedIn,
        db: Db,
        page: Annotated[FromQuery[int], described("The page, from 1")] = 1,
        q: Annotated[FromQuery[str], described("Words of the title or SKU (any case); empty for all")] = "",
    ) -> ProductList:
        """A page of this vendor's products by title, with price, online stock, active and how often
        each was a candidate, offered and sold, plus the total."""
        return await asyncio.to_thread(_list, db, vendor_of(user), page, q)

    @get("/{product_id:int}", name="api_vendor_product", responses=refusals(400, 401, 403, 404))
    async def get_product(self, user: SignedIn, db: Db, product_id: FromPath[int]) -> VendorProductOut:
        """One of this vendor's products; another vendor's is 404."""
        return await asyncio.to_thread(_one, db, vendor_of(user), product_id)

    @patch("/{product_id:int}", name="api_vendor_product_edit", responses=refusals(400, 401, 403, 404, 422))
    async def edit(
        self, request: Request, user: SignedIn, db: Db, product_id: FromPath[int], data: JSONBody[ProductPatch]
    ) -> VendorProductOut:
        """Change price, online stock or active; the index sees it at once (price and stock filters,
        and a deactivated product leaves every search). A bad price is 422 with `field: price`. The
        next ingest of the vendor's catalog file sets price and stock from the file again."""
        vendor_id = vendor_of(user)
        if data.price is None and data.in_stock is None and data.active is None:
            raise FieldRefused(None, "Nothing to change: send price, in_stock or active.")
        if isinstance(data.price, bool):
            raise FieldRefused("price", "price: a number or a decimal as text, e.g. 12.50.")
        price = None if data.price is None else str(data.price)
        try:
            await asyncio.to_thread(
                edit_product,
                db,
                edit_sinks(request),
                vendor_id,
                product_id,
                price=price,
                in_stock=data.in_stock,
                active=data.active,
            )
        except ProductNotFound:
            raise MISSING from None
        except ProductEditRefused as exc:
            raise FieldRefused(exc.field, str(exc), "Nothing was changed.") from None
        return await asyncio.to_thread(_one, db, vendor_id, product_id)
