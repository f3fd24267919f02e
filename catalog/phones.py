"""Phone numbers as people type them, checked for a country and stored in E.164 (`phonenumbers`,
Google's libphonenumber data). One check for every form that asks for a number (operator
applications, delivery addresses, vendor stores), so a number is refused for the same reasons
everywhere. It lives in `catalog` (the bottom layer) so vendor-side code in `catalog_ingest` can
use it too; `workflow.phones` re-exports it."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "its country code is not valid",
    ValidationResult.TOO_SHORT: "it is too short",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "it is too short (a local number: add the area code)",
    ValidationResult.INVALID_LENGTH: "it has the wrong number of digits",
    ValidationResult.TOO_LONG: "it is too long",
}


class PhoneInvalid(ValueError):
    """A number that cannot be dialled; the message says why, in the customer's terms."""


def to_e164(raw: str, region: str) -> str:
    """`raw` as dialled in `region` (ISO 3166 alpha-2), in E.164; PhoneInvalid saying why not."""
    try:
        number = phonenumbers.parse((raw or "").strip(), region)
    except NumberParseException as exc:
        raise PhoneInvalid(f"The phone number cannot be read: {exc._msg}") from None
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        reason = _REASONS.get(possible, "it cannot be a phone number")
        raise PhoneInvalid(f"The phone number is not valid for {region}: {reason}.")
    if not phonenumbers.is_valid_number(number):
        raise PhoneInvalid(f"The phone number is not valid for {region}: no such number is in use there.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_region(code: str) -> bool:
    """Whether `code` is an ISO 3166 alpha-2 region that phone numbers know (upper case, e.g. "DE")."""
    return code in phonenumbers.SUPPORTED_REGIONS
