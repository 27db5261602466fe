"""Request and response schemas, named by role (Create, Public, Page).

Point amounts are JSON integers up to 2**53 - 1 (exact in every JSON client); value units,
scaled by 1e18, are decimal strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

POINTS_MAX = 2**53 - 1

# Strict: a JSON integer and nothing else (lax parsing would take "100", 100.0 or even
# `true` as an amount of points).
Points = Annotated[
    int, Field(strict=True, gt=0, le=POINTS_MAX, description="Whole points, positive.")
]
BrandCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
BrandMemberId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
]
BrandTransactionId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
]
MemberPublicId = Annotated[str, StringConstraints(pattern=r"^mbr_[0-9a-f]{24}$")]
HexSignature = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]


class Strict(BaseModel):
    """Unknown fields are refused, so a typo never silently means something else."""

    model_config = ConfigDict(extra="forbid")


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str


WalletAddress = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
Deadline = Annotated[
    int,
    Field(strict=True, ge=0, le=POINTS_MAX, description="Unix seconds the signature expires at."),
]
Nonce = Annotated[
    int,
    Field(strict=True, ge=0, le=POINTS_MAX, description="The wallet's next nonce on the exchange."),
]


class WalletProof(Strict):
    """A wallet address and its EIP-712 `SelfCustody` signature (enabled: true)."""

    address: WalletAddress
    nonce: Nonce
    deadline: Deadline
    signature: HexSignature


class MemberCreate(Strict):
    brand_member_id: BrandMemberId
    wallet: WalletProof | None = Field(
        default=None, description="Register with the member's own wallet, in self-custody."
    )


class CustodyUpdate(Strict):
    """A custody change signed by the member's wallet (`SelfCustody` EIP-712 message)."""

    enabled: bool = Field(strict=True, description="True: self-custody; false: custodial.")
    nonce: Nonce
    deadline: Deadline
    signature: HexSignature


class CustodyMessagePublic(BaseModel):
    """What a wallet signs to change custody, with the wallet's current nonce."""

    address: str
    enabled: bool
    nonce: int
    deadline: int
    typed_data: dict[str, Any] = Field(description="The eth_signTypedData_v4 document.")


class MemberLinkCreate(Strict):
    brand_member_id: BrandMemberId
    link_code: Annotated[str, StringConstraints(min_length=8, max_length=64)]


class MemberPublic(BaseModel):
    id: str
    address: str
    custody: str
    wallet: bool = Field(
        default=False, description="True if the address is the member's own wallet."
    )
    brands: list[str]
    brand_member_id: str | None = Field(
        default=None, description="The calling brand's own id for the member (brands only)."
    )
    created_at: datetime
    custody_operation_id: int | None = Field(
        default=None, description="Registration with a wallet: the operation setting custody."
    )


class LinkCodePublic(BaseModel):
    link_code: str
    expires_in: int


class DepositCreate(Strict):
    member_id: MemberPublicId
    amount: Points
    source: Literal["spend", "campaign", "referral"] = "spend"
    brand_transaction_id: BrandTransactionId


class WithdrawalCreate(Strict):
    member_id: MemberPublicId
    amount: Points
    brand_transaction_id: BrandTransactionId


class QuoteCreate(Strict):
    member_id: MemberPublicId
    from_brand: BrandCode
    to_brand: BrandCode
    amount_in: Points
    slippage_bps: int = Field(default=0, ge=0, le=10_000)


class QuotePublic(BaseModel):
    quote_id: str
    from_brand: str
    to_brand: str
    amount_in: int
    amount_out: int
    fee_points: int
    min_amount_out: int
    rate_from_units: str
    rate_to_units: str
    fee_bps: int
    expires_at: datetime
    request_id: str | None = Field(
        default=None,
        description="Self-custody members: the request id reserved for this quote's conversion.",
    )
    typed_data: dict[str, Any] | None = Field(
        default=None,
        description="Self-custody members: the EIP-712 document (eth_signTypedData_v4) of the "
        "conversion to sign; its signature goes with quote_id to POST /v1/conversions.",
    )


class ConversionCreate(Strict):
    member_id: MemberPublicId
    from_brand: BrandCode | None = None
    to_brand: BrandCode | None = None
    amount_in: Points | None = None
    min_amount_out: int = Field(default=0, ge=0, le=POINTS_MAX)
    quote_id: str | None = Field(default=None, max_length=2000)
    signature: HexSignature | None = None


class GiftCreate(Strict):
    brand: BrandCode
    from_member_id: MemberPublicId
    to_member_id: MemberPublicId
    amount: Points
    signature: HexSignature | None = None


class MoveCreate(Strict):
    member_id: MemberPublicId
    to_brand: BrandCode
    amount: Points
    min_amount_out: int = Field(default=0, ge=0, le=POINTS_MAX)
    brand_transaction_id: BrandTransactionId


class PairPolicyUpdate(Strict):
    enabled: bool
    fee_bps: int = Field(ge=0, le=10_000)
    min_amount_out: int = Field(default=1, ge=0, le=2**40 - 1)
    max_amount_out: int = Field(default=0, ge=0, le=2**40 - 1)
    daily_cap: int = Field(default=0, ge=0, le=2**48 - 1)


class OperationError(BaseModel):
    code: str
    detail: str | None = None


class OperationPublic(BaseModel):
    id: int
    kind: str
    status: str
    brand: str
    member_id: str | None = None
    request_id: str | None = None
    params: dict[str, Any]
    result: dict[str, Any] | None = None
    error: OperationError | None = None
    parent_id: int | None = Field(
        default=None, description="The move this operation is a step of, if any."
    )
    children: list[int] | None = Field(
        default=None, description="A move's step operations, oldest first (moves only)."
    )
    created_at: datetime
    updated_at: datetime


class OperationPage(BaseModel):
    items: list[OperationPublic]
    next_cursor: str | None = None


class BalancePublic(BaseModel):
    brand: str
    balance: int
    frozen: bool


class BalancesPublic(BaseModel):
    member_id: str
    balances: list[BalancePublic]


class RatePublic(BaseModel):
    brand: str
    rate_units: str
    points_per_unit: str
    scheduled_rate_units: str | None = None
    scheduled_effective_at: datetime | None = None


class PairPolicyPublic(BaseModel):
    from_brand: str
    to_brand: str
    enabled: bool
    fee_bps: int
    min_amount_out: int
    max_amount_out: int
    daily_cap: int
    inflow_today: int


class WebhookCreate(Strict):
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]{1,2000}$")]


class WebhookPublic(BaseModel):
    id: str
    url: str
    active: bool
    secret: str | None = Field(default=None, description="Shown once, at creation.")


class AdminActionCreate(Strict):
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500)]


class AdminActionPublic(BaseModel):
    id: int
    operation_id: int
    action: str
    status: str = Field(description="pending, sent (replacement broadcast), done or too_late.")
    actor: str
    reason: str
    detail: str | None = None
    tx_hash: str | None = Field(default=None, description="The replacement transaction (cancel).")
    created_at: datetime
    completed_at: datetime | None = None
    operation: OperationPublic
