"""The sender: takes due messages from `mail_messages` and delivers them, one at a time.

Taking a message is a compare-and-set on its attempt count that marks it `sending` with a lease
(`next_attempt_at` = now + lease), so two senders (two app processes, or the app and `vitrine mail
send`) never both take it, and a sender that dies mid-send leaves a message the next pass takes up
once the lease is over: at least once, never lost. A temporary failure puts the message back with
exponential back-off until `max_attempts`; a permanent one (5xx) fails it at once, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from mail import unsubscribe
from mail.delivery import PermanentFailure, TemporaryFailure, Transport
from mail.durable import DatabaseOutbox
from mail.models import MailMessage, MailStatus, now
from mail.settings import MailSettings

log = logging.getLogger("vitrine.mail")

_DUE = (MailStatus.QUEUED.value, MailStatus.SENDING.value)


#: What a delivered (or suppressed) message keeps of its bodies: nothing. A failed one keeps them, for
#: whoever looks into why (`vitrine mail status`).
_FORGOTTEN = {"text": "", "html": ""}


def _utc(moment: datetime) -> datetime:
    """SQLite hands times back without their zone; they are all UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass
class PassResult:
    """What one pass did, and how long until the next message is due (None: nothing waiting)."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    suppressed: int = 0
    next_due_s: float | None = None
    errors: list[str] = field(default_factory=list)


def compose_row(row: MailMessage, sender: str) -> EmailMessage:
    """The message as it goes out: the same Message-ID on every attempt, so a receiver can tell a
    retry after a lost answer from a new message."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, row.recipient, row.subject
    message["Date"] = format_datetime(_utc(row.created_at))
    message["Message-ID"] = row.message_id
    if row.list_unsubscribe:
        message["List-Unsubscribe"] = row.list_unsubscribe
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    message.set_content(row.text)
    message.add_alternative(row.html, subtype="html")
    return message


class Sender:
    def __init__(
        self,
        sessions: sessionmaker,
        settings: MailSettings,
        transport: Transport,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.transport = transport
        self.clock = clock

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th temporary failure: doubling, capped."""
        return min(self.settings.backoff_max_s, self.settings.backoff_s * 2 ** max(0, attempts - 1))

    def _claim(self) -> int | None:
        """Take the next due message (marked `sending` under a lease); None when nothing is due."""
        moment = self.clock()
        with self.sessions() as session:
            candidates = session.execute(
                select(MailMessage.id, MailMessage.attempts)
                .where(MailMessage.status.in_(_DUE), MailMessage.next_attempt_at <= moment)
                .order_by(MailMessage.next_attempt_at, MailMessage.id)
                .limit(10)
            ).all()
            for message_id, attempts in candidates:
                taken = session.execute(
                    update(MailMessage)
                    .where(
                        MailMessage.id == message_id,
                        MailMessage.attempts == attempts,
                        MailMessage.status.in_(_DUE),
                    )
                    .values(
                        status=MailStatus.SENDING.value,
                        attempts=attempts + 1,
                        next_attempt_at=moment + timedelta(seconds=self.settings.lease_s),
                    )
                )
                session.commit()
                if taken.rowcount == 1:
                    return message_id
        return None

    def _finish(self, message_id: int, attempt: int, **values: object) -> None:
        """Record the outcome of our attempt (unless another sender has since taken the message over)."""
        with self.sessions() as session:
            session.execute(
                update(MailMessage)
                .where(MailMessage.id == message_id, MailMessage.attempts == attempt)
                .values(**values)
            )
            session.commit()

    def deliver_one(self, message_id: int, result: PassResult) -> None:
        with self.sessions() as session:
            row = session.get(MailMessage, message_id)
            assert row is not None
            attempt = row.attempts
            suppressed = not row.transactional and unsubscribe.is_suppressed(session, row.recipient)
            message = compose_row(row, self.settings.sender)
        if suppressed:  # unsubscribed after the message was queued
            gone = MailStatus.SUPPRESSED.value
            self._finish(message_id, attempt, status=gone, last_error="the address unsubscribed", **_FORGOTTEN)
            result.suppressed += 1
            return
        try:
            self.transport.deliver(message)
        except PermanentFailure as exc:
            log.warning("mail %s to %s failed for good: %s", message_id, message["To"], exc)
            self._finish(message_id, attempt, status=MailStatus.FAILED.value, last_error=str(exc)[:2000])
            result.failed += 1
            result.errors.append(str(exc))
            return
        except TemporaryFailure as exc:
            if attempt >= self.settings.max_attempts:
                log.warning("mail %s to %s failed after %d attempts: %s", message_id, message["To"], attempt, exc)
                reason = f"gave up after {attempt} attempts: {exc}"
                self._finish(message_id, attempt, status=MailStatus.FAILED.value, last_error=reason[:2000])
                result.failed += 1
            else:
                wait = self.backoff(attempt)
                log.info("mail %s: attempt %d failed (%s); again in %.0f s", message_id, attempt, exc, wait)
                self._finish(
                    message_id,
                    attempt,
                    status=MailStatus.QUEUED.value,
                    next_attempt_at=self.clock() + timedelta(seconds=wait),
                    last_error=str(exc)[:2000],
                )
                result.retried += 1
            result.errors.append(str(exc))
            return
        # The bodies carry request links, which are keys: once delivered they are not kept at rest
        # (the subject, recipient, template and times stay as the record).
        self._finish(
            message_id, attempt, status=MailStatus.SENT.value, sent_at=self.clock(), last_error="", **_FORGOTTEN
        )
        result.sent += 1

    def run_once(self, limit: int = 500) -> PassResult:
        """Deliver what is due now (at most `limit` messages); one pass of `vitrine mail send`."""
        result = PassResult()
        for _ in range(limit):
            message_id = self._claim()
            if message_id is None:
                break
            self.deliver_one(message_id, result)
        with self.sessions() as session:
            due = session.scalar(select(func.min(MailMessage.next_attempt_at)).where(MailMessage.status.in_(_DUE)))
        if due is not None:
            result.next_due_s = max(0.0, (_utc(due) - self.clock()).total_seconds())
        return result

    async def run_forever(self, wake: asyncio.Event, stopping: Callable[[], bool] = lambda: False) -> None:
        """Deliver in a worker thread whenever `wake` is set, a message falls due, or `poll_s` passes."""
        while not stopping():
            wake.clear()  # before the pass: a message enqueued during it sets it again
            try:
                result = await asyncio.to_thread(self.run_once)
                wait = (
                    self.settings.poll_s if result.next_due_s is None else min(self.settings.poll_s, result.next_due_s)
                )
            except Exception:  # the database is busy or gone for a moment: try again later, never die
                log.exception("mail sender pass failed")
                wait = self.settings.poll_s
            if stopping():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(wait, 0.01))


@contextlib.asynccontextmanager
async def delivering(outbox: DatabaseOutbox, sender: Sender, grace_s: float = 5.0) -> AsyncIterator[None]:
    """Run `sender` in the background while the block runs (the app's lifespan), woken by every
    message `outbox` enqueues, from any thread. On the way out a pass in flight may finish (up to
    `grace_s`); one cut short leaves its message `sending`, taken up again when its lease is over."""
    loop = asyncio.get_running_loop()
    wake, stop = asyncio.Event(), asyncio.Event()

    def wake_up() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed while a thread was still sending
            loop.call_soon_threadsafe(wake.set)

    remove = outbox.on_enqueue(wake_up)
    task = loop.create_task(sender.run_forever(wake, stop.is_set))
    try:
        yield
    finally:
        remove()
        stop.set()
        wake.set()
        try:
            await asyncio.wait_for(task, timeout=grace_s)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
