"""`DatabaseOutbox`: the app's outbox. Sending a message inserts a row in `mail_messages`, rendered
in full (both parts, the unsubscribe header), so what was meant to go out survives a restart or an
SMTP outage; the sender (`mail.sender`) delivers it. Callers stay unaware of SMTP."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from email.utils import make_msgid, parseaddr
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from mail import unsubscribe
from mail.models import MailMessage, MailStatus
from mail.rendering import Letter, plain_letter, render
from mail.settings import DEFAULT_SENDER

log = logging.getLogger("vitrine.mail")


def _domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "vitrine.invalid"


class DatabaseOutbox:
    """Implements `mail.outbox.Outbox` by enqueueing. `secret` signs unsubscribe links, `base_url` is
    the site's absolute address for them. Listeners registered with `on_enqueue` are called after
    each insert (from whatever thread sent it), so the sender wakes at once instead of polling."""

    def __init__(
        self,
        sessions: sessionmaker,
        *,
        secret: str,
        base_url: str,
        sender: str = DEFAULT_SENDER,
        staff_address: str = "",
    ) -> None:
        self.sessions = sessions
        self.staff_address = staff_address
        self.secret = secret
        self.base_url = base_url.rstrip("/")
        self.sender = sender
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def on_enqueue(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` after every enqueue; returns the function that stops it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                self._listeners.remove(listener)

        return remove

    def unsubscribe_links(self, to: str) -> tuple[str, str]:
        return unsubscribe.links(
            self.base_url, self.secret, to, parseaddr(self.sender)[1] or "no-reply@vitrine.invalid"
        )

    def send(self, to: str, subject: str, body: str) -> None:
        """A plain-text notice; its HTML part is the same text, escaped (until every caller uses a template)."""
        self.enqueue(to, plain_letter(subject, body))

    def send_template(
        self,
        to: str,
        template: str,
        context: Mapping[str, Any],
        *,
        transactional: bool = True,
        session: Session | None = None,
    ) -> None:
        if transactional:
            self.enqueue(to, render(template, context), template=template, session=session)
            return
        web, mailto = self.unsubscribe_links(to)
        letter = render(template, {**context, "unsubscribe_url": web})
        text = f"{letter.text.rstrip()}\n\n--\nTo get no more of these e-mails, unsubscribe: {web}\n"
        letter = Letter(letter.subject, text, letter.html)
        headers = f"<{web}>, <{mailto}>"
        self.enqueue(to, letter, template=template, transactional=False, list_unsubscribe=headers, session=session)

    def notify_staff(self, template: str, context: Mapping[str, Any], *, session: Session | None = None) -> None:
        """Tell the staff's team mailbox (none configured: nobody); `site` in the template is the
        site's base address, for links to the workbench."""
        if self.staff_address:
            self.send_template(self.staff_address, template, {**context, "site": self.base_url}, session=session)

    def enqueue(
        self,
        to: str,
        letter: Letter,
        *,
        template: str = "",
        transactional: bool = True,
        list_unsubscribe: str = "",
        session: Session | None = None,
    ) -> int:
        """Insert the message and wake the sender; its row id. Without `session` the row is committed
        when this returns; with the caller's, it commits (and the sender wakes) with the caller's step."""
        if session is not None:
            row = self._row(session, to, letter, template, transactional, list_unsubscribe)
            session.flush()
            event.listen(session, "after_commit", lambda _: self._wake(), once=True)
            return row.id
        with self.sessions() as own:
            row = self._row(own, to, letter, template, transactional, list_unsubscribe)
            own.flush()
            message = row.id
            own.commit()
        self._wake()
        return message

    def _row(
        self, session: Session, to: str, letter: Letter, template: str, transactional: bool, list_unsubscribe: str
    ) -> MailMessage:
        suppressed = not transactional and unsubscribe.is_suppressed(session, to)
        row = MailMessage(
            message_id=make_msgid(domain=_domain(self.sender)),
            recipient=to,
            subject=letter.subject,
            text=letter.text,
            html=letter.html,
            template=template,
            transactional=transactional,
            list_unsubscribe=list_unsubscribe,
            status=(MailStatus.SUPPRESSED if suppressed else MailStatus.QUEUED).value,
            attempts=0,
            last_error="the address unsubscribed" if suppressed else "",
        )
        session.add(row)
        log.info("mail to %s queued: %s%s", to, letter.subject, " (suppressed)" if suppressed else "")
        return row

    def _wake(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
