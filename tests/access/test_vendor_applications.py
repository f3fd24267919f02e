"""Vendor applications, teams and API keys on a real SQLite database: fields checked as typed (phone
per country in E.164 and refused naming `phone`, website http(s) only), one pending application per
address, approval creating the vendor, its first user and a set-password link in one transaction
(a company name already taken leaves nothing made and the application pending), decline with a
reason, colleagues invited and switched off within one vendor, and keys stored hashed, revoked, and
dead with their creator."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from pathlib import Path

import pytest
from access_support import mails_to as mails_of

from access import password_links, vendor_applications, vendor_keys, vendor_team
from access.errors import FieldInvalid
from access.models import VendorApiKey, VendorApplication
from access.vendor_applications import VendorApplicationForm
from catalog.db import Vendor, make_engine, session_factory
from mail.outbox import FileOutbox
from workflow.errors import Conflict, Invalid, NotFound
from workflow.models import AuditEntry, User, now
from workflow.users import authenticate

BASE = "http://vitrine.example"
GOOD_PASSWORD = "violet tractor sings quietly"


@pytest.fixture
def db(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'vitrine.db'}")
    sessions = session_factory(engine)
    with sessions() as session:
        session.add(Vendor(id=1, name="Acme"))
        session.add(User(name="ada", role="admin", password_hash="x"))
        session.commit()
    yield sessions
    engine.dispose()


@pytest.fixture
def outbox(tmp_path: Path) -> FileOutbox:
    return FileOutbox(tmp_path / "outbox")


def named(db, name: str) -> User:
    with db() as session:
        user = session.query(User).filter_by(name=name).one()
        session.expunge(user)
        return user


def form(**changes) -> VendorApplicationForm:
    fields = dict(
        company="  Lumen  Lights GmbH ",
        contact_name="Lena Berg",
        email=" Lena.Berg@Lumen-Lights.com",
        phone="030 901820",
        country="de",
        website="lumen-lights.com",
        note="Lamps and shades, 640 products.",
    )
    fields.update(changes)
    return VendorApplicationForm(**fields)


def test_an_application_is_kept_normalised_and_acknowledged(db, outbox) -> None:
    submitted = vendor_applications.submit(db, outbox, form())
    assert not submitted.existing
    with db() as session:
        row = session.get(VendorApplication, submitted.id)
        assert (row.company, row.email, row.phone, row.country, row.website, row.status) == (
            "Lumen Lights GmbH",
            "lena.berg@lumen-lights.com",
            "+4930901820",
            "DE",
            "https://lumen-lights.com",
            "pending",
        )
    (receipt,) = mails_of(outbox.folder, "lena.berg@lumen-lights.com")
    assert "Lumen Lights GmbH" in receipt


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"phone": "12"}, "phone", "too short"),
        ({"phone": "030 901820", "country": "US"}, "phone", "not valid for US"),
        ({"email": "lena@"}, "email", "not valid"),
        ({"country": "XX"}, "country", "two-letter"),
        ({"website": "ftp://lumen.example.com"}, "website", "http"),
        ({"website": "https://nohost"}, "website", "http"),
        ({"company": "   "}, "company", "company"),
        ({"contact_name": ""}, "contact_name", "contact"),
    ],
)
def test_a_wrong_field_is_refused_by_name_and_nothing_is_kept(db, outbox, changes, field, words) -> None:
    with pytest.raises(FieldInvalid) as refused:
        vendor_applications.submit(db, outbox, form(**changes))
    assert refused.value.field == field
    assert words in refused.value.message
    with db() as session:
        assert session.query(VendorApplication).count() == 0


def test_applying_again_while_one_waits_returns_that_one(db, outbox) -> None:
    first = vendor_applications.submit(db, outbox, form())
    again = vendor_applications.submit(db, outbox, form(email="LENA.BERG@lumen-lights.com", note="again"))
    assert again.id == first.id and again.existing
    with db() as session:
        assert session.query(VendorApplication).count() == 1
    assert len(mails_of(outbox.folder, "lena.berg@lumen-lights.com")) == 1


def test_approval_creates_vendor_user_and_a_link_in_one_go(db, outbox) -> None:
    app_id = vendor_applications.submit(db, outbox, form()).id
    done = vendor_applications.approve(db, outbox, BASE, app_id, named(db, "ada"))
    assert (done.vendor, done.user_name) == ("Lumen Lights GmbH", "lena.berg")
    user = named(db, "lena.berg")
    with db() as session:
        vendor = session.query(Vendor).filter_by(name="Lumen Lights GmbH").one()
        row = session.get(VendorApplication, app_id)
        assert (user.role, user.vendor_id) == ("vendor", vendor.id)
        assert (row.status, row.vendor_id, row.user_id) == ("approved", vendor.id, user.id)
        audit = session.query(AuditEntry).filter_by(action="access.vendor_application.approved").one()
        assert audit.actor == "admin:ada"
    welcome = mails_of(outbox.folder, "lena.berg@lumen-lights.com")[-1]
    token = re.search(rf"{BASE}/set-password/(\S+)", welcome).group(1)
    assert password_links.redeem(db, token, GOOD_PASSWORD, GOOD_PASSWORD) == "lena.berg"
    assert authenticate(db, "lena.berg", GOOD_PASSWORD) is not None
    with pytest.raises(Conflict):
        vendor_applications.approve(db, outbox, BASE, app_id, named(db, "ada"))


def test_a_company_name_taken_is_a_clear_error_and_nothing_is_made(db, outbox) -> None:
    app_id = vendor_applications.submit(db, outbox, form(company="ACME")).id
    with pytest.raises(Conflict, match="'Acme' already exists"):
        vendor_applications.approve(db, outbox, BASE, app_id, named(db, "ada"))
    with db() as session:
        assert session.get(VendorApplication, app_id).status == "pending"
        assert session.query(Vendor).count() == 1
        assert session.query(User).filter_by(role="vendor").count() == 0
    vendor_applications.decline(db, outbox, app_id, named(db, "ada"), "Acme is already a vendor here.")
    assert "already a vendor" in mails_of(outbox.folder, "lena.berg@lumen-lights.com")[-1]
    with pytest.raises(NotFound):
        vendor_applications.approve(db, outbox, BASE, 999, named(db, "ada"))


def test_decline_needs_a_reason(db, outbox) -> None:
    app_id = vendor_applications.submit(db, outbox, form()).id
    with pytest.raises(FieldInvalid) as refused:
        vendor_applications.decline(db, outbox, app_id, named(db, "ada"), "  ")
    assert refused.value.field == "reason"
    with db() as session:
        assert session.get(VendorApplication, app_id).status == "pending"


@pytest.fixture
def vendor_user(db, outbox) -> User:
    app_id = vendor_applications.submit(db, outbox, form()).id
    vendor_applications.approve(db, outbox, BASE, app_id, named(db, "ada"))
    return named(db, "lena.berg")


def test_a_colleague_is_invited_to_the_same_vendor_and_can_be_switched_off(db, outbox, vendor_user) -> None:
    name = vendor_team.invite(db, outbox, BASE, vendor_user, "Max@Lumen-Lights.com")
    colleague = named(db, name)
    assert (name, colleague.role, colleague.vendor_id) == ("max", "vendor", vendor_user.vendor_id)
    assert f"{BASE}/set-password/" in mails_of(outbox.folder, "max@lumen-lights.com")[-1]
    assert [m.name for m in vendor_team.members(db, vendor_user)] == ["lena.berg", "max"]
    with pytest.raises(Invalid, match="yourself"):
        vendor_team.set_active(db, vendor_user, vendor_user.id, False)
    vendor_team.set_active(db, vendor_user, colleague.id, False)
    assert not named(db, "max").active
    with pytest.raises(FieldInvalid):
        vendor_team.invite(db, outbox, BASE, vendor_user, "not an address")


def test_a_team_reaches_only_its_own_vendor(db, outbox, vendor_user) -> None:
    with db() as session:
        session.add(User(name="otto", role="vendor", password_hash="x", vendor_id=1))
        session.commit()
    otto = named(db, "otto")
    assert [m.name for m in vendor_team.members(db, otto)] == ["otto"]
    with pytest.raises(NotFound):
        vendor_team.set_active(db, otto, vendor_user.id, False)
    key = vendor_keys.create(db, vendor_user, "back office")
    with pytest.raises(NotFound):
        vendor_keys.revoke(db, otto, key.id)
    assert vendor_keys.keys(db, otto) == []


def test_a_key_is_stored_hashed_acts_as_its_creator_and_stops_when_revoked(db, vendor_user) -> None:
    key = vendor_keys.create(db, vendor_user, "  Back office  ")
    assert key.secret.startswith("vvk_") and key.prefix == key.secret[:12]
    with db() as session:
        row = session.get(VendorApiKey, key.id)
        assert row.key_sha256 == hashlib.sha256(key.secret.encode()).hexdigest()
        assert key.secret not in repr(row.__dict__)
        assert row.last_used_at is None
    user = vendor_keys.user_of(db, key.secret)
    assert user is not None and user.name == "lena.berg"
    (listed,) = vendor_keys.keys(db, vendor_user)
    assert (listed.name, listed.created_by, listed.active) == ("Back office", "lena.berg", True)
    assert listed.last_used_at is not None
    assert vendor_keys.user_of(db, key.secret + "x") is None
    assert vendor_keys.user_of(db, "vtk_" + key.secret[4:]) is None
    vendor_keys.revoke(db, vendor_user, key.id)
    assert vendor_keys.user_of(db, key.secret) is None
    with pytest.raises(Invalid):
        vendor_keys.create(db, vendor_user, " ")


def test_last_used_is_written_at_most_once_a_minute(db, vendor_user) -> None:
    key = vendor_keys.create(db, vendor_user, "poller")
    vendor_keys.user_of(db, key.secret)
    with db() as session:
        first = session.get(VendorApiKey, key.id).last_used_at
    vendor_keys.user_of(db, key.secret)
    with db() as session:
        row = session.get(VendorApiKey, key.id)
        assert row.last_used_at == first  # a second use within the minute writes nothing
        row.last_used_at = now() - timedelta(minutes=2)
        session.commit()
    vendor_keys.user_of(db, key.secret)
    with db() as session:
        assert session.get(VendorApiKey, key.id).last_used_at > first - timedelta(seconds=1)
        assert session.get(VendorApiKey, key.id).last_used_at != now() - timedelta(minutes=2)


def test_a_key_dies_with_its_creator_switched_off(db, outbox, vendor_user) -> None:
    name = vendor_team.invite(db, outbox, BASE, vendor_user, "max@lumen-lights.com")
    key = vendor_keys.create(db, named(db, name), "max's script")
    assert vendor_keys.user_of(db, key.secret) is not None
    vendor_team.set_active(db, vendor_user, named(db, name).id, False)
    assert vendor_keys.user_of(db, key.secret) is None


def test_a_taken_name_beyond_ascii_is_found_too(db, outbox) -> None:
    with db() as session:
        session.add(Vendor(name="ÖKO Handel"))
        session.commit()
    app_id = vendor_applications.submit(db, outbox, form(company="ÖKO Handel", email="olaf@oeko.example.com")).id
    with pytest.raises(Conflict, match="'ÖKO Handel' already exists"):  # not a unique-constraint crash
        vendor_applications.approve(db, outbox, BASE, app_id, named(db, "ada"))
