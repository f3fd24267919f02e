"""How many request e-mails one address may receive per hour.

Anyone can type any address into the request form, so the form could be used to mail a stranger
again and again. A request is always accepted (the customer is taken to its page, and the API
answers with its link), but once an address has been sent `per_hour` request e-mails in the last
hour, further requests for it are not mailed; the audit trail says so (`mail.suppressed`). Counted
from the requests table, so every app process sees the same count.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow.models import CustomerRequest, now


def may_mail(session: Session, email: str, per_hour: int, request_id: int) -> bool:
    """Whether the new request `request_id` may be mailed to `email` (0 or less: no limit)."""
    if per_hour <= 0:
        return True
    since = now() - timedelta(hours=1)
    earlier = session.scalar(
        select(func.count(CustomerRequest.id)).where(
            func.lower(CustomerRequest.email) == email.strip().lower(),
            CustomerRequest.created_at >= since,
            CustomerRequest.id != request_id,
        )
    )
    return int(earlier or 0) < per_hour
