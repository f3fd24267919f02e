"""Stored images by name: catalog thumbnails (public, cached for ever) and customer photos (staff only).

Both live content-addressed in one folder, so the name alone says nothing about whose an image is:
an image is public only when a catalog product uses it. Any other stored image is a customer's photo
(a request's, or a customer view's), shown to signed-in operators and admins, never cached by a
shared cache; anyone else gets the same "not found" as for a name that does not exist. The customer
sees their own photo at `/r/{token}/photo`.
"""

from __future__ import annotations

import asyncio

from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response import File
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from api.auth import viewer_of
from api.bearer import bearer_user
from api.dependencies import AppSettings, Db
from catalog.db import ProductImage
from workflow.errors import NotFound
from workflow.uploads import image_path

PUBLIC = {"Cache-Control": "public, max-age=31536000, immutable"}
PRIVATE = {"Cache-Control": "private, no-store"}
STAFF_ROLES = ("operator", "admin")


def is_catalog_image(db: sessionmaker, sha256: str) -> bool:
    with db() as session:
        return session.scalar(select(ProductImage.id).where(ProductImage.sha256 == sha256).limit(1)) is not None


class ImagesController(Controller):
    path = "/images"
    include_in_schema = False

    @get("/{name:str}", name="image")
    async def image(self, request: Request, name: FromPath[str], settings: AppSettings, db: Db) -> File:
        """A stored image by its sha256 name; anything that is not exactly `<64 hex>.jpg` is not found."""
        stem = name[:-4] if name.endswith(".jpg") else ""
        path = image_path(settings.workspace, stem)
        missing = NotFound("There is no such image.", "It may have been removed from the catalog.")
        if path is None:
            raise missing
        if await asyncio.to_thread(is_catalog_image, db, stem):
            headers = PUBLIC
        else:
            viewer = await viewer_of(request) or await bearer_user(request)  # a cookie, or an API token
            if viewer is None or viewer.role not in STAFF_ROLES:
                raise missing
            headers = PRIVATE
        return File(path, media_type="image/jpeg", content_disposition_type="inline", headers=headers)
