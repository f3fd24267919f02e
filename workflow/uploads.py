"""Customer photos: checked and decoded before anything is kept, then stored content-addressed
(sha256 of the uploaded bytes) next to the catalog thumbnails, as a bounded JPEG."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from catalog.workspace import Workspace
from vision.decode import DecodeLimits, decode_image

STORED_SIDE = 1024
_IMAGE_NAME = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StoredPhoto:
    sha256: str
    width: int
    height: int
    jpeg: bytes = b""


def check_photo(data: bytes, max_bytes: int, max_pixels: int) -> StoredPhoto:
    """Decode `data` under the limits (raising `ImageRejected`); nothing is written yet.

    A JPEG is decoded with DCT scaling down to what is kept (`STORED_SIDE`), as ingest and search
    decode, so the pixel limit counts the pixels actually decoded: a 48-megapixel phone photo costs
    a 12-megapixel decode at most and is accepted; a 48-megapixel PNG, which cannot be scaled while
    decoding, is still refused."""
    image = decode_image(data, DecodeLimits(max_bytes=max_bytes, max_pixels=max_pixels), draft_size=STORED_SIDE)
    width, height = image.size
    image.thumbnail((STORED_SIDE, STORED_SIDE), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return StoredPhoto(hashlib.sha256(data).hexdigest(), width, height, out.getvalue())


def store_photo(workspace: Workspace, photo: StoredPhoto) -> None:
    workspace.store_thumbnail(photo.sha256, photo.jpeg)


def read_photo(workspace: Workspace, sha256: str) -> bytes | None:
    path = image_path(workspace, sha256)
    return path.read_bytes() if path else None


def image_path(workspace: Workspace, name: str) -> Path | None:
    """The stored file for a sha256 name, or None: only 64 lowercase hex digits are ever a name."""
    if not _IMAGE_NAME.match(name):
        return None
    path = workspace.thumbnail_path(name)
    return path if path.is_file() else None
