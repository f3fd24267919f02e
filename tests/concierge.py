"""The concierge's services over a real ingested catalog, without HTTP: a search service, an operator,
customer requests, offers. For the tests of confirmed pairs and customer views."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from search_catalog import build_workspace
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from catalog.db import Product, Vendor, make_engine, session_factory
from catalog.search_service import QueryInput, SearchService
from catalog.workspace import Workspace
from vision.embedder import Embedder
from workflow import claims, offers_service
from workflow.intake import submit_request
from workflow.models import CustomerRequest, User
from workflow.request_tokens import token_hash, token_of
from workflow.settings import Settings
from workflow.uploads import read_photo
from workflow.users import add_user

PASSWORD = "correct horse battery"


class NoMail:
    def send(self, to: str, subject: str, body: str) -> None:
        pass

    def send_template(
        self, to: str, template: str, context: object, *, transactional: bool = True, session: object = None
    ) -> None:
        pass


@dataclass
class Concierge:
    workspace: Workspace
    sessions: sessionmaker
    search: SearchService
    settings: Settings
    alice: User

    def request(self, photo: bytes) -> int:
        """A customer's request with `photo` (searched, stored, queued); its id."""
        token = asyncio.run(
            submit_request(self.settings, self.sessions, self.search, NoMail(), "/r/{token}", photo, "c@d.ee", "", "")
        )
        with self.sessions() as session:
            return session.scalar(select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token)))

    def token_of(self, request_id: int) -> str:
        """The request's customer token, derived again as the server does for its e-mails."""
        with self.sessions() as session:
            request = session.get(CustomerRequest, request_id)
            token = token_of(request.token_sha256, request.token_salt, self.settings.secret_key)
        assert token is not None
        return token

    def claim(self, request_id: int) -> None:
        claims.claim(self.sessions, request_id, self.alice, 600)

    def send(self, request_id: int, products: list[int], pickup_stores: dict[int, int] | None = None) -> list[int]:
        drafts = [offers_service.OfferDraft(p, "25.00") for p in products]
        return offers_service.send_offers(
            self.sessions, request_id, self.alice, drafts, 24, NoMail(), "/r/{token}", pickup_stores=pickup_stores
        )

    def stored_photo(self, request_id: int) -> bytes:
        with self.sessions() as session:
            sha = session.get(CustomerRequest, request_id).photo_sha256
        photo = read_photo(self.workspace, sha)
        assert photo is not None
        return photo

    def hits(self, photo: bytes, k: int = 5, crop=None):  # type: ignore[no-untyped-def]
        return asyncio.run(self.search.search(QueryInput(image_bytes=photo, crop=crop, k=k)))

    def product(self, vendor: str, sku: str) -> int:
        with self.sessions() as session:
            return session.scalar(select(Product.id).join(Vendor).where(Vendor.name == vendor, Product.sku == sku))

    def close(self) -> None:
        self.search.close()


def open_concierge(folder: Path, embedder: Embedder) -> Concierge:
    """Vendor `acme` rows 0-39, `globex` rows 40-59 (`search_catalog.build_workspace`), operator alice."""
    workspace = build_workspace(folder, embedder)
    return concierge_over(workspace)


def concierge_over(workspace: Workspace) -> Concierge:
    sessions = session_factory(make_engine(workspace.database_url))
    search = SearchService(workspace, sessions, "test-tiny", window_ms=1.0, max_batch=4)
    settings = Settings(workspace=workspace, model="test-tiny")
    with sessions() as session:
        alice = session.scalar(select(User).where(User.name == "alice"))
    if alice is None:
        alice = add_user(sessions, "alice", "operator", PASSWORD)
    return Concierge(workspace, sessions, search, settings, alice)
