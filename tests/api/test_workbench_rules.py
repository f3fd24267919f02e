"""Issue 14, items 5-7, over a real HTTP server and a real SQLite: re-search filters drawn from the
catalog (a search with no hits says so and keeps the previous round), refused forms as 4xx pages that
keep what was typed, and the claim covering every state-changing action (admins override, audited)."""

from __future__ import annotations

import re

import pytest
from catalogs import product_photo
from delivery_support import ADDRESS_FORM
from sqlalchemy import select
from webapp import staffed_site

from catalog.db import Product
from vision.embedder import open_embedder
from workflow import offers_service
from workflow.errors import ClaimConflict
from workflow.models import AuditEntry, Candidate, CustomerRequest, Offer, User
from workflow.request_tokens import token_hash

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    with staffed_site(tmp_path_factory.mktemp("rules-catalog"), embedder, PASSWORD) as site:
        yield site


@pytest.fixture
def people(site):
    """A customer, operators alice and bob, admin root: signed-in browsers."""
    browsers = {"customer": site.client()}
    for name in ("alice", "bob", "root"):
        browsers[name] = site.client()
        assert browsers[name].login(name, PASSWORD).status_code == 303
    yield browsers
    for browser in browsers.values():
        browser.close()


def _new_request(site, customer, number: int) -> int:  # type: ignore[no-untyped-def]
    response = customer.post(
        "/requests",
        {"email": "c@example.com", "words": "", "budget": ""},
        files={"photo": ("photo.jpg", product_photo(number), "image/jpeg")},
    )
    assert response.status_code == 303, response.text
    token = response.headers["location"].rsplit("/", 1)[1]
    with site.sessions() as session:
        return session.scalar(select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token)))


def _picks(page: str) -> list[int]:
    return [int(m) for m in re.findall(r'data-testid="pick-(\d+)"', page)]


def _overrides(site, request_id: int) -> list[dict]:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        return [
            {"actor": e.actor, **(e.detail or {})}
            for e in session.scalars(
                select(AuditEntry).where(AuditEntry.request_id == request_id, AuditEntry.action == "claim.overridden")
            )
        ]


def _status(site, request_id: int) -> str:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        return session.get(CustomerRequest, request_id).status


# --- item 5: re-search filters from the catalog; no hits is said, the previous round stays ----------------


def test_filters_come_from_the_catalog_match_any_case_and_no_hits_keeps_the_previous_round(site, people) -> None:
    alice = people["alice"]
    request_id = _new_request(site, people["customer"], 31)
    assert alice.post(f"/operator/requests/{request_id}/claim").status_code == 303
    bench = alice.get(f"/operator/requests/{request_id}")
    # the choices are the catalog's, each control labelled
    for choice in ("earrings", "lamps", "mugs", "acme", "globex"):
        assert f'<option value="{choice}">' in bench.text
    assert 'list="category-choices"' in bench.text and '<label for="category">' in bench.text
    assert 'list="vendor-choices"' in bench.text and '<label for="vendor">' in bench.text

    # typed in another case, the filters still match the catalog's spelling
    found = alice.post(f"/operator/requests/{request_id}/search", {"category": "MUGS", "vendor": "Acme"})
    assert found.status_code == 303
    with site.sessions() as session:
        rows = session.execute(
            select(Product.category)
            .join(Candidate, Candidate.product_id == Product.id)
            .where(Candidate.request_id == request_id, Candidate.round == 1)
        ).all()
    assert rows and {c for (c,) in rows} == {"mugs"}
    round_one = _picks(alice.get(f"/operator/requests/{request_id}").text)

    # nothing matches: said on the page, the previous round stays visible and is marked so
    empty = alice.post(
        f"/operator/requests/{request_id}/search", {"category": "lamps", "vendor": "globex", "min_price": "99999"}
    )
    assert empty.status_code == 303
    bench = alice.get(f"/operator/requests/{request_id}")
    assert "No products match these filters" in bench.text
    assert "showing the previous round" in bench.text and "search round 1" in bench.text
    assert _picks(bench.text) == round_one
    assert re.search(r'id="min-price" name="min_price" inputmode="decimal" value="99999(\.0)?"', bench.text)
    assert 'value="lamps"' in bench.text and 'value="globex"' in bench.text  # the form keeps the filters tried
    with site.sessions() as session:
        entry = session.scalar(
            select(AuditEntry)
            .where(AuditEntry.request_id == request_id, AuditEntry.action == "search.refined")
            .order_by(AuditEntry.id.desc())
        )
        assert entry.detail["hits"] == 0
    # a search that finds something again clears the mark
    assert alice.post(f"/operator/requests/{request_id}/search", {"category": "lamps"}).status_code == 303
    bench = alice.get(f"/operator/requests/{request_id}")
    assert "No products match" not in bench.text and "search round 2" in bench.text


# --- item 6: refused forms are 4xx pages that keep what was typed ------------------------------------------


def test_sending_offers_with_nothing_ticked_is_refused_and_keeps_the_typed_prices(site, people) -> None:
    alice = people["alice"]
    request_id = _new_request(site, people["customer"], 32)
    alice.post(f"/operator/requests/{request_id}/claim")
    first, second = _picks(alice.get(f"/operator/requests/{request_id}").text)[:2]
    refused = alice.post(
        f"/operator/requests/{request_id}/offers",
        {f"price_{first}": "12.34", f"note_{first}": "the blue one", "expires_in_hours": "6"},
    )
    assert refused.status_code == 422, refused.text
    assert "Something went wrong" not in refused.text
    assert "Pick at least one product" in refused.text and 'data-testid="offers-error"' in refused.text
    assert 'value="12.34"' in refused.text and 'value="the blue one"' in refused.text and 'value="6"' in refused.text
    # a bad price with a tick: refused, the tick and the other fields kept
    bad = alice.post(
        f"/operator/requests/{request_id}/offers",
        {"product_id": str(second), f"price_{second}": "lots", f"note_{second}": "n2", "expires_in_hours": "6"},
    )
    assert bad.status_code == 422 and "positive price" in bad.text
    assert re.search(rf'value="{second}" id="pick-{second}" data-testid="pick-{second}" checked', bad.text)
    assert 'value="lots"' in bad.text and 'value="n2"' in bad.text
    assert _status(site, request_id) == "claimed"


def test_an_upload_error_keeps_the_words_budget_and_email(site, people) -> None:
    customer = people["customer"]
    refused = customer.post(
        "/requests",
        {"email": "me@example.com", "words": "the same lamp in green", "budget": "40"},
        files={"photo": ("notes.jpg", b"hello, this is a text file\n" * 10, "image/jpeg")},
    )
    assert refused.status_code == 415, refused.text
    assert 'data-testid="request-form"' in refused.text
    assert 'value="the same lamp in green"' in refused.text
    assert 'value="40"' in refused.text and 'value="me@example.com"' in refused.text
    assert "choose it (or another one) again" in refused.text  # the photo itself cannot be kept
    bad_email = customer.post(
        "/requests",
        {"email": "nope", "words": "a mug", "budget": "12"},
        files={"photo": ("p.jpg", product_photo(3), "image/jpeg")},
    )
    assert bad_email.status_code == 422 and "e-mail address" in bad_email.text
    assert 'value="a mug"' in bad_email.text and 'value="nope"' in bad_email.text


# --- item 7: the claim covers every state-changing action ---------------------------------------------------


def test_a_second_operator_is_refused_everything_on_a_claimed_request(site, people) -> None:
    alice, bob = people["alice"], people["bob"]
    request_id = _new_request(site, people["customer"], 33)
    alice.post(f"/operator/requests/{request_id}/claim")
    pick = _picks(alice.get(f"/operator/requests/{request_id}").text)[0]
    attempts = {
        "cancel": ("cancel", {"reason": "duplicate", "confirm": "yes"}),
        "offers": ("offers", {"product_id": str(pick), f"price_{pick}": "10"}),
        "message": ("messages", {"body": "hello from bob"}),
        "search": ("search", {"words": "mug"}),
        "none-match": ("none-match", {}),
        "claim": ("claim", {}),
    }
    for name, (path, data) in attempts.items():
        refused = bob.post(f"/operator/requests/{request_id}/{path}", data)
        assert refused.status_code == 409, (name, refused.status_code)
        assert "alice" in refused.text and "Something went wrong" not in refused.text, name
    assert bob.post(f"/operator/requests/{request_id}/release", {"reason": "mine now"}).status_code == 403
    assert _status(site, request_id) == "claimed"
    with site.sessions() as session:
        assert session.scalar(select(Offer.id).where(Offer.request_id == request_id)) is None
    # enforced by the workflow, whatever calls it
    with site.sessions() as session:
        bob_user = session.scalar(select(User).where(User.name == "bob"))
    with pytest.raises(ClaimConflict):
        offers_service.cancel_by_operator(
            site.sessions, site.payments, request_id, bob_user, "sneaky", site.app.state.outbox
        )
    assert _status(site, request_id) == "claimed" and _overrides(site, request_id) == []


def test_an_admin_may_override_the_claim_and_the_override_is_audited(site, people) -> None:
    alice, root = people["alice"], people["root"]
    # send offers on alice's claim
    request_id = _new_request(site, people["customer"], 34)
    alice.post(f"/operator/requests/{request_id}/claim")
    pick = _picks(alice.get(f"/operator/requests/{request_id}").text)[0]
    sent = root.post(f"/operator/requests/{request_id}/offers", {"product_id": str(pick), f"price_{pick}": "10"})
    assert sent.status_code == 303, sent.text
    assert _status(site, request_id) == "offers_sent"
    assert _overrides(site, request_id) == [{"actor": "admin:root", "attempted": "send offers", "holder": "alice"}]

    # cancel alice's claimed request
    request_id = _new_request(site, people["customer"], 35)
    alice.post(f"/operator/requests/{request_id}/claim")
    assert (
        root.post(f"/operator/requests/{request_id}/cancel", {"reason": "duplicate", "confirm": "yes"}).status_code
        == 303
    )
    assert _status(site, request_id) == "cancelled"
    assert _overrides(site, request_id) == [{"actor": "admin:root", "attempted": "cancel it", "holder": "alice"}]


def test_only_the_sender_or_an_admin_withdraws_an_offer(site, people) -> None:
    alice, bob, root = people["alice"], people["bob"], people["root"]
    request_id = _new_request(site, people["customer"], 36)
    alice.post(f"/operator/requests/{request_id}/claim")
    first, second = _picks(alice.get(f"/operator/requests/{request_id}").text)[:2]
    sent = alice.post(
        f"/operator/requests/{request_id}/offers",
        {"product_id": [str(first), str(second)], f"price_{first}": "10", f"price_{second}": "11"},
    )
    assert sent.status_code == 303, sent.text
    with site.sessions() as session:
        offers = session.scalars(select(Offer.id).where(Offer.request_id == request_id).order_by(Offer.id)).all()
    refused = bob.post(f"/operator/requests/{request_id}/offers/{offers[0]}/withdraw", {"confirm": "yes"})
    assert refused.status_code == 409 and "alice sent this offer" in refused.text
    assert (
        root.post(f"/operator/requests/{request_id}/offers/{offers[0]}/withdraw", {"confirm": "yes"}).status_code == 303
    )
    assert (
        alice.post(f"/operator/requests/{request_id}/offers/{offers[1]}/withdraw", {"confirm": "yes"}).status_code
        == 303
    )
    with site.sessions() as session:
        assert [session.get(Offer, o).status for o in offers] == ["withdrawn", "withdrawn"]
    assert _overrides(site, request_id) == [{"actor": "admin:root", "attempted": "withdraw it", "holder": "alice"}]


# --- item 2: follow-up offers while others are out ----------------------------------------------------------


def test_the_sender_searches_again_and_adds_offers_while_the_first_ones_stay_open(site, people) -> None:
    alice, bob, customer = people["alice"], people["bob"], people["customer"]
    response = customer.post(
        "/requests",
        {"email": "c@example.com", "words": "", "budget": ""},
        files={"photo": ("photo.jpg", product_photo(37), "image/jpeg")},
    )
    token = response.headers["location"].rsplit("/", 1)[1]
    with site.sessions() as session:
        request_id = session.scalar(select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token)))
    alice.post(f"/operator/requests/{request_id}/claim")
    first, second, third = _picks(alice.get(f"/operator/requests/{request_id}").text)[:3]
    sent = alice.post(f"/operator/requests/{request_id}/offers", {"product_id": str(first), f"price_{first}": "10"})
    assert sent.status_code == 303, sent.text
    assert _status(site, request_id) == "offers_sent"

    page = alice.get(f"/operator/requests/{request_id}").text
    assert 'data-testid="follow-up-note"' in page and 'data-testid="refine-form"' in page
    assert f'data-testid="pick-{second}" disabled' not in page and "Add the ticked offers" in page
    assert alice.post(f"/operator/requests/{request_id}/search", {"words": "watch"}).status_code == 303
    added = alice.post(
        f"/operator/requests/{request_id}/offers",
        {"product_id": [str(second), str(third)], f"price_{second}": "11", f"price_{third}": "12"},
    )
    assert added.status_code == 303, added.text
    with site.sessions() as session:
        offers = session.scalars(select(Offer).where(Offer.request_id == request_id).order_by(Offer.id)).all()
        assert [(o.product_id, o.status) for o in offers] == [(first, "sent"), (second, "sent"), (third, "sent")]
        assert session.scalar(
            select(AuditEntry.id).where(AuditEntry.request_id == request_id, AuditEntry.action == "offers.followed_up")
        )
    assert _status(site, request_id) == "offers_sent"

    # Another operator may not add offers to alice's request; a follow-up after an accept is refused.
    refused = bob.post(f"/operator/requests/{request_id}/offers", {"product_id": str(first), f"price_{first}": "9"})
    assert refused.status_code == 409 and "alice sent the offers" in refused.text
    accepted = customer.post(
        f"/r/{token}/offers/{offers[1].id}/accept",
        {"card_number": "4242424242424242", "idempotency_key": "follow-up-1", **ADDRESS_FORM},
    )
    assert accepted.status_code == 303
    late = alice.post(f"/operator/requests/{request_id}/offers", {"product_id": str(first), f"price_{first}": "8"})
    assert late.status_code in (409, 422) and _status(site, request_id) == "paid"
