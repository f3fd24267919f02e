"""`/api/health`: whether this process can serve, the database included (see `catalog.db_check`)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec

from api.dependencies import Payments
from catalog.db_check import HealthProbe


class HealthController(Controller):
    path = "/api/health"
    tags = ("service",)

    @get(
        "/",
        name="api_health",
        sync_to_thread=True,
        operation_id="ApiHealthApiHealth",
        responses={503: ResponseSpec(dict[str, Any], description="The database check failed; `reason` says why")},
    )
    def health(self, state: State, payments: Payments) -> Response[dict[str, Any]]:
        """200 when the database answers a real read and its pages check out (SQLite's quick check,
        the answer kept a few seconds), with whether payments run in test mode; 503 with the reason
        when it does not."""
        probe: HealthProbe = state.health
        result = probe.check()
        body: dict[str, Any] = {"ok": result.ok, "test_mode": payments.is_test, "database": result.to_json()}
        if not result.ok:
            body["reason"] = f"database check failed: {result.reason}"
        return Response(body, status_code=200 if result.ok else 503, headers={"cache-control": "no-store"})
