"""Customer request tokens: the link is the customer's only key, so the database never holds it.

A row keeps `token_sha256` (requests are looked up by it) and a random `token_salt`. The token itself
is `HMAC-SHA256(app secret, salt)`, so the server can write the link into a later e-mail (offers sent,
an operator's message) while a copy of the database alone (a backup, a dump, a stolen file) opens no
request. A plain SHA-256 is the right look-up hash: tokens are 192 random bits, nothing to brute-force.

Rows from before this scheme (upgraded by migration 0006) have a hash and no salt: their links keep
working, but a later e-mail cannot repeat the link (`token_of` answers None) and says so instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

TOKEN_BYTES = 24  # 192 bits: unguessable
_CONTEXT = b"vitrine-request-token:"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    sha256: str
    salt: str | None


def token_hash(token: str) -> str:
    """What the database keeps and looks up: SHA-256 of the token, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def _derive(secret: str, salt: str) -> str:
    digest = hmac.new(secret.encode(), _CONTEXT + salt.encode(), hashlib.sha256).digest()[:TOKEN_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(secret: str) -> IssuedToken:
    """A new token. With the app's secret it can be derived again for later e-mails; without one
    (a bare service call in a test) it is purely random and only the first e-mail carries it."""
    if not secret:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        return IssuedToken(token, token_hash(token), None)
    salt = secrets.token_hex(16)
    token = _derive(secret, salt)
    return IssuedToken(token, token_hash(token), salt)


def token_of(token_sha256: str, token_salt: str | None, secret: str) -> str | None:
    """The request's token derived again, or None when it cannot be (no salt, or the secret changed)."""
    if not token_salt or not secret:
        return None
    token = _derive(secret, token_salt)
    return token if hmac.compare_digest(token_hash(token), token_sha256) else None
