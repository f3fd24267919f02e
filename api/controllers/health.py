"""`/api/health`: whether this process can serve, the database included (see `catalog.db_check`)."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict, cast

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec

from api.dependencies import Payments
from api.openapi_docs import described
from catalog.db_check import HealthProbe


class DatabaseHealth(TypedDict):
    """The database check behind `/api/health` (`catalog.db_check`)."""

    ok: Annotated[bool, described("Whether the database answered and its pages check out")]
    check: Annotated[str, described("What ran: `quick_check` (SQLite), `integrity_check` or `select` (others)")]
    complete: Annotated[bool, described("False when SQLite's check hit its deadline (what it read was sound)")]
    problems: Annotated[list[str], described("What the check found wrong, at most 20 lines; empty when ok")]


class _HealthAlways(TypedDict):
    """The keys every health answer has."""

    ok: Annotated[bool, described("True when the service can serve (the database check passed)")]
    test_mode: Annotated[bool, described("True when payments run in test mode: no money moves")]
    database: Annotated[DatabaseHealth, described("The database check")]


class Health(_HealthAlways, total=False):
    """Whether this process can serve. (`total=False` marks `reason` optional: `NotRequired` is not
    seen under `from __future__ import annotations`.)"""

    reason: Annotated[str, described("Only when not ok: why, in words")]


class HealthController(Controller):
    path = "/api/health"
    tags = ("service",)

    @get(
        "/",
        name="api_health",
        sync_to_thread=True,
        operation_id="ApiHealthApiHealth",
        responses={503: ResponseSpec(Health, description="The database check failed; `reason` says why")},
    )
    def health(self, state: State, payments: Payments) -> Response[Health]:
        """200 when the database answers a real read and its pages check out (SQLite's quick check,
        the answer kept a few seconds), with whether payments run in test mode; 503 with the reason
        when it does not."""
        probe: HealthProbe = state.health
        result = probe.check()
        body: dict[str, Any] = {"ok": result.ok, "test_mode": payments.is_test, "database": result.to_json()}
        if not result.ok:
            body["reason"] = f"database check failed: {result.reason}"
        return Response(
            cast(Health, body), status_code=200 if result.ok else 503, headers={"cache-control": "no-store"}
        )
