"""Applications to supply products as a vendor: checked as typed, reviewed by an admin.

The same checks as operator applications (e-mail through email-validator, the phone through
`phonenumbers` for the country, kept in E.164), plus an http(s) website. One pending application per
address: applying again returns the one that waits, so a double click or a second try makes no
second card for the admin. Approval creates the vendor, its first user and a one-time set-password
link in ONE transaction (with the welcome mail on a durable outbox), so a refused step (a company
name already taken) leaves nothing half made and the application still pending.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from access import password_links
from access.applications import MAX_NOTE, _free_user_name, country_code, normalise_phone
from access.emails import normalise_email
from access.errors import FieldInvalid
from access.models import VendorApplication
from catalog.db import Vendor
from mail.outbox import Outbox
from workflow import audit
from workflow.claims import actor
from workflow.errors import Conflict, NotFound
from workflow.models import User, now

_hasher = PasswordHasher()


@dataclass
class VendorApplicationForm:
    """A vendor application as typed (the form and the JSON API send the same)."""

    company: str
    contact_name: str
    email: str
    phone: str
    country: str
    website: str = ""
    note: str = ""


@dataclass(frozen=True)
class Submitted:
    """The application's id; `existing` when one from this address was already waiting."""

    id: int
    existing: bool


def _one_line(raw: str) -> str:
    return " ".join((raw or "").split())


def normalise_website(raw: str) -> str:
    """An http(s) address with a host, as typed (a missing scheme becomes https://); "" when empty."""
    text = (raw or "").strip()
    if not text:
        return ""
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or "." not in host or " " in text or len(text) > 300:
        raise FieldInvalid("website", "The website must be an http:// or https:// address, e.g. https://example.com.")
    return text


def _checked(form: VendorApplicationForm) -> VendorApplication:
    company = _one_line(form.company)
    if not company or len(company) > 200:
        raise FieldInvalid("company", "Please enter the company's name (up to 200 characters).")
    contact = _one_line(form.contact_name)
    if not contact or len(contact) > 100:
        raise FieldInvalid("contact_name", "Please enter the contact person's name (up to 100 characters).")
    email = normalise_email(form.email)
    country = country_code(form.country)
    phone = normalise_phone(form.phone, country)
    website = normalise_website(form.website)
    note = (form.note or "").strip()
    if len(note) > MAX_NOTE:
        raise FieldInvalid("note", f"The note is longer than {MAX_NOTE} characters.")
    return VendorApplication(
        company=company,
        contact_name=contact,
        email=email,
        phone=phone,
        country=country,
        website=website,
        note=note,
        status="pending",
        reason="",
    )


def submit(sessions: sessionmaker, outbox: Outbox, form: VendorApplicationForm) -> Submitted:
    """Record a checked application and tell the applicant it arrived; the one already waiting for
    this address instead of a second (no second receipt either)."""
    application = _checked(form)
    with sessions() as session:
        pending = session.scalar(
            select(VendorApplication.id).where(
                VendorApplication.email == application.email, VendorApplication.status == "pending"
            )
        )
        if pending is not None:
            return Submitted(pending, existing=True)
        session.add(application)
        session.flush()
        audit.record(session, "applicant", "vendor_application.submitted", application_id=application.id)
        context = {"name": application.contact_name, "company": application.company}
        outbox.send_template(application.email, "vendor_application_received", context, session=session)
        session.commit()
        return Submitted(application.id, existing=False)


def vendor_applications(sessions: sessionmaker) -> list[VendorApplication]:
    """Every vendor application, pending first, then newest first."""
    with sessions() as session:
        rows = list(
            session.scalars(
                select(VendorApplication).order_by((VendorApplication.status != "pending"), VendorApplication.id.desc())
            )
        )
        session.expunge_all()
        return rows


def _take(session: Session, application_id: int, status: str, admin: User, reason: str) -> VendorApplication:
    """Move a pending application to `status` in one conditional update (two admins cannot both)."""
    done = session.execute(
        update(VendorApplication)
        .where(VendorApplication.id == application_id, VendorApplication.status == "pending")
        .values(status=status, reason=reason, reviewed_at=now(), reviewed_by_id=admin.id)
    ).rowcount
    application = session.get(VendorApplication, application_id)
    if application is None:
        raise NotFound("There is no such vendor application.")
    if not done:
        raise Conflict(f"This vendor application was already {application.status}.")
    session.refresh(application)
    return application


@dataclass(frozen=True)
class Approved:
    vendor: str
    user_name: str


def approve(sessions: sessionmaker, outbox: Outbox, base: str, application_id: int, admin: User) -> Approved:
    """Create the vendor (named as the company) and its first user, and mail a set-password link."""
    with sessions() as session:
        application = _take(session, application_id, "approved", admin, "")
        company = application.company  # the exact name too: SQLite's lower() folds ASCII letters only
        same = or_(Vendor.name == company, func.lower(Vendor.name) == company.lower())
        taken = session.scalar(select(Vendor.name).where(same).limit(1))
        if taken is not None:
            session.rollback()
            raise Conflict(
                f"A vendor named {taken!r} already exists, so this application cannot create it.",
                "Decline it with a reason (e.g. ask the applicant to apply under a distinct name), "
                "or ask that vendor's users to invite this person as a colleague.",
            )
        vendor = Vendor(name=application.company)
        session.add(vendor)
        session.flush()
        user_name = _free_user_name(session, application.email)
        user = User(name=user_name, role="vendor", password_hash=_hasher.hash(secrets.token_urlsafe(32)))
        user.vendor_id = vendor.id
        session.add(user)
        session.flush()
        application.vendor_id, application.user_id = vendor.id, user.id
        token = password_links.issue(session, user.id)
        audit.record(
            session,
            actor(admin),
            "access.vendor_application.approved",
            application_id=application_id,
            vendor=vendor.name,
            user=user_name,
        )
        context = {
            "name": application.contact_name,
            "company": vendor.name,
            "user_name": user_name,
            "set_password_url": f"{base}/set-password/{token}",
            "hours": int(password_links.LIFETIME.total_seconds() // 3600),
        }
        outbox.send_template(application.email, "vendor_application_approved", context, session=session)
        session.commit()
        return Approved(vendor.name, user_name)


def decline(sessions: sessionmaker, outbox: Outbox, application_id: int, admin: User, reason: str) -> None:
    """Decline with a reason the applicant reads."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_NOTE:
        raise FieldInvalid("reason", "Please give the applicant a reason (up to 2000 characters).")
    with sessions() as session:
        application = _take(session, application_id, "declined", admin, reason)
        audit.record(session, actor(admin), "access.vendor_application.declined", application_id=application_id)
        context = {"name": application.contact_name, "company": application.company, "reason": reason}
        outbox.send_template(application.email, "vendor_application_declined", context, session=session)
        session.commit()
