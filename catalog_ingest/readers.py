"""Catalog readers: CSV, JSONL and Parquet files (or one of them inside a zip), streamed in batches.

Every reader yields `RawRecord`s in file order with a 1-based record number (the first data row is
record 1). Values arrive as strings; a record that cannot be parsed at all (a CSV line with the
wrong number of fields, invalid UTF-8, a JSONL line that is not a JSON object) becomes a record
with `problem` set, so it is reported without stopping the file.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from catalog_ingest.errors import CatalogError

CATALOG_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
MAX_JSONL_LINE = 8 * 2**20
BATCH_ROWS = 512
PYTHON_ROWS = 1024  # rows of a parsed block turned into Python values at a time


@dataclass
class RawRecord:
    number: int | None
    values: dict[str, object] = field(default_factory=dict)
    problem: str | None = None
    line: int | None = None


@dataclass
class OpenCatalog:
    """An opened catalog: its headers, its records, and where its images live."""

    path: Path
    format: str
    headers: list[str]
    records: Iterator[RawRecord]
    zip_file: zipfile.ZipFile | None = None
    root: Path | None = None  # folder that relative image paths are resolved in (not for zips)
    scratch: Path | None = None  # a zipped Parquet file, copied out to be read; removed on close

    def close(self) -> None:
        if self.zip_file is not None:
            self.zip_file.close()
        if self.scratch is not None:
            self.scratch.unlink(missing_ok=True)


def open_catalog(path: Path) -> OpenCatalog:
    """Open a catalog file or a zip holding one; refuse unknown formats before reading any record."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"No catalog file at {path}.")
    if zipfile.is_zipfile(path) or path.suffix.lower() == ".zip":
        return _open_zip(path)
    kind = CATALOG_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise CatalogError(
            f"Unknown catalog format {path.suffix or '(no extension)'!r}: expected CSV (.csv, .tsv), JSONL (.jsonl) "
            "or Parquet (.parquet), or a .zip holding one of them with its images."
        )
    headers, records = _READERS[kind](lambda: path.open("rb"))
    return OpenCatalog(path, kind, headers, records, root=path.parent)


def count_records(path: Path) -> int:
    """Records in a catalog, for progress and ETA: free for Parquet, one quick pass otherwise."""
    if Path(path).suffix.lower() == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    opened = open_catalog(path)
    try:
        return sum(1 for _ in opened.records)
    finally:
        opened.close()


#: What a damaged, encrypted or oddly compressed zip raises while it is opened or read.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error)


def _open_zip(path: Path) -> OpenCatalog:
    """The one catalog file inside a zip; a zip that cannot be read is a `CatalogError` saying so."""
    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise CatalogError(f"{path} is not a zip file that can be read ({exc}).") from exc
    try:
        return _catalog_in_zip(path, archive)
    except _ZIP_ERRORS as exc:  # e.g. a password-protected member: "File ... is encrypted"
        archive.close()
        raise CatalogError(f"The catalog inside {path} cannot be read ({exc}).") from exc


def _catalog_in_zip(path: Path, archive: zipfile.ZipFile) -> OpenCatalog:
    candidates = [
        info
        for info in archive.infolist()
        if not info.is_dir()
        and Path(info.filename).suffix.lower() in CATALOG_SUFFIXES
        and "__MACOSX" not in info.filename
    ]
    if len(candidates) != 1:
        names = ", ".join(i.filename for i in candidates) or "none"
        archive.close()
        raise CatalogError(f"A catalog zip must hold exactly one CSV, JSONL or Parquet file; {path} holds: {names}.")
    member = candidates[0]
    kind = CATALOG_SUFFIXES[Path(member.filename).suffix.lower()]
    if kind != "parquet":
        headers, records = _READERS[kind](lambda: archive.open(member))
        return OpenCatalog(path, kind, headers, records, zip_file=archive)
    # Parquet is read by seeking (footer first, then row groups): copied out to a scratch file, a
    # stream at a time, rather than read whole into memory or re-inflated from the start at each seek.
    with (
        tempfile.NamedTemporaryFile(prefix="vitrine-catalog-", suffix=".parquet", delete=False) as scratch,
        archive.open(member) as packed,
    ):
        shutil.copyfileobj(packed, scratch, 1 << 20)
    scratch_path = Path(scratch.name)
    try:
        headers, records = _READERS[kind](lambda: scratch_path.open("rb"))
    except CatalogError:
        scratch_path.unlink(missing_ok=True)
        archive.close()
        raise
    return OpenCatalog(path, kind, headers, records, zip_file=archive, scratch=scratch_path)


def _csv(opener) -> tuple[list[str], Iterator[RawRecord]]:  # type: ignore[no-untyped-def]
    with opener() as handle:
        sample = handle.read(65536)
    if sample.startswith(b"\xef\xbb\xbf"):
        sample = sample[3:]
    text = sample.decode("utf-8", errors="replace")
    if not text.strip():
        raise CatalogError("The catalog file is empty.")
    delimiter = _delimiter(text)
    headers = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    headers = [h.strip() for h in headers]
    if len(set(headers)) != len(headers):
        raise CatalogError(f"The catalog repeats column names: {headers}.")
    return headers, _csv_records(opener, headers, delimiter)


DELIMITERS = ",;\t|"


def _delimiter(sample: str) -> str:
    """The delimiter among `DELIMITERS` that splits the header into the most columns while the first
    rows split into as many: the header alone can mislead (`sku;title;price (EUR, incl. VAT)`)."""
    lines = sample.splitlines(keepends=True)
    if len(sample) >= 65536 and len(lines) > 1:
        lines = lines[:-1]  # the sample may end mid-row
    head = "".join(lines[:200])

    def score(delimiter: str) -> tuple[float, int]:
        rows = [row for row in csv.reader(io.StringIO(head), delimiter=delimiter) if row][:21]
        if not rows or len(rows[0]) < 2:
            return (0.0, 0)
        width = len(rows[0])
        agreeing = sum(len(row) == width for row in rows[1:]) / max(len(rows) - 1, 1)
        return (agreeing, width)

    best = max(DELIMITERS, key=score)
    return best if score(best)[1] >= 2 else ","


def _csv_records(opener, headers: list[str], delimiter: str) -> Iterator[RawRecord]:  # type: ignore[no-untyped-def]
    skipped: list[RawRecord] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        skipped.append(
            RawRecord(
                number=None,
                line=row.number,
                problem=f"malformed CSV record: expected {row.expected_columns} fields, found {row.actual_columns}",
            )
        )
        return "skip"

    with opener() as handle:
        reader = pacsv.open_csv(
            handle,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 20, column_names=headers, skip_rows=1),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.binary() for h in headers},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        number = 0
        for block in _batches(reader):
            yield from skipped
            skipped.clear()
            # A block (1 MB of text) is tens of thousands of short rows: turned into Python objects a
            # slice at a time, so memory does not depend on how many rows fill a block.
            for start in range(0, block.num_rows, PYTHON_ROWS):
                batch = block.slice(start, PYTHON_ROWS)
                columns = {name: batch.column(i).to_pylist() for i, name in enumerate(batch.schema.names)}
                for i in range(batch.num_rows):
                    number += 1
                    try:
                        values = {name: (col[i] or b"").decode("utf-8") for name, col in columns.items()}
                        yield RawRecord(number, values)
                    except UnicodeDecodeError:
                        yield RawRecord(number, problem="the record is not valid UTF-8 text")
        yield from skipped


def _batches(reader: pacsv.CSVStreamingReader) -> Iterator[pa.RecordBatch]:
    """Record batches; a file that stops parsing part-way becomes a `CatalogError` with Arrow's reason."""
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError) as exc:
            raise CatalogError(f"The CSV file cannot be parsed past this point: {exc}") from None


def _jsonl(opener) -> tuple[list[str], Iterator[RawRecord]]:  # type: ignore[no-untyped-def]
    headers: list[str] = []
    with opener() as handle:
        for raw in _lines(handle):
            try:
                first = json.loads(raw)
            except ValueError:
                continue
            if isinstance(first, dict):
                headers = list(first)
                break
    if not headers:
        raise CatalogError("The JSONL catalog holds no JSON object lines.")
    return headers, _jsonl_records(opener)


def _jsonl_records(opener) -> Iterator[RawRecord]:  # type: ignore[no-untyped-def]
    with opener() as handle:
        number = 0
        for raw in _lines(handle):
            if not raw.strip():
                continue
            number += 1
            if len(raw) > MAX_JSONL_LINE:
                yield RawRecord(number, problem=f"line longer than {MAX_JSONL_LINE // 2**20} MB")
                continue
            try:
                value = json.loads(raw)
            except ValueError as exc:
                yield RawRecord(number, problem=f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(value, dict):
                yield RawRecord(number, problem="the line is not a JSON object")
                continue
            yield RawRecord(number, {k: _text(v) for k, v in value.items()})


def _lines(handle: IO[bytes]) -> Iterator[bytes]:
    while True:
        line = handle.readline(MAX_JSONL_LINE + 1)
        if not line:
            return
        if len(line) > MAX_JSONL_LINE and not line.endswith(b"\n"):
            while (rest := handle.readline(MAX_JSONL_LINE)) and not rest.endswith(b"\n"):
                pass  # drop the rest of an overlong line
        yield line.removeprefix(b"\xef\xbb\xbf")


def _text(value: object) -> object:
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    return "" if value is None else value


def _parquet(opener) -> tuple[list[str], Iterator[RawRecord]]:  # type: ignore[no-untyped-def]
    try:
        with opener() as handle:
            headers = pq.ParquetFile(handle).schema_arrow.names
    except (pa.ArrowInvalid, OSError) as exc:
        raise CatalogError(f"The Parquet catalog cannot be read: {exc}") from None
    return list(headers), _parquet_records(opener)


def _parquet_records(opener) -> Iterator[RawRecord]:  # type: ignore[no-untyped-def]
    with opener() as handle:
        number = 0
        for batch in pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                number += 1
                yield RawRecord(number, {k: _text(v) for k, v in row.items()})


_READERS = {"csv": _csv, "jsonl": _jsonl, "parquet": _parquet}
