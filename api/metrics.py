"""`/metrics` in Prometheus's text format: per-route request counts and latency, the catalog's and the
workflow's own metrics (`catalog.metrics`), and the operator queue read from the database at scrape time.

Requests are counted by route template (`/r/{token:str}`), never by the raw path: customer tokens are
in paths, and one series per customer would both leak them and swamp Prometheus. Paths that match no
route are not counted at all for the same reason.

Who may read it: by default only clients on this machine (a Prometheus or an agent on the host, or a
proxy that does not forward /metrics); `VITRINE_METRICS_FROM` lists the networks allowed instead
(e.g. `10.0.0.0/8,127.0.0.1`) or `any` (`Settings.metrics_from`). Behind a proxy the client is the
proxy: keep /metrics off it.

With several worker processes (`uvicorn --workers N`) each process counts its own requests; set
`PROMETHEUS_MULTIPROC_DIR` to an empty folder before starting them and every worker's /metrics
serves the sum over all of them (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Iterator
from datetime import datetime

from litestar import Controller, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from workflow.errors import Forbidden
from workflow.models import CustomerRequest, now, utc
from workflow.states import RequestStatus

LOOPBACK = ("127.0.0.0/8", "::1/128")

#: Per-route counts and latency (`vitrine_requests_total`, `vitrine_request_duration_seconds`, by
#: method, route template and status). Static files and /metrics itself are left out.
PROMETHEUS = PrometheusConfig(
    app_name="vitrine",
    prefix="vitrine",
    group_path=True,
    exclude_unhandled_paths=True,
    exclude=["^/metrics", "^/static/"],
    buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
)


def allowed_networks(value: str) -> tuple[str, ...]:
    """VITRINE_METRICS_FROM checked: networks (or addresses), `any`, or empty for this machine only."""
    entries = tuple(part.strip() for part in value.split(",") if part.strip())
    if not entries:
        return LOOPBACK
    if entries == ("any",):
        return ("0.0.0.0/0", "::/0")
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"VITRINE_METRICS_FROM: {entry!r} is not a network or an address (or 'any')") from None
    return entries


def client_allowed(host: str | None, networks: Iterable[str]) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # e.g. "testclient"
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


async def metrics_readers_only(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    networks = allowed_networks(connection.app.state.settings.metrics_from)
    host = connection.client.host if connection.client else None
    if not client_allowed(host, networks):
        raise Forbidden(
            f"Metrics are not readable from {host or 'an unknown address'}.",
            "VITRINE_METRICS_FROM lists the networks that may read /metrics (default: this machine only).",
        )


class QueueCollector(Collector):
    """The operator queue as gauges, counted in the database at each scrape: one indexed query, so
    every worker process (and every scrape) agrees with what the operators see."""

    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.sessions() as session:
            waiting, oldest = session.execute(
                select(func.count(CustomerRequest.id), func.min(CustomerRequest.queued_at)).where(
                    CustomerRequest.status == RequestStatus.QUEUED.value
                )
            ).one()
        yield GaugeMetricFamily("vitrine_queue_length", "Requests waiting for an operator (queued).", waiting)
        yield GaugeMetricFamily(
            "vitrine_queue_oldest_wait_seconds",
            "How long the request first in line has been waiting for an operator (0 when none waits).",
            _seconds_since(oldest),
        )


def _seconds_since(moment: datetime | None) -> float:
    return max(0.0, (now() - utc(moment)).total_seconds()) if moment is not None else 0.0


def process_registry() -> CollectorRegistry:
    """This process's metrics, or every worker's when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


class MetricsController(Controller):
    """GET /metrics: not part of the API (left out of /schema), readable from the allowed networks."""

    path = "/metrics"

    @get(include_in_schema=False, guards=[metrics_readers_only], sync_to_thread=True)  # the queue: a query
    def metrics(self, request: Request) -> Response[bytes]:
        state = request.app.state
        if "metrics_queue" not in state:
            state.metrics_queue = CollectorRegistry(auto_describe=False)
            state.metrics_queue.register(QueueCollector(state.sessions))
        body = generate_latest(process_registry()) + generate_latest(state.metrics_queue)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
