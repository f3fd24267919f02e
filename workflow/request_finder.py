"""Finding my requests again: the customer types their e-mail address and gets one e-mail with a
link to each of their recent requests. No password and no account: the request links are the keys,
as in the first e-mail, and they only ever go to the address the requests were made with.

The page says the same whether or not the address has requests (nobody learns who uses Vitrine),
and an address gets at most `PER_HOUR` of these e-mails, counted in the audit trail under a hash of
the address (so the trail holds no address in clear and every app process sees the same count).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from mail.outbox import Outbox
from workflow import audit
from workflow.errors import Invalid
from workflow.lifecycle import label
from workflow.models import AuditEntry, CustomerRequest, now
from workflow.requests_service import link_for

PER_HOUR = 3
WINDOW = timedelta(days=90)  # older requests are finished long ago; their pages stay reachable by their links
MAX_LISTED = 20
ACTION = "requests.links_mailed"


def _actor(email: str) -> str:
    """Who asked, in the audit trail: a hash of the address, never the address itself."""
    return "customer:" + hashlib.sha256(b"vitrine-finder:" + email.encode()).hexdigest()[:32]


def mail_my_requests(sessions: sessionmaker, email: str, outbox: Outbox, link: str, secret: str) -> int:
    """E-mail `email` the links to its recent requests; how many were listed (0: nothing was sent)."""
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254:
        raise Invalid("Please give the e-mail address you used for your requests.")
    asker = _actor(email)
    moment = now()
    with sessions() as session:
        recent = session.scalar(
            select(func.count(AuditEntry.id)).where(
                AuditEntry.action == ACTION,
                AuditEntry.actor == asker,
                AuditEntry.at >= moment - timedelta(hours=1),
            )
        )
        if (recent or 0) >= PER_HOUR:
            return 0  # the page says the same; the address had its share this hour
        requests = session.scalars(
            select(CustomerRequest)
            .where(func.lower(CustomerRequest.email) == email, CustomerRequest.created_at >= moment - WINDOW)
            .order_by(CustomerRequest.created_at.desc())
            .limit(MAX_LISTED)
        ).all()
        if not requests:
            return 0
        listed = [
            {
                "created": request.created_at.strftime("%d %b %Y"),
                "status": label(request.status),
                "words": request.words,
                "link": link_for(request, link, secret),
            }
            for request in requests
        ]
        audit.record(session, asker, ACTION, None, count=len(listed))
        outbox.send_template(email, "my_requests", {"requests": listed}, session=session)
        session.commit()
        return len(listed)
