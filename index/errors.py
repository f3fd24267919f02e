"""Typed errors of the vector index, each with a message that says what to do."""


class IndexError_(Exception):
    """Base class (the trailing underscore keeps clear of Python's built-in IndexError)."""


class IndexMismatch(IndexError_):
    """An index or vectors of another model or dimension: refusing to mix embedding spaces."""


class IndexCorrupted(IndexError_):
    """Files that fail their checksum or cannot be parsed."""


class IndexNotFound(IndexError_):
    """No saved index at the given place."""
