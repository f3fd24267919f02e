"""The customer's location on their request page (share a place or the device's position, forget it)
and the request page's nearby extras: stores per match and "in stock within N km"."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.dependencies import AppSettings, Db, Search, Viewer
from api.errors import status_of
from api.forms import FORM
from api.pages import notice_redirect, page
from catalog.search_service import SearchService
from workflow import locations, nearby_view, orders
from workflow.errors import Invalid
from workflow.settings import Settings


@dataclass
class LocationFormBody:
    """The request page's location form: a typed place, or the device's position, or `forget`."""

    place: str = ""
    lat: str = ""
    lon: str = ""
    forget: str = ""


LocationForm = Annotated[LocationFormBody, FORM]


async def nearby_context(
    db: Any, search: SearchService, settings: Settings, token: str, view: dict, within_km: str | None
) -> dict:
    """The request page's extra context: the "in stock within N km" choice and, with one, the
    instant matches searched again with the nearby filter (`filtered`); a bad distance is an error."""
    context: dict[str, Any] = {"within_km": None, "filtered": None}
    if not within_km or not view.get("location"):
        return context
    try:
        km = nearby_view.check_within_km(within_km)
    except Invalid as exc:
        context["nearby_error"] = exc.message
        return context
    context["within_km"] = km
    context["filtered"] = await nearby_view.matches_within(db, search, settings, token, km)
    return context


class NearbyController(Controller):
    include_in_schema = False

    @post("/r/{token:str}/location", name="share_location")
    async def share_location(
        self,
        request: Request,
        token: FromPath[str],
        data: LocationForm,
        db: Db,
        settings: AppSettings,
        search: Search,
        viewer: Viewer,
    ) -> Redirect | Template:
        """Keep the place the customer typed (or their device's position), or forget it."""
        from api.controllers.customer import customer_page_view

        try:
            where = (
                None if data.forget else await asyncio.to_thread(locations.from_form, data.place, data.lat, data.lon)
            )
            if where is None and not data.forget:
                raise locations.LocationInvalid("place", "Type a postcode or a city, or press “Use my location”.")
            await asyncio.to_thread(locations.set_for_token, db, token, where)
        except Invalid as exc:  # the page again with the refusal next to the form and the place as typed
            view = await asyncio.to_thread(customer_page_view, db, token, search.nearby)
            return page(
                request,
                "request.html",
                status_code=status_of(exc),
                user=viewer,
                r=view,
                idempotency_key=secrets.token_urlsafe(16),
                countries=orders.countries(),
                location_error=exc.message,
                typed_place=data.place,
            )
        if where is None:
            return notice_redirect(request, f"/r/{token}#nearby", "Your location is forgotten.")
        return notice_redirect(
            request, f"/r/{token}#nearby", f"Showing stores near {where.label}. You can change or forget it any time."
        )
