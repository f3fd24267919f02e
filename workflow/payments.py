"""Payment providers, modelled on card payments with manual capture (authorise now, capture on
fulfilment, void an authorisation that lapses, refund after capture). Every money-changing call
carries an idempotency key: repeating a call with the same key returns the first outcome and
never moves money twice.

`TestPaymentProvider` (name "test") is the only built-in provider and it is a fake: no money
moves. Magic card numbers decide the outcome, like a card network's test cards.
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class PaymentOutcome:
    ok: bool
    status: str  # authorised | declined | captured | capture_failed | voided | refunded | failed
    reference: str = ""
    message: str = ""


class PaymentProvider(Protocol):
    name: str
    is_test: bool

    def _state_of(self, reference: str, assumed: str = "authorised") -> str | None:
        """What this process saw happen; a reference from before a restart is taken as `assumed`
        (the database, which the services check first, is the record)."""
        if reference in self._state:
            return self._state[reference]
        return assumed if reference.startswith("test_") else None

    def authorise(self, amount: Decimal, currency: str, card_number: str, idempotency_key: str) -> PaymentOutcome: ...

    def capture(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentOutcome: ...

    def void(self, reference: str, idempotency_key: str) -> PaymentOutcome: ...

    def refund(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentOutcome: ...


APPROVED = "4242424242424242"
DECLINED = "4000000000000002"
DECLINED_AT_CAPTURE = "4000000000000341"
INSUFFICIENT_FUNDS = "4000000000009995"


def clean_card_number(text: str) -> str:
    """Digits only, checked with the Luhn sum; raises ValueError with a message for the customer."""
    digits = re.sub(r"[\s-]", "", text or "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise ValueError("Please enter the card number: 12 to 19 digits (spaces are fine).")
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    if total % 10:
        raise ValueError("This card number is not valid (check for a typing mistake).")
    return digits


class TestPaymentProvider:
    """TEST MODE — no money moves. Outcomes by card number:
    4242424242424242 approved; 4000000000000002 declined; 4000000000009995 declined (insufficient
    funds); 4000000000000341 authorised but declined at capture; any other valid number approved."""

    name = "test"
    is_test = True
    __test__ = False  # a payment provider named "Test…", not a pytest test class

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, str], PaymentOutcome] = {}
        self._state: dict[str, str] = {}  # reference → authorised | captured | voided | refunded
        self.calls: list[tuple[str, str]] = []  # (operation, idempotency key) of calls that moved (fake) money

    def _once(self, operation: str, key: str, run) -> PaymentOutcome:  # type: ignore[no-untyped-def]
        with self._lock:
            known = self._by_key.get((operation, key))
            if known is not None:
                return known
            outcome = run()
            self._by_key[(operation, key)] = outcome
            if outcome.ok:
                self.calls.append((operation, key))
            return outcome

    def _state_of(self, reference: str, assumed: str = "authorised") -> str | None:
        """What this process saw happen; a reference from before a restart is taken as `assumed`
        (the database, which the services check first, is the record)."""
        if reference in self._state:
            return self._state[reference]
        return assumed if reference.startswith("test_") else None

    def authorise(self, amount: Decimal, currency: str, card_number: str, idempotency_key: str) -> PaymentOutcome:
        def run() -> PaymentOutcome:
            if card_number == DECLINED:
                return PaymentOutcome(False, "declined", message="The card was declined by its issuer.")
            if card_number == INSUFFICIENT_FUNDS:
                return PaymentOutcome(False, "declined", message="The card was declined: insufficient funds.")
            # The reference carries the capture outcome, so a restarted server still knows it.
            kind = "nocap" if card_number == DECLINED_AT_CAPTURE else "auth"
            reference = f"test_{kind}_{secrets.token_hex(8)}"
            self._state[reference] = "authorised"
            return PaymentOutcome(True, "authorised", reference, f"{amount} {currency} authorised (test mode).")

        return self._once("authorise", idempotency_key, run)

    def capture(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentOutcome:
        def run() -> PaymentOutcome:
            if self._state_of(reference) != "authorised":
                return PaymentOutcome(False, "failed", reference, "There is no open authorisation to capture.")
            if reference.startswith("test_nocap_"):
                return PaymentOutcome(False, "capture_failed", reference, "The card issuer declined the capture.")
            self._state[reference] = "captured"
            return PaymentOutcome(True, "captured", reference, f"{amount} captured (test mode).")

        return self._once("capture", idempotency_key, run)

    def void(self, reference: str, idempotency_key: str) -> PaymentOutcome:
        def run() -> PaymentOutcome:
            if self._state_of(reference) != "authorised":
                return PaymentOutcome(False, "failed", reference, "There is no open authorisation to void.")
            self._state[reference] = "voided"
            return PaymentOutcome(True, "voided", reference, "Authorisation released (test mode).")

        return self._once("void", idempotency_key, run)

    def refund(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentOutcome:
        def run() -> PaymentOutcome:
            if self._state_of(reference, "captured") != "captured":
                return PaymentOutcome(False, "failed", reference, "Only a captured payment can be refunded.")
            self._state[reference] = "refunded"
            return PaymentOutcome(True, "refunded", reference, f"{amount} refunded (test mode).")

        return self._once("refund", idempotency_key, run)


def open_provider(name: str) -> PaymentProvider:
    if name == "test":
        return TestPaymentProvider()
    raise ValueError(f"Unknown payment provider {name!r}; the built-in one is 'test'.")
