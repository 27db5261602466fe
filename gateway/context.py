"""Everything a request or worker needs, built once by `create_app` and passed down."""

from __future__ import annotations

from dataclasses import dataclass

from anyio import CapacityLimiter
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from alliance.settings import Settings
from gateway.auth import RateLimiter, TokenVerifier
from gateway.crypto import GatewaySecrets
from gateway.ledger import Ledger
from gateway.pipeline.manager import Pipeline
from gateway.services.intake import RequestBatchers
from gateway.services.member_cache import MemberCache
from gateway.services.operations import OperationWaiters
from gateway.settings import GatewaySettings
from gateway.simulation import ChainSimulator


@dataclass
class GatewayContext:
    """The gateway's dependencies."""

    settings: GatewaySettings
    core: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    secrets: GatewaySecrets
    ledger: Ledger
    waiters: OperationWaiters
    limiter: RateLimiter
    tokens: TokenVerifier
    simulator: ChainSimulator
    member_cache: MemberCache
    batchers: RequestBatchers
    pipeline: Pipeline | None = None
    db_limiter: CapacityLimiter | None = None
    """Bounds the worker threads doing request database work (made on the app's loop)."""
