"""Bearer-token guards for the staff and vendor JSON API, and how the OpenAPI document states them.

`Authorization: Bearer <token>` (from `POST /api/staff/token`) is the only credential these routes
read: no cookie, so no CSRF check is needed and a browser's session cannot be ridden by another
site. The guard puts the token's user where `api.auth.viewer_of` keeps the signed-in user, so the
`user` dependency (`SignedIn`) works behind it as behind the cookie guards.

Refusals: no token, a malformed, unknown, expired or revoked one, or a disabled account is 401 (with
`WWW-Authenticate: Bearer`); a valid token of the wrong role (a vendor on staff routes) is 403.

Vendor API keys (`vvk_...`, `access.vendor_keys`) are accepted by guards that let vendors in, acting as
the key's creator; on any other route a key is 401 (it is no staff credential at all).
"""

from __future__ import annotations

import asyncio

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme

from access import vendor_keys
from api.auth import USER_KEY, Guard
from api.errors import service_error
from workflow import api_tokens
from workflow.errors import ClaimConflict, Forbidden, ServiceError, SignInRequired
from workflow.models import User

SCHEME = "staffToken"
#: `security=` for routes behind a bearer guard.
SECURITY: list[SecurityRequirement] = [{SCHEME: []}]
#: The scheme, for `OpenAPIConfig(components=...)`.
COMPONENTS = Components(
    security_schemes={
        SCHEME: SecurityScheme(
            type="http",
            scheme="bearer",
            description=(
                "A staff or vendor token from `POST /api/staff/token` (valid 12 hours; ended by "
                "`DELETE /api/staff/token`, `vitrine users sessions revoke NAME` or disabling the account). "
                "The vendor routes (`/api/vendor/...`) also take a vendor API key (`vvk_...`, made on "
                "/vendor/team, shown once, revocable there); it acts as the vendor user who created it and "
                "never works on staff routes."
            ),
        )
    }
)


def bearer_token(connection: ASGIConnection) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def bearer_user(connection: ASGIConnection) -> User | None:
    """The active user behind the request's bearer token, or None."""
    token = bearer_token(connection)
    if token is None:
        return None
    return await asyncio.to_thread(api_tokens.user_of, connection.app.state.sessions, token)


def bearer_as(*roles: str) -> Guard:
    """A guard letting through a bearer token whose user has one of `roles` (401 / 403 otherwise)."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        token = bearer_token(connection)
        if token is None:
            raise SignInRequired(
                "This route needs a bearer token.",
                "Get one from POST /api/staff/token and send it as 'Authorization: Bearer <token>'.",
            )
        if vendor_keys.is_key(token):
            if "vendor" not in roles:
                raise SignInRequired(
                    "A vendor API key cannot use this route.", "Staff routes need a token from POST /api/staff/token."
                )
            user = await asyncio.to_thread(vendor_keys.user_of, connection.app.state.sessions, token)
        else:
            user = await bearer_user(connection)
        if user is None:
            raise SignInRequired(
                "The token is not valid: unknown, expired, revoked, or its account is switched off.",
                "Get a new one from POST /api/staff/token.",
            )
        if user.role not in roles:
            raise Forbidden(f"A {user.role} token cannot use this route.", "Use a token of a staff account.")
        connection.scope[USER_KEY] = user  # type: ignore[literal-required]

    guard.__name__ = f"bearer_{'_or_'.join(roles)}"
    return guard


staff_bearer = bearer_as("operator", "admin")
vendor_bearer = bearer_as("vendor", "admin")


def api_refusal(request: Request, exc: ServiceError) -> Response:
    """The usual JSON refusal, plus `WWW-Authenticate` on a 401 and the claim's `holder` on a 409."""
    response = service_error(request, exc)
    if isinstance(exc, SignInRequired):
        response.headers["WWW-Authenticate"] = 'Bearer realm="vitrine"'
    if isinstance(exc, ClaimConflict) and isinstance(response.content, dict):
        response.content["holder"] = exc.holder
    return response


#: `exception_handlers=` for the controllers behind a bearer guard.
EXCEPTION_HANDLERS = {ServiceError: api_refusal}
