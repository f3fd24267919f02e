"""Errors the services raise, each with an HTTP status and a message that says what happened and
what to do. Routes never format these themselves: the app's exception handlers do, as a page or
as JSON."""

from __future__ import annotations


class ServiceError(Exception):
    status_code = 400
    title = "That did not work"
    default_hint = "Go back and try again."

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint


class NotFound(ServiceError):
    status_code = 404
    title = "Not found"
    default_hint = "Check the address, or start from the home page."


class Conflict(ServiceError):
    status_code = 409
    title = "Already changed"
    default_hint = "Reload the page to see the current state."


class Invalid(ServiceError):
    status_code = 422
    title = "Please check what you entered"
    default_hint = "Go back, correct it and send the form again. Nothing was saved."


class Forbidden(ServiceError):
    status_code = 403
    title = "Not allowed"
    default_hint = "Sign in with an account that may do this."


class PaymentFailed(ServiceError):
    status_code = 402
    title = "Payment not completed"
    default_hint = "Nothing was charged. Try another card."


class ClaimConflict(Conflict):
    """Someone else holds the claim; `holder` names them."""

    title = "Someone else is on it"

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message, "Pick another request from the queue.")
        self.holder = holder
