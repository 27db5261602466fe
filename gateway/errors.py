"""Errors the gateway's services raise. Each has a stable `code`; `gateway.problems` maps
codes to HTTP statuses in one table. Services never raise HTTP errors themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from alliance.errors import AllianceError


@dataclass(eq=False)
class GatewayError(AllianceError):
    """A request the gateway refuses, with a stable code and a human detail."""

    code: ClassVar[str] = "gateway_error"
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return self.detail or self.code.replace("_", " ")


def gateway_error(code: str, doc: str) -> type[GatewayError]:
    """Define a `GatewayError` subclass with `code` (one line per error kind)."""
    name = "".join(part.capitalize() for part in code.split("_"))
    return type(name, (GatewayError,), {"code": code, "__doc__": doc})


Unauthorized = gateway_error("unauthorized", "Missing, malformed or expired credentials.")
Forbidden = gateway_error("forbidden", "The client lacks the scope for this action.")
NotFound = gateway_error("not_found", "No such resource for this client.")
IdempotencyKeyMissing = gateway_error("idempotency_key_missing", "POST without Idempotency-Key.")
IdempotencyConflict = gateway_error("idempotency_conflict", "Key reused with another body.")
IdempotencyInProgress = gateway_error("idempotency_in_progress", "First request still running.")
MemberExists = gateway_error("member_exists", "The brand member id is already registered.")
LinkCodeInvalid = gateway_error("link_code_invalid", "Unknown, used or expired link code.")
UnknownBrand = gateway_error("unknown_brand", "No such brand.")
InsufficientPoints = gateway_error("insufficient_points", "Balance below the amount.")
PairDisabled = gateway_error("pair_disabled", "The receiving brand does not accept the pair.")
BelowMinimum = gateway_error("below_minimum", "Below the pair's per-conversion minimum.")
AboveMaximum = gateway_error("above_maximum", "Above the pair's per-conversion maximum.")
DailyCapExceeded = gateway_error("daily_cap_exceeded", "The pair's daily cap would be exceeded.")
SlippageExceeded = gateway_error("slippage_exceeded", "Amount out below the member's minimum.")
QuoteExpired = gateway_error("quote_expired", "The quote's expiry has passed.")
QuoteRequired = gateway_error("quote_required", "A signed conversion needs a signable quote.")
QuoteUsed = gateway_error("quote_used", "Another conversion already used this quote.")
MemberFrozen = gateway_error("member_frozen", "The member is frozen at the sending brand.")
GiftingDisabled = gateway_error("gifting_disabled", "The brand does not allow gifts.")
BrandSuspended = gateway_error("brand_suspended", "The brand or the alliance is paused.")
SameBrand = gateway_error("same_brand", "A conversion needs two different brands.")
InvalidAmount = gateway_error("invalid_amount", "The amount is out of range.")
SelfCustodyRequired = gateway_error("signature_required", "A self-custody member must sign.")
InvalidSignature = gateway_error("invalid_signature", "The signature is not the member's.")
SignatureExpired = gateway_error("signature_expired", "The signature's deadline has passed.")
InvalidNonce = gateway_error("invalid_nonce", "The signed nonce is not the wallet's next one.")
AddressTaken = gateway_error("address_taken", "The wallet address already belongs to a member.")
WalletRequired = gateway_error("wallet_required", "Only a wallet member may change custody.")
CustodyChangePending = gateway_error("custody_change_pending", "A custody change is on its way.")
CustodyUnchanged = gateway_error("custody_unchanged", "The member already has this custody.")
RateLimited = gateway_error("rate_limited", "Too many requests for this client.")
ChainUnavailable = gateway_error("chain_unavailable", "The chain is unreachable.")
OperationNotCancellable = gateway_error("operation_not_cancellable", "Already final or on chain.")
Cancelled = gateway_error("cancelled", "An operator cancelled the operation before it applied.")
ChainRejected = gateway_error("chain_rejected", "The chain refused the operation.")
DatabaseUnavailable = gateway_error("database_unavailable", "The database does not answer.")
WebhookLimitReached = gateway_error("webhook_limit_reached", "The brand has too many webhooks.")
WebhookUrlRefused = gateway_error("webhook_url_refused", "The webhook URL is not allowed.")
PeriodAlreadyAcknowledged = gateway_error(
    "period_already_acknowledged", "The brand already acknowledged the period on chain."
)


@dataclass(eq=False)
class SecretsUnavailable(AllianceError):
    """No master secret, and this environment may not generate one."""

    code: ClassVar[str] = "secrets_unavailable"
    path: Path

    def describe(self) -> str:
        return f"no master secret at {self.path}; production never generates one"
