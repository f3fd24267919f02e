"""One-click unsubscribe (RFC 8058) for non-transactional mail.

A token is the address and an HMAC of it under the installation's secret, so the link works without
a table of issued tokens and cannot be forged to unsubscribe someone else. Transactional mail
(receipts, verification, the customer's own request) ignores the list: people need it to buy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mail.models import MailUnsubscribe

_PURPOSE = b"vitrine-unsubscribe:"


class BadUnsubscribeToken(ValueError):
    """A token that was not made here (cut short, altered, or for another installation)."""


def normalise(address: str) -> str:
    return address.strip().lower()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, address: str) -> bytes:
    return hmac.new(secret.encode(), _PURPOSE + address.encode(), hashlib.sha256).digest()[:16]


def token_for(secret: str, address: str) -> str:
    """The address's unsubscribe token (the same every time, so old mails' links keep working)."""
    address = normalise(address)
    return f"{_b64(address.encode())}.{_b64(_signature(secret, address))}"


def address_of(secret: str, token: str) -> str:
    """The address a token was made for; BadUnsubscribeToken if it was not made with `secret`."""
    encoded, _, signature = (token or "").partition(".")
    try:
        address = _unb64(encoded).decode()
        given = _unb64(signature)
    except (ValueError, UnicodeDecodeError):
        raise BadUnsubscribeToken("This unsubscribe link is not valid.") from None
    if not address or not hmac.compare_digest(given, _signature(secret, normalise(address))):
        raise BadUnsubscribeToken("This unsubscribe link is not valid.")
    return normalise(address)


def links(base_url: str, secret: str, address: str, mailbox: str) -> tuple[str, str]:
    """The https (one-click POST) and mailto unsubscribe addresses for `address`."""
    token = token_for(secret, address)
    return (
        f"{base_url.rstrip('/')}/mail/unsubscribe/{token}",
        f"mailto:{mailbox}?subject={quote('unsubscribe ' + token)}",
    )


def is_suppressed(session: Session, address: str) -> bool:
    return (
        session.scalar(select(MailUnsubscribe.address).where(MailUnsubscribe.address == normalise(address))) is not None
    )


def suppress(sessions: sessionmaker, address: str) -> bool:
    """Record that `address` wants no more non-transactional mail; False if it already had (idempotent:
    mail clients may post the one click more than once)."""
    with sessions() as session:
        if is_suppressed(session, address):
            return False
        session.add(MailUnsubscribe(address=normalise(address)))
        try:
            session.commit()
        except IntegrityError:  # a second click at the same moment
            return False
    return True
