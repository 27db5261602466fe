"""Gateway settings (env prefix `ALLIANCE_GATEWAY_`), built by the caller and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    """How the gateway serves, stores and submits."""

    model_config = SettingsConfigDict(
        env_prefix="ALLIANCE_GATEWAY_", frozen=True, use_attribute_docstrings=True
    )

    host: str = "127.0.0.1"
    """Interface the HTTP server binds."""

    port: int = Field(default=8000, ge=1, le=65535)
    """HTTP port."""

    database_url: str = ""
    """SQLAlchemy URL; empty means SQLite at `<data_dir>/alliance.db` (WAL mode)."""

    token_ttl_s: int = Field(default=900, ge=60, le=86_400)
    """Lifetime of an issued access token."""

    sync_wait_s: float = Field(default=5.0, ge=0, le=60)
    """How long a synchronous endpoint waits for its operation to settle before a 202."""

    db_threads_max: int = Field(default=4, ge=1, le=64)
    """Worker threads doing the database work of asynchronous requests (conversions and
    other operation POSTs) at a time; more only queue on the write lock and the GIL."""

    batch_size_max: int = Field(default=100, ge=1, le=256)
    """Most conversions per chain transaction (the exchange accepts up to 256)."""

    batch_linger_s: float = Field(default=0.05, ge=0, le=1)
    """Least time between the starts of two batches of one submitter: under light load each
    batch would otherwise carry one operation, and a batch's fixed cost (sign, record, send,
    receipt, settle: several ms of CPU) would be paid per operation. Adds up to this much
    latency; under heavy load a batch takes longer than this anyway."""

    confirmations_min: int = Field(default=0, ge=0, le=64)
    """Blocks after inclusion before an operation counts as confirmed (0 on Anvil/QBFT)."""

    submit_idle_s: float = Field(default=0.05, gt=0, le=5)
    """How long a submitter sleeps when it has nothing to do (a new operation wakes it)."""

    chain_retry_s: float = Field(default=1.0, gt=0, le=60)
    """Back-off between submitter attempts while the chain is unreachable."""

    lease_ttl_s: float = Field(default=15.0, gt=1, le=300)
    """A submitter's lease on its signing key; another replica takes over after it lapses."""

    rate_limit_per_s: float = Field(default=500.0, gt=0)
    """Sustained requests per second allowed per client."""

    rate_limit_burst: int = Field(default=1000, ge=1)
    """Requests a client may make in a burst above the sustained rate."""

    page_size_max: int = Field(default=200, ge=1, le=1000)
    """Largest page a list endpoint returns."""

    link_code_ttl_s: int = Field(default=600, ge=60, le=86_400)
    """Lifetime of a one-time member link code."""

    quote_ttl_s: int = Field(default=60, ge=5, le=3600)
    """How long a quote can be used."""

    move_deadline_s: int = Field(default=3600, ge=60, le=86_400)
    """How long a move's conversion step stays valid on chain after its deposit confirms."""

    move_withdrawal_retries_max: int = Field(default=3, ge=0, le=10)
    """Extra attempts of a move's withdrawal step (or its compensation) after a failure."""

    admin_wait_s: float = Field(default=10.0, ge=0, le=60)
    """How long an operator's cancel or re-submit waits for the submitter to act on it."""

    stuck_after_s: float = Field(default=60.0, gt=0)
    """Default age after which an unfinished operation is listed as stuck."""

    webhook_attempts_max: int = Field(default=12, ge=1, le=50)
    """Delivery attempts per webhook event before it is marked dead."""

    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    """HTTP timeout of one webhook delivery attempt."""

    webhook_backoff_initial_s: float = Field(default=1.0, gt=0, le=3600)
    """Delay before the second delivery attempt; each later one doubles it (with jitter)."""

    webhook_backoff_max_s: float = Field(default=600.0, gt=0, le=86_400)
    """Longest delay between two delivery attempts."""

    webhook_batch_size_max: int = Field(default=16, ge=1, le=256)
    """Most deliveries one worker claims and sends (concurrently) per pass."""

    webhook_poll_s: float = Field(default=0.5, gt=0, le=60)
    """How often the delivery worker looks for due deliveries when nothing woke it."""

    freeze_retry_s: float = Field(default=5.0, gt=0, le=3600)
    """How often unfinished freezes (an approval whose chain step failed, e.g. while the
    chain was down) are driven again in the background."""

    freezes_per_pass_max: int = Field(default=50, ge=1, le=10_000)
    """Most unfinished freezes driven per background pass."""

    webhook_subscriptions_max: int = Field(default=10, ge=1, le=1000)
    """Most active webhook subscriptions per brand."""

    secrets_file: Path | None = None
    """Master secret file; empty means `<data_dir>/gateway-secrets.json`, generated on first
    run in development."""

    environment: str = Field(default="development", pattern="^(development|production)$")
    """`production` refuses generated development secrets."""
