"""Errors the workflow raises: one type per kind of refusal, each with a message that says what
happened and a hint that says what to do. No HTTP here: the web layer maps these types to status
codes (`api.errors`), never the message text."""

from __future__ import annotations


class ServiceError(Exception):
    title = "That did not work"
    default_hint = "Go back and try again."

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint


class NotFound(ServiceError):
    title = "Not found"
    default_hint = "Check the address, or start from the home page."


class Conflict(ServiceError):
    title = "Already changed"
    default_hint = "Reload the page to see the current state."


class Invalid(ServiceError):
    title = "Please check what you entered"
    default_hint = "Go back, correct it and send the form again. Nothing was saved."


class SignInRequired(ServiceError):
    """Staff pages for someone who has not signed in (pages send them to the sign-in form)."""

    title = "Please sign in"
    default_hint = "Use your staff account."


class Forbidden(ServiceError):
    title = "Not allowed"
    default_hint = "Sign in with an account that may do this."


class PaymentFailed(ServiceError):
    title = "Payment not completed"
    default_hint = "Nothing was charged. Try another card."


class ClaimConflict(Conflict):
    """Someone else holds the claim; `holder` names them."""

    title = "Someone else is on it"

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message, "Pick another request from the queue.")
        self.holder = holder


class IdempotencyKeyReused(Invalid):
    """An idempotency key sent again with another body (another card or offer): refused, as payment
    providers do, instead of answering with the first outcome."""

    title = "This idempotency key was used for another payment"
