"""Refusals of access with the field they are about, so the JSON API can name it (422 `field`)."""

from __future__ import annotations

from workflow.errors import Forbidden, Invalid


class FieldInvalid(Invalid):
    """What was typed in `field` cannot be used; the message says why."""

    def __init__(self, field: str, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.field = field


class InvitationRequired(Forbidden):
    """Closed beta: sending a photo request needs an invitation."""

    title = "Vitrine is in closed beta"
    default_hint = "Join the waitlist at /waitlist: we e-mail you an invitation when it is your turn."
