"""Staff accounts (issue 17, item 10): the password policy on every path that sets a password, the
admin's controls (`vitrine users disable|enable|reset-password|sessions revoke`) and TOTP two-factor
sign-in (valid code, wrong code, the same code twice), through the CLI and a real server."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from typer.testing import CliRunner
from webapp import start_site

from catalog.db import make_engine, session_factory
from catalog.workspace import Workspace
from cli.main import app as cli_app
from workflow import staff_sessions, totp
from workflow.models import User
from workflow.passwords import WeakPassword, check_password
from workflow.users import UserError, add_user, authenticate, reset_password

runner = CliRunner()
GOOD = "amber kettle orbit 1"
OTHER_GOOD = "velvet canyon drift 2"


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("12345678", "at least 12 characters"),  # the example
        ("password1234", "common or breached"),
        ("qwertyuiop12", "too easy to guess"),
        ("aaaaaaaaaaaaaaaa", "too easy to guess"),
        ("Password1234!", "too easy to guess"),
        ("carol-the-operator-2026", "account's name"),
    ],
)
def test_the_policy_refuses_short_common_and_guessable_passwords(password: str, why: str) -> None:
    with pytest.raises(WeakPassword, match=why):
        check_password(password, name="carol")


def test_the_policy_accepts_passphrases_and_random_passwords() -> None:
    for password in (GOOD, "correct horse battery", "fR7#qL2!vX9@", "tomato bicycle under lamp"):
        check_password(password, name="carol")


@pytest.fixture
def sessions(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VITRINE_HOME", str(tmp_path / "home"))
    engine = make_engine(Workspace.from_env().database_url)
    yield session_factory(engine)
    engine.dispose()


def test_accounts_cannot_be_made_or_reset_with_a_weak_password(sessions) -> None:
    with pytest.raises(UserError, match="at least 12"):
        add_user(sessions, "carol", "operator", "12345678")
    refused = runner.invoke(cli_app, ["users", "add", "carol", "--password", "password1234"])
    assert refused.exit_code == 2 and "common or breached" in " ".join(refused.output.split())
    add_user(sessions, "carol", "operator", GOOD)
    with pytest.raises(UserError, match="at least 12"):
        reset_password(sessions, "carol", "12345678")
    assert authenticate(sessions, "carol", GOOD) is not None  # a refused reset changed nothing


def _signed_in(sessions, name: str, password: str) -> str:  # type: ignore[no-untyped-def]
    user = authenticate(sessions, name, password)
    assert user is not None
    return staff_sessions.open_session(sessions, user)


def test_disable_enable_and_revoke_end_sessions_at_once(sessions) -> None:
    add_user(sessions, "carol", "operator", GOOD)
    first, second = _signed_in(sessions, "carol", GOOD), _signed_in(sessions, "carol", GOOD)
    revoked = runner.invoke(cli_app, ["users", "sessions", "revoke", "carol"])
    assert revoked.exit_code == 0 and "ended 2 session(s)" in revoked.output
    assert staff_sessions.user_of(sessions, first) is None and staff_sessions.user_of(sessions, second) is None

    cookie = _signed_in(sessions, "carol", GOOD)
    disabled = runner.invoke(cli_app, ["users", "disable", "carol"])
    assert disabled.exit_code == 0, disabled.output
    assert staff_sessions.user_of(sessions, cookie) is None  # out at once, not at the session's expiry
    assert authenticate(sessions, "carol", GOOD) is None
    assert runner.invoke(cli_app, ["users", "enable", "carol"]).exit_code == 0
    assert authenticate(sessions, "carol", GOOD) is not None
    unknown = runner.invoke(cli_app, ["users", "disable", "nobody"])
    assert unknown.exit_code == 2 and "no user named 'nobody'" in unknown.output


def test_reset_password_prompts_twice_applies_the_policy_and_ends_sessions(sessions) -> None:
    add_user(sessions, "carol", "operator", GOOD)
    cookie = _signed_in(sessions, "carol", GOOD)
    weak = runner.invoke(cli_app, ["users", "reset-password", "carol"], input="12345678\n12345678\n")
    assert weak.exit_code == 2 and "at least 12" in weak.output
    mistyped = runner.invoke(cli_app, ["users", "reset-password", "carol"], input=f"{OTHER_GOOD}\nx\n")
    assert mistyped.exit_code != 0 and authenticate(sessions, "carol", GOOD) is not None
    done = runner.invoke(cli_app, ["users", "reset-password", "carol"], input=f"{OTHER_GOOD}\n{OTHER_GOOD}\n")
    assert done.exit_code == 0, done.output
    assert authenticate(sessions, "carol", GOOD) is None and authenticate(sessions, "carol", OTHER_GOOD) is not None
    assert staff_sessions.user_of(sessions, cookie) is None


def _secret_of(sessions, name: str) -> str:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.query(User).filter_by(name=name).one().totp_secret


def test_totp_codes_are_checked_and_each_is_accepted_once(sessions) -> None:
    user = add_user(sessions, "root", "admin", GOOD)
    enrolled = runner.invoke(cli_app, ["users", "totp", "root"])
    assert enrolled.exit_code == 0, enrolled.output
    uri = re.search(r"otpauth://totp/\S+", enrolled.output)
    assert uri and "issuer=Vitrine" in uri.group(0)
    secret = _secret_of(sessions, "root")
    assert secret in uri.group(0)
    code = pyotp.TOTP(secret).now()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert not totp.check_code(sessions, user.id, wrong)
    assert not totp.check_code(sessions, user.id, "abc123")
    assert totp.check_code(sessions, user.id, code)
    assert not totp.check_code(sessions, user.id, code)  # the same code again: a replay
    next_code = pyotp.TOTP(secret).at(time.time() + 30)
    assert totp.check_code(sessions, user.id, next_code)  # the next step's code still works once
    assert runner.invoke(cli_app, ["users", "totp", "root", "--remove"]).exit_code == 0
    assert _secret_of(sessions, "root") is None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    site, server = start_site(Workspace(tmp_path_factory.mktemp("sign-in") / "site"))
    yield site
    server.stop()


def test_sign_in_asks_enrolled_staff_for_the_code_and_refuses_a_replay(site) -> None:
    add_user(site.sessions, "root", "admin", GOOD)
    secret, _ = totp.enrol(site.sessions, "root")
    code = pyotp.TOTP(secret).now()
    browser = site.client()
    without = browser.login("root", GOOD)
    assert without.status_code == 401 and "6-digit code" in without.text
    assert 'value="root"' in without.text  # the name is kept
    other = f"{(int(code) + 1) % 1_000_000:06d}"
    wrong = browser.post("/login", {"name": "root", "password": GOOD, "code": other, "next": "/operator"})
    assert wrong.status_code == 401 and staff_sessions.COOKIE not in browser.http.cookies
    right = browser.post("/login", {"name": "root", "password": GOOD, "code": code, "next": "/operator"})
    assert right.status_code == 303 and right.headers["location"] == "/operator"
    replay = site.client().post("/login", {"name": "root", "password": GOOD, "code": code, "next": "/operator"})
    assert replay.status_code == 401  # a code seen once (over a shoulder, in a log) does not open a second session


def test_an_admin_without_totp_is_warned_or_refused_by_the_setting(site, tmp_path) -> None:
    add_user(site.sessions, "root2", "admin", GOOD)
    warned = site.client()
    response = warned.login("root2", GOOD)
    assert response.status_code == 303
    assert "two-factor" in warned.get(response.headers["location"]).text  # the notice on the next page
    strict, server = start_site(Workspace(tmp_path / "strict"), require_admin_totp=True)
    try:
        add_user(strict.sessions, "root", "admin", GOOD)
        add_user(strict.sessions, "olga", "operator", GOOD)
        refused = strict.client().login("root", GOOD)
        assert refused.status_code == 403 and "two-factor" in refused.text
        assert strict.client().login("olga", GOOD).status_code == 303  # operators are not asked
    finally:
        server.stop()
