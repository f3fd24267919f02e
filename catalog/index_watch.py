"""Keep the running app's catalog index current: a vendor's ingest (another process) appends
segments to the vector store; when the store has moved on, the search service reopens its index."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("vitrine.index")


def store_position(search) -> int:  # type: ignore[no-untyped-def]
    return int(search.index.store.last_segment)


async def watch_index(search, every_s: float) -> None:  # type: ignore[no-untyped-def]
    """Poll the store's last segment every `every_s` seconds; refresh the index when it grew."""
    seen = await asyncio.to_thread(store_position, search)
    while True:
        await asyncio.sleep(every_s)
        try:
            now = await asyncio.to_thread(store_position, search)
            if now != seen:
                await asyncio.to_thread(search.refresh_index)
                seen = await asyncio.to_thread(store_position, search)
                log.info("catalog index refreshed (store segment %s)", seen)
        except Exception:  # a failed refresh keeps the old index serving; try again next time
            log.exception("catalog index refresh failed")
