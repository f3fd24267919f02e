"""The customer's token of each request, for staff lists in the JSON API.

The database keeps only a hash of each token (`workflow.request_tokens`); a token is derived again
from its salt and the app's secret. Requests from before salted tokens, or after the secret
changed, have none to give: their entry is None, and the API says so.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from workflow.models import CustomerRequest
from workflow.request_tokens import token_of


def tokens_of(sessions: sessionmaker, request_ids: Collection[int], secret: str) -> dict[int, str | None]:
    """Each request's customer token, or None where it cannot be derived."""
    if not request_ids:
        return {}
    with sessions() as session:
        rows = session.execute(
            select(CustomerRequest.id, CustomerRequest.token_sha256, CustomerRequest.token_salt).where(
                CustomerRequest.id.in_(list(request_ids))
            )
        ).all()
    return {request_id: token_of(sha, salt, secret) for request_id, sha, salt in rows}
