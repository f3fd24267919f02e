"""axe-core on every page of the site, signed in as each kind of person who sees it, in a real
browser. The list of pages is checked against the app's own routes, so a new page without an
accessibility check fails here (`test_every_page_of_the_app_is_in_the_sweep`).

Each page fails on a serious or critical violation (`browser_support.assert_accessible`); the API
docs page skips one rule, for Swagger UI's own markup (see tests/browser/test_api_docs.py)."""

from __future__ import annotations

import re

import pytest
from browser_support import VIEWPORT, assert_accessible
from catalogs import product_photo
from delivery_support import paid_request
from litestar.routes import HTTPRoute
from sqlalchemy import select
from store_support import a11y_store
from upload_support import staged_upload

from access import password_links
from catalog.db import Vendor
from catalog.ids import product_id
from mail.unsubscribe import token_for
from workflow.models import CustomerRequest, User
from workflow.users import add_user

PASSWORD = "correct horse battery staple"

#: GET routes that are not pages people read: files, JSON, redirects that only set a cookie or a state.
NOT_PAGES = re.compile(
    r"^/(api|schema|static|images|metrics|docs/assets)\b|/photo$|/counts$|^/invite/|^/waitlist/verify/"
    r"|\.(csv|json)$"
)


@pytest.fixture(scope="module")
def people(site) -> None:
    """An operator, an admin and a vendor user to see the staff pages as."""
    with site.sessions() as session:
        vendor_id = session.scalar(select(Vendor.id).limit(1))
    add_user(site.sessions, "olive", "operator", PASSWORD)
    add_user(site.sessions, "ada", "admin", PASSWORD)
    add_user(site.sessions, "vera", "vendor", PASSWORD, vendor_id=vendor_id)


def _pages(site) -> dict[str, tuple[str | None, str]]:  # type: ignore[no-untyped-def]
    """Route template → (who signs in, the address to open)."""
    client = site.client()
    created = client.http.post(
        "/api/requests",
        data={"email": "a11y@example.com", "words": "a lamp"},
        files={"photo": ("p.png", product_photo(21), "image/png")},
    )
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    joined = client.http.post("/api/waitlist", json={"email": "wait@example.com"})
    assert joined.status_code in (200, 201), joined.text  # 200: joined already (an earlier test here)
    entry = joined.json()["id"]
    client.close()
    with site.sessions() as session:
        request_id = session.scalar(select(CustomerRequest.id).where(CustomerRequest.email == "a11y@example.com"))
        olive = session.scalar(select(User.id).where(User.name == "olive"))
        link = password_links.issue(session, olive)
        session.commit()
    paid = paid_request(site, "olive", product_photo(22))  # an order, for its receipt page
    return {
        "/": (None, "/"),
        "/login": (None, "/login"),
        "/my-requests": (None, "/my-requests"),
        "/r/{token:str}": (None, f"/r/{token}"),
        "/r/{token:str}/receipt": (None, f"/r/{paid}/receipt"),
        "/waitlist": (None, "/waitlist"),
        "/waitlist/{public_id:str}": (None, f"/waitlist/{entry}"),
        "/apply/operator": (None, "/apply/operator"),
        "/apply/operator/sent": (None, "/apply/operator/sent"),
        "/apply/vendor": (None, "/apply/vendor"),
        "/apply/vendor/sent": (None, "/apply/vendor/sent"),
        "/vendor/team": ("vera", "/vendor/team"),
        "/set-password/{token:str}": (None, f"/set-password/{link}"),
        "/mail/unsubscribe/{token:str}": (
            None,
            f"/mail/unsubscribe/{token_for(site.settings.secret_key, 'x@example.com')}",
        ),
        "/docs": (None, "/docs"),
        "/operator": ("olive", "/operator"),
        "/operator/requests/{request_id:int}": ("olive", f"/operator/requests/{request_id}"),
        "/vendor": ("vera", "/vendor"),
        "/vendor/catalogs": ("vera", "/vendor/catalogs"),
        "/vendor/outbox": ("vera", "/vendor/outbox"),
        "/vendor/orders": ("vera", "/vendor/orders"),
        "/vendor/products": ("vera", "/vendor/products"),
        "/vendor/products/{product_id:int}": ("vera", f"/vendor/products/{product_id('acme', 'SKU-00001')}"),
        "/vendor/catalogs/map/{token:str}": ("vera", f"/vendor/catalogs/map/{staged_upload(site, 'vera')}"),
        "/vendor/stores": ("vera", "/vendor/stores"),
        "/vendor/stores/{code:str}": ("vera", f"/vendor/stores/{a11y_store(site)}"),
        "/admin": ("ada", "/admin"),
        "/admin/applications": ("ada", "/admin/applications"),
        "/admin/waitlist": ("ada", "/admin/waitlist"),
        "/admin/staff": ("ada", "/admin/staff"),
        "/admin/audit": ("ada", "/admin/audit"),
        "/admin/rates": ("ada", "/admin/rates"),
    }


def test_every_page_of_the_app_is_in_the_sweep(site, people) -> None:
    routes = {
        route.path
        for route in site.app.routes
        if isinstance(route, HTTPRoute) and "GET" in route.methods and not NOT_PAGES.search(route.path)
    }
    swept = set(_pages(site))
    assert routes <= swept, f"pages without an accessibility check: {sorted(routes - swept)}"


def test_every_page_passes_axe_core(site, people, chromium) -> None:
    pages = _pages(site)
    failures = []
    contexts = {}
    for who, address in pages.values():
        if who not in contexts:
            contexts[who] = chromium.new_context(viewport=VIEWPORT)
            if who:
                page = contexts[who].new_page()
                page.goto(site.url + "/login")
                page.fill("#name", who)
                page.fill("#password", PASSWORD)
                page.click("#login-submit")
                page.wait_for_load_state()
                page.close()
        page = contexts[who].new_page()
        page.goto(site.url + address)
        if address == "/docs":
            page.locator(".swagger-ui .opblock").first.wait_for()
        try:
            skip = ("nested-interactive",) if address == "/docs" else ()
            assert_accessible(page, f"{address} as {who or 'a visitor'}", skip_rules=skip)
        except AssertionError as failure:
            failures.append(str(failure))
        page.close()
    # The error page too: a request link that does not exist.
    page = contexts[None].new_page()
    page.goto(site.url + "/r/" + "x" * 32)
    try:
        assert_accessible(page, "the 404 page")
    except AssertionError as failure:
        failures.append(str(failure))
    for context in contexts.values():
        context.close()
    assert not failures, "\n\n".join(failures)
