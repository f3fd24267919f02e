"""Confirmed pairs to and from a CSV file with their photos (`vitrine pairs export|import`).

The file is `photo,vendor,sku` (export adds `label,created_at,request` after them). `photo` is a
path relative to the CSV's folder (absolute paths are accepted on import); export writes the
stored photos into `photos/<sha256>.jpg` beside the CSV. Vendor and sku name the product, so a file
moves between installations whose product ids differ.

Import checks each photo as an upload is checked (`workflow.uploads.check_photo`: size, pixel
count, a real image) and stores it the same way; a bad photo, an unknown product or a missing field
rejects that row with a reason and the rest go on. A `label` column, where present, is kept
(offered, accepted, rejected; empty means offered), so an exported file imports as it was; the
three-column file imports every row as `offered`. Pairs are unique per (photo, product, label), so
a second import of the same file adds nothing. A photo already stored here byte for byte under the
name in the file (an export of this very installation) keeps that name, so importing one's own
export adds nothing either.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog.db import Product, Vendor
from catalog.workspace import Workspace
from vision.errors import ImageRejected, ImageTooLarge
from workflow.customer_views import ViewTarget, add_views
from workflow.models import ConfirmedPair, utc
from workflow.pairs import FROM_IMPORT, LABELS, OFFERED, POSITIVE, list_pairs, record_pair
from workflow.uploads import StoredPhoto, check_photo, image_path, store_photo

COLUMNS = ("photo", "vendor", "sku")
EXTRA_COLUMNS = ("label", "created_at", "request")
PHOTOS_FOLDER = "photos"
CHUNK = 64  # rows committed (and made views) together
_SHA_NAME = re.compile(r"^[0-9a-f]{64}$")

Progress = Callable[[int], None]


class PairsFileError(Exception):
    """The whole file cannot be read as pairs (nothing was imported)."""


@dataclass
class ExportSummary:
    path: str
    pairs: int = 0
    photos: int = 0
    missing_photos: int = 0

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ImportSummary:
    path: str
    rows: int = 0
    imported: int = 0
    already_present: int = 0
    rejected: list[dict] = field(default_factory=list)
    views: dict[str, int] = field(default_factory=dict)  # outcome → count; empty without --views
    duration_s: float = 0.0

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "rows": self.rows,
            "imported": self.imported,
            "already_present": self.already_present,
            "rejected": len(self.rejected),
            "views": self.views,
            "duration_s": round(self.duration_s, 2),
            "rejects": self.rejected,
        }


def export_pairs(
    sessions: sessionmaker,
    workspace: Workspace,
    csv_path: Path,
    labels: tuple[str, ...] = LABELS,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write the pairs with `labels` to `csv_path` and their photos to `photos/` beside it. A pair
    whose stored photo is missing is left out (counted)."""
    csv_path = Path(csv_path)
    folder = csv_path.parent / PHOTOS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary(str(csv_path))
    written: set[str] = set()
    temporary = csv_path.with_name(f".{csv_path.name}.tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*COLUMNS, *EXTRA_COLUMNS])
        for done, pair in enumerate(list_pairs(sessions, workspace, labels), 1):
            if pair.photo_path is None:
                summary.missing_photos += 1
            else:
                name = f"{pair.photo_sha256}.jpg"
                if name not in written:
                    target = folder / name
                    if not target.exists():
                        target.write_bytes(pair.photo())
                    written.add(name)
                created = utc(pair.created_at)
                writer.writerow(
                    [
                        f"{PHOTOS_FOLDER}/{name}",
                        pair.vendor,
                        pair.sku,
                        pair.label,
                        created.isoformat(timespec="seconds") if created else "",
                        pair.request_id if pair.request_id is not None else "",
                    ]
                )
                summary.pairs += 1
            if progress:
                progress(done)
    temporary.replace(csv_path)
    summary.photos = len(written)
    return summary


def count_rows(csv_path: Path) -> int:
    """Data rows in the file (for a progress bar's total)."""
    with Path(csv_path).open(newline="", encoding="utf-8-sig") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


def _rows(csv_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; `PairsFileError` when the header lacks a column."""
    try:
        with Path(csv_path).open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            headers = [h.strip().lower() for h in reader.fieldnames or []]
            missing = [c for c in COLUMNS if c not in headers]
            if missing:
                raise PairsFileError(
                    f"{csv_path} needs the columns {', '.join(COLUMNS)} in its header; missing: {', '.join(missing)}"
                )
            reader.fieldnames = headers
            for row in reader:
                yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
    except OSError as exc:
        raise PairsFileError(f"cannot read {csv_path}: {exc.strerror or exc}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise PairsFileError(f"{csv_path} is not a readable CSV file: {exc}") from None


@dataclass(frozen=True)
class _Row:
    line: int
    photo: str
    vendor: str
    sku: str
    label: str


def import_pairs(
    csv_path: Path,
    sessions: sessionmaker,
    workspace: Workspace,
    max_bytes: int,
    max_pixels: int,
    views: ViewTarget | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import the file's pairs (`source` import); with `views`, positive pairs become customer views.

    Raises `PairsFileError` for a file that cannot be read at all; a bad row is a reject, never fatal."""
    began = time.perf_counter()
    csv_path = Path(csv_path)
    summary = ImportSummary(str(csv_path))
    folder = csv_path.resolve().parent
    chunk: list[_Row] = []
    for line, values in _rows(csv_path):
        summary.rows += 1
        row = _Row(line, values.get("photo", ""), values.get("vendor", ""), values.get("sku", ""), "")
        label = (values.get("label") or OFFERED).lower()
        empty = [c for c in COLUMNS if not getattr(row, c)]
        if empty:
            _reject(summary, row, f"missing {', '.join(empty)}")
        elif label not in LABELS:
            _reject(summary, row, f"unknown label {label!r} (one of {', '.join(LABELS)})")
        else:
            chunk.append(_Row(line, row.photo, row.vendor, row.sku, label))
        if len(chunk) >= CHUNK:
            _import_chunk(chunk, folder, sessions, workspace, max_bytes, max_pixels, views, summary)
            chunk = []
        if progress:
            progress(summary.rows)
    if chunk:
        _import_chunk(chunk, folder, sessions, workspace, max_bytes, max_pixels, views, summary)
    if progress:
        progress(summary.rows)
    summary.duration_s = time.perf_counter() - began
    return summary


def _reject(summary: ImportSummary, row: _Row, reason: str) -> None:
    summary.rejected.append(
        {"line": row.line, "photo": row.photo, "vendor": row.vendor, "sku": row.sku, "reason": reason}
    )


def _import_chunk(
    chunk: list[_Row],
    folder: Path,
    sessions: sessionmaker,
    workspace: Workspace,
    max_bytes: int,
    max_pixels: int,
    views: ViewTarget | None,
    summary: ImportSummary,
) -> None:
    positive: list[int] = []
    with sessions() as session:
        for row in chunk:
            found = session.execute(
                select(Product.id, Vendor.name, Product.sku)
                .join(Vendor, Vendor.id == Product.vendor_id)
                .where(Vendor.name == row.vendor, Product.sku == row.sku)
            ).one_or_none()
            if found is None:
                _reject(summary, row, f"unknown product: no sku {row.sku!r} of vendor {row.vendor!r} in the catalog")
                continue
            try:
                sha = _stored_photo(folder, row.photo, workspace, max_bytes, max_pixels)
            except (OSError, ImageRejected) as exc:
                _reject(summary, row, f"photo: {_photo_problem(exc)}")
                continue
            pair = record_pair(
                session,
                photo_sha256=sha,
                product_id=found[0],
                vendor=found[1],
                sku=found[2],
                label=row.label,
                source=FROM_IMPORT,
            )
            session.flush()
            if pair is None:
                summary.already_present += 1
            else:
                summary.imported += 1
            if row.label in POSITIVE:
                positive.append(_pair_id(session, sha, found[0], row.label))
        session.commit()
    if views is not None and positive:
        for outcome in add_views(sessions, views, workspace, positive, "cli:pairs-import"):
            summary.views[outcome.status] = summary.views.get(outcome.status, 0) + 1


def _pair_id(session: Session, sha: str, product_id: int, label: str) -> int:
    return session.scalar(
        select(ConfirmedPair.id).where(
            ConfirmedPair.photo_sha256 == sha, ConfirmedPair.product_id == product_id, ConfirmedPair.label == label
        )
    )


def _stored_photo(folder: Path, name: str, workspace: Workspace, max_bytes: int, max_pixels: int) -> str:
    """Check and store the row's photo like an upload; returns the sha256 it is stored under."""
    path = Path(name).expanduser()
    path = path if path.is_absolute() else folder / path
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the file is over {max_bytes / 1e6:.0f} MB")
    stem = path.stem
    if _SHA_NAME.match(stem):
        here = image_path(workspace, stem)
        if here is not None and here.read_bytes() == data:
            return stem  # this installation's own stored photo, exported: the same photo, the same name
    photo: StoredPhoto = check_photo(data, max_bytes, max_pixels)
    store_photo(workspace, photo)
    return photo.sha256


def _photo_problem(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not a file"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)
