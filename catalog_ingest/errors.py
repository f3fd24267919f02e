"""Errors of catalog ingest: a whole-file problem stops the run before anything is written."""


class CatalogError(ValueError):
    """The catalog as a whole cannot be read (format, encoding, missing required columns, bad mapping)."""


class ImageUnavailable(ValueError):
    """One image reference could not be turned into bytes (missing, outside the catalog, refused URL)."""
