"""Pair policies: the receiving brand sets its terms for conversions from a sending brand.

The change is an operation of kind `pair_policy` that the receiving brand's admin key
(`<brand>.admin`) sends, so it is durable, idempotent and visible like any other write.
"""

from __future__ import annotations

import contextlib

from sqlalchemy.orm import Session

from alliance.db.models import Operation, OperationKind
from gateway import errors
from gateway.context import GatewayContext
from gateway.schemas import PairPolicyUpdate
from gateway.services.operations import create_operation


def create_pair_policy(
    session: Session,
    context: GatewayContext,
    to_brand: str,
    from_brand: str,
    body: PairPolicyUpdate,
) -> Operation:
    """Record `to_brand`'s new policy for conversions from `from_brand`. Refused at once
    when the chain says it would revert; accepted when the chain is unreachable."""
    ledger = context.ledger
    source, target = ledger.brand(from_brand), ledger.brand(to_brand)
    if source.code == target.code:
        raise errors.SameBrand("a pair policy needs two different brands")
    if body.max_amount_out != 0 and body.min_amount_out > body.max_amount_out:
        raise errors.InvalidAmount(
            f"min_amount_out {body.min_amount_out} is above max_amount_out {body.max_amount_out}"
        )
    terms = (
        body.enabled,
        body.fee_bps,
        body.min_amount_out,
        body.max_amount_out,
        body.daily_cap,
    )
    # An unreachable chain skips the check: the admin submitter sends it when it is back.
    with contextlib.suppress(errors.ChainUnavailable):
        ledger.simulate(
            ledger.keys(f"{target.code}.admin"),
            ledger.exchange.functions.setPairPolicy(source.address, target.address, *terms),
        )
    return create_operation(
        session,
        kind=OperationKind.PAIR_POLICY,
        brand_code=target.code,
        member=None,
        params={
            "from_brand": source.code,
            "to_brand": target.code,
            "from_token": source.address,
            "to_token": target.address,
            **body.model_dump(),
        },
    )
