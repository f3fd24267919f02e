"""The waitlist's rules on a real SQLite database: one entry per person however the address is typed,
places that count only once verified, referral bonuses that never reach past invited people, and
self-referrals and loops that give nothing. Mail goes to .eml files (FileOutbox)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from access_support import mails_to as mails_of

from access import waitlist
from access.emails import normalise_email
from access.errors import FieldInvalid
from access.models import WaitlistEntry
from access.waitlist import Place, position_in, referral_counts, waiting_order
from catalog.db import make_engine, session_factory
from mail.outbox import FileOutbox
from workflow.errors import NotFound
from workflow.models import AuditEntry, User

BASE = "http://vitrine.example"
BONUS = 2


@pytest.fixture
def db(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'vitrine.db'}")
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def outbox(tmp_path: Path) -> FileOutbox:
    return FileOutbox(tmp_path / "outbox")


@pytest.fixture
def admin(db) -> User:
    with db() as session:
        user = User(name="ada", role="admin", password_hash="x")
        session.add(user)
        session.commit()
        session.refresh(user)
        session.expunge(user)
        return user


def mails_to(outbox: FileOutbox, address: str) -> list[str]:
    return mails_of(outbox.folder, address)


def link(body: str, path: str) -> str:
    found = re.search(rf"{re.escape(BASE)}{path}/(\S+)", body)
    assert found, body
    return found.group(1)


def join_verified(db, outbox, address: str, ref: str | None = None) -> waitlist.EntryView:
    joined = waitlist.join(db, outbox, BASE, address, ref, BONUS)
    waitlist.verify(db, link(mails_to(outbox, joined.entry.email)[-1], "/waitlist/verify"))
    return waitlist.entry_view(db, joined.entry.public_id, BONUS)


# --- addresses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    ["joe@example.com", "  JOE@Example.COM ", "Joe@EXAMPLE.com\t", "\uff2a\uff4f\uff45@example.com"],
)
def test_one_spelling_per_address_whatever_the_case_spaces_or_full_width_letters(typed: str):
    assert normalise_email(typed) == "joe@example.com"


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("joe@", "after the @"),
        ("joe.example.com", "@"),
        ("jo..e@example.com", "two periods"),
        ("joe@mail.invalid", "special-use or reserved"),
        ("joe@shop.test", "special-use or reserved"),
        ("joe@localhost", "not valid"),
        ("", "enter your e-mail"),
    ],
)
def test_wrong_or_undeliverable_looking_addresses_are_refused_naming_the_field(typed: str, why: str):
    with pytest.raises(FieldInvalid) as refused:
        normalise_email(typed)
    assert refused.value.field == "email"
    assert why in refused.value.message


# --- the line, computed ------------------------------------------------------------------------------


def test_places_follow_joining_and_each_referral_moves_up_by_the_bonus():
    places = [Place(i, None, True, False) for i in range(1, 6)]
    assert waiting_order(places, 2) == [1, 2, 3, 4, 5]
    places.append(Place(6, 5, True, False))  # 5 referred 6: 5 moves up two places, past 3 and 4
    assert waiting_order(places, 2) == [1, 2, 5, 3, 4, 6]
    assert position_in(places, 2, 5) == 3
    places.append(Place(7, 5, False, False))  # not verified yet: no bonus
    assert position_in(places, 2, 5) == 3
    assert position_in(places, 2, 7) == 7  # where the unverified one would stand once verified


def test_a_bonus_never_takes_anyone_past_invited_people_and_places_start_at_one():
    places = [Place(1, None, True, True), Place(2, None, True, True), Place(3, None, True, False)]
    places += [Place(4 + i, 3, True, False) for i in range(5)]  # 3 referred five people: a huge bonus
    order = waiting_order(places, 10)
    assert 1 not in order and 2 not in order  # the invited are out of the line, let in before anyone waiting
    assert order[0] == 3 and position_in(places, 10, 3) == 1
    assert position_in(places, 10, 1) is None


def test_self_referrals_and_loops_give_nothing():
    # 2 names itself as its referrer; 3 and 4 refer each other (4 joined after 3, so 4 → 3 counts,
    # 3 → 4 does not: a referrer must have joined before the person referred).
    places = [Place(1, None, True, False), Place(2, 2, True, False), Place(3, 4, True, False), Place(4, 3, True, False)]
    counts = referral_counts(places)
    assert counts[2] == 0 and counts[4] == 0 and counts[3] == 1


# --- joining, verifying, referring, inviting -----------------------------------------------------------


def test_the_same_person_joining_again_gets_their_entry_not_a_second_one(db, outbox):
    first = waitlist.join(db, outbox, BASE, "ann@example.com", None, BONUS)
    again = waitlist.join(db, outbox, BASE, "  ANN@Example.com ", None, BONUS)
    assert first.created and not again.created
    assert again.entry.public_id == first.entry.public_id
    with db() as session:
        assert session.query(WaitlistEntry).count() == 1
    assert len(mails_to(outbox, "ann@example.com")) == 2  # still unverified: a fresh link each time


def test_a_place_counts_only_once_verified(db, outbox):
    join_verified(db, outbox, "a@example.com")
    b = waitlist.join(db, outbox, BASE, "b@example.com", None, BONUS).entry
    c = join_verified(db, outbox, "c@example.com")
    assert c.position == 2  # b, unverified, holds no place ahead of c
    assert b.position == 2 and not b.verified  # where b would stand once verified
    waitlist.verify(db, link(mails_to(outbox, "b@example.com")[-1], "/waitlist/verify"))
    assert waitlist.entry_view(db, c.public_id, BONUS).position == 3
    with pytest.raises(NotFound):
        waitlist.verify(db, "not-a-token")


def test_a_verified_referral_moves_the_referrer_up_and_an_unverified_one_does_not(db, outbox):
    for name in ("a", "b", "c"):
        join_verified(db, outbox, f"{name}@example.com")
    dora = join_verified(db, outbox, "dora@example.com")
    assert dora.position == 4
    friend = waitlist.join(db, outbox, BASE, "friend@example.com", dora.share_code, BONUS)
    assert waitlist.entry_view(db, dora.public_id, BONUS).position == 4
    waitlist.verify(db, link(mails_to(outbox, "friend@example.com")[-1], "/waitlist/verify"))
    moved = waitlist.entry_view(db, dora.public_id, BONUS)
    assert (moved.position, moved.referrals) == (2, 1)
    assert waitlist.entry_view(db, friend.entry.public_id, BONUS).position == 5


def test_joining_again_through_someone_elses_link_changes_nothing(db, outbox):
    a = join_verified(db, outbox, "a@example.com")
    b = join_verified(db, outbox, "b@example.com")
    waitlist.join(db, outbox, BASE, "a@example.com", b.share_code, BONUS)  # a is already in line
    waitlist.join(db, outbox, BASE, "b@example.com", b.share_code, BONUS)  # b through b's own link
    assert waitlist.entry_view(db, b.public_id, BONUS).referrals == 0
    assert waitlist.entry_view(db, a.public_id, BONUS).position == 1


def test_inviting_the_next_and_a_named_person_sends_links_that_let_them_in(db, outbox, admin):
    for name in ("a", "b", "c"):
        join_verified(db, outbox, f"{name}@example.com")
    waitlist.join(db, outbox, BASE, "unverified@example.com", None, BONUS)
    assert waitlist.invite_next(db, outbox, BASE, 2, admin, BONUS) == ["a@example.com", "b@example.com"]
    assert waitlist.invite(db, outbox, BASE, " NEW@example.com", admin) == "new@example.com"
    token = link(mails_to(outbox, "a@example.com")[-1], "/invite")
    assert waitlist.invitation_valid(db, token) and not waitlist.invitation_valid(db, token[:-2])
    assert waitlist.accept_invitation(db, token)
    line = waitlist.line(db, BONUS)
    assert [e.email for e in line][:2] == ["c@example.com", "unverified@example.com"]
    assert line[0].position == 1
    assert {e.email for e in line if e.invited} == {"a@example.com", "b@example.com", "new@example.com"}
    with db() as session:
        actions = [
            (a.actor, a.action, a.detail["how"]) for a in session.query(AuditEntry).filter_by(action="access.invited")
        ]
    assert actions == [("admin:ada", "access.invited", "next")] * 2 + [("admin:ada", "access.invited", "named")]
    with pytest.raises(FieldInvalid):
        waitlist.invite_next(db, outbox, BASE, 0, admin, BONUS)


def test_the_same_address_joining_at_once_from_many_threads_is_one_entry(db, outbox):
    import threading

    results: list[waitlist.Joined] = []
    start = threading.Barrier(6)

    def join(typed: str) -> None:
        start.wait()
        results.append(waitlist.join(db, outbox, BASE, typed, None, BONUS))

    threads = [
        threading.Thread(target=join, args=(" Race@EXAMPLE.com" if i % 2 else "race@example.com",)) for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and len({r.entry.public_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    with db() as session:
        assert session.query(WaitlistEntry).count() == 1
