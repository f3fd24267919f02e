"""The project's one phone check, kept importable here for workflow code; it lives in
`catalog.phones` so `catalog_ingest` (which may not import workflow) shares it."""

from __future__ import annotations

from catalog.phones import PhoneInvalid, to_e164

__all__ = ["PhoneInvalid", "to_e164"]
