"""E-mail addresses as people type them, made into one spelling per person.

NFKC folds Unicode look-alikes (full-width letters, ligatures) into plain ones, surrounding spaces go,
and the whole address is lower-cased, so `  Joe@Example.COM ` (even typed in full-width letters)
and `joe@example.com` are the same entry. email-validator checks the syntax and refuses special-use
and reserved domains (`.test`, `.invalid`, `localhost`...); deliverability (DNS) is not checked, so
nothing here needs the network.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from access.errors import FieldInvalid

MAX_LENGTH = 254


def normalise_email(raw: str, field: str = "email") -> str:
    """The one spelling of `raw`; `FieldInvalid` naming `field` when it is not a usable address."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        raise FieldInvalid(field, "Please enter your e-mail address.")
    if len(text) > MAX_LENGTH:
        raise FieldInvalid(field, f"The e-mail address is longer than {MAX_LENGTH} characters.")
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise FieldInvalid(
            field, f"The e-mail address is not valid: {exc}", "Check the address and try again."
        ) from None
    return checked.normalized.lower()
