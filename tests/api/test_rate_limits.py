"""Rate limits and the sign-in lockout (issue 17, item 6), over a real uvicorn server: per-client
budgets per kind of action (tight ones set through Settings here; the defaults are generous), a
per-account lockout with back-off stored in the database and written to the audit trail, and a cap
on request e-mails per address."""

from __future__ import annotations

import time
from datetime import timedelta
from email import message_from_bytes

import httpx
import pytest
from catalogs import product_photo
from litestar import Litestar, post
from litestar.testing import TestClient
from sqlalchemy import select, update
from webapp import build_catalog, start_site

from api.rate_limits import RULES, configured_rules, rate_limit_middleware
from vision.embedder import open_embedder
from workflow import sign_in_throttle
from workflow.models import AuditEntry, now
from workflow.sign_in_throttle import Policy, SignInThrottle
from workflow.users import add_user

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def workspace(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    return build_catalog(tmp_path_factory.mktemp("rate-catalog"), open_embedder("test-tiny", "onnx", store))


@pytest.fixture(scope="module")
def limited(workspace):
    """Tight per-client budgets; the lockout off (so only the per-client limit is seen)."""
    site, server = start_site(workspace, rate_limits="sign_in=3/minute,search=2/minute", sign_in_failures=0)
    yield site
    server.stop()


@pytest.fixture(scope="module")
def lockout(workspace):
    """No per-client limits; an account locks after 3 wrong passwords, for 2 s at first; 2 mails an hour."""
    site, server = start_site(
        workspace, rate_limits="off", sign_in_failures=3, sign_in_lockout_s=2.0, mails_per_address_hour=2
    )
    add_user(site.sessions, "carol", "operator", PASSWORD)
    add_user(site.sessions, "dave", "operator", PASSWORD)
    yield site
    server.stop()


def test_sign_in_is_limited_per_client_with_retry_after(limited) -> None:
    browser = limited.client()
    answers = [browser.login("nobody", "wrong").status_code for _ in range(3)]
    refused = browser.login("nobody", "wrong")
    assert answers == [401, 401, 401]
    assert refused.status_code == 429
    assert "Too many sign-in attempts from your address (3 per minute)" in refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-limit"] == "3"
    # Other kinds of action have budgets of their own.
    assert browser.get("/login").status_code == 200
    browser.close()


def test_search_has_its_own_budget_and_a_json_429(limited) -> None:
    with httpx.Client(base_url=limited.url, timeout=30) as http:
        answers = [http.post("/api/search", data={"text": "mug"}).status_code for _ in range(3)]
        assert answers == [200, 200, 429]
        refused = http.post("/api/search", data={"text": "mug"})
    assert refused.status_code == 429
    assert "Too many searches from your address" in refused.json()["detail"]
    assert "retry-after" in refused.headers


def test_the_defaults_are_strict_for_sign_in_and_generous_for_search() -> None:
    rules = {rule.name: rule for rule in configured_rules("")}
    assert set(rules) == {"sign_in", "requests", "search", "messages", "waitlist", "applications", "find_requests"}
    assert rules["find_requests"].count < rules["sign_in"].count  # each look-up may send an e-mail
    assert rules["sign_in"].count < rules["requests"].count < rules["search"].count
    assert configured_rules("off") == []
    assert {r.name for r in configured_rules("search=off")} == {r.name for r in RULES} - {"search"}
    assert [r.count for r in configured_rules("sign_in=5/hour") if r.name == "sign_in"] == [5]
    for bad in ("nope=1/minute", "sign_in=five/minute", "sign_in=5/fortnight"):
        with pytest.raises(ValueError, match="VITRINE_RATE_LIMITS"):
            configured_rules(bad)


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("/waitlist", "waitlist"),
        ("/api/waitlist", "waitlist"),
        ("/apply/operator", "applications"),
        ("/api/applications/operator", "applications"),
        ("/apply/vendor", "applications"),
        ("/api/applications/vendor", "applications"),
        ("/my-requests", "find_requests"),
    ],
)
def test_routes_other_packages_add_are_limited_by_path(path: str, rule: str) -> None:
    @post(path, status_code=200)
    async def join() -> str:
        return "ok"

    app = Litestar([join], middleware=rate_limit_middleware(f"{rule}=2/minute"))
    with TestClient(app) as client:
        assert [client.post(path).status_code for _ in range(3)] == [200, 200, 429]


def _audit(site, action: str, name: str) -> list[AuditEntry]:
    with site.sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
        return [entry for entry in entries if (entry.detail or {}).get("name") == name]


def test_an_account_locks_after_wrong_passwords_even_for_the_right_one(lockout) -> None:
    browser = lockout.client()
    wrong = [browser.login("carol", f"guess-{i}") for i in range(3)]
    assert [r.status_code for r in wrong] == [401, 401, 401]
    assert "try again in 2 seconds" in wrong[-1].text
    right = browser.login("carol", PASSWORD)
    assert right.status_code == 429 and "Too many wrong sign-ins for this account" in right.text
    assert "vitrine_staff" not in right.headers.get("set-cookie", "")
    # Another account, from the same address, is not locked.
    assert lockout.client().login("dave", PASSWORD).status_code == 303
    # Every failure, the lock and the refused try are in the audit trail.
    assert len(_audit(lockout, "sign_in.failed", "carol")) == 3
    assert len(_audit(lockout, "sign_in.locked", "carol")) == 1
    assert len(_audit(lockout, "sign_in.refused", "carol")) == 1
    # Once the lock has passed, the right password works and the count starts again.
    time.sleep(2.2)
    assert browser.login("carol", PASSWORD).status_code == 303
    with lockout.sessions() as session:
        assert session.get(SignInThrottle, "carol") is None
    browser.close()


def test_the_lock_doubles_with_each_failure_after_it(lockout) -> None:
    browser = lockout.client()
    for i in range(3):
        browser.login("Dave ", f"guess-{i}")  # the same account, however it is typed
    first = sign_in_throttle.locked_for(lockout.sessions, "dave")
    assert 1.0 < first <= 2.0
    with lockout.sessions() as session:  # the first lock has run out
        session.execute(update(SignInThrottle).values(locked_until=now() - timedelta(seconds=1)))
        session.commit()
    assert browser.login("dave", "guess-again").status_code == 401
    assert 3.0 < sign_in_throttle.locked_for(lockout.sessions, "dave") <= 4.0
    browser.close()
    with lockout.sessions() as session:
        session.execute(update(SignInThrottle).values(locked_until=None, failures=0))
        session.commit()


def test_one_address_guessing_at_many_accounts_is_locked_and_old_failures_fade(lockout) -> None:
    per_client = Policy(failures=4, lockout_s=60)
    for name in ("erin", "frank", "grace", "heidi"):
        sign_in_throttle.record_failure(lockout.sessions, name, Policy(), "10.0.0.9", per_client)
    assert sign_in_throttle.locked_for(lockout.sessions, "ivan", "10.0.0.9") > 50  # any account, this address
    assert sign_in_throttle.locked_for(lockout.sessions, "ivan", "10.0.0.8") == 0
    assert sign_in_throttle.locked_for(lockout.sessions, "erin") == 0  # one failure: the account is fine
    with lockout.sessions() as session:  # an hour later, with no lock, the old failures no longer count
        session.execute(
            update(SignInThrottle)
            .where(SignInThrottle.name == "erin")
            .values(last_failure_at=now() - timedelta(hours=2))
        )
        session.commit()
    sign_in_throttle.record_failure(lockout.sessions, "erin", Policy())
    with lockout.sessions() as session:
        assert session.get(SignInThrottle, "erin").failures == 1


def test_the_policy_backs_off_to_an_hour_at_most() -> None:
    policy = Policy(failures=5, lockout_s=60)
    assert [policy.lock_for(n) for n in (1, 4, 5, 6, 7)] == [0, 0, 60, 120, 240]
    assert policy.lock_for(40) == 3600
    assert Policy(failures=0).lock_for(100) == 0


def _mails_to(site, address: str) -> int:
    folder = site.settings.outbox_dir
    if not folder.exists():
        return 0
    return sum(message_from_bytes(path.read_bytes())["To"] == address for path in folder.glob("*.eml"))


def test_request_mails_to_one_address_are_capped_per_hour(lockout) -> None:
    with httpx.Client(base_url=lockout.url, timeout=60) as http:
        created = [
            http.post(
                "/api/requests",
                data={"email": "target@example.com"},
                files={"photo": ("p.jpg", product_photo(i), "image/jpeg")},
            )
            for i in range(3)
        ]
        other = http.post(
            "/api/requests",
            data={"email": "someone@example.com"},
            files={"photo": ("p.jpg", product_photo(9), "image/jpeg")},
        )
    assert [r.status_code for r in created] == [201, 201, 201]  # every request is kept
    assert other.status_code == 201
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        _mails_to(lockout, "target@example.com") < 2 or not _mails_to(lockout, "someone@example.com")
    ):
        time.sleep(0.1)
    time.sleep(0.5)  # a third mail, if one were coming, would be written by now
    assert _mails_to(lockout, "target@example.com") == 2
    assert _mails_to(lockout, "someone@example.com") == 1
    with lockout.sessions() as session:
        suppressed = session.scalars(select(AuditEntry).where(AuditEntry.action == "mail.suppressed")).all()
    assert len(suppressed) == 1
