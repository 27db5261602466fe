"""Gateway tables. See docs/gateway.md for what each row means and who writes it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from alliance.db.base import Base, Timestamped, UtcDateTime, utc_now


class ClientKind(enum.StrEnum):
    """Who an API client is."""

    BRAND = "brand"
    OPERATOR = "operator"
    AUDITOR = "auditor"


class Custody(enum.StrEnum):
    """Who authorises a member's movements."""

    CUSTODIAL = "custodial"
    SELF = "self"


class OperationKind(enum.StrEnum):
    """What a ledger write does."""

    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    CONVERSION = "conversion"
    GIFT = "gift"
    MOVE = "move"
    PAIR_POLICY = "pair_policy"
    EXPIRY = "expiry"
    ACKNOWLEDGEMENT = "acknowledgement"
    """A brand's on-chain acknowledgement of a settled period (`SettlementAnchor`)."""
    CUSTODY = "custody"
    """A wallet member's custody change (`AllianceExchange.setSelfCustody`, relayed)."""


class OperationStatus(enum.StrEnum):
    """Where an operation is in the pipeline."""

    ACCEPTED = "accepted"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (OperationStatus.CONFIRMED, OperationStatus.FAILED)


class TransactionStatus(enum.StrEnum):
    """Where a signed transaction is."""

    SENT = "sent"
    MINED = "mined"
    REVERTED = "reverted"
    REPLACED = "replaced"


class DeliveryStatus(enum.StrEnum):
    """Where a webhook delivery is."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    CANCELLED = "cancelled"


class GatewayMeta(Base):
    """Key-value facts about this database (the request-id base, the bound deployment)."""

    __tablename__ = "gateway_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class ApiClient(Timestamped, Base):
    """An OAuth2 client-credentials client."""

    __tablename__ = "api_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(256), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    brand_code: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    active: Mapped[bool] = mapped_column(default=True, nullable=False)


class Member(Timestamped, Base):
    """An alliance account. Custodial keys are derived from the master secret, never stored."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    address: Mapped[str] = mapped_column(String(42), unique=True, nullable=False)
    custody: Mapped[str] = mapped_column(String(16), default=Custody.CUSTODIAL, nullable=False)
    wallet: Mapped[bool] = mapped_column(default=False, server_default=false(), nullable=False)
    """True if `address` is the member's own wallet (proved by signature), False if it was
    derived from the gateway's master secret. Only wallet members may change custody."""

    links: Mapped[list[MemberLink]] = relationship(back_populates="member", lazy="selectin")


class MemberLink(Timestamped, Base):
    """A member's identity at one brand: a keyed hash for lookup, the id encrypted."""

    __tablename__ = "member_links"
    __table_args__ = (
        UniqueConstraint("brand_code", "ref_hash"),
        UniqueConstraint("member_id", "brand_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), nullable=False, index=True)
    brand_code: Mapped[str] = mapped_column(String(32), nullable=False)
    ref_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    ref_ciphertext: Mapped[bytes] = mapped_column(LargeBinary(512), nullable=False)

    member: Mapped[Member] = relationship(back_populates="links", lazy="joined")


class LinkCode(Base):
    """A one-time consent from one brand to link its member at another brand."""

    __tablename__ = "link_codes"

    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), nullable=False)
    issued_by_brand: Mapped[str] = mapped_column(String(32), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class QuoteReservation(Base):
    """A self-custody member's quote, kept so that its conversion has a request id before
    the member signs: the id of this row places it in the reserved range (see
    `gateway.services.signed_conversions`). The quote's terms travel in its signed token."""

    __tablename__ = "quotes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), nullable=False, index=True)
    brand_code: Mapped[str] = mapped_column(String(32), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, nullable=False)


class ChainTransaction(Timestamped, Base):
    """One signed transaction; its raw bytes are kept so a retry resends exactly them."""

    __tablename__ = "chain_transactions"
    __table_args__ = (UniqueConstraint("signer", "nonce"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    signer: Mapped[str] = mapped_column(String(42), nullable=False, index=True)
    nonce: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True, nullable=False)
    raw_tx: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Operation(Timestamped, Base):
    """One ledger write. `request_id` is what the contracts refuse to process twice."""

    __tablename__ = "operations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int | None] = mapped_column(BigInteger, unique=True, nullable=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    brand_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id"), nullable=True, index=True
    )
    signer: Mapped[str | None] = mapped_column(String(42), nullable=True, index=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("operations.id"), nullable=True, index=True
    )
    step: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("chain_transactions.id"), nullable=True, index=True
    )

    transaction: Mapped[ChainTransaction | None] = relationship(lazy="joined")


class Signer(Base):
    """A signing key's nonce and the lease that makes one submitter its only user."""

    __tablename__ = "signers"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger, nullable=False)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class IdempotencyKey(Base):
    """A client's Idempotency-Key and what it produced."""

    __tablename__ = "idempotency_keys"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"), nullable=True)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, nullable=False)


class WebhookSubscription(Timestamped, Base):
    """A brand's webhook endpoint."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    brand_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary(256), nullable=False)
    active: Mapped[bool] = mapped_column(default=True, nullable=False)


class WebhookDelivery(Timestamped, Base):
    """One event for one subscription (the outbox); delivered at least once."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id"), nullable=False, index=True
    )
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="pending", nullable=False, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=utc_now, nullable=False
    )
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class AdminActionKind(enum.StrEnum):
    """What an operator asked for."""

    CANCEL = "cancel"
    RESUBMIT = "resubmit"


class AdminActionStatus(enum.StrEnum):
    """Where an operator's request is. `pending` and `sent` wait for the submitter that owns
    the operation's signing key; the others are final."""

    PENDING = "pending"
    SENT = "sent"
    DONE = "done"
    TOO_LATE = "too_late"

    @property
    def is_final(self) -> bool:
        return self in (AdminActionStatus.DONE, AdminActionStatus.TOO_LATE)


class AdminAction(Base):
    """An operator's cancel or re-submit of an operation, and what became of it. A cancel of
    a submitted operation keeps the replacement transaction it signed (same nonce)."""

    __tablename__ = "admin_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_id: Mapped[int] = mapped_column(
        ForeignKey("operations.id"), nullable=False, index=True
    )
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), default=AdminActionStatus.PENDING, nullable=False, index=True
    )
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
