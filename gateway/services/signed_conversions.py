"""Signed conversions: a self-custody member's conversion, authorised by their EIP-712
signature over a quote that reserved its request id.

The exchange's signed `ConversionRequest` covers the request id, so the member must know
it before signing. A self-custody member's quote therefore records a `quotes` row, and
the quote's request id is `RESERVED_REQUEST_ID_BASE` + the database's request-id base + the
row's id: a range no operation's own id (base + operation id, below 2^62) ever reaches,
and one id per quote. The conversion is recorded as an ordinary `conversion` operation with
that request id (unique in `operations`: one conversion per quote), and the pipeline sends
it like any other, in a `convertBatch` with the member's signature for its item.

Everything a request can get wrong is checked before anything is recorded: the quote (this
member's, at this brand, not expired, not used), the signature (recovered off chain), and
whether the chain would apply it now (`convertWithSignature`, simulated when it answers).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alliance.db.models import (
    Custody,
    Member,
    Operation,
    OperationKind,
    QuoteReservation,
)
from alliance.db.session import unit_of_work
from alliance.typed_data import CONVERSION, typed_document
from gateway import errors
from gateway.context import GatewayContext
from gateway.ledger import Ledger
from gateway.schemas import ConversionCreate, QuoteCreate
from gateway.services import members
from gateway.services.custody import exchange_domain, signer_of
from gateway.services.movements import Quote, make_quote, read_quote, sign_quote
from gateway.services.operations import create_operation, request_id_base

RESERVED_REQUEST_ID_BASE = 2**62
"""Request ids reserved by quotes start here; operations' own ids stay below it."""


ConversionRequest = tuple[int, str, str, str, int, int, int]
"""The exchange's ConversionRequest: request id, member, from token, to token, amount in,
minimum out, deadline."""


def quote(
    context: GatewayContext, brand_code: str, body: QuoteCreate
) -> tuple[Quote, str, dict[str, Any] | None]:
    """A priced quote and its id; for a self-custody member, the quote also reserves its
    conversion's request id (recorded before answering) and comes with the typed data the
    member signs (else None)."""
    with context.sessions() as session:
        priced, quote_id = make_quote(session, context, brand_code, body)
        member = members.get_member(session, body.member_id, brand_code)
    if member.custody != Custody.SELF:
        return priced, quote_id, None
    with unit_of_work(context.sessions) as session:
        reservation = QuoteReservation(
            member_id=member.id,
            brand_code=brand_code,
            expires_at=datetime.fromtimestamp(priced.expires_at, UTC),
        )
        session.add(reservation)
        session.flush()
        request_id = RESERVED_REQUEST_ID_BASE + request_id_base(session) + reservation.id
    reserved = dataclasses.replace(
        priced, brand=brand_code, reservation_id=reservation.id, request_id=request_id
    )
    request = conversion_request(context.ledger, reserved, member.address)
    return reserved, sign_quote(context, reserved), typed_data(context.ledger, request)


def conversion_request(ledger: Ledger, quote: Quote, member_address: str) -> ConversionRequest:
    """The ConversionRequest a reserved quote stands for (what the member signs)."""
    assert quote.request_id is not None, "only a reserved quote has a request to sign"
    return (
        quote.request_id,
        member_address,
        ledger.brand(quote.from_brand).address,
        ledger.brand(quote.to_brand).address,
        quote.amount_in,
        quote.min_amount_out,
        quote.expires_at,
    )


def typed_data(ledger: Ledger, request: ConversionRequest) -> dict[str, Any]:
    """The complete EIP-712 document (`eth_signTypedData_v4`) of a conversion. The request
    id is a decimal string: reserved ids are beyond what a JavaScript number holds."""
    request_id, member, from_token, to_token, amount_in, min_amount_out, deadline = request
    return typed_document(
        "Conversion",
        CONVERSION,
        exchange_domain(ledger),
        {
            "requestId": str(request_id),
            "member": member,
            "fromToken": from_token,
            "toToken": to_token,
            "amountIn": amount_in,
            "minAmountOut": min_amount_out,
            "deadline": deadline,
        },
    )


def check_conversion(context: GatewayContext, brand_code: str, body: ConversionCreate) -> None:
    """Refuse, before the write transaction, a signed conversion that the quote, the
    signature or the chain (when it answers) would refuse."""
    assert body.signature is not None, "only signed conversions come here"
    with context.sessions() as session:
        member = members.get_member(session, body.member_id, brand_code)
        reserved = _reserved_quote(session, context, brand_code, member, body)
        _require_unused(session, reserved)
    ledger = context.ledger
    request = conversion_request(ledger, reserved, member.address)
    signer = signer_of(typed_data(ledger, request), body.signature)
    if signer is None or signer.lower() != member.address.lower():
        raise errors.InvalidSignature("the signature is not the member's for this quote")
    signature = bytes.fromhex(body.signature[2:])
    try:
        ledger.simulate(
            ledger.keys("operator"),
            ledger.exchange.functions.convertWithSignature(request, signature),
        )
    except errors.ChainUnavailable:
        return  # accepted; the chain decides when it returns
    except errors.GatewayError:
        # A request racing this one may have used the quote meanwhile (then the chain saw
        # its request id, or its points are spent): say so rather than the chain's reason.
        with context.sessions() as session:
            _require_unused(session, reserved)
        raise


def create_conversion(
    session: Session, context: GatewayContext, brand_code: str, body: ConversionCreate
) -> Operation:
    """Record the signed conversion of a reserved quote (checked by `check_conversion`),
    with the quote's request id. The quote's row is locked first, so two requests for one
    quote never both pass the check that it is unused (PostgreSQL; SQLite's one writer
    already serialises them)."""
    assert body.signature is not None, "only signed conversions come here"
    member = members.get_member(session, body.member_id, brand_code)
    reserved = _reserved_quote(session, context, brand_code, member, body, lock=True)
    _require_unused(session, reserved)
    request = conversion_request(context.ledger, reserved, member.address)
    _, address, from_token, to_token, amount_in, min_amount_out, deadline = request
    assert body.quote_id is not None and reserved.request_id is not None
    params = {
        "from_brand": reserved.from_brand,
        "to_brand": reserved.to_brand,
        "amount_in": amount_in,
        "min_amount_out": min_amount_out,
        "deadline": deadline,
        "quote_id": body.quote_id[-16:],
        "member_address": address,
        "from_token": from_token,
        "to_token": to_token,
        "signature": body.signature,
    }
    return create_operation(
        session,
        kind=OperationKind.CONVERSION,
        brand_code=brand_code,
        member=member,
        params=params,
        request_id=reserved.request_id,
    )


def _reserved_quote(
    session: Session,
    context: GatewayContext,
    brand_code: str,
    member: Member,
    body: ConversionCreate,
    *,
    lock: bool = False,
) -> Quote:
    """The body's quote, if it reserved a request id for `member` at `brand_code`."""
    if body.quote_id is None:
        raise errors.QuoteRequired("a signed conversion needs the quote_id of a signable quote")
    quote = read_quote(context, body.quote_id)
    if quote.member_id != member.public_id or quote.brand not in (None, brand_code):
        raise errors.NotFound("unknown quote")
    if quote.reservation_id is None or quote.request_id is None:
        raise errors.QuoteRequired("this quote was not made for a signature: ask for a new one")
    reservation = session.get(QuoteReservation, quote.reservation_id, with_for_update=lock)
    # The token is the gateway's own, so its row exists and names this member and brand;
    # a database restored without it makes the quote unknown.
    if reservation is None or reservation.member_id != member.id:
        raise errors.NotFound("unknown quote")
    return quote


def _require_unused(session: Session, quote: Quote) -> None:
    used = session.scalar(select(Operation.id).where(Operation.request_id == quote.request_id))
    if used is not None:
        raise errors.QuoteUsed(
            f"operation {used} already used this quote", extra={"operation_id": used}
        )
