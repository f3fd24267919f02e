"""The closed-beta waitlist: joining, verifying the address, the place in line, referrals, invitations.

The line is computed, never stored, so a referral, a verification or an invitation moves everyone
consistently. Only verified, not yet invited people hold places. Each place starts as the order of
joining among them; every verified person who joined through your share link moves you up
`bonus` places. Invited people have left the line (they are let in, ahead of everyone waiting), so
no bonus can take anyone past them. A referral counts only when the referee joined after the
referrer and is someone else: self-referrals and loops give nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from access.emails import normalise_email
from access.errors import FieldInvalid
from access.models import WaitlistEntry
from mail.outbox import Outbox
from workflow import audit
from workflow.claims import actor
from workflow.errors import NotFound
from workflow.models import User, now, utc

INVITE_COOKIE = "vitrine_invite"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Place:
    """What the line is computed from: one entry's id (join order), referrer and state."""

    id: int
    referrer_id: int | None
    verified: bool
    invited: bool


def referral_counts(places: Iterable[Place]) -> Counter[int]:
    """Verified referees per referrer; self-referrals and referrers who joined later (loops) give nothing."""
    counts: Counter[int] = Counter()
    for place in places:
        if place.verified and place.referrer_id is not None and place.referrer_id < place.id:
            counts[place.referrer_id] += 1
    return counts


def waiting_order(places: list[Place], bonus: int, including: int | None = None) -> list[int]:
    """The ids of the people waiting, first first; `including` adds one not yet verified entry where
    it would stand once verified (its owner sees that place)."""
    counts = referral_counts(places)
    waiting = sorted(p.id for p in places if not p.invited and (p.verified or p.id == including))
    ranked = [(base - bonus * counts[id_], -counts[id_], id_) for base, id_ in enumerate(waiting, start=1)]
    return [id_ for *_, id_ in sorted(ranked)]


def position_in(places: list[Place], bonus: int, entry_id: int) -> int | None:
    """The entry's place in line (1 is next), or None once invited."""
    order = waiting_order(places, bonus, including=entry_id)
    return order.index(entry_id) + 1 if entry_id in order else None


@dataclass(frozen=True)
class EntryView:
    """An entry as its owner (and the admin) sees it."""

    id: int
    public_id: str
    email: str
    share_code: str
    position: int | None
    verified: bool
    invited: bool
    invitation_used: bool
    referrals: int
    created_at: datetime
    invited_at: datetime | None

    def share_url(self, base: str) -> str:
        return f"{base}/waitlist?ref={self.share_code}"


@dataclass(frozen=True)
class Joined:
    entry: EntryView
    created: bool


def _places(session: Session) -> list[Place]:
    rows = session.execute(
        select(WaitlistEntry.id, WaitlistEntry.referrer_id, WaitlistEntry.verified_at, WaitlistEntry.invited_at)
    ).all()
    return [Place(r.id, r.referrer_id, r.verified_at is not None, r.invited_at is not None) for r in rows]


def _view(entry: WaitlistEntry, places: list[Place], bonus: int) -> EntryView:
    return EntryView(
        id=entry.id,
        public_id=entry.public_id,
        email=entry.email,
        share_code=entry.share_code,
        position=None if entry.invited_at else position_in(places, bonus, entry.id),
        verified=entry.verified_at is not None,
        invited=entry.invited_at is not None,
        invitation_used=entry.invitation_used_at is not None,
        referrals=referral_counts(places)[entry.id],
        created_at=utc(entry.created_at),  # type: ignore[arg-type]
        invited_at=utc(entry.invited_at),
    )


def _send_verification(outbox: Outbox, base: str, view: EntryView, token: str) -> None:
    outbox.send_template(
        view.email,
        "waitlist_verify",
        {
            "verify_url": f"{base}/waitlist/verify/{token}",
            "entry_url": f"{base}/waitlist/{view.public_id}",
            "share_url": view.share_url(base),
            "position": view.position,
        },
        transactional=True,
    )


def join(sessions: sessionmaker, outbox: Outbox, base: str, email: str, ref: str | None, bonus: int) -> Joined:
    """Put `email` in line (through the share link `ref`, if any) and send the verification link.
    The same person again gets their existing entry (and, while unverified, a fresh link)."""
    address = normalise_email(email)
    token = secrets.token_urlsafe(32)
    with sessions() as session:
        entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.email == address))
        created = entry is None
        if entry is None:
            referrer = session.scalar(select(WaitlistEntry.id).where(WaitlistEntry.share_code == ref)) if ref else None
            entry = WaitlistEntry(
                public_id=secrets.token_urlsafe(16),
                email=address,
                share_code=secrets.token_urlsafe(6),
                referrer_id=referrer,
                verify_sha256=digest(token),
            )
            session.add(entry)
            try:
                session.flush()
            except IntegrityError:  # the same person joined at this very moment: theirs is the entry
                session.rollback()
                return join(sessions, outbox, base, email, ref, bonus)
            audit.record(session, "customer", "waitlist.joined", referred=referrer is not None)
        elif entry.verified_at is None and entry.invited_at is None:
            entry.verify_sha256 = digest(token)  # a fresh link; the newest one works
        else:
            token = ""
        session.commit()
        view = _view(entry, _places(session), bonus)
    if token:
        _send_verification(outbox, base, view, token)
    return Joined(view, created)


def verify(sessions: sessionmaker, token: str) -> str:
    """Confirm the address behind a verification link; the entry's public id. Clicking again is fine."""
    with sessions() as session:
        entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.verify_sha256 == digest(token or "")))
        if entry is None:
            raise NotFound("This verification link is not valid.", "Use the newest link we sent, or join again.")
        if entry.verified_at is None:
            entry.verified_at = now()
            audit.record(session, "customer", "waitlist.verified", entry_id=entry.id)
            session.commit()
        return entry.public_id


def entry_view(sessions: sessionmaker, public_id: str, bonus: int) -> EntryView:
    """An entry by its public id (from the join answer or the verification link)."""
    with sessions() as session:
        entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.public_id == public_id))
        if entry is None:
            raise NotFound("There is no waitlist entry at this address.", "Join the waitlist again with your e-mail.")
        return _view(entry, _places(session), bonus)


def line(sessions: sessionmaker, bonus: int) -> list[EntryView]:
    """Everyone, as the admin sees them: the people waiting in order, then those not yet verified,
    then those already invited (newest invitation first)."""
    with sessions() as session:
        places = _places(session)
        entries = {e.id: e for e in session.scalars(select(WaitlistEntry))}
        order = waiting_order(places, bonus)
        unverified = sorted(e.id for e in entries.values() if e.verified_at is None and e.invited_at is None)
        invited = sorted((e for e in entries.values() if e.invited_at), key=lambda e: utc(e.invited_at), reverse=True)
        ids = order + unverified + [e.id for e in invited]
        return [_view(entries[i], places, bonus) for i in ids]


def _invite(session: Session, entry: WaitlistEntry, admin: User, how: str) -> str:
    token = secrets.token_urlsafe(32)
    entry.invitation_sha256 = digest(token)
    entry.invited_at = now()
    entry.invited_by_id = admin.id
    audit.record(session, actor(admin), "access.invited", email=entry.email, how=how)
    return token


def _send_invitation(outbox: Outbox, base: str, email: str, token: str) -> None:
    outbox.send_template(email, "invitation", {"invite_url": f"{base}/invite/{token}"}, transactional=True)


def invite_next(sessions: sessionmaker, outbox: Outbox, base: str, count: int, admin: User, bonus: int) -> list[str]:
    """Invite the first `count` people waiting; their addresses."""
    if count < 1 or count > 1000:
        raise FieldInvalid("count", "Invite between 1 and 1000 people at a time.")
    with sessions() as session:
        chosen = waiting_order(_places(session), bonus)[:count]
        sent = []
        for entry_id in chosen:
            entry = session.get(WaitlistEntry, entry_id)
            assert entry is not None
            sent.append((entry.email, _invite(session, entry, admin, "next")))
        session.commit()
    for email, token in sent:
        _send_invitation(outbox, base, email, token)
    return [email for email, _ in sent]


def invite(sessions: sessionmaker, outbox: Outbox, base: str, email: str, admin: User) -> str:
    """Invite one named person (on the list or not; inviting again sends a fresh link); their address."""
    address = normalise_email(email)
    with sessions() as session:
        entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.email == address))
        if entry is None:
            entry = WaitlistEntry(
                public_id=secrets.token_urlsafe(16),
                email=address,
                share_code=secrets.token_urlsafe(6),
                verify_sha256=digest(secrets.token_urlsafe(32)),
            )
            session.add(entry)
            session.flush()
        token = _invite(session, entry, admin, "named")
        session.commit()
    _send_invitation(outbox, base, address, token)
    return address


def accept_invitation(sessions: sessionmaker, token: str) -> bool:
    """True when `token` is a live invitation; the first use is recorded (and proves the address)."""
    if not token or len(token) > 100:
        return False
    with sessions() as session:
        entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.invitation_sha256 == digest(token)))
        if entry is None:
            return False
        if entry.invitation_used_at is None:
            moment = now()
            entry.invitation_used_at = moment
            entry.verified_at = entry.verified_at or moment
            audit.record(session, "customer", "waitlist.invitation_used", entry_id=entry.id)
            session.commit()
        return True


def invitation_valid(sessions: sessionmaker, token: str | None) -> bool:
    """Whether `token` (from the invitation cookie or the API's `invitation` field) lets a request in."""
    if not token or len(token) > 100:
        return False
    with sessions() as session:
        found = session.scalar(select(WaitlistEntry.id).where(WaitlistEntry.invitation_sha256 == digest(token)))
        return found is not None
