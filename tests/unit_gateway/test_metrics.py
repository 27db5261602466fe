"""Metrics and readiness checks work without a chain and never share state between apps.

Uses a real SQLite database in a temporary directory and a small FastAPI app carrying the
gateway's metrics middleware (served in-process by Starlette's TestClient). Proves that
each `GatewayMetrics` has its own registry, requests are labelled by route template (never
by concrete path), the database gauges count what the tables hold, and an unreachable
database is reported as `database_unavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.base import Base
from alliance.db.models import Operation, OperationStatus
from alliance.db.session import make_engine, make_session_factory, unit_of_work
from gateway.errors import DatabaseUnavailable
from gateway.metrics import GatewayMetrics, MetricsMiddleware
from gateway.services.health import check_database


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'alliance.db'}")
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


def samples(metrics: GatewayMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Sample values of metric `name`, keyed by their sorted labels."""
    body, _ = metrics.render()
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == name
    }


def app_with(metrics: GatewayMetrics) -> FastAPI:
    app = FastAPI()
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/items/{item_id}")
    def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    return app


def test_requests_are_counted_by_route_template_and_known_method(
    sessions: sessionmaker[Session],
) -> None:
    metrics = GatewayMetrics(sessions)
    with TestClient(app_with(metrics)) as client:
        client.get("/items/mbr_1a2b3c4d5e6f708192a3b4c5")
        client.get("/items/other")
        client.get("/nowhere/mbr_1a2b3c4d5e6f708192a3b4c5")
        client.get("/openapi.json")
        client.request("BREW", "/items/1")
    counted = samples(metrics, "gateway_http_requests_total")
    assert counted == {
        (("method", "GET"), ("route", "/items/{item_id}"), ("status", "200")): 2.0,
        (("method", "GET"), ("route", "unmatched"), ("status", "404")): 1.0,
        (("method", "GET"), ("route", "/openapi.json"), ("status", "200")): 1.0,
        (("method", "other"), ("route", "/items/{item_id}"), ("status", "405")): 1.0,
    }
    latency = samples(metrics, "gateway_http_request_duration_seconds_count")
    assert latency[(("method", "GET"), ("route", "/items/{item_id}"))] == 2.0


def test_two_apps_in_one_process_keep_separate_registries(
    sessions: sessionmaker[Session],
) -> None:
    first, second = GatewayMetrics(sessions), GatewayMetrics(sessions)
    with TestClient(app_with(first)) as client:
        client.get("/items/1")
    assert sum(samples(first, "gateway_http_requests_total").values()) == 1.0
    assert samples(second, "gateway_http_requests_total") == {}


def test_database_gauges_count_operations_backlog_and_deliveries(
    sessions: sessionmaker[Session],
) -> None:
    with unit_of_work(sessions) as session:
        for kind, status in [
            ("deposit", OperationStatus.ACCEPTED),
            ("deposit", OperationStatus.ACCEPTED),
            ("deposit", OperationStatus.CONFIRMED),
            ("conversion", OperationStatus.ACCEPTED),
            ("conversion", OperationStatus.FAILED),
        ]:
            session.add(Operation(kind=kind, status=status, brand_code="bean", params={}))
    metrics = GatewayMetrics(sessions)
    assert samples(metrics, "gateway_operations") == {
        (("kind", "conversion"), ("status", "accepted")): 1.0,
        (("kind", "conversion"), ("status", "failed")): 1.0,
        (("kind", "deposit"), ("status", "accepted")): 2.0,
        (("kind", "deposit"), ("status", "confirmed")): 1.0,
    }
    assert samples(metrics, "gateway_submitter_backlog") == {(): 3.0}
    assert samples(metrics, "gateway_webhook_deliveries") == {
        (("status", "dead"),): 0.0,
        (("status", "pending"),): 0.0,
    }


def test_an_unreachable_database_is_reported_as_unavailable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'alliance.db'}")
    with pytest.raises(DatabaseUnavailable):
        check_database(engine)
    metrics = GatewayMetrics(make_session_factory(engine))
    assert samples(metrics, "gateway_operations") == {}  # skipped, not an error
