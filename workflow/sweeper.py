"""The time limits, applied by one background task instead of by whoever opens a page: lapsed claims
return to the queue, offers past their expiry expire (the request goes back to its operator and the
queue, the conversation stays open), requests nobody took up expire, and card holds older than the
authorisation window are released.

Before, `GET /operator` did all this, so the payment provider was called because someone looked at
the queue, and nothing expired while nobody did. Each step is idempotent and guarded by the
request's status, so two app processes sweeping at once do no harm.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.orm import sessionmaker

from workflow import claims, offers_service, requests_service
from workflow.payments import PaymentProvider
from workflow.settings import Settings

log = logging.getLogger("vitrine.sweeper")


@dataclass(frozen=True)
class Swept:
    claims_returned: int
    requests_expired: int
    holds_released: int


def sweep(sessions: sessionmaker, provider: PaymentProvider, settings: Settings) -> Swept:
    """One pass over every time limit."""
    returned = claims.expire_claims(sessions)
    expired = requests_service.expire_stale(sessions, settings.request_ttl_hours)
    offers_service.expire_offers(sessions)
    released = offers_service.void_lapsed_authorisations(sessions, provider, settings.authorisation_ttl_hours)
    return Swept(returned, expired, released)


async def sweep_every(sessions: sessionmaker, provider: PaymentProvider, settings: Settings) -> None:
    """`sweep` now and every `settings.sweep_s` seconds (never when it is 0); a failed pass is logged
    and tried again at the next."""
    if settings.sweep_s <= 0:
        return
    while True:
        try:
            await asyncio.to_thread(sweep, sessions, provider, settings)
        except Exception:
            log.exception("the expiry sweep failed; tried again at the next")
        await asyncio.sleep(settings.sweep_s)
