"""Settlement settings (env prefix `ALLIANCE_SETTLEMENT_`), built by the caller and passed down."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettlementSettings(BaseSettings):
    """When periods close, how the chain is read, and the limits of every batch."""

    model_config = SettingsConfigDict(
        env_prefix="ALLIANCE_SETTLEMENT_", frozen=True, use_attribute_docstrings=True
    )

    timezone: str = "UTC"
    """IANA time zone of the alliance's calendar: a period is one local day."""

    close_time: time = time(0, 30)
    """Local time of day at which the service closes the day before (leaves the chain time
    to pass midnight by `confirmations` blocks)."""

    confirmations: int = Field(default=0, ge=0, le=256)
    """Blocks a block must be buried under before it is indexed (0 on Anvil and QBFT,
    where a block is final once mined)."""

    peg: Decimal = Field(default=Decimal(1), gt=0)
    """Currency per alliance value unit for the statements' currency figures."""

    currency: str = Field(default="USD", min_length=3, max_length=3)
    """ISO 4217 code of the peg's currency."""

    database_url: str = ""
    """SQLAlchemy URL; empty means the gateway's database (the two share one database)."""

    anchor: bool = True
    """Write the anchor on chain (off: compute and publish only, e.g. on a read replica)."""

    block_range_max: int = Field(default=5_000, ge=1, le=100_000)
    """Largest block window the indexer asks the node for."""

    logs_per_window_target: int = Field(default=20_000, ge=100, le=1_000_000)
    """The indexer shrinks its block window on busy stretches to keep about this many logs
    per request and per database transaction (short write transactions keep the gateway
    responsive on SQLite)."""

    rescan_samples: int = Field(default=4, ge=0, le=1_000)
    """Random stored ranges re-read from the chain and compared with the stored rows."""

    rescan_blocks: int = Field(default=500, ge=1, le=100_000)
    """Blocks per re-scanned sample range."""

    balance_batch_size: int = Field(default=700, ge=1, le=760)
    """Holdings per lens eth_call. The lens returns its balances as if they were contract
    code, which EIP-170 caps at 24,576 bytes: at most 768 words, less the ABI header."""

    pending_grace_s: float = Field(default=600.0, ge=0, le=86_400)
    """A gateway operation still on its way (accepted or submitted) and younger than this
    is judged by the next period's reconciliation instead of being reported missing."""

    poll_interval_s: float = Field(default=30.0, gt=0, le=3_600)
    """How often the long-running service wakes to see whether a period is due."""

    retry_interval_s: float = Field(default=60.0, gt=0, le=3_600)
    """Back-off of the service after a failed run (the chain down, a loud discrepancy)."""

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone, which pydantic reports as invalid
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
