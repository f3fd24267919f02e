"""Rows of a vendor's small CSV files (stores, stock per store), streamed, each bad row reported.

A stock file arrives every few minutes and may hold millions of rows, committed in chunks: a
problem on one line (bytes that are not UTF-8, a NUL character, quoting the CSV reader cannot
follow, more cells than the header) must not stop the file half-way with earlier chunks applied
and later ones not. So only the header can refuse a file; every later problem is that row's
reject, with its line, and the reading goes on. Text is decoded with `surrogateescape`, which
keeps the bad bytes of a line as stand-ins instead of failing the whole stream.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from catalog_ingest.errors import CatalogError

#: NUL, and the stand-ins `surrogateescape` puts for bytes that are not UTF-8.
_BAD_TEXT = re.compile("[\0\udc80-\udcff]")


@dataclass(frozen=True)
class RowProblem:
    """Why a row cannot be read: `kind` counts it among the rejects, `reason` tells the vendor."""

    kind: str
    reason: str


def text_lines(source: Path | bytes | str | IO[bytes]) -> Iterator[str]:
    """Lines of a CSV as text, streamed: a path, bytes, text or a binary file. UTF-8 (a BOM is
    dropped); bytes that are not UTF-8 are kept as stand-ins, for `csv_records` to report."""
    if isinstance(source, Path):
        with source.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
            yield from handle
        return
    if isinstance(source, str):
        yield from io.StringIO(source.lstrip("\ufeff"), newline="")
        return
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    yield from io.TextIOWrapper(source, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _problem(cells: list[str], columns: int) -> RowProblem | None:
    bad = _BAD_TEXT.search("".join(cells))
    if bad is not None and bad.group() == "\0":
        return RowProblem("NUL character", "the line holds a NUL character: it is not CSV text")
    if bad is not None:
        return RowProblem("not UTF-8", "the line is not UTF-8 text (save the file as UTF-8)")
    if len(cells) > columns:
        return RowProblem("too many cells", "the row has more cells than the header")
    return None


def csv_records(
    lines: Iterable[str], required: tuple[str, ...], known: tuple[str, ...]
) -> Iterator[tuple[int, int, dict[str, str], RowProblem | None]]:
    """(row, line, values, problem) of a CSV with a header, streamed; a row with a problem has
    whatever values could be read, with U+FFFD for a NUL or a byte that is not UTF-8 (safe to show
    and to send as JSON). CatalogError when the header is unreadable or lacks a required
    column: the whole file is refused before anything is written. Comma, semicolon or tab."""
    iterator = iter(lines)
    try:
        first = next(iterator)
    except StopIteration:
        raise CatalogError("The file is empty: expected a header line.") from None
    if _BAD_TEXT.search(first):
        raise CatalogError("The file is not UTF-8 text (its header line is not).")
    delimiter = max((",", ";", "\t"), key=first.count)

    def rest() -> Iterator[str]:
        yield first
        yield from iterator

    reader = csv.reader(rest(), delimiter=delimiter)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except csv.Error as exc:
        raise CatalogError(f"The CSV's header cannot be read: {exc}") from None
    missing = [name for name in required if name not in header]
    if missing:
        raise CatalogError(
            f"The header lacks the column(s) {', '.join(missing)}; expected {', '.join(known)} "
            f"(found {', '.join(header) or 'nothing'})."
        )
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader starts afresh on the next line
            row += 1
            yield row, reader.line_num, {}, RowProblem("unreadable", f"the CSV cannot be read here: {exc}")
            continue
        if not cells or (not cells[0].strip() and not any(cell.strip() for cell in cells)):
            continue  # blank lines
        row += 1
        values = {name: (cells[i] if i < len(cells) else "") for i, name in enumerate(header) if name}
        problem = _problem(cells, len(header))
        if problem is not None and problem.kind != "too many cells":  # shown in reports, sent to no database
            values = {name: _BAD_TEXT.sub("\ufffd", value) for name, value in values.items()}
        yield row, reader.line_num, values, problem
