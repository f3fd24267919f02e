"""Typed errors of the vision core, with messages written for the person who sent the input."""


class ImageRejected(ValueError):
    """An image that cannot be used; the message says what was wrong and what to do."""


class ImageTooLarge(ImageRejected):
    """More bytes or more pixels than the limits allow (a web layer answers 413)."""


class ImageUnsupported(ImageRejected):
    """Not an image in a format we read, such as a PDF or an SVG (a web layer answers 415)."""


class ModelUnavailable(RuntimeError):
    """A model that is not installed here or cannot be fetched; the message says how to get it."""
