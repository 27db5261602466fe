"""Deposits, withdrawals, quotes, conversions and gifts: validate, record, and leave the
chain to the pipeline. Anything refused here leaves no trace (the caller's unit of work
rolls back); what the chain refuses later is recorded on the operation."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from eth_utils import keccak
from sqlalchemy.orm import Session

from alliance.db.models import Custody, Member, Operation, OperationKind
from alliance.money import quote_conversion
from gateway import errors
from gateway.context import GatewayContext
from gateway.schemas import (
    ConversionCreate,
    DepositCreate,
    GiftCreate,
    QuoteCreate,
    WithdrawalCreate,
)
from gateway.services import members
from gateway.services.member_cache import MemberSnapshot
from gateway.services.operations import create_operation

SOURCE_CODES = {"spend": 1, "campaign": 2, "referral": 3}
QUOTE_AUDIENCE = "alliance-quote"


def brand_ref(brand_transaction_id: str) -> str:
    """What goes on chain for a brand's transaction id: its keccak hash, hex."""
    return keccak(text=brand_transaction_id).hex()


def create_deposit(
    session: Session, context: GatewayContext, brand_code: str, body: DepositCreate
) -> Operation:
    member = members.get_member(session, body.member_id, brand_code)
    context.ledger.brand(brand_code)
    return create_operation(
        session,
        kind=OperationKind.DEPOSIT,
        brand_code=brand_code,
        member=member,
        params={
            "member_address": member.address,
            "amount": body.amount,
            "source": SOURCE_CODES[body.source],
            "brand_ref": brand_ref(body.brand_transaction_id),
        },
    )


def check_withdrawal(context: GatewayContext, brand_code: str, body: WithdrawalCreate) -> None:
    """Chain-side checks, before (and outside) the write transaction."""
    with context.sessions() as session:
        member = members.get_member(session, body.member_id, brand_code)
    _require_balance(context, brand_code, member, body.amount)


def create_withdrawal(
    session: Session, context: GatewayContext, brand_code: str, body: WithdrawalCreate
) -> Operation:
    member = members.get_member(session, body.member_id, brand_code)
    brand = context.ledger.brand(brand_code)
    return create_operation(
        session,
        kind=OperationKind.WITHDRAWAL,
        brand_code=brand_code,
        member=member,
        params={
            "member_address": member.address,
            "amount": body.amount,
            "token_brand": brand.code,
            "brand_ref": brand_ref(body.brand_transaction_id),
        },
    )


def _require_balance(context: GatewayContext, brand_code: str, member: Member, amount: int) -> None:
    """Refuse at once when the chain says the balance is short; accept when it is unreachable."""
    try:
        balance = context.ledger.read(
            context.ledger.brand(brand_code).token.functions.balanceOf(member.address)
        )
    except errors.ChainUnavailable:
        return
    if balance < amount:
        raise errors.InsufficientPoints(f"balance {balance} is below {amount}")


@dataclass(frozen=True)
class Quote:
    """A priced conversion the member may accept until `expires_at` (epoch seconds)."""

    member_id: str
    from_brand: str
    to_brand: str
    amount_in: int
    amount_out: int
    fee_points: int
    min_amount_out: int
    rate_from_units: int
    rate_to_units: int
    fee_bps: int
    expires_at: int
    brand: str | None = None
    """The brand that asked, for a quote that reserves a request id (else None)."""
    reservation_id: int | None = None
    """The `quotes` row of a self-custody member's quote (see `signed_conversions`)."""
    request_id: int | None = None
    """The request id reserved for the quote's conversion, which the member signs."""


def make_quote(
    session: Session, context: GatewayContext, brand_code: str, body: QuoteCreate
) -> tuple[Quote, str]:
    """Price a conversion at the rates in force, check it would pass now, and sign it."""
    member = members.get_member(session, body.member_id, brand_code)
    if body.from_brand == body.to_brand:
        raise errors.SameBrand("a conversion needs two different brands")
    ledger = context.ledger
    source, target = ledger.brand(body.from_brand), ledger.brand(body.to_brand)
    rate_from = ledger.read(ledger.exchange.functions.currentRate(source.address))
    rate_to = ledger.read(ledger.exchange.functions.currentRate(target.address))
    policy = ledger.read(ledger.exchange.functions.pairPolicy(source.address, target.address))
    fee_bps = policy[1]
    priced = quote_conversion(body.amount_in, rate_from, rate_to, fee_bps)
    min_out = priced.amount_out_points - priced.amount_out_points * body.slippage_bps // 10_000
    expires_at = int(time.time()) + context.settings.quote_ttl_s
    _simulate_conversion(
        context, member, source.address, target.address, body.amount_in, min_out, expires_at
    )
    quote = Quote(
        member.public_id,
        body.from_brand,
        body.to_brand,
        body.amount_in,
        priced.amount_out_points,
        priced.fee_points,
        min_out,
        rate_from,
        rate_to,
        fee_bps,
        expires_at,
    )
    return quote, sign_quote(context, quote)


def sign_quote(context: GatewayContext, quote: Quote) -> str:
    """The quote's id: its terms, signed by the gateway, good until it expires."""
    claims = {**quote.__dict__, "aud": QUOTE_AUDIENCE, "exp": quote.expires_at}
    return jwt.encode(claims, context.secrets.token_key, algorithm="HS256")


def read_quote(context: GatewayContext, quote_id: str) -> Quote:
    try:
        claims = jwt.decode(
            quote_id, context.secrets.token_key, algorithms=["HS256"], audience=QUOTE_AUDIENCE
        )
    except jwt.ExpiredSignatureError:
        raise errors.QuoteExpired("the quote has expired") from None
    except jwt.PyJWTError:
        raise errors.NotFound("unknown quote") from None
    claims.pop("aud", None)
    claims.pop("exp", None)
    return Quote(**claims)


@dataclass(frozen=True)
class PreparedConversion:
    """A conversion as it will be recorded: its brand, member and parameters."""

    brand_code: str
    member: MemberSnapshot
    params: dict[str, Any]
    kind: str = OperationKind.CONVERSION

    @property
    def member_id(self) -> int:
        return self.member.id


def prepare_conversion(
    context: GatewayContext, brand_code: str, member: MemberSnapshot, body: ConversionCreate
) -> PreparedConversion:
    """Work out the conversion's terms (from its quote, or from explicit brands and amount);
    no database or chain access."""
    return PreparedConversion(brand_code, member, _conversion_params(context, member, body))


async def check_conversion(context: GatewayContext, prepared: PreparedConversion) -> None:
    """Ask the chain whether the conversion would pass now, before the write transaction:
    a refusal raises its error; an unreachable chain skips the check (accepted, completed
    later). Self-custody conversions are checked on chain with their signature."""
    if prepared.member.custody == Custody.SELF:
        return
    params = prepared.params
    # Request id 0 is never issued, so the simulation checks everything but replay.
    await context.simulator.conversion(
        (
            0,
            params["member_address"],
            params["from_token"],
            params["to_token"],
            int(params["amount_in"]),
            int(params["min_amount_out"]),
            int(params["deadline"]),
        )
    )


def _conversion_params(
    context: GatewayContext, member: MemberSnapshot, body: ConversionCreate
) -> dict[str, Any]:
    """What a conversion operation records: its terms, the member's address, both tokens."""
    terms = _conversion_terms(context, member, body)
    if member.custody == Custody.SELF and body.signature is None:
        raise errors.SelfCustodyRequired("this member authorises conversions by signature")
    ledger = context.ledger
    source, target = ledger.brand(terms["from_brand"]), ledger.brand(terms["to_brand"])
    return {
        **terms,
        "member_address": member.address,
        "from_token": source.address,
        "to_token": target.address,
        "signature": body.signature or "0x",
    }


def _conversion_terms(
    context: GatewayContext, member: MemberSnapshot, body: ConversionCreate
) -> dict[str, Any]:
    if body.quote_id is not None:
        quote = read_quote(context, body.quote_id)
        if quote.member_id != member.public_id:
            raise errors.NotFound("unknown quote")
        if quote.request_id is not None:  # reserved for the member's signed conversion
            raise errors.SelfCustodyRequired("this quote is accepted by the member's signature")
        return {
            "from_brand": quote.from_brand,
            "to_brand": quote.to_brand,
            "amount_in": quote.amount_in,
            "min_amount_out": quote.min_amount_out,
            "deadline": quote.expires_at,
            "quote_id": body.quote_id[-16:],
        }
    if body.from_brand is None or body.to_brand is None or body.amount_in is None:
        raise errors.InvalidAmount("give a quote_id, or from_brand, to_brand and amount_in")
    if body.from_brand == body.to_brand:
        raise errors.SameBrand("a conversion needs two different brands")
    return {
        "from_brand": body.from_brand,
        "to_brand": body.to_brand,
        "amount_in": body.amount_in,
        "min_amount_out": body.min_amount_out,
        "deadline": int(time.time()) + context.settings.quote_ttl_s,
    }


def _simulate_conversion(
    context: GatewayContext,
    member: Member,
    from_token: str,
    to_token: str,
    amount_in: int,
    min_amount_out: int,
    deadline: int,
) -> None:
    """Ask the chain whether the conversion would pass now; a refusal raises its error.
    An unreachable chain skips the check: the conversion is accepted and completes later."""
    if member.custody == Custody.SELF:
        return  # the signature is checked on chain; pricing was already done
    ledger = context.ledger
    # Request id 0 is never issued, so the simulation checks everything but replay.
    request = (
        0,
        member.address,
        from_token,
        to_token,
        amount_in,
        min_amount_out,
        deadline,
    )
    try:
        ledger.simulate(ledger.keys("operator"), ledger.exchange.functions.convert(request))
    except errors.ChainUnavailable:
        return


def check_gift(context: GatewayContext, brand_code: str, body: GiftCreate) -> None:
    """Chain-side checks, before (and outside) the write transaction."""
    if body.brand != brand_code:
        raise errors.Forbidden("a brand can only move its own points as gifts")
    with context.sessions() as session:
        sender = members.get_member(session, body.from_member_id, brand_code)
        members.get_member(session, body.to_member_id, brand_code)
    brand = context.ledger.brand(brand_code)
    try:
        gifting = context.ledger.read(brand.token.functions.giftingEnabled())
    except errors.ChainUnavailable:
        gifting = True  # accepted while the chain is down; the token itself refuses a gift
    if not gifting:
        raise errors.GiftingDisabled(f"{brand_code} does not allow gifts")
    _require_balance(context, brand_code, sender, body.amount)


def create_gift(
    session: Session, context: GatewayContext, brand_code: str, body: GiftCreate
) -> Operation:
    if body.brand != brand_code:
        raise errors.Forbidden("a brand can only move its own points as gifts")
    sender = members.get_member(session, body.from_member_id, brand_code)
    recipient = members.get_member(session, body.to_member_id, brand_code)
    brand = context.ledger.brand(brand_code)
    return create_operation(
        session,
        kind=OperationKind.GIFT,
        brand_code=brand_code,
        member=sender,
        params={
            "token": brand.address,
            "brand": brand_code,
            "from_address": sender.address,
            "to_address": recipient.address,
            "from_member_id": sender.public_id,
            "to_member_id": recipient.public_id,
            "amount": body.amount,
            "deadline": int(time.time()) + context.settings.quote_ttl_s * 60,
            "signature": body.signature or "0x",
        },
    )
