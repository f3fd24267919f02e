"""The query path: a photo and/or words in, ranked products out, with embedding micro-batched.

One `SearchService` per server process owns the embedder (behind a `MicroBatchEmbedder`, so
concurrent uploads share inference calls) and the catalog index, and answers `search` from any
number of concurrent requests on the event loop. Index search and the database join run in a
worker thread: FAISS searches are thread-safe, and the loop stays free to accept uploads.

The serving process also writes a few vectors itself: customer views (`workflow.customer_views`),
searchable the moment an operator confirms a photo. They go through `write_vectors`, see there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import sessionmaker

from catalog.catalog_index import CatalogIndex
from catalog.product_search import ProductHit, search_products
from catalog.workspace import Workspace
from index.filters import ItemAttributes, SearchFilter
from index.rwlock import ReadWriteLock
from vision.crop import Crop, validate_crop
from vision.embedder import Backend, l2_normalise, open_embedder
from vision.micro_batch import MicroBatchEmbedder

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
        return QueryInput(image, text, crop, self.search_filter, self.k, self.text_weight)


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
    ) -> None:
        self.workspace = workspace
        self.sessions = sessions
        embedder = open_embedder(model, backend)  # models live under VITRINE_HOME, as for every command
        self.manifest = embedder.manifest
        self.embedder = MicroBatchEmbedder(embedder, window_ms=window_ms, max_batch=max_batch)
        self._index_lock = ReadWriteLock()  # searches read; `refresh_index` swaps the index under the write side
        self._writing = threading.Lock()  # one writer of the index at a time: a refresh or a vector write
        self.index = CatalogIndex(workspace, self.manifest.model_id, self.manifest.embed_dim)

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    async def query_vector(self, query: QueryInput) -> np.ndarray:
        """The unit vector a checked query searches with; photo and words are embedded concurrently."""
        image_part = self.embedder.embed_image(query.image_bytes, query.crop) if query.image_bytes is not None else None
        text_part = self.embedder.embed_text(query.text) if query.text is not None else None
        if image_part is not None and text_part is not None:
            image_vector, text_vector = await asyncio.gather(image_part, text_part)
        else:
            image_vector = await image_part if image_part is not None else None
            text_vector = await text_part if text_part is not None else None
        return combine(image_vector, text_vector, query.text_weight)

    async def search(self, query: QueryInput) -> list[ProductHit]:
        """Ranked products. Raises `ImageRejected` for an unusable photo, `ValueError` for an empty or bad query."""
        query = query.checked()
        vector = await self.query_vector(query)
        return await asyncio.to_thread(self._search_vector, vector, query.k, query.search_filter)

    def _search_vector(self, vector: np.ndarray, k: int, search_filter: SearchFilter | None) -> list[ProductHit]:
        with self._index_lock.read():
            return search_products(self.index, self.sessions, vector, k, search_filter)

    def refresh_index(self) -> None:
        """See what ingests have written since the index was opened (in this process or another).

        The fresh index is opened beside the old one (searches go on meanwhile), swapped in, and the
        old one closed once no search is using it.
        """
        with self._writing:  # a vector written meanwhile would land in the old index and be lost
            fresh = CatalogIndex(self.workspace, self.manifest.model_id, self.manifest.embed_dim)
            with self._index_lock.write():
                old, self.index = self.index, fresh
                old.close()

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
