"""Applications to work as an operator: checked as typed, reviewed by an admin.

Phone numbers go through `phonenumbers` for the applicant's country and are kept in E.164; a number
that cannot exist there is refused with the library's reason. Categories must be the catalog's own.
Approval creates the operator account (a random password nobody knows) with a one-time link to set
one, and keeps the categories for the queue; both outcomes are e-mailed and audited.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

import phonenumbers
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from access import password_links
from access.emails import normalise_email
from access.errors import FieldInvalid
from access.models import OperatorApplication, OperatorCategory
from catalog.db import Product
from catalog.phones import PhoneInvalid, to_e164
from mail.outbox import Outbox
from workflow import audit, users
from workflow.claims import actor
from workflow.errors import Conflict, NotFound
from workflow.models import User, now

MAX_NOTE = 2000


def normalise_phone(raw: str, country: str) -> str:
    """`raw` as dialled in `country` (ISO 3166 alpha-2), in E.164; `FieldInvalid` ("phone") saying why not."""
    region = country_code(country)
    try:
        return to_e164(raw, region)
    except PhoneInvalid as exc:
        raise FieldInvalid("phone", str(exc)) from None


def country_code(raw: str) -> str:
    """An ISO 3166 alpha-2 country that has phone numbers, upper-cased."""
    code = (raw or "").strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise FieldInvalid("country", "Please choose your country (a two-letter code such as GB or DE).")
    return code


def catalog_categories(session: Session) -> list[str]:
    """The catalog's categories, as applicants choose from them."""
    # GROUP BY, not DISTINCT: PostgreSQL refuses SELECT DISTINCT ordered by an expression it does not select.
    rows = session.scalars(
        select(Product.category)
        .where(Product.category != "")
        .group_by(Product.category)
        .order_by(func.lower(Product.category))
    )
    return list(rows)


@dataclass
class Application:
    """An application as typed (the form and the JSON API send the same)."""

    name: str
    email: str
    phone: str
    country: str
    languages: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    note: str = ""


def _checked(session: Session, form: Application) -> OperatorApplication:
    name = " ".join((form.name or "").split())
    if not name or len(name) > 100:
        raise FieldInvalid("name", "Please enter your name (up to 100 characters).")
    email = normalise_email(form.email)
    country = country_code(form.country)
    phone = normalise_phone(form.phone, country)
    languages = [" ".join(lang.split()) for lang in form.languages if lang and lang.strip()]
    if not languages or len(languages) > 20 or any(len(lang) > 40 for lang in languages):
        raise FieldInvalid("languages", "Please name the languages you speak (1-20, each up to 40 characters).")
    known = {c.lower(): c for c in catalog_categories(session)}
    unknown = [c for c in form.categories if c.strip().lower() not in known]
    if unknown:
        raise FieldInvalid("categories", f"Not categories of the catalog: {', '.join(unknown)}.")
    categories = sorted({known[c.strip().lower()] for c in form.categories})
    if not categories:
        raise FieldInvalid("categories", "Please choose at least one category you know.")
    note = (form.note or "").strip()
    if len(note) > MAX_NOTE:
        raise FieldInvalid("note", f"The note is longer than {MAX_NOTE} characters.")
    return OperatorApplication(
        name=name,
        email=email,
        phone=phone,
        country=country,
        languages=languages,
        categories=categories,
        note=note,
        status="pending",
    )


def submit(sessions: sessionmaker, outbox: Outbox, form: Application) -> int:
    """Record a checked application and tell the applicant it arrived; its id."""
    with sessions() as session:
        application = _checked(session, form)
        pending = session.scalar(
            select(OperatorApplication.id).where(
                OperatorApplication.email == application.email, OperatorApplication.status == "pending"
            )
        )
        if pending is not None:
            raise Conflict("An application from this address is already waiting for review.", "We will e-mail you.")
        session.add(application)
        session.flush()
        audit.record(session, "applicant", "application.submitted", application_id=application.id)
        session.commit()
        name, email, app_id = application.name, application.email, application.id
    outbox.send_template(email, "application_received", {"name": name}, transactional=True)
    return app_id


def applications(sessions: sessionmaker) -> list[OperatorApplication]:
    """Every application, pending first, then newest first."""
    with sessions() as session:
        rows = list(
            session.scalars(
                select(OperatorApplication).order_by(
                    (OperatorApplication.status != "pending"), OperatorApplication.id.desc()
                )
            )
        )
        session.expunge_all()
        return rows


def _take_for_review(sessions: sessionmaker, application_id: int, status: str, admin: User, reason: str) -> None:
    """Move a pending application to `status` in one conditional update (two admins cannot both)."""
    with sessions() as session:
        done = session.execute(
            update(OperatorApplication)
            .where(OperatorApplication.id == application_id, OperatorApplication.status == "pending")
            .values(status=status, reason=reason, reviewed_at=now(), reviewed_by_id=admin.id)
        ).rowcount
        if not done:
            exists = session.get(OperatorApplication, application_id)
            session.rollback()
            if exists is None:
                raise NotFound("There is no such application.")
            raise Conflict(f"This application was already {exists.status}.")
        session.commit()


def _free_user_name(session: Session, email: str) -> str:
    """A sign-in name from the address's local part (letters, digits, . _ -), unique."""
    stem = re.sub(r"[^a-z0-9_.-]", "", email.split("@", 1)[0].lower())[:40] or "operator"
    name, n = stem, 1
    while session.scalar(select(User.id).where(User.name == name)) is not None:
        n += 1
        name = f"{stem}-{n}"
    return name


def approve(sessions: sessionmaker, outbox: Outbox, base: str, application_id: int, admin: User) -> str:
    """Create the operator with the application's categories and e-mail a set-password link; their name."""
    _take_for_review(sessions, application_id, "approved", admin, "")
    try:
        with sessions() as session:
            application = session.get(OperatorApplication, application_id)
            assert application is not None
            name = _free_user_name(session, application.email)
        user = users.add_user(sessions, name, "operator", secrets.token_urlsafe(32))
    except Exception:
        with sessions() as session:  # nothing was created: the application waits again
            session.execute(
                update(OperatorApplication)
                .where(OperatorApplication.id == application_id)
                .values(status="pending", reviewed_at=None, reviewed_by_id=None)
            )
            session.commit()
        raise
    with sessions() as session:
        application = session.get(OperatorApplication, application_id)
        assert application is not None
        application.user_id = user.id
        for category in application.categories:
            session.add(OperatorCategory(user_id=user.id, category=category))
        token = password_links.issue(session, user.id)
        audit.record(session, actor(admin), "access.application.approved", application_id=application_id, user=name)
        session.commit()
        context = {
            "name": application.name,
            "user_name": name,
            "set_password_url": f"{base}/set-password/{token}",
            "hours": int(password_links.LIFETIME.total_seconds() // 3600),
        }
        email = application.email
    outbox.send_template(email, "application_approved", context, transactional=True)
    return name


def decline(sessions: sessionmaker, outbox: Outbox, application_id: int, admin: User, reason: str) -> None:
    """Decline with a reason the applicant reads."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_NOTE:
        raise FieldInvalid("reason", "Please give the applicant a reason (up to 2000 characters).")
    _take_for_review(sessions, application_id, "declined", admin, reason)
    with sessions() as session:
        application = session.get(OperatorApplication, application_id)
        assert application is not None
        audit.record(session, actor(admin), "access.application.declined", application_id=application_id)
        session.commit()
        email, context = application.email, {"name": application.name, "reason": reason}
    outbox.send_template(email, "application_declined", context, transactional=True)


def categories_of(sessions: sessionmaker, user_id: int) -> list[str]:
    """The categories an operator knows (their queue shows requests in them first)."""
    with sessions() as session:
        return list(session.scalars(select(OperatorCategory.category).where(OperatorCategory.user_id == user_id)))
