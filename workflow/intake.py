"""A customer's request coming in: check the wishes and the photo, search, store, record.

Shared by the upload form and the JSON API, so both refuse the same things with the same words and
keep nothing when they refuse: the photo is written only after the search has worked.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import sessionmaker

from catalog.search_service import QueryInput, SearchService
from mail.outbox import Outbox
from vision.errors import ImageRejected
from workflow import requests_service
from workflow.errors import Invalid
from workflow.settings import Settings
from workflow.uploads import check_photo, store_photo


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
) -> str:
    """The new request's token; `Invalid` or `ImageRejected` (and nothing kept) when it cannot be taken."""
    wishes = requests_service.check_wishes(email, words, budget)
    photo = await asyncio.to_thread(check_photo, photo_bytes, settings.max_upload_bytes, settings.max_upload_pixels)
    try:
        hits = await search.search(
            QueryInput(image_bytes=photo.jpeg, text=wishes.words or None, k=settings.instant_matches)
        )
    except ImageRejected:
        raise
    except ValueError as exc:
        raise Invalid(f"We could not search with this: {exc}.") from None
    await asyncio.to_thread(store_photo, settings.workspace, photo)
    created = await asyncio.to_thread(requests_service.create_request, sessions, wishes, photo, hits, outbox, link)
    return created.token
