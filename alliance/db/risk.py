"""Risk tables: fraud alerts and their brands, member freezes asked for from an alert, and
the bookkeeping that keeps expiry from notifying or burning twice.

See docs/settlement.md ("Fraud checks", "Expiry") for who writes each table. Members appear
only as pseudonymous addresses (lower-case 0x-hex), never as brand member ids.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from alliance.db.base import Base, UtcDateTime, utc_now
from alliance.db.settlement import Uint256


class AlertStatus(enum.StrEnum):
    """Where an alert is in review."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class FreezeStatus(enum.StrEnum):
    """A freeze asked for from an alert: `requested` by one principal (the brand's first
    freezer has asked on chain), `approved` by a second (the second freezer's call is due),
    `applied` once the chain shows the member frozen at the brand."""

    REQUESTED = "requested"
    APPROVED = "approved"
    APPLIED = "applied"


class FraudAlert(Base):
    """One rule's finding about one member in one period. The natural key (period, rule,
    member, subject) is unique, so re-running a period never duplicates an alert."""

    __tablename__ = "fraud_alerts"
    __table_args__ = (UniqueConstraint("period_id", "rule", "member_address", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    period_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    rule: Mapped[str] = mapped_column(String(32), nullable=False)
    member_address: Mapped[str] = mapped_column(String(42), nullable=False, index=True)
    subject: Mapped[str] = mapped_column(String(80), nullable=False)
    severity: Mapped[str] = mapped_column(String(16), nullable=False)
    summary: Mapped[str] = mapped_column(Text, nullable=False)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), default=AlertStatus.OPEN, nullable=False, index=True
    )
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, nullable=False)

    brands: Mapped[list[FraudAlertBrand]] = relationship(
        lazy="selectin", order_by="FraudAlertBrand.brand_code", cascade="all, delete-orphan"
    )

    @property
    def brand_codes(self) -> list[str]:
        return [brand.brand_code for brand in self.brands]


class FraudAlertBrand(Base):
    """A brand an alert involves: that brand's clients may read and act on the alert."""

    __tablename__ = "fraud_alert_brands"

    alert_id: Mapped[int] = mapped_column(ForeignKey("fraud_alerts.id"), primary_key=True)
    brand_code: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class MemberFreeze(Base):
    """A freeze of a member at one brand, asked for from an alert and approved by a second,
    different principal. Each approval maps to one of the brand's two freezer keys."""

    __tablename__ = "member_freezes"
    __table_args__ = (UniqueConstraint("alert_id", "brand_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    alert_id: Mapped[int] = mapped_column(ForeignKey("fraud_alerts.id"), nullable=False, index=True)
    brand_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    member_address: Mapped[str] = mapped_column(String(42), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    requested_by: Mapped[str] = mapped_column(String(64), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, nullable=False)
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    request_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    """The first freezer's `setFrozen` (the on-chain request)."""
    approve_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    """The second freezer's `setFrozen` (the on-chain approval that freezes)."""
    applied_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class ExpiryNotice(Base):
    """The last time a brand was told that a lot of a member's points is about to expire:
    a lot is notified again only after the notice interval (weekly)."""

    __tablename__ = "expiry_notices"

    brand_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    member_address: Mapped[str] = mapped_column(String(42), primary_key=True)
    lot_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    """The block and log index of the movement that opened the lot (`block:log`)."""
    amount_points: Mapped[int] = mapped_column(Uint256(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    notified_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    period_id: Mapped[int] = mapped_column(Integer, nullable=False)


class ExpiryBurnRecord(Base):
    """One expiry burn a period's run asked for: at most one per (period, brand, member),
    recorded in the same transaction as the gateway operation that burns, so a re-run (or a
    run after a crash) never asks twice."""

    __tablename__ = "expiry_burns"
    __table_args__ = (UniqueConstraint("period_id", "brand_code", "member_address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    period_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    brand_code: Mapped[str] = mapped_column(String(32), nullable=False)
    member_address: Mapped[str] = mapped_column(String(42), nullable=False)
    amount_points: Mapped[int] = mapped_column(Uint256(), nullable=False)
    lot_keys: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    operation_id: Mapped[int] = mapped_column(
        ForeignKey("operations.id"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, nullable=False)
