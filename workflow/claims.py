"""Claims: an operator's lock on a request, with an expiry so abandoned work returns to the queue.

Taking a claim is one conditional UPDATE (the request is queued, or its claim is the caller's own or
has lapsed), so two operators can never both hold one request; the loser is told who has it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from workflow import audit
from workflow.errors import ClaimConflict, Conflict, Forbidden, Invalid
from workflow.lifecycle import label, move_request
from workflow.models import CustomerRequest, User, now, utc
from workflow.requests_service import load_by_id
from workflow.states import RequestStatus

MAX_REASON = 500


def actor(user: User) -> str:
    return f"{user.role}:{user.name}"


def _claimable(user_id: int, moment: datetime):  # type: ignore[no-untyped-def]
    return or_(
        CustomerRequest.status == RequestStatus.QUEUED.value,
        and_(
            CustomerRequest.status == RequestStatus.CLAIMED.value,
            or_(CustomerRequest.claim_expires_at < moment, CustomerRequest.claimed_by_id == user_id),
        ),
    )


def claim(sessions: sessionmaker, request_id: int, user: User, ttl_s: int) -> None:
    """Claim (or renew) `request_id` for `user`; ClaimConflict names the current holder."""
    moment = now()
    with sessions() as session:
        before = load_by_id(session, request_id)
        previous_holder = before.claimed_by_id
        previous_status = before.status
        lapsed = previous_status == RequestStatus.CLAIMED and utc(before.claim_expires_at) < moment
        result = session.execute(
            update(CustomerRequest)
            .where(CustomerRequest.id == request_id, _claimable(user.id, moment))
            .values(
                status=RequestStatus.CLAIMED.value,
                claimed_by_id=user.id,
                claimed_at=moment if previous_holder != user.id or lapsed else before.claimed_at,
                claim_expires_at=moment + timedelta(seconds=ttl_s),
                updated_at=moment,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            session.rollback()
            _refuse(session, request_id, user)
        if lapsed and previous_holder != user.id:
            audit.record(session, "system", "claim.expired", request_id, holder_id=previous_holder)
        action = "claim.renewed" if previous_holder == user.id and not lapsed else "claim.taken"
        audit.record(session, actor(user), action, request_id, ttl_s=ttl_s)
        session.commit()


def renew_if_held(sessions: sessionmaker, request_id: int, user: User, ttl_s: int) -> bool:
    """Push the expiry of `user`'s own live claim forward (opening the workbench keeps it alive)."""
    moment = now()
    with sessions() as session:
        result = session.execute(
            update(CustomerRequest)
            .where(
                CustomerRequest.id == request_id,
                CustomerRequest.status == RequestStatus.CLAIMED.value,
                CustomerRequest.claimed_by_id == user.id,
                CustomerRequest.claim_expires_at > moment,
            )
            .values(claim_expires_at=moment + timedelta(seconds=ttl_s))
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return result.rowcount == 1


def _refuse(session: Session, request_id: int, user: User) -> None:
    request = session.get(CustomerRequest, request_id)
    session.refresh(request)
    if request.status == RequestStatus.CLAIMED and request.claimed_by_id != user.id:
        holder = session.get(User, request.claimed_by_id)
        name = holder.name if holder else "another operator"
        until = utc(request.claim_expires_at).strftime("%H:%M UTC")
        raise ClaimConflict(f"{name} is working on this request (claim held until {until}).", name)
    raise Conflict(f"This request is {label(request.status).lower()}; it cannot be claimed now.", "Back to the queue.")


def _queue_order(prefer: Collection[str]) -> list:  # type: ignore[type-arg]
    """Oldest first; with `prefer` (an operator's categories), requests whose best candidate is in
    one of them come before the others."""
    oldest = [CustomerRequest.queued_at, CustomerRequest.id]
    if not prefer:
        return oldest
    mine = func.lower(CustomerRequest.category).in_(sorted({c.lower() for c in prefer}))
    return [case((mine, 0), else_=1), *oldest]


def claim_next(sessions: sessionmaker, user: User, ttl_s: int, prefer: Collection[str] = ()) -> int | None:
    """Claim the oldest open request nobody holds (in `prefer`'s categories first); None when the queue is empty."""
    for _attempt in range(20):
        moment = now()
        with sessions() as session:
            candidate = session.scalar(
                select(CustomerRequest.id)
                .where(
                    or_(
                        CustomerRequest.status == RequestStatus.QUEUED.value,
                        and_(
                            CustomerRequest.status == RequestStatus.CLAIMED.value,
                            CustomerRequest.claim_expires_at < moment,
                        ),
                    )
                )
                .order_by(*_queue_order(prefer))
                .limit(1)
            )
        if candidate is None:
            return None
        try:
            claim(sessions, candidate, user, ttl_s)
            return candidate
        except Conflict:
            continue  # someone else took it first: try the next one
    return None


def require_claim(session: Session, request: CustomerRequest, user: User, action: str = "work on it") -> None:
    """Refuse work on a request the user does not hold (or whose claim lapsed). An admin may act on
    another operator's claim: the override is recorded in `session` (`claim.overridden`)."""
    if request.status != RequestStatus.CLAIMED:
        raise Conflict(
            f"This request is {label(request.status).lower()}; claim it from the queue first.",
            "Go back to the queue.",
        )
    if request.claimed_by_id != user.id:
        _other_holder(session, request, user, action)
        return
    if utc(request.claim_expires_at) < now():
        raise Conflict("Your claim on this request has lapsed.", "Claim it again from the queue if it is still open.")


def require_work_right(session: Session, request: CustomerRequest, user: User, action: str) -> None:
    """Searching and sending offers: on a claimed request, the claim holder (`require_claim`); once
    offers are out, the operator who sent them, or an admin (override audited), may search again
    and send more offers beside them (follow-ups), without withdrawing anything."""
    if request.status == RequestStatus.OFFERS_SENT:
        refuse_unless_owner(session, request, user, request.operator_id, action, "sent the offers on this request")
        return
    require_claim(session, request, user, action)


def refuse_if_held_by_other(session: Session, request: CustomerRequest, user: User, action: str) -> None:
    """The claim covers every state-changing action: while another operator holds a live claim on
    `request`, `user` may not `action` it (ClaimConflict naming the holder). An admin may override;
    the override is recorded in `session`, so it commits (or rolls back) with the action."""
    if request.status != RequestStatus.CLAIMED or request.claimed_by_id in (None, user.id):
        return
    if request.claim_expires_at is not None and utc(request.claim_expires_at) < now():
        return  # a lapsed claim protects nothing: it goes back to the queue
    _other_holder(session, request, user, action)


def refuse_unless_owner(
    session: Session, request: CustomerRequest, user: User, owner_id: int | None, action: str, what: str
) -> None:
    """Refuse `action` on something (`what`) another operator made (their offer), admins excepted
    (the override is recorded in `session`)."""
    if owner_id is None or owner_id == user.id:
        return
    owner = session.get(User, owner_id)
    name = owner.name if owner else "another operator"
    if user.role == "admin":
        audit.record(session, actor(user), "claim.overridden", request.id, attempted=action, holder=name)
        return
    raise ClaimConflict(f"{name} {what}; only they (or an admin) can {action}.", name)


def _other_holder(session: Session, request: CustomerRequest, user: User, action: str) -> None:
    holder = session.get(User, request.claimed_by_id) if request.claimed_by_id else None
    name = holder.name if holder else "another operator"
    if user.role == "admin":
        audit.record(session, actor(user), "claim.overridden", request.id, attempted=action, holder=name)
        return
    raise ClaimConflict(f"{name} is working on this request; only they (or an admin) can {action}.", name)


def release(sessions: sessionmaker, request_id: int, user: User, reason: str) -> None:
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("Please say why you release this request (it helps the next operator).")
    with sessions() as session:
        request = load_by_id(session, request_id)
        if request.claimed_by_id != user.id and user.role != "admin":
            raise Forbidden("Only the operator holding the claim (or an admin) can release it.")
        refuse_if_held_by_other(session, request, user, "release it")
        move_request(
            session,
            request,
            RequestStatus.QUEUED,
            actor(user),
            values={"claimed_by_id": None, "claim_expires_at": None, "claimed_at": None},
            reason=reason[:MAX_REASON],
        )
        session.commit()


def expire_claims(sessions: sessionmaker) -> int:
    """Return lapsed claims to the queue (also done lazily by `claim`); how many were returned."""
    moment = now()
    count = 0
    with sessions() as session:
        lapsed = session.scalars(
            select(CustomerRequest).where(
                CustomerRequest.status == RequestStatus.CLAIMED.value, CustomerRequest.claim_expires_at < moment
            )
        ).all()
        for request in lapsed:
            try:
                move_request(
                    session,
                    request,
                    RequestStatus.QUEUED,
                    "system",
                    values={"claimed_by_id": None, "claim_expires_at": None, "claimed_at": None},
                    reason="claim lapsed",
                    holder_id=request.claimed_by_id,
                )
                count += 1
            except Conflict:
                continue
        session.commit()
    return count


@dataclass(frozen=True)
class QueueRow:
    id: int
    waiting_s: float
    category: str
    words: str
    photo_sha256: str
    status: str
    holder: str | None
    claim_expires_at: datetime | None


def open_queue(sessions: sessionmaker, prefer: Collection[str] = ()) -> list[QueueRow]:
    """Open requests, oldest first (in `prefer`'s categories first), with waiting time and who holds each."""
    moment = now()
    with sessions() as session:
        rows = session.execute(
            select(CustomerRequest, User.name)
            .outerjoin(User, User.id == CustomerRequest.claimed_by_id)
            .where(CustomerRequest.status.in_([RequestStatus.QUEUED.value, RequestStatus.CLAIMED.value]))
            .order_by(*_queue_order(prefer))
        ).all()
    out = []
    for request, holder in rows:
        expires = utc(request.claim_expires_at)
        active = request.status == RequestStatus.CLAIMED and expires is not None and expires > moment
        out.append(
            QueueRow(
                request.id,
                (moment - utc(request.queued_at or request.created_at)).total_seconds(),
                request.category,
                request.words,
                request.photo_sha256,
                request.status if active else RequestStatus.QUEUED.value,
                holder if active else None,
                expires if active else None,
            )
        )
    return out
