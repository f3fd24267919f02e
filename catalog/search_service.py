"""The query path: a photo and/or words in, ranked products out, with embedding micro-batched.

One `SearchService` per server process owns the embedder (behind a `MicroBatchEmbedder`, so
concurrent uploads share inference calls) and the catalog index, and answers `search` from any
number of concurrent requests on the event loop. Index search and the database join run in a
worker thread: FAISS searches are thread-safe, and the loop stays free to accept uploads.

The serving process also writes a few vectors itself: customer views (`workflow.customer_views`),
searchable the moment an operator confirms a photo. They go through `write_vectors`, see there.

The model can change under a running process: `vitrine learn` promotes a learned version (or rolls
one back) by moving the model's active-version pointer (`vision.model_store`). `refresh_index`
notices (`model_switched`), carries over what was written to the previous version's store meanwhile
(`catalog.store_follow.catch_up`), and swaps embedder and index together. A search embedded with
the previous model is searched again with the new one, never against the other model's index.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy.orm import sessionmaker

from catalog.catalog_index import CatalogIndex
from catalog.metrics import MeasuredMicroBatchEmbedder
from catalog.nearby import Location, NearbyStock, check_within_km, nearby_filter
from catalog.product_search import ProductHit, search_products
from catalog.store_follow import catch_up, follow_behind
from catalog.workspace import Workspace
from index.filters import ItemAttributes, SearchFilter
from index.rwlock import ReadWriteLock
from vision.crop import Crop, validate_crop
from vision.decode import UPLOAD_LIMITS, DecodeLimits
from vision.embedder import Backend, l2_normalise, open_embedder
from vision.micro_batch import MicroBatchEmbedder
from vision.model_store import ModelStore

log = logging.getLogger(__name__)

MAX_K = 200
MAX_TEXT_CHARS = 1000


@dataclass(frozen=True)
class QueryInput:
    """One search: a photo, words, or both; an optional crop of the photo; filters; how many products."""

    image_bytes: bytes | None = None  # raw upload; decoded through vision.decode (limits!)
    text: str | None = None
    crop: Crop | None = None  # x, y, w, h as fractions of the image
    search_filter: SearchFilter | None = None
    k: int = 24
    text_weight: float = 0.35  # photo+text: weighted sum of unit vectors, renormalised
    # "Where can I get it nearby" (catalog.nearby): with `near`, every hit lists the stores holding it
    # (within `within_km` when given); `in_stock_nearby` keeps only products held within `within_km`.
    near: Location | None = None
    within_km: float | None = None
    in_stock_nearby: bool = False

    def checked(self) -> QueryInput:
        """This query with its text trimmed, or `ValueError` naming what is wrong."""
        text = (self.text or "").strip() or None
        image = self.image_bytes
        if image is None and text is None:
            raise ValueError("give a photo, some words, or both")
        if text is not None and len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"the words are too long ({len(text)} characters; at most {MAX_TEXT_CHARS})")
        if not 1 <= self.k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}, not {self.k}")
        if not 0.0 <= self.text_weight <= 1.0:
            raise ValueError(f"text_weight must be between 0 and 1, not {self.text_weight}")
        crop = None
        if self.crop is not None:
            if image is None:
                raise ValueError("a crop needs a photo")
            crop = validate_crop(self.crop)
        if self.in_stock_nearby and self.near is None:
            raise ValueError("in_stock_nearby needs near (a place: 'lat,lon')")
        within_km = self.within_km
        if within_km is not None or self.in_stock_nearby:
            within_km = check_within_km(within_km)
        return replace(self, image_bytes=image, text=text, crop=crop, within_km=within_km)


def combine(image_vector: np.ndarray | None, text_vector: np.ndarray | None, text_weight: float) -> np.ndarray:
    """The query vector: either unit vector alone, or their weighted sum renormalised to unit length."""
    if image_vector is None and text_vector is None:
        raise ValueError("nothing to combine")
    if image_vector is None:
        return np.asarray(text_vector, np.float32)
    if text_vector is None:
        return np.asarray(image_vector, np.float32)
    mixed = (1.0 - text_weight) * image_vector + text_weight * text_vector
    return l2_normalise(mixed[None])[0]


class SearchService:
    """Embeds queries (micro-batched) and searches the catalog index of `model` in `workspace`."""

    def __init__(
        self,
        workspace: Workspace,
        sessions: sessionmaker,
        model: str,
        backend: Backend = "onnx",
        window_ms: float = 4.0,
        max_batch: int = 16,
        limits: DecodeLimits = UPLOAD_LIMITS,
    ) -> None:
        self.workspace = workspace
        self.sessions = sessions
        self.model_name, self.backend = model, backend
        # `limits`: the one upload limit, as the app's settings give it (the form and /api/search alike).
        self._batching = {"window_ms": window_ms, "max_batch": max_batch, "limits": limits}
        embedder = open_embedder(model, backend)  # models live under VITRINE_HOME, as for every command
        self.manifest = embedder.manifest
        self.embedder = MeasuredMicroBatchEmbedder(embedder, **self._batching)  # timed: catalog.metrics
        self._index_lock = ReadWriteLock()  # searches read; `refresh_index` swaps the index under the write side
        self._writing = threading.Lock()  # one writer of the index at a time: a refresh or a vector write
        self.generation = 0  # bumped when the model changes: a search embedded before is redone
        # At start-up a missing or corrupt saved index is rebuilt from the vector store and saved, so
        # the next start loads it (a refresh later opens what ingests publish, and repairs nothing).
        self.index = CatalogIndex(workspace, self.manifest.model_id, self.manifest.embed_dim, repair=True)
        self.nearby = NearbyStock(sessions)  # stores and their stock, in memory (catalog.nearby)
        if self.index.repaired:
            log.warning("rebuilt the saved index of %s from the vector store: %s", self.model_id, self.index.repaired)

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    async def query_vector(self, query: QueryInput) -> np.ndarray:
        """The unit vector a checked query searches with; photo and words are embedded concurrently."""
        return await self._query_vector(self.embedder, query)

    @staticmethod
    async def _query_vector(embedder: MicroBatchEmbedder, query: QueryInput) -> np.ndarray:
        image_part = embedder.embed_image(query.image_bytes, query.crop) if query.image_bytes is not None else None
        text_part = embedder.embed_text(query.text) if query.text is not None else None
        if image_part is not None and text_part is not None:
            image_vector, text_vector = await asyncio.gather(image_part, text_part)
        else:
            image_vector = await image_part if image_part is not None else None
            text_vector = await text_part if text_part is not None else None
        return combine(image_vector, text_vector, query.text_weight)

    async def search(self, query: QueryInput) -> list[ProductHit]:
        """Ranked products. Raises `ImageRejected` for an unusable photo, `ValueError` for an empty or bad query."""
        query = query.checked()
        while True:
            generation, embedder = self.generation, self.embedder
            try:
                vector = await self._query_vector(embedder, query)
            except RuntimeError:  # its micro-batcher closed by a model switch: embed with the new model
                if generation == self.generation:
                    raise
                continue
            hits = await asyncio.to_thread(self._search_nearby, vector, query, generation)
            if hits is not None:
                return hits

    def _search_nearby(self, vector: np.ndarray, query: QueryInput, generation: int) -> list[ProductHit] | None:
        """`_search_vector` with the nearby options of a checked query: the filter, then the stores."""
        if query.near is None:
            return self._search_vector(vector, query.k, query.search_filter, generation)
        stock = self.nearby.current()
        search_filter = query.search_filter
        if query.in_stock_nearby:
            search_filter = nearby_filter(stock, query.near, query.within_km or 0.0, search_filter)
        hits = self._search_vector(vector, query.k, search_filter, generation)
        if hits is None:
            return None
        found = stock.stores_for([hit.product_id for hit in hits], query.near, query.within_km)
        return [replace(hit, stores=tuple(found.get(hit.product_id, ()))) for hit in hits]

    def _search_vector(
        self, vector: np.ndarray, k: int, search_filter: SearchFilter | None, generation: int | None = None
    ) -> list[ProductHit] | None:
        """The hits, or None when the model changed since the vector was embedded (`generation`)."""
        with self._index_lock.read():
            if generation is not None and generation != self.generation:
                return None
            return search_products(self.index, self.sessions, vector, k, search_filter)

    def model_switched(self) -> bool:
        """Whether the model's active version (`vitrine learn`) is no longer the one serving here."""
        active = ModelStore().active_version(self.model_name)
        return active is not None and active != self.manifest.name

    def needs_refresh(self) -> bool:
        """Whether `refresh_index` has anything to do: another model version, or vectors written
        elsewhere (an ingest's segments, or the store this version follows having moved on)."""
        index = self.index
        return (
            self.model_switched()
            or index.store.last_segment != getattr(index, "synced_segment", None)
            or follow_behind(self.workspace, self.manifest.model_id)
        )

    def refresh_index(self) -> None:
        """See what ingests have written since the index was opened (in this process or another).

        The fresh index is opened beside the old one (searches go on meanwhile), swapped in, and the
        old one closed once no search is using it. When the model's active version changed, the new
        version's embedder and index replace both at once (see the module docstring).
        """
        with self._writing:  # a vector written meanwhile would land in the old index and be lost
            if self.model_switched():
                self._switch_model()
                return
            catch_up(self.workspace, self.manifest.model_id, self.manifest.embed_dim, own_writes=True)
            fresh = CatalogIndex(self.workspace, self.manifest.model_id, self.manifest.embed_dim)
            with self._index_lock.write():
                old, self.index = self.index, fresh
                old.close()

    def _switch_model(self) -> None:
        """Open the active version, bring its store up to date, and swap embedder and index (under `_writing`)."""
        embedder = open_embedder(self.model_name, self.backend)
        manifest = embedder.manifest
        catch_up(self.workspace, manifest.model_id, manifest.embed_dim, own_writes=True)
        fresh = CatalogIndex(self.workspace, manifest.model_id, manifest.embed_dim)
        batching = MeasuredMicroBatchEmbedder(embedder, **self._batching)
        with self._index_lock.write():
            old_index, old_embedder = self.index, self.embedder
            self.index, self.embedder, self.manifest = fresh, batching, manifest
            self.generation += 1
            old_index.close()
        old_embedder.close()  # finishes what it has queued; later callers see the new generation

    def write_vectors(self, ids: np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes]) -> None:
        """Add or replace vectors (customer views) in the serving index: searchable at once, kept on restart.

        `CatalogIndex.write` appends them to the Parquet vector store first (an fsynced segment: the
        source of truth, which a restarted process replays on top of the saved index) and then to the
        index in memory. The saved index is not rewritten here: that is `publish_index`'s job, the one
        writer of the saved format, run at the end of every ingest (it folds these rows in with the
        rest). The store takes appends from several processes (a file lock numbers the segments), so
        an ingest running meanwhile loses nothing either.

        Searches wait while the vectors go in (the write side of the lock): an index growing past the
        flat kind is rebuilt and swapped inside `CatalogIndex.write`, which a search must not straddle.
        """
        with self._writing, self._index_lock.write():
            self.index.write(np.asarray(ids, np.int64), np.asarray(vectors, np.float32), attributes)

    def remove_vectors(self, ids: np.ndarray) -> None:
        """Delete vectors (a wrong customer view) from the serving index and its store (a tombstone)."""
        with self._writing, self._index_lock.write():
            self.index.remove(np.asarray(ids, np.int64))

    def close(self) -> None:
        self.embedder.close()
        with self._index_lock.write():
            self.index.close()
