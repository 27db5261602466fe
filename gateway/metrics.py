"""Prometheus metrics, in a registry of the app's own (never the process-global default, so
several apps in one process — tests, a benchmark — keep separate counts).

Request metrics are counted by a pure ASGI middleware and labelled by route template
(`/v1/operations/{operation_id}`, never the concrete path, so the label set stays small and
carries no member ids). Database figures are computed on scrape by a collector: a few
GROUP BY counts, cheap next to a scrape interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alliance.db.models import DeliveryStatus, Operation, OperationStatus, WebhookDelivery

logger = logging.getLogger("gateway.metrics")

UNMATCHED_ROUTE = "unmatched"
"""The route label of requests no route matched (scanners' 404s share one series)."""

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Other methods are labelled `other`, so a client cannot invent label values."""

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class GatewayMetrics:
    """The app's registry and its instruments."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.registry.register(DatabaseCollector(sessions))

    def observe(self, method: str, route: str, status: int, duration_s: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(duration_s)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            duration_s = time.perf_counter() - started
            self.metrics.observe(method, route_template(scope), status, duration_s)


def route_template(scope: Scope) -> str:
    """The template of the route that answered (the router records it in the shared scope
    on its way in): FastAPI routes note themselves, plain ones (/docs, /openapi.json) only
    their endpoint, which is looked up among the app's routes."""
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    endpoint = scope.get("endpoint")
    app = scope.get("app")
    if endpoint is not None and app is not None:
        for candidate in app.router.routes:
            if getattr(candidate, "endpoint", None) is endpoint:
                return str(candidate.path)
    return UNMATCHED_ROUTE


class DatabaseCollector(Collector):
    """Operations by kind and status, the submitter backlog and webhook deliveries by
    status, counted at scrape time. A database error skips these families for that scrape
    (the request metrics still answer)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def describe(self) -> Iterable[Metric]:
        # Declared so registering does not run `collect` (and query the database) early.
        return list(_families([], []))

    def collect(self) -> Iterable[Metric]:
        try:
            with self.sessions() as session:
                operations = session.execute(
                    select(Operation.kind, Operation.status, func.count()).group_by(
                        Operation.kind, Operation.status
                    )
                ).all()
                deliveries = session.execute(
                    select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
                ).all()
        except SQLAlchemyError:
            logger.warning("metrics: the database did not answer")
            return []
        return list(_families(operations, deliveries))


def _families(operations: Sequence[Any], deliveries: Sequence[Any]) -> Iterator[Metric]:
    by_operation = GaugeMetricFamily(
        "gateway_operations", "Operations by kind and status.", labels=["kind", "status"]
    )
    backlog = 0
    for kind, status, count in operations:
        by_operation.add_metric([kind, status], count)
        if status == OperationStatus.ACCEPTED:
            backlog += count
    yield by_operation
    yield GaugeMetricFamily(
        "gateway_submitter_backlog",
        "Operations accepted and not yet sent to the chain.",
        value=backlog,
    )
    by_delivery = GaugeMetricFamily(
        "gateway_webhook_deliveries", "Webhook deliveries by status.", labels=["status"]
    )
    counts = dict.fromkeys((DeliveryStatus.PENDING, DeliveryStatus.DEAD), 0)
    counts.update({status: count for status, count in deliveries})
    for status, count in sorted(counts.items()):
        by_delivery.add_metric([str(status)], count)
    yield by_delivery
