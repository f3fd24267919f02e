"""Typed errors of the vision core, with messages written for the person who sent the input."""


class ImageRejected(ValueError):
    """An image that cannot be used; the message says what was wrong and what to do."""


class ModelUnavailable(RuntimeError):
    """A model that is not installed here or cannot be fetched; the message says how to get it."""
