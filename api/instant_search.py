"""A plain search service (one query at a time, in a worker thread) with the interface of the
serving search service: photo and/or words, optional crop and filters, ranked product hits."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import anyio
import numpy as np
from sqlalchemy.orm import sessionmaker

from catalog_ingest.catalog_index import CatalogIndex
from catalog_ingest.search import ProductHit, search_products
from catalog_ingest.workspace import Workspace
from index.filters import SearchFilter
from vision.decode import decode_image
from vision.embedder import l2_normalise, open_embedder
from vision.preprocess import preprocess


@dataclass(frozen=True)
class QueryInput:
    image_bytes: bytes | None = None
    text: str | None = None
    crop: tuple[float, float, float, float] | None = None
    search_filter: SearchFilter | None = None
    k: int = 24
    text_weight: float = 0.35


class SearchService:
    def __init__(
        self,
        workspace: Workspace,
        sessions: sessionmaker,
        model: str,
        backend: str = "onnx",
        window_ms: float = 4.0,
        max_batch: int = 16,
    ) -> None:
        self.embedder = open_embedder(model, backend)  # type: ignore[arg-type]
        self.sessions = sessions
        manifest = self.embedder.manifest
        self.index = CatalogIndex(workspace, manifest.model_id, manifest.embed_dim)
        self._lock = threading.Lock()

    async def search(self, query: QueryInput) -> list[ProductHit]:
        return await anyio.to_thread.run_sync(self._search, query)

    def _search(self, query: QueryInput) -> list[ProductHit]:
        text = (query.text or "").strip()
        if query.image_bytes is None and not text:
            raise ValueError("Give a photo, some words, or both.")
        parts: list[tuple[float, np.ndarray]] = []
        with self._lock:
            if query.image_bytes is not None:
                image = decode_image(query.image_bytes)
                if query.crop is not None:
                    x, y, w, h = query.crop
                    width, height = image.size
                    box = (int(x * width), int(y * height), int((x + w) * width), int((y + h) * height))
                    if box[2] - box[0] >= 8 and box[3] - box[1] >= 8:
                        image = image.crop(box)
                pixels = preprocess(image, self.embedder.manifest.preprocess)[None]
                weight = 1.0 - (query.text_weight if text else 0.0)
                parts.append((weight, self.embedder.embed_pixels(pixels)[0]))
            if text:
                weight = query.text_weight if query.image_bytes is not None else 1.0
                parts.append((weight, self.embedder.embed_texts([text])[0]))
            vector = l2_normalise(np.sum([w * v for w, v in parts], axis=0)[None])[0]
            return search_products(self.index, self.sessions, vector, query.k, query.search_filter)

    def close(self) -> None:
        self.index.close()
