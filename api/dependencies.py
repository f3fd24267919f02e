"""What handlers receive by declaring a parameter: the app's shared services, made once at start-up
(`api.app.create_app`) and kept in the app's state, and the signed-in staff member."""

from __future__ import annotations

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation
from sqlalchemy.orm import sessionmaker

from api.auth import viewer_of
from api.pages import request_link
from catalog.search_service import SearchService
from mail.outbox import Outbox
from workflow.models import User
from workflow.payments import PaymentProvider
from workflow.settings import Settings


def provide_settings(state: State) -> Settings:
    return state.settings


def provide_db(state: State) -> sessionmaker:
    """The database session factory: services open a short session (and transaction) per step."""
    return state.sessions


def provide_search(state: State) -> SearchService:
    return state.search


def provide_payments(state: State) -> PaymentProvider:
    return state.payments


def provide_outbox(state: State) -> Outbox:
    return state.outbox


async def provide_user(request: Request) -> User:
    """The signed-in staff member on a guarded route (the guard has refused everyone else)."""
    user = await viewer_of(request)
    assert user is not None, "`user` is only declared by handlers behind a sign-in guard"
    return user


async def provide_viewer(request: Request) -> User | None:
    """Whoever is looking at a public page: a signed-in staff member (their menu shows) or None."""
    return await viewer_of(request)


def provide_link(request: Request) -> str:
    return request_link(request)


DEPENDENCIES = {
    "settings": Provide(provide_settings, sync_to_thread=False),
    "db": Provide(provide_db, sync_to_thread=False),
    "search": Provide(provide_search, sync_to_thread=False),
    "payments": Provide(provide_payments, sync_to_thread=False),
    "outbox": Provide(provide_outbox, sync_to_thread=False),
    "user": Provide(provide_user),
    "viewer": Provide(provide_viewer),
    "link": Provide(provide_link, sync_to_thread=False),
}

# What a handler declares to receive each one (services are not re-validated on every request).
AppSettings = NamedDependency[SkipValidation[Settings]]
Db = NamedDependency[SkipValidation[sessionmaker]]
Search = NamedDependency[SkipValidation[SearchService]]
Payments = NamedDependency[SkipValidation[PaymentProvider]]
Mail = NamedDependency[SkipValidation[Outbox]]
SignedIn = NamedDependency[SkipValidation[User]]
Viewer = NamedDependency[SkipValidation[User | None]]
RequestLink = NamedDependency[str]
