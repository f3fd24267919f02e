"""The workbench and operators' picks over HTTP: sent offers become customer views the next request
matches through (labelled, with the photo), a wrong view is removed after a confirmation, and "none
of these match" records the shown candidates as rejected and changes nothing else."""

from __future__ import annotations

import re

import pytest
from catalogs import product_photo
from sqlalchemy import select
from webapp import build_catalog, start_site

from catalog.ids import is_customer_view
from vision.embedder import open_embedder
from workflow.models import AuditEntry, Candidate, ConfirmedPair, CustomerRequest, CustomerView
from workflow.request_tokens import token_hash, token_of
from workflow.users import add_user

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = build_catalog(tmp_path_factory.mktemp("learning-catalog"), embedder)
    site, server = start_site(workspace)
    add_user(site.sessions, "olga", "operator", PASSWORD)
    yield site
    server.stop()


@pytest.fixture
def olga(site):
    browser = site.client()
    assert browser.login("olga", PASSWORD).status_code == 303
    yield browser
    browser.close()


def _request(site, browser, photo: bytes) -> int:  # type: ignore[no-untyped-def]
    response = browser.post(
        "/requests", {"email": "c@example.com", "words": "", "budget": ""}, files={"photo": ("p.jpg", photo)}
    )
    assert response.status_code == 303, response.text
    token = response.headers["location"].rsplit("/", 1)[1]
    with site.sessions() as session:
        return session.scalar(select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token)))


def _candidates(site, request_id: int) -> list[Candidate]:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        latest = max(c.round for c in session.get(CustomerRequest, request_id).candidates)
        return [c for c in session.get(CustomerRequest, request_id).candidates if c.round == latest]


def test_an_offer_becomes_a_view_the_next_request_matches_and_a_wrong_one_is_removed(site, olga) -> None:
    photo = product_photo(950)  # not a catalog photo: the view is what finds the product
    first = _request(site, olga, photo)
    offered = _candidates(site, first)[5].product_id
    assert olga.post(f"/operator/requests/{first}/claim").status_code == 303
    sent = olga.post(f"/operator/requests/{first}/offers", {"product_id": str(offered), f"price_{offered}": "19.90"})
    assert sent.status_code == 303, sent.text
    with site.sessions() as session:
        pair = session.scalar(select(ConfirmedPair).where(ConfirmedPair.request_id == first))
        view = session.scalar(select(CustomerView).where(CustomerView.pair_id == pair.id))
    assert (pair.product_id, pair.label, pair.source) == (offered, "offered", "offer")
    assert view is not None and view.removed_at is None

    second = _request(site, olga, photo)
    top = _candidates(site, second)[0]
    assert (top.product_id, top.image_id) == (offered, view.image_id) and is_customer_view(top.image_id)
    bench = olga.get(f"/operator/requests/{second}")
    assert bench.status_code == 200
    label = re.search(r'data-testid="via-customer-view" data-view-id="(\d+)"', bench.text)
    assert label and int(label.group(1)) == view.id
    assert "matched a customer photo" in bench.text and f"/images/{view.photo_sha256}.jpg" in bench.text
    assert f'data-testid="remove-view-{view.id}"' in bench.text
    customer_page = olga.http.get(f"/api/requests/{_token(site, second)}").json()
    assert "customer_view" not in customer_page["instant_matches"][0]  # never shown to customers

    unconfirmed = olga.post(f"/operator/requests/{second}/views/{view.id}/remove")
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
    stranger = site.client()
    refused = stranger.post(f"/operator/requests/{second}/views/{view.id}/remove", {"confirm": "yes"})
    assert refused.status_code in (302, 303, 401) and "/login" in refused.headers.get("location", "/login")
    stranger.close()
    removed = olga.post(f"/operator/requests/{second}/views/{view.id}/remove", {"confirm": "yes"})
    assert removed.status_code == 303
    with site.sessions() as session:
        view = session.get(CustomerView, view.id)
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.request_id == second, AuditEntry.action == "customer_view.removed")
        ).all()
    assert view.removed_at is not None and len(audit) == 1 and audit[0].actor == "operator:olga"
    assert f'data-testid="remove-view-{view.id}"' not in olga.get(f"/operator/requests/{second}").text
    third = _request(site, olga, photo)
    assert view.image_id not in {c.image_id for c in _candidates(site, third)}


def _token(site, request_id: int) -> str:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        request = session.get(CustomerRequest, request_id)
        return token_of(request.token_sha256, request.token_salt, site.settings.secret_key)


def test_none_of_these_records_rejected_pairs_and_changes_nothing_else(site, olga) -> None:
    request_id = _request(site, olga, product_photo(951))
    assert 'data-testid="none-match"' not in olga.get(f"/operator/requests/{request_id}").text  # not claimed
    assert olga.post(f"/operator/requests/{request_id}/claim").status_code == 303
    bench = olga.get(f"/operator/requests/{request_id}")
    assert 'data-testid="none-match"' in bench.text
    with site.sessions() as session:
        before = session.get(CustomerRequest, request_id)
        state = (before.status, before.claimed_by_id, before.claim_expires_at)
    assert olga.post(f"/operator/requests/{request_id}/none-match", csrf=False).status_code == 403
    done = olga.post(f"/operator/requests/{request_id}/none-match")
    assert done.status_code == 303 and done.headers["location"].endswith("#candidates")
    shown = {c.product_id for c in _candidates(site, request_id)}
    with site.sessions() as session:
        rejected = session.scalars(select(ConfirmedPair).where(ConfirmedPair.request_id == request_id)).all()
        after = session.get(CustomerRequest, request_id)
        assert (after.status, after.claimed_by_id, after.claim_expires_at) == state
    assert {p.product_id for p in rejected} == shown and {p.label for p in rejected} == {"rejected"}
    assert "pairs.rejected" in olga.get(f"/operator/requests/{request_id}").text  # in the audit trail
