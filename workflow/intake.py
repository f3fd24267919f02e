"""A customer's request coming in: check the wishes and the photo, search, store, record.

Shared by the upload form and the JSON API, so both refuse the same things with the same words and
keep nothing when they refuse: the photo is written only after the search has worked.
"""

from __future__ import annotations

import asyncio
import functools
from decimal import Decimal

from sqlalchemy.orm import sessionmaker

from catalog.product_search import ProductHit
from catalog.search_service import MAX_K, QueryInput, SearchService
from mail.outbox import Outbox
from vision.errors import ImageRejected
from workflow import rates, requests_service
from workflow.errors import Invalid
from workflow.settings import Settings
from workflow.uploads import check_photo, store_photo

#: With a budget, search this many times the instant matches, so enough remain once it filters.
BUDGET_FETCH = 5


def _default_currency(sessions: sessionmaker) -> str:
    return rates.currency_choices(sessions)[1]


def within_budget(
    sessions: sessionmaker, hits: list[ProductHit], budget: Decimal, currency: str | None, k: int
) -> list[ProductHit]:
    """The first `k` hits not over the budget: priced within it (converted where a rate exists), or
    in a currency without a rate (kept, and labelled by the page)."""
    with sessions() as session:
        table = rates.load_table(session)
    kept = [
        h for h in hits if rates.budget_check(table, h.price, h.currency, budget, currency)["budget_state"] != "over"
    ]
    return kept[:k]


async def submit_request(
    settings: Settings,
    sessions: sessionmaker,
    search: SearchService,
    outbox: Outbox,
    link: str,
    photo_bytes: bytes,
    email: str,
    words: str,
    budget: str,
    budget_currency: str = "",
) -> str:
    """The new request's token; `Invalid` or `ImageRejected` (and nothing kept) when it cannot be taken.

    With a budget, the instant matches are the products priced within it: in its currency, or
    converted with a known rate (`workflow.rates`); products whose currency has no rate are kept
    and labelled on the page, never compared as if they were the same money."""
    default = await asyncio.to_thread(_default_currency, sessions) if budget.strip() and not budget_currency else "EUR"
    wishes = requests_service.check_wishes(email, words, budget, budget_currency, default)
    photo = await asyncio.to_thread(check_photo, photo_bytes, settings.max_upload_bytes, settings.max_upload_pixels)
    k = settings.instant_matches
    fetch = min(MAX_K, k * BUDGET_FETCH) if wishes.budget is not None else k  # room for what the budget leaves out
    try:
        hits = await search.search(QueryInput(image_bytes=photo.jpeg, text=wishes.words or None, k=fetch))
    except ImageRejected:
        raise
    except ValueError as exc:
        raise Invalid(f"We could not search with this: {exc}.") from None
    if wishes.budget is not None:
        hits = await asyncio.to_thread(within_budget, sessions, hits, wishes.budget, wishes.budget_currency, k)
    await asyncio.to_thread(store_photo, settings.workspace, photo)
    created = await asyncio.to_thread(
        functools.partial(requests_service.create_request, mails_per_hour=settings.mails_per_address_hour),
        sessions,
        wishes,
        photo,
        hits,
        outbox,
        link,
        settings.secret_key,
    )
    return created.token
