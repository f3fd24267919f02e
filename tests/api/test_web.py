"""The web app over a real HTTP server: customer flow, operator workbench, payments, JSON API, and
every rule (CSRF, claims, double accept, transitions, escaping, bad uploads, unguessable links)."""

from __future__ import annotations

import io
import re
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from catalogs import product_photo
from delivery_support import ADDRESS, ADDRESS_FORM, SHIPMENT
from images import png_header_only
from PIL import Image
from sqlalchemy import func, select, update
from typer.testing import CliRunner
from webapp import SCRIPT_TITLE, staffed_site

from catalog.db import Product
from cli.main import app as cli_app
from vision.embedder import open_embedder
from workflow import claims, offers_service
from workflow.models import AuditEntry, Candidate, CustomerRequest, Message, Offer, Payment, User, now
from workflow.payments import APPROVED, DECLINED, DECLINED_AT_CAPTURE
from workflow.request_tokens import token_hash
from workflow.states import RequestStatus, TransitionRefused, check_request
from workflow.users import add_user

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    with staffed_site(tmp_path_factory.mktemp("web-catalog"), embedder, PASSWORD) as site:
        yield site


@pytest.fixture
def customer(site):
    browser = site.client()
    yield browser
    browser.close()


def _operator(site, name: str):  # type: ignore[no-untyped-def]
    browser = site.client()
    response = browser.login(name, PASSWORD)
    assert response.status_code == 303, response.text
    return browser


@pytest.fixture
def alice(site):
    browser = _operator(site, "alice")
    yield browser
    browser.close()


@pytest.fixture
def bob(site):
    browser = _operator(site, "bob")
    yield browser
    browser.close()


def _user(site, name: str) -> User:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        return session.scalar(select(User).where(User.name == name))


def _submit(browser, photo: bytes | None = None, words: str = "", email: str = "c@example.com"):  # type: ignore[no-untyped-def]
    return browser.post(
        "/requests",
        {"email": email, "words": words, "budget": ""},
        files={"photo": ("photo.jpg", photo if photo is not None else product_photo(7), "image/jpeg")},
    )


def _new_request(browser, number: int = 7, words: str = "") -> tuple[str, int]:  # type: ignore[no-untyped-def]
    response = _submit(browser, product_photo(number), words)
    assert response.status_code == 303, response.text
    token = response.headers["location"].rsplit("/", 1)[1]
    with browser_site(browser).sessions() as session:
        request_id = session.scalar(select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token)))
    return token, request_id


_SITES: dict[str, object] = {}


def browser_site(browser):  # type: ignore[no-untyped-def]
    return _SITES[str(browser.http.base_url).rstrip("/")]


@pytest.fixture(autouse=True)
def _remember(site):
    _SITES[site.url] = site


def _offered(site, token: str, request_id: int, products: int = 2) -> list[int]:  # type: ignore[no-untyped-def]
    """Claim as alice and send offers on the first `products` instant matches; returns the offer ids."""
    user = _user(site, "alice")
    claims.claim(site.sessions, request_id, user, 600)
    with site.sessions() as session:
        ids = session.scalars(select(Product.id).order_by(Product.id).limit(products)).all()
    drafts = [offers_service.OfferDraft(pid, "25.00", "fits well") for pid in ids]
    return offers_service.send_offers(site.sessions, request_id, user, drafts, 24, site.app.state.outbox, "/r/{token}")


def _requests_count(site) -> int:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        return session.scalar(select(func.count()).select_from(CustomerRequest))


def _stored_images(site) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for _ in Path(site.settings.workspace.images_dir).rglob("*.jpg"))


# --- customer ----------------------------------------------------------------------------------


def test_home_page_has_the_form_and_the_test_banner(site, customer) -> None:
    page = customer.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert customer.get("/login").headers["content-type"].startswith("text/html")
    # One photo input for the camera and the gallery (no `capture`, which would hide the gallery).
    assert 'data-testid="request-form"' in page.text and page.text.count('type="file"') == 1
    assert "capture=" not in page.text
    nothing = customer.post(
        "/requests", {"email": "c@example.com"}, files={"photo": ("", b"", "application/octet-stream")}
    )
    assert nothing.status_code == 422 and "no file was sent" in nothing.text
    assert "TEST MODE — no money moves" in page.text
    assert set(page.cookies) <= {"csrftoken"}
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self' covers scripts
    assert (
        page.headers["referrer-policy"] == "same-origin" and page.headers["x-content-type-options"] == "nosniff"
    )  # nothing kept for an anonymous visitor but the CSRF cookie
    assert re.search(r'name="_csrf_token" value="[^"]+"', page.text)


def test_submission_lands_on_an_unguessable_request_page_with_instant_matches(site, customer) -> None:
    mails_before = set((site.settings.outbox_dir).glob("*.eml")) if site.settings.outbox_dir.exists() else set()
    response = _submit(customer, product_photo(12))
    assert response.status_code == 303
    token = response.headers["location"].rsplit("/", 1)[1]
    assert len(token) >= 32  # token_urlsafe(24): 192 random bits
    page = customer.get(f"/r/{token}")
    assert page.status_code == 200
    assert 'data-status="queued"' in page.text
    assert "Product number 12" in page.text.split('data-testid="instant-match"', 2)[1]  # the best match first
    assert 'data-testid="eta"' in page.text
    deadline = time.monotonic() + 10  # the app's background sender writes the .eml file (no SMTP configured)
    while not any(token in p.read_text() for p in set(site.settings.outbox_dir.glob("*.eml")) - mails_before):
        assert time.monotonic() < deadline, "no .eml file with the request's link"
        time.sleep(0.05)
    with site.sessions() as session:
        request = session.scalar(select(CustomerRequest).where(CustomerRequest.token_sha256 == token_hash(token)))
        assert len(request.candidates) == site.settings.instant_matches
        assert request.candidates[0].score == pytest.approx(1.0, abs=1e-3)
    second = _submit(customer, product_photo(12), words="same <b>colour</b>").headers["location"]
    assert second.rsplit("/", 1)[1] != token
    page = customer.get(second)
    assert "&lt;b&gt;colour&lt;/b&gt;" in page.text and "<b>colour</b>" not in page.text


@pytest.mark.parametrize("token", ["nope", "A" * 32, "../../etc/passwd", "1T6CNEnDLXtFTjlpCLJXtkkm2mdop84H"])
def test_a_wrong_token_is_not_found(site, customer, token: str) -> None:
    page = customer.get(f"/r/{token}")
    assert page.status_code == 404 and "Traceback" not in page.text
    if "/" not in token:
        assert "There is no request at this address" in page.text
    assert customer.get(f"/api/requests/{token}").status_code == 404


def _bomb() -> bytes:
    return png_header_only(30_000, 30_000)


def _big_jpeg(limit: int) -> bytes:
    noise = Image.effect_noise((2600, 2600), 100).convert("RGB")
    out = io.BytesIO()
    noise.save(out, format="JPEG", quality=100)
    data = out.getvalue()
    assert len(data) > limit
    return data


@pytest.mark.parametrize(
    ("kind", "status", "words"),
    [
        ("text", 415, "not an image"),
        ("bomb", 413, "too many pixels"),
        ("empty", 422, "empty"),
        ("big", 413, "too large"),
    ],
)
def test_bad_uploads_get_a_clear_refusal_and_nothing_is_stored(site, customer, kind, status, words) -> None:
    limit = site.settings.max_upload_bytes
    data = {
        "text": b"hello, this is a text file\n" * 10,
        "bomb": _bomb(),
        "empty": b"",
        "big": _big_jpeg(limit) if kind == "big" else b"",
    }[kind]
    requests_before, images_before = _requests_count(site), _stored_images(site)
    response = _submit(customer, data)
    assert response.status_code == status, response.text
    assert words in response.text.lower()
    assert 'data-testid="error-hint"' in response.text and "Traceback" not in response.text
    assert (_requests_count(site), _stored_images(site)) == (requests_before, images_before)
    api = customer.http.post(
        "/api/requests", data={"email": "c@example.com"}, files={"photo": ("x.jpg", data, "image/jpeg")}
    )
    assert api.status_code == status and api.json()["message"]
    assert (_requests_count(site), _stored_images(site)) == (requests_before, images_before)


def test_a_bad_email_is_refused_before_anything_is_stored(site, customer) -> None:
    before = _requests_count(site)
    response = _submit(customer, product_photo(3), email="not-an-address")
    assert response.status_code == 422 and "e-mail address" in response.text
    assert _requests_count(site) == before


def test_forms_without_the_csrf_token_are_refused(site, customer) -> None:
    before = _requests_count(site)
    response = customer.post(
        "/requests", {"email": "c@example.com"}, files={"photo": ("p.jpg", product_photo(1), "image/jpeg")}, csrf=False
    )
    assert response.status_code == 403 and "security token" in response.text
    assert _requests_count(site) == before
    assert customer.post("/login", {"name": "alice", "password": PASSWORD}, csrf=False).status_code == 403
    forged = customer.http.post("/login", data={"name": "alice", "password": PASSWORD, "_csrf_token": "forged"})
    assert forged.status_code == 403


def test_images_are_served_by_strict_names_only(site, customer) -> None:
    token, _ = _new_request(customer, 4)
    with site.sessions() as session:
        sha = session.scalar(
            select(CustomerRequest.photo_sha256).where(CustomerRequest.token_sha256 == token_hash(token))
        )
    good = customer.get(f"/images/{sha}.jpg")
    assert good.status_code == 200 and good.headers["content-type"] == "image/jpeg" and good.content[:2] == b"\xff\xd8"
    for name in (f"{sha.upper()}.jpg", f"{sha}", "..%2F..%2Fvitrine.db", "%2e%2e%2fsecret.key", f"{sha[:10]}.jpg"):
        assert customer.get(f"/images/{name}").status_code == 404


# --- operators ---------------------------------------------------------------------------------


def test_sign_in_refuses_a_wrong_password_and_guards_operator_pages(site, customer) -> None:
    assert customer.get("/operator").status_code == 303
    assert customer.get("/operator").headers["location"].startswith("/login")
    wrong = customer.login("alice", "wrong password")
    assert wrong.status_code == 401 and "not right" in wrong.text
    assert customer.login("nobody", PASSWORD).status_code == 401
    assert customer.login("alice", PASSWORD).status_code == 303
    assert customer.get("/operator").status_code == 200


def test_open_redirect_after_sign_in_is_refused(site, customer) -> None:
    response = customer.post("/login", {"name": "alice", "password": PASSWORD, "next": "//evil.example/"})
    assert response.headers["location"] == "/operator"


def test_queue_claim_conflict_names_the_holder_and_lapsed_claims_return(site, customer, alice, bob) -> None:
    _, request_id = _new_request(customer, 9)
    queue = alice.get("/operator")
    assert f'data-request-id="{request_id}"' in queue.text
    assert alice.post(f"/operator/requests/{request_id}/claim").status_code == 303
    refused = bob.post(f"/operator/requests/{request_id}/claim")
    assert refused.status_code == 409 and "alice is working on this request" in refused.text
    # bob cannot act on it either
    acted = bob.post(f"/operator/requests/{request_id}/offers", {"product_id": "1", "price_1": "5"})
    assert acted.status_code in (409, 422)
    # alice's claim lapses: the request is open again and bob may take it
    with site.sessions() as session:
        session.execute(
            update(CustomerRequest)
            .where(CustomerRequest.id == request_id)
            .values(claim_expires_at=now() - timedelta(seconds=1))
        )
        session.commit()
    queue = bob.get("/operator")
    row = queue.text.split(f'data-request-id="{request_id}"', 1)[1].split("</tr>", 1)[0]
    assert "alice" not in row and f'data-testid="claim-{request_id}"' in row
    assert bob.post(f"/operator/requests/{request_id}/claim").status_code == 303
    with site.sessions() as session:
        request = session.get(CustomerRequest, request_id)
        assert request.claimed_by_id == _user(site, "bob").id
        actions = [e.action for e in session.scalars(select(AuditEntry).where(AuditEntry.request_id == request_id))]
    assert "request.queued" in actions  # the lapse was recorded as a return to the queue
    claims.release(site.sessions, request_id, _user(site, "bob"), "test over")


def test_next_claims_the_oldest_unclaimed_request(site, customer, alice, bob) -> None:
    claims.expire_claims(site.sessions)
    with site.sessions() as session:  # clear the queue of earlier tests
        session.execute(
            update(CustomerRequest)
            .where(CustomerRequest.status.in_(["queued", "claimed"]))
            .values(status="cancelled", claimed_by_id=None)
        )
        session.commit()
    first = _new_request(customer, 1)[1]
    second = _new_request(customer, 2)[1]
    assert alice.post("/operator/next").headers["location"] == f"/operator/requests/{first}"
    assert bob.post("/operator/next").headers["location"] == f"/operator/requests/{second}"
    empty = bob.post("/operator/next")
    assert empty.headers["location"] == "/operator" and "queue is empty" in bob.get("/operator").text


def test_concurrent_next_never_gives_one_request_to_two_operators(site, customer) -> None:
    with site.sessions() as session:
        session.execute(
            update(CustomerRequest)
            .where(CustomerRequest.status.in_(["queued", "claimed"]))
            .values(status="cancelled", claimed_by_id=None)
        )
        session.commit()
    ids = {_new_request(customer, n)[1] for n in (3, 4, 5)}
    users = [_user(site, "alice"), _user(site, "bob"), _user(site, "root")]
    got: list[int | None] = []
    threads = [threading.Thread(target=lambda u=u: got.append(claims.claim_next(site.sessions, u, 600))) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == sorted(ids)


def test_release_needs_a_reason_and_is_audited(site, customer, alice) -> None:
    _, request_id = _new_request(customer, 11)
    alice.post(f"/operator/requests/{request_id}/claim")
    refused = alice.post(f"/operator/requests/{request_id}/release", {"reason": " "})
    assert refused.status_code == 422 and "why" in refused.text
    assert alice.post(f"/operator/requests/{request_id}/release", {"reason": "needs a lamp expert"}).status_code == 303
    bench = alice.get(f"/operator/requests/{request_id}")
    assert 'data-status="queued"' in bench.text and "needs a lamp expert" in bench.text


def test_workbench_refines_sends_offers_and_the_customer_sees_them(site, customer, alice) -> None:
    token, request_id = _new_request(customer, 5)
    alice.post(f"/operator/requests/{request_id}/claim")
    bench = alice.get(f"/operator/requests/{request_id}")
    assert bench.status_code == 200 and 'data-testid="candidate"' in bench.text
    assert SCRIPT_TITLE not in bench.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in bench.text
    refined = alice.post(
        f"/operator/requests/{request_id}/search",
        {
            "crop_x": "0.1",
            "crop_y": "0.1",
            "crop_w": "0.8",
            "crop_h": "0.8",
            "words": "mug",
            "category": "mugs",
            "min_price": "10",
            "max_price": "60",
            "in_stock": "yes",
        },
    )
    assert refined.status_code == 303
    bench = alice.get(f"/operator/requests/{request_id}")
    assert "search round 1" in bench.text
    with site.sessions() as session:
        rows = session.execute(
            select(Product.category, Product.in_stock, Product.price)
            .join(
                offers_service.CustomerRequest.candidates.property.mapper.class_,
                Product.id == offers_service.CustomerRequest.candidates.property.mapper.class_.product_id,
            )
            .where(offers_service.CustomerRequest.candidates.property.mapper.class_.request_id == request_id)
            .where(offers_service.CustomerRequest.candidates.property.mapper.class_.round == 1)
        ).all()
    assert rows and all(c == "mugs" and stock and 10 <= float(p) <= 60 for c, stock, p in rows)
    bad = alice.post(
        f"/operator/requests/{request_id}/search", {"crop_x": "0.5", "crop_y": "0", "crop_w": "0.9", "crop_h": "1"}
    )
    assert bad.status_code == 422 and "inside the photo" in bad.text
    picks = [int(m) for m in re.findall(r'data-testid="pick-(\d+)"', bench.text)[:2]]
    sent = alice.post(
        f"/operator/requests/{request_id}/offers",
        {
            "product_id": [str(p) for p in picks],
            f"price_{picks[0]}": "19.90",
            f"price_{picks[1]}": "24.00",
            f"note_{picks[0]}": "<i>lovely</i>",
            "expires_in_hours": "12",
        },
    )
    assert sent.status_code == 303, sent.text
    page = customer.get(f"/r/{token}")
    assert 'data-status="offers_sent"' in page.text
    assert page.text.count('data-testid="offer"') == 2 and "19.90" in page.text and "24.00" in page.text
    assert "&lt;i&gt;lovely&lt;/i&gt;" in page.text and 'data-testid="operator-name">alice<' in page.text
    bench = alice.get(f"/operator/requests/{request_id}")
    for action in ("claim.taken", "search.refined", "offer.sent", "request.offers_sent"):
        assert action in bench.text  # the audit trail, on the request
    assert "operator:alice" in bench.text


def test_script_titles_render_as_text_on_the_customer_page(site, customer) -> None:
    token, _ = _new_request(customer, 5)  # product 5 is titled with a script tag
    page = customer.get(f"/r/{token}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert SCRIPT_TITLE not in page.text


def test_messages_and_asking_for_something_else(site, customer, alice) -> None:
    token, request_id = _new_request(customer, 8)
    offers = _offered(site, token, request_id)
    customer.post(f"/r/{token}/messages", {"body": "Do you have it <u>bigger</u>?", "something_else": "1"})
    with site.sessions() as session:
        request = session.get(CustomerRequest, request_id)
        assert request.status == RequestStatus.QUEUED
        assert {session.get(Offer, o).status for o in offers} == {"declined"}
    bench = alice.get(f"/operator/requests/{request_id}")
    assert "Do you have it &lt;u&gt;bigger&lt;/u&gt;?" in bench.text
    assert alice.post(f"/operator/requests/{request_id}/messages", {"body": "Looking now!"}).status_code == 303
    assert "Looking now!" in customer.get(f"/r/{token}").text


def test_declining_the_last_offer_returns_the_request_to_the_queue(site, customer) -> None:
    token, request_id = _new_request(customer, 10)
    offer = _offered(site, token, request_id, products=1)[0]
    assert customer.post(f"/r/{token}/offers/{offer}/decline").status_code == 303
    with site.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "queued"
    again = customer.post(f"/r/{token}/offers/{offer}/decline")
    assert again.status_code == 409 and "cannot become" in again.text


# --- payments ----------------------------------------------------------------------------------


def _authorisations(site) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for op, _ in site.payments.calls if op == "authorise")


def test_accepting_supersedes_the_others_and_repeats_never_charge_twice(site, customer) -> None:
    token, request_id = _new_request(customer, 13)
    first, second = _offered(site, token, request_id)
    before = _authorisations(site)
    accept = customer.post(
        f"/r/{token}/offers/{first}/accept",
        {"card_number": "4242 4242 4242 4242", "idempotency_key": "k1", **ADDRESS_FORM},
    )
    assert accept.status_code == 303
    page = customer.get(f"/r/{token}")
    assert 'data-status="paid"' in page.text and 'data-testid="payment-status">authorised' in page.text
    assert f'data-offer-id="{second}" data-status="superseded"' in page.text
    # the same form posted again (same idempotency key): the first outcome, no second charge
    assert (
        customer.post(
            f"/r/{token}/offers/{first}/accept", {"card_number": APPROVED, "idempotency_key": "k1", **ADDRESS_FORM}
        ).status_code
        == 303
    )
    # a new attempt (another key), on either offer: refused, nothing charged
    again = customer.post(
        f"/r/{token}/offers/{first}/accept", {"card_number": APPROVED, "idempotency_key": "k2", **ADDRESS_FORM}
    )
    assert again.status_code == 409 and "Nothing was charged" in again.text
    other = customer.post(
        f"/r/{token}/offers/{second}/accept", {"card_number": APPROVED, "idempotency_key": "k3", **ADDRESS_FORM}
    )
    assert other.status_code == 409
    assert _authorisations(site) == before + 1
    with site.sessions() as session:
        live = session.scalars(select(Payment).where(Payment.request_id == request_id)).all()
        assert [(p.status, p.test, str(p.amount), p.card_last4) for p in live] == [
            ("authorised", True, "25.00", "4242")
        ]


def test_concurrent_accepts_of_two_offers_charge_once(site, customer) -> None:
    token, request_id = _new_request(customer, 14)
    offers = _offered(site, token, request_id, products=2)
    before = _authorisations(site)
    barrier = threading.Barrier(4)
    results: list[int] = []
    refusals: list[str] = []

    def accept(offer: int, key: str) -> None:
        barrier.wait()
        response = site.client().http.post(
            f"/api/requests/{token}/offers/{offer}/accept",
            json={"card_number": APPROVED, "delivery": ADDRESS},
            headers={"Idempotency-Key": key},
        )
        results.append(response.status_code)
        if response.status_code == 409:
            refusals.append(response.json()["hint"])

    threads = [threading.Thread(target=accept, args=(offers[i % 2], f"c{i}")) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 409, 409, 409]
    assert all("Nothing was charged" in hint for hint in refusals)
    assert _authorisations(site) == before + 1
    with site.sessions() as session:
        statuses = sorted(session.get(Offer, o).status for o in offers)
        payments = session.scalars(select(Payment).where(Payment.request_id == request_id)).all()
    assert statuses == ["accepted", "superseded"]
    assert [p.status for p in payments] == ["authorised"]


def test_a_declined_card_leaves_the_offers_open(site, customer) -> None:
    token, request_id = _new_request(customer, 15)
    offer = _offered(site, token, request_id, products=1)[0]
    declined = customer.post(
        f"/r/{token}/offers/{offer}/accept", {"card_number": DECLINED, "idempotency_key": "d1", **ADDRESS_FORM}
    )
    assert declined.status_code == 402 and "declined" in declined.text and "Nothing was charged" in declined.text
    with site.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "offers_sent"
        assert session.get(Offer, offer).status == "sent"
    bad = customer.post(
        f"/r/{token}/offers/{offer}/accept", {"card_number": "1234", "idempotency_key": "d2", **ADDRESS_FORM}
    )
    assert bad.status_code == 422 and "card number" in bad.text
    ok = customer.post(
        f"/r/{token}/offers/{offer}/accept", {"card_number": APPROVED, "idempotency_key": "d3", **ADDRESS_FORM}
    )
    assert ok.status_code == 303
    with site.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "paid"


def test_fulfilment_captures_and_a_capture_decline_is_reported(site, customer, alice) -> None:
    token, request_id = _new_request(customer, 16)
    offer = _offered(site, token, request_id, products=1)[0]
    customer.post(
        f"/r/{token}/offers/{offer}/accept", {"card_number": APPROVED, "idempotency_key": "f1", **ADDRESS_FORM}
    )
    refused = customer.post(f"/r/{token}/cancel", {"confirm": "yes"})
    assert refused.status_code == 409 and "already paid" in refused.text
    assert alice.post(f"/operator/requests/{request_id}/fulfil", {"confirm": "yes", **SHIPMENT}).status_code == 303
    assert 'data-status="fulfilled"' in customer.get(f"/r/{token}").text
    again = alice.post(f"/operator/requests/{request_id}/fulfil", {"confirm": "yes", **SHIPMENT})
    assert again.status_code == 409
    assert alice.post(f"/operator/requests/{request_id}/close").status_code == 303

    token, request_id = _new_request(customer, 17)
    offer = _offered(site, token, request_id, products=1)[0]
    customer.post(
        f"/r/{token}/offers/{offer}/accept",
        {"card_number": DECLINED_AT_CAPTURE, "idempotency_key": "f2", **ADDRESS_FORM},
    )
    refused = alice.post(f"/operator/requests/{request_id}/fulfil", {"confirm": "yes", **SHIPMENT})
    assert refused.status_code == 402 and "capture was refused" in refused.text
    with site.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "paid"
        assert session.scalar(select(Payment.status).where(Payment.request_id == request_id)) == "capture_failed"


def test_destructive_actions_without_the_ticked_confirmation_change_nothing(site, customer, alice) -> None:
    """Cancel (customer and operator), withdraw, fulfil and refund each need their box ticked: a 422
    that says so, and the request, offer and payment stay as they were."""
    token, request_id = _new_request(customer, 91)
    offers = _offered(site, token, request_id, products=2)
    for path, form in (
        (f"/r/{token}/cancel", {}),
        (f"/operator/requests/{request_id}/offers/{offers[0]}/withdraw", {}),
        (f"/operator/requests/{request_id}/cancel", {"reason": "duplicate"}),
    ):
        session_of = customer if path.startswith("/r/") else alice
        refused = session_of.post(path, form)
        assert refused.status_code == 422 and "Tick the box to confirm" in refused.text, path
    with site.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "offers_sent"
        assert session.get(Offer, offers[0]).status == "sent"
    customer.post(
        f"/r/{token}/offers/{offers[1]}/accept", {"card_number": APPROVED, "idempotency_key": "c1", **ADDRESS_FORM}
    )
    assert alice.post(f"/operator/requests/{request_id}/fulfil").status_code == 422
    with site.sessions() as session:
        assert session.scalar(select(Payment.status).where(Payment.request_id == request_id)) == "authorised"
    assert alice.post(f"/operator/requests/{request_id}/fulfil", {"confirm": "yes", **SHIPMENT}).status_code == 303
    admin = _operator(site, "root")
    assert admin.post(f"/operator/requests/{request_id}/refund").status_code == 422
    admin.close()
    with site.sessions() as session:
        assert session.scalar(select(Payment.status).where(Payment.request_id == request_id)) == "captured"


def test_an_operator_cancelling_a_paid_request_releases_the_card_hold(site, customer, alice) -> None:
    token, request_id = _new_request(customer, 24)
    offer = _offered(site, token, request_id, products=1)[0]
    customer.post(
        f"/r/{token}/offers/{offer}/accept", {"card_number": APPROVED, "idempotency_key": "x1", **ADDRESS_FORM}
    )
    assert alice.post(f"/operator/requests/{request_id}/cancel", {"reason": "", "confirm": "yes"}).status_code == 422
    assert (
        alice.post(f"/operator/requests/{request_id}/cancel", {"reason": "out of stock", "confirm": "yes"}).status_code
        == 303
    )
    page = customer.get(f"/r/{token}")
    assert 'data-status="cancelled"' in page.text and "Cancelled: out of stock" in page.text
    with site.sessions() as session:
        payment = session.scalar(select(Payment).where(Payment.request_id == request_id))
        assert (payment.status, payment.live_request_id) == ("voided", None)


def test_lapsed_authorisations_are_voided(site, customer) -> None:
    token, request_id = _new_request(customer, 18)
    offer = _offered(site, token, request_id, products=1)[0]
    customer.post(
        f"/r/{token}/offers/{offer}/accept", {"card_number": APPROVED, "idempotency_key": "v1", **ADDRESS_FORM}
    )
    with site.sessions() as session:
        session.execute(
            update(Payment).where(Payment.request_id == request_id).values(updated_at=now() - timedelta(days=8))
        )
        session.commit()
    assert offers_service.void_lapsed_authorisations(site.sessions, site.payments, 24 * 7) >= 1
    with site.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "cancelled"
        payment = session.scalar(select(Payment).where(Payment.request_id == request_id))
        assert (payment.status, payment.live_request_id) == ("voided", None)


def test_requests_nobody_takes_up_expire(site, customer, alice) -> None:
    token, request_id = _new_request(customer, 25)
    with site.sessions() as session:
        session.execute(
            update(CustomerRequest)
            .where(CustomerRequest.id == request_id)
            .values(queued_at=now() - timedelta(hours=site.settings.request_ttl_hours + 1))
        )
        session.commit()
    _wait_for_status(site, request_id, "expired")  # the background sweep, with no page opened
    assert f'data-request-id="{request_id}"' not in alice.get("/operator").text
    page = customer.get(f"/r/{token}")
    assert 'data-status="expired"' in page.text and "no operator could take up" in page.text


def _wait_for_status(site, request_id: int, status: str, within_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within_s
    while True:
        with site.sessions() as session:
            if session.get(CustomerRequest, request_id).status == status:
                return
        assert time.monotonic() < deadline, f"request {request_id} never became {status}"
        time.sleep(0.05)


def test_expired_offers_cannot_be_accepted(site, customer, alice) -> None:
    token, request_id = _new_request(customer, 19)
    offer = _offered(site, token, request_id, products=1)[0]
    with site.sessions() as session:
        session.execute(update(Offer).where(Offer.id == offer).values(expires_at=now() - timedelta(minutes=1)))
        session.commit()
    refused = customer.post(
        f"/r/{token}/offers/{offer}/accept", {"card_number": APPROVED, "idempotency_key": "e1", **ADDRESS_FORM}
    )
    assert refused.status_code == 409 and "expired" in refused.text
    # The request goes back to the operators and the conversation stays open.
    _wait_for_status(site, request_id, "queued")
    assert customer.post(f"/r/{token}/messages", {"body": "Still interested!"}).status_code == 303
    page = customer.get(f"/r/{token}")
    assert "The offers have expired" in page.text and "Still interested!" in page.text
    assert f'data-request-id="{request_id}"' in alice.get("/operator").text


def test_offers_expire_in_the_background_and_the_request_returns_to_its_operator(site, customer, alice) -> None:
    token, request_id = _new_request(customer, 92)
    offer = _offered(site, token, request_id, products=1)[0]
    with site.sessions() as session:
        session.execute(update(Offer).where(Offer.id == offer).values(expires_at=now() - timedelta(seconds=1)))
        session.commit()
    _wait_for_status(site, request_id, "queued")  # nobody opened a page
    with site.sessions() as session:
        assert session.get(Offer, offer).status == "expired"
    mine = alice.get("/operator?view=mine").text
    assert f'data-request-id="{request_id}"' in mine


def test_an_offer_expiry_under_the_stated_minimum_is_refused(site, customer, alice) -> None:
    _, request_id = _new_request(customer, 93)
    alice.post(f"/operator/requests/{request_id}/claim")
    with site.sessions() as session:
        product = session.scalar(select(Candidate.product_id).where(Candidate.request_id == request_id).limit(1))
    form = {"product_id": str(product), f"price_{product}": "20.00"}
    short = alice.post(f"/operator/requests/{request_id}/offers", {**form, "expires_in_hours": "0.1"})
    assert short.status_code == 422 and "15 minutes" in short.text
    assert (
        alice.post(f"/operator/requests/{request_id}/offers", {**form, "expires_in_hours": "0.25"}).status_code == 303
    )


# --- rules, JSON API, errors -------------------------------------------------------------------


def test_transition_table_refuses_what_it_does_not_list() -> None:
    check_request("queued", RequestStatus.CLAIMED)
    for current, new in (
        ("closed", RequestStatus.PAID),
        ("queued", RequestStatus.PAID),
        ("cancelled", RequestStatus.QUEUED),
    ):
        with pytest.raises(TransitionRefused):
            check_request(current, new)


def test_state_violations_over_http_are_refused(site, customer, alice) -> None:
    token, request_id = _new_request(customer, 20)
    # offers without a claim, fulfilment before payment, closing before fulfilment
    assert alice.post(f"/operator/requests/{request_id}/offers", {"product_id": "1", "price_1": "5"}).status_code == 409
    assert alice.post(f"/operator/requests/{request_id}/fulfil", {"confirm": "yes", **SHIPMENT}).status_code == 409
    assert alice.post(f"/operator/requests/{request_id}/close").status_code == 409
    customer.post(f"/r/{token}/cancel", {"confirm": "yes"})
    cancelled = customer.post(f"/r/{token}/cancel", {"confirm": "yes"})
    assert cancelled.status_code == 409 and "cannot become" in cancelled.text
    assert alice.post(f"/operator/requests/{request_id}/claim").status_code == 409


def test_json_api_create_read_accept(site) -> None:
    http = site.client().http
    created = http.post(
        "/api/requests",
        data={"email": "api@example.com", "words": "a mug"},
        files={"photo": ("p.jpg", product_photo(21), "image/jpeg")},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "queued" and body["instant_matches"][0]["title"] == "Product number 21"
    assert body["url"].endswith(body["token"]) and body["estimate"]["minutes_high"] >= 1
    assert body["test_mode"] is True
    with site.sessions() as session:
        request_id = session.scalar(
            select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(body["token"]))
        )
    offers = _offered(site, body["token"], request_id, products=2)
    read = http.get(f"/api/requests/{body['token']}").json()
    assert [o["status"] for o in read["offers"]] == ["sent", "sent"] and read["operator"] == "alice"
    path = f"/api/requests/{body['token']}/offers/{offers[1]}/accept"
    accepted = http.post(path, json={"card_number": APPROVED, "delivery": ADDRESS}, headers={"Idempotency-Key": "j1"})
    assert accepted.status_code == 200 and accepted.json()["accept"]["replayed"] is False
    replay = http.post(path, json={"card_number": APPROVED, "delivery": ADDRESS}, headers={"Idempotency-Key": "j1"})
    assert replay.status_code == 200 and replay.json()["accept"]["replayed"] is True
    assert (
        http.post(
            path, json={"card_number": APPROVED, "delivery": ADDRESS}, headers={"Idempotency-Key": "j2"}
        ).status_code
        == 409
    )
    missing = http.post("/api/requests", files={"email": (None, "api@example.com")})
    assert missing.status_code == 400 and "photo" in missing.text.lower()
    schema = http.get("/schema/openapi.json").json()
    assert {"/api/requests", "/api/requests/{token}", "/api/requests/{token}/offers/{offer_id}/accept"} <= set(
        schema["paths"]
    )
    # /schema itself is the document, readable offline (no viewer script from a CDN).
    assert http.get("/schema").json()["paths"] == schema["paths"]


def test_error_pages_say_what_happened_and_what_to_do(site, customer) -> None:
    page = customer.get("/no/such/page")
    assert page.headers["content-type"].startswith("text/html")
    assert page.status_code == 404 and 'data-testid="error-hint"' in page.text
    api = customer.get("/api/no/such")
    assert api.status_code == 404 and api.json()["hint"]
    wrong_method = customer.get("/requests")
    assert wrong_method.status_code == 405 and "Traceback" not in wrong_method.text


def test_users_add_command(site, monkeypatch) -> None:
    monkeypatch.setenv("VITRINE_HOME", str(site.settings.workspace.home))
    runner = CliRunner()
    result = runner.invoke(cli_app, ["users", "add", "carol", "--role", "operator", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert runner.invoke(cli_app, ["users", "add", "carol", "--password", PASSWORD]).exit_code == 2
    assert runner.invoke(cli_app, ["users", "add", "dave", "--role", "king", "--password", PASSWORD]).exit_code == 2
    with site.sessions() as session:
        carol = session.scalar(select(User).where(User.name == "carol"))
    assert carol.role == "operator" and carol.password_hash.startswith("$argon2")
    browser = _operator(site, "carol")
    assert browser.get("/operator").status_code == 200


def test_the_search_endpoint_is_served_by_the_app(site) -> None:
    http = site.client().http
    found = http.post("/api/search", files={"photo": ("p.jpg", product_photo(22), "image/jpeg"), "k": (None, "3")})
    assert found.status_code == 200, found.text
    assert "Product number 22" in found.text


def test_products_ingested_while_serving_become_searchable(site, store, tmp_path: Path) -> None:
    import time

    from catalogs import make_rows, write_csv

    from catalog_ingest.ingest import ingest_catalog

    embedder = open_embedder("test-tiny", "onnx", store)
    ingest_catalog(write_csv(tmp_path / "c.csv", make_rows(3, start=90)), "initech", embedder, site.settings.workspace)
    http = site.client().http
    deadline = time.monotonic() + 20
    while True:
        found = http.post("/api/search", files={"photo": ("p.jpg", product_photo(91), "image/jpeg"), "k": (None, "1")})
        if "Product number 91" in found.text or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "Product number 91" in found.text


def test_sign_out_revokes_the_session_and_sign_in_never_reuses_a_token(site) -> None:
    browser = _operator(site, "alice")
    token = browser.http.cookies["vitrine_staff"]
    assert browser.get("/operator").status_code == 200
    browser.post("/logout")
    stolen = site.client()
    stolen.http.cookies.set("vitrine_staff", token)
    assert stolen.get("/operator").status_code == 303  # the old token no longer signs anyone in
    planted = site.client()
    planted.http.cookies.set("vitrine_staff", "attacker-chosen-value")
    issued = planted.login("alice", PASSWORD).headers["set-cookie"]
    fresh = re.search(r"vitrine_staff=([^;]+)", issued).group(1)
    assert fresh not in ("attacker-chosen-value", token) and len(fresh) >= 40
    with site.sessions() as session:
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "operator:alice")).all()
    assert "staff.signed_in" in actions


def test_an_unexpected_failure_is_a_calm_page_without_traceback(site, customer) -> None:
    class Broken:
        async def search(self, query):  # type: ignore[no-untyped-def]
            raise RuntimeError("index exploded at /secret/path")

    working, site.app.state.search = site.app.state.search, Broken()
    try:
        before = _requests_count(site)
        page = _submit(customer, product_photo(2))
        api = customer.http.get("/api/health")
    finally:
        site.app.state.search = working
    assert page.status_code == 500 and "Something went wrong on our side" in page.text
    assert "Traceback" not in page.text and "/secret/path" not in page.text and "try again" in page.text
    assert _requests_count(site) == before and api.status_code == 200


def test_admin_refunds_a_captured_payment(site, customer) -> None:
    admin = _operator(site, "root")
    token, request_id = _new_request(customer, 23)
    offer = _offered(site, token, request_id, products=1)[0]
    customer.post(
        f"/r/{token}/offers/{offer}/accept", {"card_number": APPROVED, "idempotency_key": "r1", **ADDRESS_FORM}
    )
    assert admin.post(f"/operator/requests/{request_id}/fulfil", {"confirm": "yes", **SHIPMENT}).status_code == 303
    alice = _operator(site, "alice")
    assert alice.post(f"/operator/requests/{request_id}/refund", {"confirm": "yes"}).status_code == 403
    assert admin.post(f"/operator/requests/{request_id}/refund", {"confirm": "yes"}).status_code == 303
    assert admin.post(f"/operator/requests/{request_id}/refund", {"confirm": "yes"}).status_code == 409  # once only
    with site.sessions() as session:
        assert session.scalar(select(Payment.status).where(Payment.request_id == request_id)) == "refunded"
    assert sum(1 for op, _ in site.payments.calls if op == "refund") >= 1


def test_vendor_sees_their_products_and_offers_only(site, customer) -> None:
    from catalog.db import Vendor

    with site.sessions() as session:
        acme = session.scalar(select(Vendor.id).where(Vendor.name == "acme"))
    add_user(site.sessions, "acme-staff", "vendor", PASSWORD, vendor_id=acme)
    vendor = site.client()
    assert vendor.login("acme-staff", PASSWORD).headers["location"] == "/vendor"
    assert vendor.get("/vendor").status_code == 200  # the overview; the products are on /vendor/products
    page = vendor.get("/vendor/products")
    assert page.status_code == 200 and "SKU-00001" in page.text and "SKU-00031" not in page.text
    assert "&lt;script&gt;" in page.text and SCRIPT_TITLE not in page.text
    assert vendor.get("/operator").status_code == 403


def test_the_vendor_pages_and_searches_their_products(site, monkeypatch) -> None:
    """645 products used to show as the first 200 with no notice; now pages of VENDOR_PAGE, a search by
    title or SKU in any case, and the count of what matched."""
    from catalog.db import Product, Vendor
    from workflow import vendor_products

    monkeypatch.setattr(vendor_products, "VENDOR_PAGE", 7)
    with site.sessions() as session:
        acme = session.scalar(select(Vendor.id).where(Vendor.name == "acme"))
        total = session.scalar(select(func.count()).select_from(Product).where(Product.vendor_id == acme))
    add_user(site.sessions, "acme-pager", "vendor", PASSWORD, vendor_id=acme)
    vendor = site.client()
    vendor.login("acme-pager", PASSWORD)
    first = vendor.get("/vendor/products").text
    assert first.count('data-testid="vendor-product"') == 7 and f"Showing 1 to 7 of {total}." in first
    assert 'data-testid="vendor-next"' in first and 'data-testid="vendor-prev"' not in first
    second = vendor.get("/vendor/products?page=2").text
    assert f"Showing 8 to 14 of {total}." in second and 'data-testid="vendor-prev"' in second
    shown = set(re.findall(r'<tr data-testid="vendor-product" data-product="(\d+)">', first))
    assert not shown & set(re.findall(r'<tr data-testid="vendor-product" data-product="(\d+)">', second))
    last = vendor.get("/vendor/products?page=999").text  # past the end: the last page
    assert f"of {total}." in last and 'data-testid="vendor-next"' not in last
    found = vendor.get("/vendor/products?q=sku-00003").text
    assert found.count('data-testid="vendor-product"') == 1 and "SKU-00003" in found and "Showing 1 to 1 of 1." in found
    assert "No products match." in vendor.get("/vendor/products?q=no-such-thing").text
    vendor.close()


def test_a_body_over_the_server_limit_is_refused_with_a_page(site, customer) -> None:
    before = _requests_count(site)
    huge = b"\xff\xd8" + b"\x00" * (site.settings.max_upload_bytes + 2_000_000)
    page = _submit(customer, huge)
    assert page.status_code == 413 and "limit of 10 MB" in page.text and "Traceback" not in page.text
    api = customer.http.post("/api/requests", data={"email": "c@example.com"}, files={"photo": ("x.jpg", huge)})
    assert api.status_code == 413 and "limit" in api.json()["message"]
    assert _requests_count(site) == before


def test_searching_on_an_unclaimed_request_does_not_claim_it(site, customer, alice) -> None:
    _, request_id = _new_request(customer, 26)
    refused = alice.post(f"/operator/requests/{request_id}/search", {"words": "mug"})
    assert refused.status_code == 409 and "claim it from the queue first" in refused.text
    with site.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "queued"


def test_the_customer_picks_an_instant_match_and_the_operator_sees_it(site, customer, alice) -> None:
    token, request_id = _new_request(customer, 94)
    with site.sessions() as session:
        shown = session.scalars(
            select(Candidate.product_id).where(Candidate.request_id == request_id, Candidate.round == 0)
        ).all()
        title = session.get(Product, shown[1]).title
    page = customer.get(f"/r/{token}").text
    assert f'data-testid="pick-match-{shown[1]}"' in page
    picked = customer.post(f"/r/{token}/pick", {"product_id": str(shown[1])})
    assert picked.status_code == 303
    assert "is the one" in customer.get(f"/r/{token}").text
    customer.post(f"/r/{token}/pick", {"product_id": str(shown[1])})  # a second click adds nothing
    with site.sessions() as session:
        picks = session.scalars(
            select(Message.body).where(Message.request_id == request_id, Message.author == "customer")
        ).all()
    assert len(picks) == 1 and title in picks[0]
    bench = alice.get(f"/operator/requests/{request_id}").text
    assert 'data-testid="customer-pick"' in bench and title in bench
    assert f'data-request-id="{request_id}"' in alice.get("/operator?view=messages").text
    with site.sessions() as session:
        elsewhere = session.scalar(select(Product.id).where(Product.id.not_in(shown)).limit(1))
    refused = customer.post(f"/r/{token}/pick", {"product_id": str(elsewhere)})
    assert refused.status_code == 422 and "not one of your matches" in refused.text


def _mails_to(site, address: str, since: set) -> list[str]:  # type: ignore[no-untyped-def]
    """The .eml files (written by the app's background sender) addressed to `address` since `since`."""
    found = []
    for path in set(site.settings.outbox_dir.glob("*.eml")) - since:
        text = path.read_text()
        if f"To: {address}" in text:
            found.append(text)
    return found


def test_a_customer_finds_their_requests_again_by_e_mail(site, customer) -> None:
    address = "finder@example.com"
    tokens = []
    for seed in (95, 96):
        answer = _submit(customer, product_photo(seed), "a lamp", email=address)
        tokens.append(answer.headers["location"].rsplit("/", 1)[1])
    before = set(site.settings.outbox_dir.glob("*.eml"))
    page = customer.post("/my-requests", {"email": "  Finder@Example.com "})
    assert page.status_code == 200 and 'data-testid="requests-mailed"' in page.text
    deadline = time.monotonic() + 10
    while not (mails := [m for m in _mails_to(site, address, before) if "Your Vitrine requests" in m]):
        assert time.monotonic() < deadline, "no e-mail with the request links"
        time.sleep(0.05)
    assert all(f"/r/{token}" in mails[0] for token in tokens)
    # An unknown address gets the same page and no e-mail; the address's hourly share is bounded.
    unknown = customer.post("/my-requests", {"email": "nobody@example.com"})
    assert unknown.status_code == 200 and unknown.text.count("we have just e-mailed it") == 1
    for _ in range(4):
        customer.post("/my-requests", {"email": address})
    time.sleep(1.0)
    assert len([m for m in _mails_to(site, address, before) if "Your Vitrine requests" in m]) == 3
    assert not _mails_to(site, "nobody@example.com", before)
