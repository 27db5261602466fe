"""Liveness, readiness and Prometheus metrics. No authentication: /health and /ready are
for load balancers and orchestrators, and /metrics is meant to be reachable only from the
monitoring network (restrict it at the proxy or firewall in production)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.api.deps import Context
from gateway.metrics import GatewayMetrics
from gateway.services.health import check_chain, check_database

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """The process is up and serving (checks nothing else)."""
    return {"status": "ok"}


@router.get("/ready")
def ready(context: Context) -> dict[str, str]:
    """Ready for traffic: the database and the chain both answer (503 problem otherwise)."""
    check_database(context.engine)
    check_chain(context.ledger)
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text exposition of this app's registry."""
    registry: GatewayMetrics = request.app.state.metrics
    body, content_type = registry.render()
    return Response(content=body, media_type=content_type)
