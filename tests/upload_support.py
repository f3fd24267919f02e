"""Catalog files as a vendor uploads them: a zip holding the catalog and its photos (an upload
carries no folder beside it, so relative image paths must resolve inside the zip)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from catalogs import make_rows, write_csv


def catalog_zip(folder: Path, count: int, start: int = 0, bad_rows: int = 0) -> Path:
    """A zip of `count` good rows (skus SKU-<start>...) and `bad_rows` rows with a price that is no number."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = make_rows(count, start=start)
    for i in range(bad_rows):
        rows.append({**make_rows(1, start=start + count + i)[0], "price": "twelve"})
    csv_path = write_csv(folder / "catalog.csv", rows)
    archive = folder / "catalog.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.write(csv_path, "catalog.csv")
        for row in rows:
            out.write(folder / row["image"], row["image"])
    return archive


def renamed_headers(archive: Path, target: Path, renames: dict[str, str]) -> Path:
    """A copy of a catalog zip whose CSV header names columns the vendor's own way."""
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "catalog.csv":
                header, _, rest = data.partition(b"\n")
                columns = [renames.get(c, c) for c in header.decode().strip().split(",")]
                data = ",".join(columns).encode() + b"\n" + rest
            out.writestr(info.filename, data)
    return target


def staged_upload(site, user_name: str) -> str:  # type: ignore[no-untyped-def]
    """An upload of `user_name`'s vendor waiting on the mapping form (its token), as the page leaves
    one when the file's columns need mapping."""
    from sqlalchemy import select

    from api.controllers.vendor_catalogs import _stage
    from catalog_ingest import jobs
    from workflow.models import User

    with site.sessions() as session:
        vendor_id = session.scalar(select(User.vendor_id).where(User.name == user_name))
    source = io.BytesIO(b"article,name,price,currency,image\nA1,Lamp,10.00,EUR,a.jpg\n")
    upload = jobs.save_upload(site.settings.workspace, source, "theirs.csv")
    return _stage(upload, vendor_id, "theirs.csv", False, jobs.file_headers(upload))
