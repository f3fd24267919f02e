"""Operator pages: sign-in, the queue, claiming, the workbench (search, offers, messages) and
fulfilment. Every action is a POST with a CSRF token and ends in a redirect (no double submits)."""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from api.routes.common import notice_redirect, page, request_link, require_user, state, to_thread
from workflow import claims, offers_service, requests_service, staff_sessions, users, workbench
from workflow.errors import Invalid
from workflow.views import operator_view

STAFF = ("operator", "admin")


def _safe_next(target: str | None) -> str:
    """Only a local path may follow sign-in (no open redirect to another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return "/operator"
    return target


@get("/login", name="login_form", include_in_schema=False)
async def login_form(request: Request, next: FromQuery[str | None] = None) -> object:
    return await page(request, "login.html", next=_safe_next(next), error=None)


@post("/login", name="login", include_in_schema=False)
async def login(request: Request) -> object:
    form = await request.form()
    user = await to_thread(
        users.authenticate, state(request).sessions, (form.get("name") or "").strip(), form.get("password") or ""
    )
    target = _safe_next(form.get("next"))
    if user is None:
        return await page(
            request, "login.html", status_code=401, next=target, error="The name or the password is not right."
        )
    token = await to_thread(staff_sessions.open_session, state(request).sessions, user)
    if user.role == "vendor":
        target = "/vendor"
    response = Redirect(target, status_code=303)
    response.set_cookie(_staff_cookie(request, token))
    return response


def _staff_cookie(request: Request, value: str, max_age: int | None = None) -> Cookie:
    return Cookie(
        key=staff_sessions.COOKIE,
        value=value,
        path="/",
        httponly=True,
        samesite="lax",
        secure=state(request).settings.secure_cookies,
        max_age=max_age if max_age is not None else int(staff_sessions.LIFETIME.total_seconds()),
    )


@post("/logout", name="logout", include_in_schema=False)
async def logout(request: Request) -> Redirect:
    await to_thread(staff_sessions.close_session, state(request).sessions, request.cookies.get(staff_sessions.COOKIE))
    response = Redirect("/login", status_code=303)
    response.set_cookie(_staff_cookie(request, "", max_age=0))
    return response


@get("/operator", name="queue", include_in_schema=False)
async def queue(request: Request) -> object:
    user = await require_user(request, *STAFF)
    st = state(request)
    await to_thread(claims.expire_claims, st.sessions)
    await to_thread(requests_service.expire_stale, st.sessions, st.settings.request_ttl_hours)
    await to_thread(offers_service.expire_offers, st.sessions)
    await to_thread(
        offers_service.void_lapsed_authorisations, st.sessions, st.payments, st.settings.authorisation_ttl_hours
    )
    rows = await to_thread(claims.open_queue, st.sessions)
    return await page(request, "queue.html", user=user, rows=rows)


@post("/operator/next", name="claim_next", include_in_schema=False)
async def claim_next(request: Request) -> Redirect:
    user = await require_user(request, *STAFF)
    st = state(request)
    request_id = await to_thread(claims.claim_next, st.sessions, user, st.settings.claim_ttl_s)
    if request_id is None:
        return notice_redirect(request, "/operator", "The queue is empty: nothing to claim.")
    return Redirect(f"/operator/requests/{request_id}", status_code=303)


@post("/operator/requests/{request_id:int}/claim", name="claim", include_in_schema=False)
async def claim(request: Request, request_id: FromPath[int]) -> Redirect:
    user = await require_user(request, *STAFF)
    st = state(request)
    await to_thread(claims.claim, st.sessions, request_id, user, st.settings.claim_ttl_s)
    return Redirect(f"/operator/requests/{request_id}", status_code=303)


@get("/operator/requests/{request_id:int}", name="workbench", include_in_schema=False)
async def workbench_page(request: Request, request_id: FromPath[int]) -> object:
    user = await require_user(request, *STAFF)
    st = state(request)
    await to_thread(claims.renew_if_held, st.sessions, request_id, user, st.settings.claim_ttl_s)

    def load() -> dict:
        with st.sessions() as session:
            return operator_view(session, requests_service.load_by_id(session, request_id))

    view = await to_thread(load)
    holds = view["status"] == "claimed" and view["claimed_by"] == user.name
    return await page(
        request,
        "workbench.html",
        user=user,
        r=view,
        holds=holds,
        offer_hours=st.settings.offer_ttl_hours,
        q=view["last_query"],
    )


@post("/operator/requests/{request_id:int}/search", name="refine", include_in_schema=False)
async def refine(request: Request, request_id: FromPath[int]) -> Redirect:
    user = await require_user(request, *STAFF)
    st = state(request)
    form = dict(await request.form())
    how = workbench.parse_refinement(form)
    await to_thread(claims.renew_if_held, st.sessions, request_id, user, st.settings.claim_ttl_s)
    await workbench.refine(st.sessions, st.search, st.settings.workspace, request_id, user, how)
    return Redirect(f"/operator/requests/{request_id}#candidates", status_code=303)


@post("/operator/requests/{request_id:int}/offers", name="send_offers", include_in_schema=False)
async def send_offers(request: Request, request_id: FromPath[int]) -> Redirect:
    user = await require_user(request, *STAFF)
    st = state(request)
    form = await request.form()
    drafts = []
    for value in form.getall("product_id") if hasattr(form, "getall") else [form.get("product_id")]:
        if not value:
            continue
        try:
            product = int(value)
        except ValueError:
            raise Invalid("A picked product is not valid; reload the page.") from None
        drafts.append(
            offers_service.OfferDraft(product, form.get(f"price_{product}") or "", form.get(f"note_{product}") or "")
        )
    try:
        hours = float(form.get("expires_in_hours") or st.settings.offer_ttl_hours)
    except ValueError:
        raise Invalid("The expiry must be a number of hours.") from None
    await to_thread(
        offers_service.send_offers, st.sessions, request_id, user, drafts, hours, st.outbox, request_link(request)
    )
    return notice_redirect(request, f"/operator/requests/{request_id}", f"{len(drafts)} offer(s) sent to the customer.")


@post(
    "/operator/requests/{request_id:int}/offers/{offer_id:int}/withdraw", name="withdraw_offer", include_in_schema=False
)
async def withdraw_offer(request: Request, request_id: FromPath[int], offer_id: FromPath[int]) -> Redirect:
    user = await require_user(request, *STAFF)
    await to_thread(offers_service.withdraw_offer, state(request).sessions, request_id, offer_id, user)
    return Redirect(f"/operator/requests/{request_id}", status_code=303)


@post("/operator/requests/{request_id:int}/messages", name="operator_message", include_in_schema=False)
async def operator_message(request: Request, request_id: FromPath[int]) -> Redirect:
    user = await require_user(request, *STAFF)
    st = state(request)
    form = await request.form()
    await to_thread(
        offers_service.post_operator_message,
        st.sessions,
        request_id,
        user,
        form.get("body") or "",
        st.outbox,
        request_link(request),
    )
    return notice_redirect(request, f"/operator/requests/{request_id}#messages", "Message sent.")


@post("/operator/requests/{request_id:int}/release", name="release", include_in_schema=False)
async def release(request: Request, request_id: FromPath[int]) -> Redirect:
    user = await require_user(request, *STAFF)
    form = await request.form()
    await to_thread(claims.release, state(request).sessions, request_id, user, form.get("reason") or "")
    return notice_redirect(request, "/operator", f"Request {request_id} is back in the queue.")


@post("/operator/requests/{request_id:int}/fulfil", name="fulfil", include_in_schema=False)
async def fulfil(request: Request, request_id: FromPath[int]) -> Redirect:
    user = await require_user(request, *STAFF)
    st = state(request)
    await to_thread(offers_service.fulfil, st.sessions, st.payments, request_id, user, st.outbox)
    return notice_redirect(request, f"/operator/requests/{request_id}", "Payment captured; the request is fulfilled.")


@post("/operator/requests/{request_id:int}/close", name="close", include_in_schema=False)
async def close(request: Request, request_id: FromPath[int]) -> Redirect:
    user = await require_user(request, *STAFF)
    await to_thread(offers_service.close, state(request).sessions, request_id, user)
    return Redirect(f"/operator/requests/{request_id}", status_code=303)


@post("/operator/requests/{request_id:int}/refund", name="refund", include_in_schema=False)
async def refund(request: Request, request_id: FromPath[int]) -> Redirect:
    user = await require_user(request, "admin")
    st = state(request)
    await to_thread(offers_service.refund, st.sessions, st.payments, request_id, user)
    return notice_redirect(request, f"/operator/requests/{request_id}", "The payment was refunded.")


@post("/operator/requests/{request_id:int}/cancel", name="operator_cancel", include_in_schema=False)
async def operator_cancel(request: Request, request_id: FromPath[int]) -> Redirect:
    user = await require_user(request, *STAFF)
    st = state(request)
    form = await request.form()
    await to_thread(
        offers_service.cancel_by_operator,
        st.sessions,
        st.payments,
        request_id,
        user,
        form.get("reason") or "",
        st.outbox,
    )
    return notice_redirect(request, f"/operator/requests/{request_id}", "The request is cancelled.")


operator_routes = [
    operator_cancel,
    login_form,
    login,
    logout,
    queue,
    claim_next,
    claim,
    workbench_page,
    refine,
    send_offers,
    withdraw_offer,
    operator_message,
    release,
    fulfil,
    close,
    refund,
]
