"""Keep the running app's catalog index current: a vendor's ingest (another process) appends
segments to the vector store; when the store has moved on past what the index holds, the search
service reopens its index. Segments the app wrote itself (customer views, through
`SearchService.write_vectors`) are already in its index and cause no reload. A model switch
(`vitrine learn` promoting or rolling back a version) is noticed the same way and reopens
embedder and index together (`SearchService.needs_refresh`)."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("vitrine.index")


def store_position(search) -> int:  # type: ignore[no-untyped-def]
    return int(search.index.store.last_segment)


def index_behind(search) -> bool:  # type: ignore[no-untyped-def]
    """Whether the store holds segments the serving index has not seen, or the model changed."""
    if hasattr(search, "needs_refresh"):
        return bool(search.needs_refresh())
    index = search.index
    return store_position(search) != getattr(index, "synced_segment", None)


async def watch_index(search, every_s: float) -> None:  # type: ignore[no-untyped-def]
    """Every `every_s` seconds, refresh the index when the store has segments it has not seen."""
    while True:
        await asyncio.sleep(every_s)
        try:
            if await asyncio.to_thread(index_behind, search):
                await asyncio.to_thread(search.refresh_index)
                log.info(
                    "catalog index refreshed (model %s, store segment %s)",
                    getattr(search, "model_id", "?"),
                    search.index.synced_segment,
                )
        except Exception:  # a failed refresh keeps the old index serving; try again next time
            log.exception("catalog index refresh failed")
