"""Operator applications on a real SQLite database: phone numbers per country (E.164, refused with a
reason), categories from the catalog, review by an admin (mails, audit), the new operator's one-time
set-password link, and the queue putting requests in an operator's categories first."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from access_support import mails_to as mails_of

from access import applications, password_links
from access.applications import Application, normalise_phone
from access.errors import FieldInvalid
from access.models import OperatorApplication, PasswordLink
from catalog.db import Product, Vendor, make_engine, session_factory
from mail.outbox import FileOutbox
from workflow import claims
from workflow.errors import Conflict, NotFound
from workflow.models import AuditEntry, CustomerRequest, User, now
from workflow.users import authenticate

BASE = "http://vitrine.example"
GOOD_PASSWORD = "violet tractor sings quietly"


@pytest.fixture
def db(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'vitrine.db'}")
    sessions = session_factory(engine)
    with sessions() as session:
        session.add(Vendor(id=1, name="acme"))
        for i, category in enumerate(["Lamps", "mugs", "Earrings"]):
            session.add(
                Product(
                    id=i + 1, vendor_id=1, sku=f"s{i}", title="t", price=Decimal(1), currency="EUR",
                    category=category, row_hash="h",
                )
            )  # fmt: skip
        session.add(User(name="ada", role="admin", password_hash="x"))
        session.commit()
    yield sessions
    engine.dispose()


@pytest.fixture
def outbox(tmp_path: Path) -> FileOutbox:
    return FileOutbox(tmp_path / "outbox")


def admin(db) -> User:
    with db() as session:
        user = session.query(User).filter_by(name="ada").one()
        session.expunge(user)
        return user


def form(**changes) -> Application:
    fields = dict(
        name="Lena  Berg",
        email=" Lena.Berg@Example.com",
        phone="030 901820",
        country="de",
        languages=["German", " English "],
        categories=["lamps", "Mugs"],
        note="Ten years in a lighting shop.",
    )
    fields.update(changes)
    return Application(**fields)


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("030 901820", "DE", "+4930901820"),
        ("(202) 456-1111", "US", "+12024561111"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("+33 1 42 68 53 00", "DE", "+33142685300"),  # an international number, whatever the country
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_phone_numbers_become_e164_for_their_country(raw: str, country: str, e164: str):
    assert normalise_phone(raw, country) == e164


@pytest.mark.parametrize(
    ("raw", "country", "why"),
    [
        ("12", "DE", "too short"),
        ("0201 234 567 890 123 45", "GB", "too long"),
        ("(202) 456-111", "US", "too short"),
        ("555 0100", "US", "add the area code"),
        ("(123) 456-7890", "US", "no such number"),
        ("hello", "FR", "cannot be read"),
        ("030 901820", "XX", "choose your country"),
    ],
)
def test_impossible_numbers_are_refused_with_a_reason(raw: str, country: str, why: str):
    with pytest.raises(FieldInvalid) as refused:
        normalise_phone(raw, country)
    assert why in refused.value.message
    assert refused.value.field == ("country" if country == "XX" else "phone")


def test_an_application_is_kept_normalised_and_acknowledged(db, outbox):
    application_id = applications.submit(db, outbox, form())
    with db() as session:
        row = session.get(OperatorApplication, application_id)
        assert (row.name, row.email, row.phone, row.country) == (
            "Lena Berg",
            "lena.berg@example.com",
            "+4930901820",
            "DE",
        )
        assert row.languages == ["German", "English"] and row.categories == ["Lamps", "mugs"]
        assert row.status == "pending"
    assert "Hello Lena Berg" in mails_of(outbox.folder, "lena.berg@example.com")[0]
    with pytest.raises(Conflict):
        applications.submit(db, outbox, form(email="LENA.berg@example.com"))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "  "}, "name"),
        ({"email": "lena@"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"country": ""}, "country"),
        ({"languages": []}, "languages"),
        ({"categories": ["lamps", "rockets"]}, "categories"),
        ({"categories": []}, "categories"),
        ({"note": "x" * 2001}, "note"),
    ],
)
def test_a_wrong_field_is_refused_by_name_and_nothing_is_kept(db, outbox, changes, field):
    with pytest.raises(FieldInvalid) as refused:
        applications.submit(db, outbox, form(**changes))
    assert refused.value.field == field
    with db() as session:
        assert session.query(OperatorApplication).count() == 0


def test_approval_creates_the_operator_with_a_one_time_set_password_link(db, outbox):
    application_id = applications.submit(db, outbox, form())
    name = applications.approve(db, outbox, BASE, application_id, admin(db))
    assert name == "lena.berg"
    assert applications.categories_of(db, _user_id(db, name)) == ["Lamps", "mugs"]
    mail = mails_of(outbox.folder, "lena.berg@example.com")[-1]
    assert "sign-in name is: lena.berg" in mail
    token = re.search(rf"{BASE}/set-password/(\S+)", mail).group(1)
    assert password_links.holder(db, token) == "lena.berg"
    assert authenticate(db, name, GOOD_PASSWORD) is None
    with pytest.raises(FieldInvalid, match="not the same"):
        password_links.redeem(db, token, GOOD_PASSWORD, GOOD_PASSWORD + "!")
    with pytest.raises(FieldInvalid, match="at least 12"):
        password_links.redeem(db, token, "short", "short")
    assert password_links.redeem(db, token, GOOD_PASSWORD, GOOD_PASSWORD) == "lena.berg"
    assert authenticate(db, name, GOOD_PASSWORD) is not None
    with pytest.raises(NotFound, match="already used"):
        password_links.redeem(db, token, GOOD_PASSWORD + " two", GOOD_PASSWORD + " two")
    with pytest.raises(Conflict):
        applications.approve(db, outbox, BASE, application_id, admin(db))
    with db() as session:
        trail = [(a.actor, a.action) for a in session.query(AuditEntry).order_by(AuditEntry.id)]
    assert ("admin:ada", "access.application.approved") in trail
    assert ("operator:lena.berg", "staff.password_set") in trail


def test_a_set_password_link_expires(db, outbox):
    application_id = applications.submit(db, outbox, form())
    applications.approve(db, outbox, BASE, application_id, admin(db))
    with db() as session:
        token = password_links.issue(session, _user_id(db, "lena.berg"), timedelta(hours=1))
        session.commit()
        session.query(PasswordLink).update({PasswordLink.expires_at: now() - timedelta(seconds=1)})
        session.commit()
    with pytest.raises(NotFound, match="expired"):
        password_links.holder(db, token)


def test_declining_needs_a_reason_and_tells_the_applicant(db, outbox):
    application_id = applications.submit(db, outbox, form())
    with pytest.raises(FieldInvalid):
        applications.decline(db, outbox, application_id, admin(db), " ")
    applications.decline(db, outbox, application_id, admin(db), "We need operators who know garden tools.")
    assert "garden tools" in mails_of(outbox.folder, "lena.berg@example.com")[-1]
    with db() as session:
        assert session.get(OperatorApplication, application_id).status == "declined"
        assert session.query(User).filter_by(role="operator").count() == 0


def test_requests_in_my_categories_come_first_in_my_queue(db):
    with db() as session:
        for category in ("Earrings", "mugs", "Lamps", "Earrings"):
            session.add(
                CustomerRequest(
                    token_sha256=f"{category}{now().timestamp()}", status="queued", email="c@example.com",
                    photo_sha256="0" * 64, photo_width=1, photo_height=1, category=category, queued_at=now(),
                )
            )  # fmt: skip
            session.flush()
        session.commit()
    oldest_first = [row.category for row in claims.open_queue(db)]
    assert oldest_first == ["Earrings", "mugs", "Lamps", "Earrings"]
    mine = [row.category for row in claims.open_queue(db, ["lamps", "MUGS"])]
    assert mine == ["mugs", "Lamps", "Earrings", "Earrings"]
    operator = User(name="olga", role="operator", password_hash="x")
    with db() as session:
        session.add(operator)
        session.commit()
        session.refresh(operator)
        session.expunge(operator)
    claimed = claims.claim_next(db, operator, 600, ["Lamps"])
    with db() as session:
        assert session.get(CustomerRequest, claimed).category == "Lamps"


def _user_id(db, name: str) -> int:
    with db() as session:
        return session.query(User.id).filter_by(name=name).scalar()
