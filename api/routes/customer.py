"""Customer pages: the upload form, the request page (status, matches, offers, messages), accepting
an offer with a card, and the image files. No account: the unguessable link is the key."""

from __future__ import annotations

import secrets

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import File, Redirect

from api.routes.common import notice_redirect, page, request_link, state, to_thread
from catalog.search_service import QueryInput
from vision.errors import ImageRejected
from workflow import offers_service, requests_service
from workflow.errors import Invalid, NotFound
from workflow.uploads import check_photo, image_path, store_photo
from workflow.views import customer_view

ACCEPTED_TYPES = "image/jpeg,image/png,image/webp,image/heic,image/heif,image/avif,image/gif,image/bmp,image/tiff"


@get("/", name="home", include_in_schema=False)
async def home(request: Request) -> object:
    settings = state(request).settings
    return await page(request, "index.html", max_bytes=settings.max_upload_bytes, accept=ACCEPTED_TYPES)


async def read_upload(request: Request, upload: object) -> bytes:
    """The uploaded photo's bytes, refused early when missing or over the limit."""
    limit = state(request).settings.max_upload_bytes
    if upload is None or isinstance(upload, str) or not hasattr(upload, "read"):
        raise Invalid("Please choose a photo of the product, or take one (no file was sent).")
    data = await upload.read(limit + 1)  # type: ignore[attr-defined]
    if len(data) > limit:
        raise ImageRejected(f"The file is too large; the limit is {limit / 1e6:.0f} MB. Please send a smaller photo.")
    if not data and not getattr(upload, "filename", ""):
        raise Invalid("Please choose a photo of the product, or take one (no file was sent).")
    if not data:
        raise Invalid("The photo file is empty (0 bytes); please choose the photo again.")
    return data


def _chosen_photo(form) -> object:  # type: ignore[no-untyped-def]
    """The file from the picker, else the one from the camera input (browsers send both fields)."""
    for name in ("photo", "photo_camera"):
        upload = form.get(name)
        if upload is not None and not isinstance(upload, str) and getattr(upload, "filename", ""):
            return upload
    return form.get("photo")


async def create_from_upload(request: Request, data: bytes, email: str, words: str, budget: str) -> str:
    """Check, search, store, record: returns the new request's token. Nothing is kept on refusal."""
    st = state(request)
    wishes = requests_service.check_wishes(email, words, budget)
    photo = await to_thread(check_photo, data, st.settings.max_upload_bytes, st.settings.max_upload_pixels)
    try:
        hits = await st.search.search(
            QueryInput(image_bytes=photo.jpeg, text=wishes.words or None, k=st.settings.instant_matches)
        )
    except ValueError as exc:
        if isinstance(exc, ImageRejected):
            raise
        raise Invalid(f"We could not search with this: {exc}.") from None
    await to_thread(store_photo, st.settings.workspace, photo)
    created = await to_thread(
        requests_service.create_request, st.sessions, wishes, photo, hits, st.outbox, request_link(request)
    )
    return created.token


@post("/requests", name="create_request", include_in_schema=False)
async def create_request_form(request: Request) -> Redirect:
    form = await request.form()
    data = await read_upload(request, _chosen_photo(form))
    token = await create_from_upload(
        request, data, form.get("email") or "", form.get("words") or "", form.get("budget") or ""
    )
    return Redirect(f"/r/{token}", status_code=303)


@get("/r/{token:str}", name="request_page", include_in_schema=False)
async def request_page(request: Request, token: FromPath[str]) -> object:
    st = state(request)
    await to_thread(offers_service.expire_offers, st.sessions, token)

    def load() -> dict:
        with st.sessions() as session:
            return customer_view(session, requests_service.load_by_token(session, token))

    view = await to_thread(load)
    return await page(request, "request.html", r=view, idempotency_key=secrets.token_urlsafe(16))


@post("/r/{token:str}/offers/{offer_id:int}/accept", name="accept_offer", include_in_schema=False)
async def accept_offer(request: Request, token: FromPath[str], offer_id: FromPath[int]) -> Redirect:
    st = state(request)
    form = await request.form()
    key = form.get("idempotency_key") or secrets.token_urlsafe(16)
    await to_thread(
        offers_service.accept_offer,
        st.sessions,
        st.payments,
        token,
        offer_id,
        form.get("card_number") or "",
        key,
        st.outbox,
    )
    return notice_redirect(
        request,
        f"/r/{token}",
        "Thank you: the offer is accepted and your card is authorised. It is charged when the order ships.",
    )


@post("/r/{token:str}/offers/{offer_id:int}/decline", name="decline_offer", include_in_schema=False)
async def decline_offer(request: Request, token: FromPath[str], offer_id: FromPath[int]) -> Redirect:
    await to_thread(offers_service.decline_offer, state(request).sessions, token, offer_id)
    return Redirect(f"/r/{token}", status_code=303)


@post("/r/{token:str}/messages", name="customer_message", include_in_schema=False)
async def customer_message(request: Request, token: FromPath[str]) -> Redirect:
    form = await request.form()
    something_else = form.get("something_else") == "1"
    await to_thread(
        requests_service.add_message, state(request).sessions, token, form.get("body") or "", something_else
    )
    return Redirect(f"/r/{token}", status_code=303)


@post("/r/{token:str}/cancel", name="cancel_request", include_in_schema=False)
async def cancel_request(request: Request, token: FromPath[str]) -> Redirect:
    await to_thread(requests_service.cancel, state(request).sessions, token)
    return Redirect(f"/r/{token}", status_code=303)


@get("/images/{name:str}", name="image", include_in_schema=False)
async def image(request: Request, name: FromPath[str]) -> File:
    """A stored image by its sha256 name; anything that is not exactly `<64 hex>.jpg` is not found."""
    stem = name[:-4] if name.endswith(".jpg") else ""
    path = image_path(state(request).settings.workspace, stem)
    if path is None:
        raise NotFound("There is no such image.", "It may have been removed from the catalog.")
    return File(
        path,
        media_type="image/jpeg",
        content_disposition_type="inline",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


customer_routes = [
    home,
    create_request_form,
    request_page,
    accept_offer,
    decline_offer,
    customer_message,
    cancel_request,
    image,
]
