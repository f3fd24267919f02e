"""The admin area's domain side (switching staff accounts off and on, the trail of admin actions) and
the closed-beta setting read from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from access import staff
from catalog.db import make_engine, session_factory
from workflow import audit, staff_sessions
from workflow.errors import Invalid
from workflow.models import User
from workflow.settings import Settings


@pytest.fixture
def db(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'vitrine.db'}")
    sessions = session_factory(engine)
    with sessions() as session:
        session.add_all(
            [User(name="ada", role="admin", password_hash="x"), User(name="olga", role="operator", password_hash="x")]
        )
        session.commit()
    yield sessions
    engine.dispose()


def user(db, name: str) -> User:
    with db() as session:
        found = session.query(User).filter_by(name=name).one()
        session.expunge(found)
        return found


def test_a_switched_off_account_loses_its_sessions_and_is_audited(db):
    ada, olga = user(db, "ada"), user(db, "olga")
    token = staff_sessions.open_session(db, olga)
    assert staff_sessions.user_of(db, token) is not None
    assert staff.set_active(db, olga.id, False, ada) == "olga"
    assert staff_sessions.user_of(db, token) is None
    staff.set_active(db, olga.id, True, ada)
    assert [row.active for row in staff.staff(db)] == [True, True]
    with pytest.raises(Invalid):
        staff.set_active(db, ada.id, False, ada)
    assert [(e.actor, e.action) for e in staff.admin_trail(db)] == [
        ("admin:ada", "access.staff.enabled"),
        ("admin:ada", "access.staff.disabled"),
    ]


def test_the_trail_holds_admin_actions_only(db):
    with db() as session:
        audit.record(session, "operator:olga", "request.claimed", 1)
        audit.record(session, "admin:ada", "payment.refunded", 1)
        session.commit()
    assert [e.action for e in staff.admin_trail(db)] == ["payment.refunded"]


def test_the_access_mode_comes_from_the_environment_and_a_typo_is_refused(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("VITRINE_HOME", str(tmp_path))
    monkeypatch.delenv("VITRINE_ACCESS", raising=False)
    assert Settings.from_env().access == "open"
    monkeypatch.setenv("VITRINE_ACCESS", " Waitlist ")
    monkeypatch.setenv("VITRINE_REFERRAL_BONUS", "5")
    settings = Settings.from_env()
    assert (settings.access, settings.referral_bonus) == ("waitlist", 5)
    monkeypatch.setenv("VITRINE_ACCESS", "closed")
    with pytest.raises(ValueError, match="VITRINE_ACCESS must be one of open, waitlist"):
        Settings.from_env()
