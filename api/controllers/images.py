"""Stored images by name: catalog thumbnails and customer photos."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath
from litestar.response import File

from api.dependencies import AppSettings
from workflow.errors import NotFound
from workflow.uploads import image_path


class ImagesController(Controller):
    path = "/images"
    include_in_schema = False

    @get("/{name:str}", name="image", sync_to_thread=True)
    def image(self, name: FromPath[str], settings: AppSettings) -> File:
        """A stored image by its sha256 name; anything that is not exactly `<64 hex>.jpg` is not found."""
        stem = name[:-4] if name.endswith(".jpg") else ""
        path = image_path(settings.workspace, stem)
        if path is None:
            raise NotFound("There is no such image.", "It may have been removed from the catalog.")
        return File(
            path,
            media_type="image/jpeg",
            content_disposition_type="inline",
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )
