"""Customer views as a source of `vitrine reembed` (`catalog_ingest.reembed.ReembedSource`).

`catalog_ingest` may not import `workflow` (README, Layout), so the `vitrine` command hands this
source to the re-embed. It re-creates each live view's vector exactly as `write_all_views` does (the
stored photo, cropped as the operator searched it, the product's attributes as they are now), one
chunk at a time and reporting each view it cannot embed, so a re-embed can skip what the new store
has and resume after a crash.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from catalog.db import Product, Vendor
from catalog.ids import VIEW_FLAG
from catalog.workspace import Workspace
from index.filters import ItemAttributes
from vision.embedder import Embedder
from vision.errors import ImageRejected
from vision.micro_batch import load_query_pixels
from workflow.customer_views import BATCH, active_views, attributes_of
from workflow.models import CustomerView
from workflow.uploads import read_photo


class CustomerViews:
    """Live customer views of products still in the catalog (a view of a removed product has no
    attributes to give its vector, and search would drop its hits anyway)."""

    kind = "customer_view"

    def __init__(self, workspace: Workspace, sessions: sessionmaker) -> None:
        self.workspace, self.sessions = workspace, sessions

    def owns(self, ids: np.ndarray) -> np.ndarray:
        return (np.asarray(ids, np.int64) & VIEW_FLAG) != 0

    def wanted(self) -> np.ndarray:
        with self.sessions() as session:
            views = active_views(session)
            listed = set(
                session.scalars(select(Product.id).where(Product.id.in_(sorted({v.product_id for v in views}))))
            )
        return np.sort(np.asarray([v.image_id for v in views if v.product_id in listed], np.int64))

    def embed(self, ids: np.ndarray, embedder: Embedder) -> tuple[np.ndarray, np.ndarray, list, list[dict]]:
        with self.sessions() as session:
            rows = session.execute(
                select(CustomerView.image_id, CustomerView.photo_sha256, CustomerView.crop, Product, Vendor.name)
                .join(Product, CustomerView.product_id == Product.id)
                .join(Vendor, Product.vendor_id == Vendor.id)
                .where(CustomerView.image_id.in_([int(i) for i in ids]), CustomerView.removed_at.is_(None))
                .order_by(CustomerView.image_id)
            ).all()
            views = {
                image: (sha, crop, product.id, product.sku, vendor, attributes_of(product, vendor))
                for image, sha, crop, product, vendor in rows
            }
        failures: list[dict] = []

        def failed(image: int, reason: str) -> None:
            _sha, _crop, product, sku, vendor, _ = views.get(image, ("", None, None, "", "", None))
            failures.append({"image_id": image, "product_id": product, "vendor": vendor, "sku": sku, "reason": reason})

        for image in sorted({int(i) for i in ids} - set(views)):
            failed(image, "removed during the run")
        out_ids: list[int] = []
        pixels: list[np.ndarray] = []
        attributes: list[ItemAttributes] = []
        for image, (sha, crop, _product, _sku, _vendor, attrs) in views.items():
            try:
                photo = read_photo(self.workspace, sha)
            except OSError as exc:
                failed(image, f"the stored photo is unreadable ({exc})")
                continue
            if photo is None:
                failed(image, f"the stored photo is missing ({self.workspace.thumbnail_path(sha)})")
                continue
            try:
                pixels.append(load_query_pixels(photo, embedder, tuple(crop) if crop else None))
            except (ImageRejected, ValueError) as exc:
                failed(image, f"the stored photo cannot be embedded ({exc})")
                continue
            out_ids.append(image)
            attributes.append(attrs)
        vectors = [embedder.embed_pixels(np.stack(pixels[n : n + BATCH])) for n in range(0, len(pixels), BATCH)]
        stacked = np.concatenate(vectors) if vectors else np.empty((0, embedder.manifest.embed_dim), np.float32)
        return np.asarray(out_ids, np.int64), stacked, attributes, failures
