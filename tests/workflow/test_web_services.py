"""The web app's services without HTTP: state tables, the test payment provider, intake checks, claims."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from catalog.db import make_engine, session_factory
from catalog.workspace import Workspace
from mail.rendering import render
from workflow import claims
from workflow.errors import ClaimConflict, Invalid
from workflow.models import AuditEntry, CustomerRequest, User
from workflow.payments import (
    APPROVED,
    DECLINED,
    DECLINED_AT_CAPTURE,
    INSUFFICIENT_FUNDS,
    TestPaymentProvider,
    clean_card_number,
)
from workflow.requests_service import check_wishes, create_request, estimate_reply
from workflow.states import OFFER_TRANSITIONS, REQUEST_TRANSITIONS, OfferStatus, RequestStatus
from workflow.uploads import StoredPhoto, image_path
from workflow.users import UserError, add_user, authenticate


def test_every_state_is_reachable_and_final_states_have_no_exit() -> None:
    reached = {RequestStatus.SUBMITTED}
    frontier = [RequestStatus.SUBMITTED]
    while frontier:
        for nxt in REQUEST_TRANSITIONS[frontier.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                frontier.append(nxt)
    assert reached == set(RequestStatus)
    for final in (RequestStatus.CLOSED, RequestStatus.CANCELLED, RequestStatus.EXPIRED):
        assert not REQUEST_TRANSITIONS[final]
    assert all(not OFFER_TRANSITIONS[s] for s in OfferStatus if s != OfferStatus.SENT)


def test_test_provider_outcomes_and_idempotency() -> None:
    provider = TestPaymentProvider()
    ok = provider.authorise(Decimal("10.00"), "EUR", APPROVED, "a")
    assert ok.ok and ok.status == "authorised"
    assert provider.authorise(Decimal("10.00"), "EUR", APPROVED, "a") == ok  # same key: same answer, no new hold
    assert [op for op, _ in provider.calls] == ["authorise"]
    assert not provider.authorise(Decimal("10.00"), "EUR", DECLINED, "b").ok
    assert "insufficient" in provider.authorise(Decimal("1"), "EUR", INSUFFICIENT_FUNDS, "c").message
    held = provider.authorise(Decimal("5.00"), "EUR", DECLINED_AT_CAPTURE, "d")
    assert held.ok and provider.capture(held.reference, Decimal("5.00"), "cap-d").status == "capture_failed"
    captured = provider.capture(ok.reference, Decimal("10.00"), "cap-a")
    assert captured.status == "captured"
    assert not provider.void(ok.reference, "void-a").ok  # captured money is refunded, not voided
    assert provider.refund(ok.reference, Decimal("10.00"), "ref-a").status == "refunded"
    assert not provider.refund(ok.reference, Decimal("10.00"), "ref-a2").ok  # only once
    # a restarted process still knows the capture outcome from the reference
    fresh = TestPaymentProvider()
    assert fresh.capture(held.reference, Decimal("5.00"), "cap-x").status == "capture_failed"


@pytest.mark.parametrize("number", ["4242 4242 4242 4242", "4242-4242-4242-4242", DECLINED])
def test_card_numbers_are_cleaned(number: str) -> None:
    assert clean_card_number(number).isdigit()


@pytest.mark.parametrize("number", ["", "abcd", "4242 4242 4242 4241", "42"])
def test_bad_card_numbers_are_refused(number: str) -> None:
    with pytest.raises(ValueError):
        clean_card_number(number)


@pytest.mark.parametrize(
    ("email", "words", "budget", "problem"),
    [
        ("nope", "", "", "e-mail"),
        ("a@b.co", "x" * 501, "", "500"),
        ("a@b.co", "", "ten", "number"),
        ("a@b.co", "", "-3", "positive"),
        ("a@b.co", "", "NaN", "positive"),
    ],
)
def test_intake_refusals_name_the_field(email: str, words: str, budget: str, problem: str) -> None:
    with pytest.raises(Invalid, match=problem):
        check_wishes(email, words, budget)
    assert check_wishes(" a@b.co ", " lamp ", "39,9").budget == Decimal("39.90")


def test_image_names_are_strict(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    sha = "ab" * 32
    workspace.store_thumbnail(sha, b"\xff\xd8jpeg")
    assert image_path(workspace, sha) is not None
    for name in ("../" + sha, sha.upper(), sha[:-1], sha + "/", "", "..", "%2e%2e"):
        assert image_path(workspace, name) is None


class _NoMail:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject))

    def send_template(
        self, to: str, template: str, context: object, *, transactional: bool = True, session: object = None
    ) -> None:
        self.sent.append((to, render(template, context).subject))  # type: ignore[arg-type]


def test_claims_and_estimates_over_a_plain_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    sessions = session_factory(engine)
    alice = add_user(sessions, "alice", "operator", "amber kettle orbit 1")
    bob = add_user(sessions, "bob", "operator", "velvet canyon drift 2")
    with pytest.raises(UserError):
        add_user(sessions, "alice", "operator", "quiet lantern moss 3")
    with pytest.raises(UserError):
        add_user(sessions, "eve", "operator", "short")
    assert authenticate(sessions, "alice", "amber kettle orbit 1").id == alice.id
    assert authenticate(sessions, "alice", "velvet canyon drift 2") is None
    mail = _NoMail()
    photo = StoredPhoto("cd" * 32, 100, 80)
    first = create_request(sessions, check_wishes("c@d.ee", "", ""), photo, [], mail, "/r/{token}")
    second = create_request(sessions, check_wishes("c@d.ee", "", ""), photo, [], mail, "/r/{token}")
    assert mail.sent == [("c@d.ee", "Your Vitrine request")] * 2
    with sessions() as session:
        estimate = estimate_reply(session, session.get(CustomerRequest, second.id))
    assert estimate.ahead == 1 and not estimate.from_history and estimate.minutes_low >= 1
    claims.claim(sessions, first.id, alice, 600)
    with pytest.raises(ClaimConflict, match="alice") as refused:
        claims.claim(sessions, first.id, bob, 600)
    assert refused.value.holder == "alice"
    claims.claim(sessions, first.id, alice, 600)  # renewing one's own claim is fine
    assert claims.claim_next(sessions, bob, 600) == second.id
    assert claims.claim_next(sessions, bob, 600) is None
    with sessions() as session:
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.request_id == first.id)).all()
        assert session.scalar(select(User.name).where(User.id == alice.id)) == "alice"
    assert actions[:3] == ["request.submitted", "request.matched", "request.queued"]
    assert "claim.taken" in actions and "claim.renewed" in actions
    engine.dispose()
