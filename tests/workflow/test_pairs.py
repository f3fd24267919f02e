"""Confirmed pairs recorded by the concierge: offers sent (with the round's crop), offers accepted,
"none of these match"; never twice, never at the cost of an offer; listed for learning."""

from __future__ import annotations

import asyncio

import pytest
from catalogs import product_photo
from concierge import open_concierge
from delivery_support import DELIVERY
from sqlalchemy import func, select

from vision.embedder import open_embedder
from workflow import offers_service, pairs, workbench
from workflow.errors import Conflict
from workflow.models import AuditEntry, Candidate, ConfirmedPair, CustomerRequest, Offer
from workflow.payments import APPROVED, TestPaymentProvider
from workflow.states import RequestStatus


@pytest.fixture(scope="module")
def concierge(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    concierge = open_concierge(tmp_path_factory.mktemp("pairs"), open_embedder("test-tiny", "onnx", store))
    yield concierge
    concierge.close()


def _pairs(concierge, request_id: int) -> list[ConfirmedPair]:  # type: ignore[no-untyped-def]
    with concierge.sessions() as session:
        return list(
            session.scalars(
                select(ConfirmedPair).where(ConfirmedPair.request_id == request_id).order_by(ConfirmedPair.id)
            )
        )


def _all_pairs(concierge) -> int:  # type: ignore[no-untyped-def]
    with concierge.sessions() as session:
        return session.scalar(select(func.count()).select_from(ConfirmedPair))


def test_sent_offers_are_offered_pairs_with_the_crop_of_their_round(concierge) -> None:
    request_id = concierge.request(product_photo(301))
    concierge.claim(request_id)
    crop = (0.1, 0.2, 0.6, 0.7)
    asyncio.run(
        workbench.refine(
            concierge.sessions,
            concierge.search,
            concierge.workspace,
            request_id,
            concierge.alice,
            workbench.Refinement(crop=crop, k=5),
        )
    )
    with concierge.sessions() as session:
        refined = session.scalars(
            select(Candidate.product_id).where(Candidate.request_id == request_id, Candidate.round == 1)
        ).all()
        request = session.get(CustomerRequest, request_id)
        instant_only = next(
            c.product_id for c in request.candidates if c.round == 0 and c.product_id not in set(refined)
        )
    offered = [refined[0], instant_only]
    offer_ids = concierge.send(request_id, offered)
    found = _pairs(concierge, request_id)
    assert [(p.product_id, p.label, p.source) for p in found] == [(pid, "offered", "offer") for pid in offered]
    assert [p.offer_id for p in found] == offer_ids
    assert found[0].crop == pytest.approx(list(crop))  # the round the product was shown in was cropped
    assert found[1].crop is None  # shown only by the instant search: the whole photo
    assert {p.created_by_id for p in found} == {concierge.alice.id}
    assert all(p.photo_sha256 == request.photo_sha256 and p.created_at is not None for p in found)
    assert found[0].vendor == "acme" or found[0].vendor == "globex"
    assert found[0].sku.startswith("SKU-")

    # Withdrawn, claimed again and the same product sent again: no second pair.
    offers_service.withdraw_offer(concierge.sessions, request_id, offer_ids[0], concierge.alice)
    offers_service.withdraw_offer(concierge.sessions, request_id, offer_ids[1], concierge.alice)
    concierge.claim(request_id)
    concierge.send(request_id, [offered[0]])
    assert len(_pairs(concierge, request_id)) == 2


def test_an_accepted_offer_adds_the_stronger_label_and_keeps_the_offered_one(concierge) -> None:
    request_id = concierge.request(product_photo(302))
    concierge.claim(request_id)
    with concierge.sessions() as session:
        products = [c.product_id for c in session.get(CustomerRequest, request_id).candidates[:2]]
    offer_ids = concierge.send(request_id, products)
    with concierge.sessions() as session:
        token = concierge.token_of(request_id)
    offers_service.accept_offer(
        concierge.sessions, TestPaymentProvider(), token, offer_ids[1], APPROVED, "key-1", delivery=DELIVERY
    )
    found = _pairs(concierge, request_id)
    assert [(p.product_id, p.label) for p in found] == [
        (products[0], "offered"),
        (products[1], "offered"),
        (products[1], "accepted"),
    ]
    accepted = found[2]
    assert accepted.offer_id == offer_ids[1] and accepted.created_by_id is None  # the customer accepted

    positives = pairs.positive_pairs(concierge.sessions, concierge.workspace)
    mine = [p for p in positives if p.request_id == request_id]
    assert [(p.product_id, p.label) for p in mine] == [(products[0], "offered"), (products[1], "accepted")]
    assert mine[1].photo() == concierge.stored_photo(request_id)  # the learner gets the stored photo's bytes


def test_none_of_these_rejects_the_latest_round_and_changes_nothing_else(concierge) -> None:
    request_id = concierge.request(product_photo(303))
    with pytest.raises(Conflict):  # not claimed: nobody is working on it
        pairs.reject_shown(concierge.sessions, request_id, concierge.alice)
    concierge.claim(request_id)
    with concierge.sessions() as session:
        request = session.get(CustomerRequest, request_id)
        shown = [c.product_id for c in request.candidates if c.round == 0]
        before = (request.status, request.claimed_by_id, request.claim_expires_at)
    assert pairs.reject_shown(concierge.sessions, request_id, concierge.alice) == len(shown)
    assert pairs.reject_shown(concierge.sessions, request_id, concierge.alice) == 0  # judged once
    found = _pairs(concierge, request_id)
    assert sorted(p.product_id for p in found) == sorted(shown)
    assert {(p.label, p.created_by_id) for p in found} == {("rejected", concierge.alice.id)}
    with concierge.sessions() as session:
        request = session.get(CustomerRequest, request_id)
        assert (request.status, request.claimed_by_id, request.claim_expires_at) == before
        assert not session.scalars(select(Offer).where(Offer.request_id == request_id)).all()
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.request_id == request_id)).all()
    assert actions.count("pairs.rejected") == 2

    # One of them offered after all: a positive, so no longer a negative.
    concierge.send(request_id, [shown[0]])
    negatives = {p.product_id for p in pairs.negative_pairs(concierge.sessions, concierge.workspace)}
    assert shown[0] not in negatives and set(shown[1:]) <= negatives


def test_a_failure_to_record_never_stops_the_offer(concierge, monkeypatch) -> None:
    request_id = concierge.request(product_photo(304))
    concierge.claim(request_id)
    with concierge.sessions() as session:
        product = session.get(CustomerRequest, request_id).candidates[0].product_id
    before = _all_pairs(concierge)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the pairs table is on fire")

    monkeypatch.setattr(pairs, "record_pair", broken)
    offer_ids = concierge.send(request_id, [product])
    assert len(offer_ids) == 1
    with concierge.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == RequestStatus.OFFERS_SENT
        assert session.get(Offer, offer_ids[0]).status == "sent"
    assert _all_pairs(concierge) == before
