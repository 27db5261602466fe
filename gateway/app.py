"""The gateway application: `create_app(core_settings, gateway_settings)`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from alliance.db.migrate import upgrade_to_head
from alliance.db.session import database_url, make_engine, make_session_factory, unit_of_work
from alliance.deploy import load_deployment
from alliance.keys import DevKeyStore
from alliance.settings import Settings
from gateway.api import admin, health, members, movements, moves, oauth, operations, reads, webhooks
from gateway.api import alerts as alert_routes
from gateway.api import settlement as settlement_routes
from gateway.auth import RateLimiter, TokenVerifier
from gateway.context import GatewayContext
from gateway.crypto import GatewaySecrets, load_or_create_master_secret
from gateway.freezes import FreezeDriver
from gateway.ledger import Ledger
from gateway.metrics import GatewayMetrics, MetricsMiddleware
from gateway.pipeline.manager import Pipeline
from gateway.problems import install_problem_handlers
from gateway.services.clients import ensure_dev_clients
from gateway.services.custody import CustodyHook
from gateway.services.intake import RequestBatchers
from gateway.services.member_cache import MemberCache
from gateway.services.moves import move_hook
from gateway.services.operations import OperationWaiters
from gateway.settings import GatewaySettings
from gateway.simulation import ChainSimulator
from gateway.webhooks import WebhookWorker

logger = logging.getLogger("gateway")

WORKER_THREADS = 200
"""Threads for synchronous route handlers (a conversion waits for its receipt in one)."""


def build_context(core: Settings, settings: GatewaySettings) -> GatewayContext:
    """Connect the database (migrated), secrets, chain and keys."""
    engine = make_engine(database_url(settings.database_url, core.data.data_dir))
    upgrade_to_head(engine)
    secrets_file = settings.secrets_file or core.data.data_dir / "gateway-secrets.json"
    master = load_or_create_master_secret(
        secrets_file, allow_create=settings.environment == "development"
    )
    keys = DevKeyStore(core.data.data_dir).account
    ledger = Ledger.from_deployment(load_deployment(core), keys)
    sessions = make_session_factory(engine)
    secrets = GatewaySecrets.from_master(master)
    if settings.environment == "development":
        with unit_of_work(sessions) as session:
            ensure_dev_clients(
                session, list(ledger.brands), core.data.data_dir / "gateway-clients.json"
            )
    return GatewayContext(
        settings=settings,
        core=core,
        engine=engine,
        sessions=sessions,
        secrets=secrets,
        ledger=ledger,
        waiters=OperationWaiters(),
        limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
        tokens=TokenVerifier(secrets.token_key),
        simulator=ChainSimulator.for_ledger(ledger),
        member_cache=MemberCache(),
        batchers=RequestBatchers(sessions, settings.batch_size_max),
    )


def create_app(core: Settings, settings: GatewaySettings, *, run_workers: bool = True) -> FastAPI:
    """The FastAPI app with its context; workers (submitters) run while the app is served."""
    context = build_context(core, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        context.db_limiter = anyio.CapacityLimiter(settings.db_threads_max)
        context.batchers.start()
        webhook_worker = freeze_driver = None
        if run_workers:
            webhook_worker = app.state.webhook_worker = WebhookWorker(
                context.sessions, context.secrets, settings
            )
            context.pipeline = Pipeline(
                context.ledger,
                context.sessions,
                settings,
                context.ledger.keys,
                context.waiters,
                on_final=[
                    CustodyHook(context.member_cache.forget),  # first: others see its effect
                    webhook_worker.on_final,
                    move_hook(context.ledger, settings, [webhook_worker.on_final]),
                ],
            )
            context.pipeline.start()
            webhook_worker.start()
            freeze_driver = FreezeDriver(context.sessions, context.ledger, settings)
            freeze_driver.start()
        try:
            yield
        finally:
            if context.pipeline is not None:
                context.pipeline.stop()
            if webhook_worker is not None:
                webhook_worker.stop()
            if freeze_driver is not None:
                freeze_driver.stop()
            context.batchers.stop()
            await context.simulator.close()
            context.engine.dispose()

    app = FastAPI(
        title="Alliance Points Exchange gateway",
        version="1",
        lifespan=lifespan,
        description="Brand-facing API. Errors are RFC 9457 problem details (see docs/api.md).",
    )
    app.state.context = context
    app.state.metrics = GatewayMetrics(context.sessions)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    install_problem_handlers(app)
    for router in (oauth.router, members.router, movements.router, operations.router):
        app.include_router(router)
    app.include_router(webhooks.router)
    app.include_router(health.router)
    for router in (reads.router, moves.router, admin.router):
        app.include_router(router)
    app.include_router(alert_routes.router)
    app.include_router(settlement_routes.router)
    return app
