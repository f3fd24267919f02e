"""Payment providers, modelled on card payments with manual capture (authorise now, capture on
fulfilment, void an authorisation that lapses, refund after capture). Every money-changing call
carries an idempotency key: repeating a call with the same key returns the first outcome and
never moves money twice, and `find_authorisation` tells what became of an `authorise` call by its
key, which is how a payment whose answer was lost (a timeout, a crash) is settled afterwards
(`workflow.payment_saga`).

A provider answers with a `PaymentOutcome`; one that cannot answer raises (any exception; a
timeout or a connection error for a real one, `ProviderUnavailable` for the test provider).

`TestPaymentProvider` (name "test") is the only built-in provider and it is a fake: no money
moves. Magic card numbers decide the outcome, like a card network's test cards. Its ledger lives
in memory, or in a SQLite file (`ledger=`) so that, like a real provider, it still knows every
authorisation after the app restarts; the app keeps that file in the data folder.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class PaymentOutcome:
    ok: bool
    status: str  # authorised | declined | captured | capture_failed | voided | refunded | failed
    reference: str = ""
    message: str = ""


class ProviderUnavailable(Exception):
    """The provider did not answer (a timeout, a refused connection): whether the call took effect
    is unknown until `find_authorisation` (or a repeat with the same idempotency key) tells."""


class PaymentProvider(Protocol):
    name: str
    is_test: bool

    def authorise(self, amount: Decimal, currency: str, card_number: str, idempotency_key: str) -> PaymentOutcome: ...

    def capture(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentOutcome: ...

    def void(self, reference: str, idempotency_key: str) -> PaymentOutcome: ...

    def refund(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentOutcome: ...

    def find_authorisation(self, idempotency_key: str) -> PaymentOutcome | None:
        """The authorisation made by `authorise(..., idempotency_key)` with its status now
        (authorised, captured, voided, refunded; declined or failed when it was refused), or None
        when the provider never received that call."""
        ...


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


_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    operation TEXT NOT NULL, idempotency_key TEXT NOT NULL, parameters TEXT NOT NULL,
    ok INTEGER NOT NULL, status TEXT NOT NULL, reference TEXT NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (operation, idempotency_key));
CREATE TABLE IF NOT EXISTS holds (reference TEXT PRIMARY KEY, state TEXT NOT NULL);
"""


class TestPaymentProvider:
    """TEST MODE — no money moves. Outcomes by card number:
    4242424242424242 approved; 4000000000000002 declined; 4000000000009995 declined (insufficient
    funds); 4000000000000341 authorised but declined at capture; any other valid number approved.
    Like a real provider it refuses an amount that is not positive, and a repeated idempotency key
    with other parameters.

    For tests of what happens around the provider (still the same fake, labelled as such):
    `fail_next` makes the next calls of an operation not answer (before or after taking effect),
    `meanwhile` runs something while a call is in flight, `open_holds` lists live authorisations."""

    name = "test"
    is_test = True
    __test__ = False  # a payment provider named "Test…", not a pytest test class

    def __init__(self, ledger: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._path = Path(ledger) if ledger is not None else None
        self._memory: sqlite3.Connection | None = None
        if self._path is None:
            self._memory = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            self._memory.executescript(_LEDGER_SCHEMA)
        else:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as connection:
                connection.executescript(_LEDGER_SCHEMA)
        self._failures: dict[str, list[bool]] = {}  # operation → queued failures (True: after taking effect)
        self._meanwhile: dict[str, list[Callable[[], None]]] = {}  # keys: "before:op", "after:op"
        self.calls: list[tuple[str, str]] = []  # (operation, idempotency key) of calls that moved (fake) money

    # --- the ledger ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._memory is not None:
            return self._memory
        connection = sqlite3.connect(self._path, timeout=30, isolation_level=None)  # type: ignore[arg-type]
        connection.execute("PRAGMA journal_mode=WAL")
        return connection

    def _state_of(self, db: sqlite3.Connection, reference: str, assumed: str = "authorised") -> str | None:
        """The hold's state in the ledger; a `test_` reference the ledger never saw (an in-memory
        ledger before a restart) is taken as `assumed` (the database, checked first, is the record)."""
        row = db.execute("SELECT state FROM holds WHERE reference = ?", (reference,)).fetchone()
        if row is not None:
            return row[0]
        return assumed if reference.startswith("test_") else None

    @staticmethod
    def _set_state(db: sqlite3.Connection, reference: str, state: str) -> None:
        db.execute("INSERT OR REPLACE INTO holds (reference, state) VALUES (?, ?)", (reference, state))

    def _once(self, operation: str, key: str, parameters: str, run) -> PaymentOutcome:  # type: ignore[no-untyped-def]
        """Run `run(db)` once per (operation, key), in one ledger transaction; a repeat gets the first outcome."""
        for action in self._take_all(self._meanwhile, f"before:{operation}"):
            action()
        failure = self._take(self._failures, operation)
        if failure is False:
            raise ProviderUnavailable(f"test provider: {operation} did not answer (injected, nothing done)")
        digest = hashlib.sha256(parameters.encode()).hexdigest()
        with self._lock:
            db = self._connect()
            try:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(
                    "SELECT parameters, ok, status, reference, message FROM outcomes"
                    " WHERE operation = ? AND idempotency_key = ?",
                    (operation, key),
                ).fetchone()
                if row is not None:
                    db.execute("COMMIT")
                    if row[0] != digest:
                        return PaymentOutcome(
                            False, "failed", message="This idempotency key was used with other parameters."
                        )
                    return PaymentOutcome(bool(row[1]), row[2], row[3], row[4])
                outcome = run(db)
                db.execute(
                    "INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (operation, key, digest, int(outcome.ok), outcome.status, outcome.reference, outcome.message),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            finally:
                if db is not self._memory:
                    db.close()
            if outcome.ok:
                self.calls.append((operation, key))
        for action in self._take_all(self._meanwhile, f"after:{operation}"):
            action()
        if failure is True:
            raise ProviderUnavailable(f"test provider: {operation} took effect but its answer was lost (injected)")
        return outcome

    # --- test hooks (TEST MODE only) ----------------------------------------------------------

    def fail_next(self, operation: str, times: int = 1, *, after: bool = False) -> None:
        """The next `times` calls of `operation` raise `ProviderUnavailable`: before doing anything,
        or with `after` once the call took effect (the answer is lost, like a timeout)."""
        with self._lock:
            self._failures.setdefault(operation, []).extend([after] * times)

    def meanwhile(self, operation: str, action: Callable[[], None], *, before: bool = False) -> None:
        """Run `action` once, during the next call of `operation`: after the provider acted and before
        the caller gets the answer, or with `before` before it acts (what others do while a payment
        is in flight)."""
        with self._lock:
            self._meanwhile.setdefault(f"{'before' if before else 'after'}:{operation}", []).append(action)

    def open_holds(self) -> list[str]:
        """References of the authorisations still held (neither captured, voided nor refunded)."""
        with self._lock:
            db = self._connect()
            try:
                return [r[0] for r in db.execute("SELECT reference FROM holds WHERE state = 'authorised'")]
            finally:
                if db is not self._memory:
                    db.close()

    def _take(self, queues: dict[str, list[bool]], operation: str) -> bool | None:
        with self._lock:
            queue = queues.get(operation)
            return queue.pop(0) if queue else None

    def _take_all(self, queues: dict[str, list[Callable[[], None]]], operation: str) -> list[Callable[[], None]]:
        with self._lock:
            return queues.pop(operation, [])

    # --- the provider -------------------------------------------------------------------------

    def authorise(self, amount: Decimal, currency: str, card_number: str, idempotency_key: str) -> PaymentOutcome:
        def run(db: sqlite3.Connection) -> PaymentOutcome:
            if not amount > 0:
                return PaymentOutcome(False, "failed", message=f"The amount {amount} {currency} is not positive.")
            if card_number == DECLINED:
                return PaymentOutcome(False, "declined", message="The card was declined by its issuer.")
            if card_number == INSUFFICIENT_FUNDS:
                return PaymentOutcome(False, "declined", message="The card was declined: insufficient funds.")
            # The reference carries the capture outcome, so a restarted server still knows it.
            kind = "nocap" if card_number == DECLINED_AT_CAPTURE else "auth"
            reference = f"test_{kind}_{secrets.token_hex(8)}"
            self._set_state(db, reference, "authorised")
            return PaymentOutcome(True, "authorised", reference, f"{amount} {currency} authorised (test mode).")

        return self._once("authorise", idempotency_key, f"{amount}|{currency}|{card_number}", run)

    def capture(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentOutcome:
        def run(db: sqlite3.Connection) -> PaymentOutcome:
            if self._state_of(db, reference) != "authorised":
                return PaymentOutcome(False, "failed", reference, "There is no open authorisation to capture.")
            if reference.startswith("test_nocap_"):
                return PaymentOutcome(False, "capture_failed", reference, "The card issuer declined the capture.")
            self._set_state(db, reference, "captured")
            return PaymentOutcome(True, "captured", reference, f"{amount} captured (test mode).")

        return self._once("capture", idempotency_key, f"{reference}|{amount}", run)

    def void(self, reference: str, idempotency_key: str) -> PaymentOutcome:
        def run(db: sqlite3.Connection) -> PaymentOutcome:
            if self._state_of(db, reference) != "authorised":
                return PaymentOutcome(False, "failed", reference, "There is no open authorisation to void.")
            self._set_state(db, reference, "voided")
            return PaymentOutcome(True, "voided", reference, "Authorisation released (test mode).")

        return self._once("void", idempotency_key, reference, run)

    def refund(self, reference: str, amount: Decimal, idempotency_key: str) -> PaymentOutcome:
        def run(db: sqlite3.Connection) -> PaymentOutcome:
            if self._state_of(db, reference, "captured") != "captured":
                return PaymentOutcome(False, "failed", reference, "Only a captured payment can be refunded.")
            self._set_state(db, reference, "refunded")
            return PaymentOutcome(True, "refunded", reference, f"{amount} refunded (test mode).")

        return self._once("refund", idempotency_key, f"{reference}|{amount}", run)

    def find_authorisation(self, idempotency_key: str) -> PaymentOutcome | None:
        failure = self._take(self._failures, "find_authorisation")
        if failure is not None:
            raise ProviderUnavailable("test provider: find_authorisation did not answer (injected)")
        with self._lock:
            db = self._connect()
            try:
                row = db.execute(
                    "SELECT ok, status, reference, message FROM outcomes"
                    " WHERE operation = 'authorise' AND idempotency_key = ?",
                    (idempotency_key,),
                ).fetchone()
                if row is None:
                    return None
                if not row[0]:
                    return PaymentOutcome(False, row[1], row[2], row[3])
                state = self._state_of(db, row[2]) or "authorised"
                return PaymentOutcome(True, state, row[2], row[3])
            finally:
                if db is not self._memory:
                    db.close()


def open_provider(name: str, home: Path | None = None) -> PaymentProvider:
    """The provider called `name`; the test provider keeps its ledger under `home` when given."""
    if name == "test":
        return TestPaymentProvider(home / "test-payments.sqlite" if home is not None else None)
    raise ValueError(f"Unknown payment provider {name!r}; the built-in one is 'test'.")
