"""The operator's lists: every live request is in some list after offers go out (before, a request
with offers out was reachable only by its address), with counts, and a customer's unanswered
message puts its request in "Waiting for a reply" until an operator answers."""

from __future__ import annotations

import pytest
from catalogs import product_photo
from concierge import NoMail, open_concierge
from delivery_support import DELIVERY, SHIPMENT

from vision.embedder import open_embedder
from workflow import offers_service, operator_views, requests_service
from workflow.payments import TestPaymentProvider
from workflow.users import add_user


@pytest.fixture(scope="module")
def concierge(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    concierge = open_concierge(tmp_path_factory.mktemp("lists"), open_embedder("test-tiny", "onnx", store))
    yield concierge
    concierge.close()


def _ids(concierge, view: str, user=None) -> set[int]:  # type: ignore[no-untyped-def]
    return {row.id for row in operator_views.rows(concierge.sessions, user or concierge.alice, view)}


def test_a_request_moves_through_the_lists_until_it_is_closed(concierge) -> None:
    provider = TestPaymentProvider()
    bob = add_user(concierge.sessions, "bob-lists", "operator", "correct horse battery")
    request_id = concierge.request(product_photo(401))
    assert request_id in _ids(concierge, "queue")
    assert request_id not in _ids(concierge, "mine")

    concierge.claim(request_id)
    assert request_id in _ids(concierge, "mine") and request_id not in _ids(concierge, "mine", bob)

    product = concierge.product("acme", "SKU-00001")
    offer_ids = concierge.send(request_id, [product])
    assert request_id not in _ids(concierge, "queue")  # the old queue's only list
    assert request_id in _ids(concierge, "offers_out") and request_id in _ids(concierge, "mine")

    token = concierge.token_of(request_id)
    requests_service.add_message(concierge.sessions, token, "Is it available in blue?")
    assert request_id in _ids(concierge, "messages")
    [row] = [r for r in operator_views.rows(concierge.sessions, bob, "messages") if r.id == request_id]
    assert row.last_message == "Is it available in blue?" and row.operator == "alice"
    offers_service.post_operator_message(
        concierge.sessions, request_id, concierge.alice, "Yes.", NoMail(), "/r/{token}"
    )
    assert request_id not in _ids(concierge, "messages")

    offers_service.accept_offer(
        concierge.sessions,
        provider,
        token,
        offer_ids[0],
        "4242424242424242",
        "k-lists-1",
        secret=concierge.settings.secret_key,
        delivery=DELIVERY,
    )
    assert request_id in _ids(concierge, "to_fulfil") and request_id not in _ids(concierge, "offers_out")

    offers_service.fulfil(concierge.sessions, provider, request_id, concierge.alice, NoMail(), **SHIPMENT)
    assert request_id in _ids(concierge, "closed")
    assert all(request_id not in _ids(concierge, view) for view in ("queue", "mine", "offers_out", "to_fulfil"))


def test_counts_match_the_lists(concierge) -> None:
    concierge.request(product_photo(402))
    counts = operator_views.counts(concierge.sessions, concierge.alice)
    assert set(counts) == set(operator_views.VIEWS)
    for view in operator_views.VIEWS:
        assert counts[view] == len(operator_views.rows(concierge.sessions, concierge.alice, view)), view
    assert counts["queue"] >= 1


def test_an_unknown_list_is_refused(concierge) -> None:
    with pytest.raises(operator_views.UnknownView):
        operator_views.rows(concierge.sessions, concierge.alice, "everything")
