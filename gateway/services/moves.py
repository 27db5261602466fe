"""Moves: one call that takes a member's points from the calling brand A's own programme
into brand B's programme, as a saga of ordinary operations.

The move is a parent operation of kind `move` that never goes on chain; it stays
`accepted` until the saga ends. Its steps are child operations (`parent_id`, `step`):

1. deposit at A of `amount` (mint);
2. conversion A → B of `amount`;
3. withdrawal at B of the conversion's amount out (burn: B credits its own programme);
4. compensation, only when step 2 failed: withdrawal at A of `amount` (A re-credits).

`advance` is an `on_final` hook: the submitter calls it inside the transaction that settles
each child, so the next step is recorded atomically with the previous step's outcome and a
crash can never lose or repeat a step. Withdrawals (steps 3 and 4) are retried up to
`move_withdrawal_retries_max` times; after that the points stay on the member's ledger
balance and the move fails saying where.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alliance.db.models import Custody, Member, Operation, OperationKind, OperationStatus
from gateway import errors
from gateway.context import GatewayContext
from gateway.ledger import Ledger
from gateway.schemas import MoveCreate
from gateway.services import members
from gateway.services.movements import SOURCE_CODES, brand_ref
from gateway.services.operations import create_operation
from gateway.settings import GatewaySettings

STEP_DEPOSIT = 1
STEP_CONVERSION = 2
STEP_WITHDRAWAL = 3
STEP_COMPENSATION = 4
STEP_NAMES = {1: "deposit", 2: "conversion", 3: "withdrawal", 4: "compensation"}

NOT_RETRIED = frozenset({errors.Cancelled.code})
"""Failure codes a withdrawal step is not retried after (an operator stopped it)."""

MoveHook = Callable[[Session, Operation], None]


def create_move(
    session: Session, context: GatewayContext, brand_code: str, body: MoveCreate
) -> Operation:
    """Record a move from `brand_code` to `body.to_brand` and its first step (the deposit).
    The pair's limits are the chain's to check at step 2; a refusal there is compensated."""
    member = members.get_member(session, body.member_id, brand_code)
    ledger = context.ledger
    source, target = ledger.brand(brand_code), ledger.brand(body.to_brand)
    if source.code == target.code:
        raise errors.SameBrand("a move needs two different brands")
    if target.code not in members.linked_brands(member):
        raise errors.NotFound(f"no member {member.public_id} at {target.code}")
    if member.custody == Custody.SELF:
        raise errors.SelfCustodyRequired("a self-custody member converts with a signature")
    move = create_operation(
        session,
        kind=OperationKind.MOVE,
        brand_code=source.code,
        member=member,
        params={
            "from_brand": source.code,
            "to_brand": target.code,
            "amount": body.amount,
            "min_amount_out": body.min_amount_out,
            "member_address": member.address,
            "brand_ref": brand_ref(body.brand_transaction_id),
        },
        on_chain=False,
    )
    _deposit(session, move, member)
    return move


def move_hook(
    ledger: Ledger, settings: GatewaySettings, on_move_final: Sequence[MoveHook] = ()
) -> MoveHook:
    """The `on_final` hook that drives every move's saga. `on_move_final` hooks (webhooks)
    run for the move itself when it ends, in the same transaction."""

    def hook(session: Session, operation: Operation) -> None:
        move = advance(session, ledger, settings, operation)
        if move is not None and OperationStatus(move.status).is_final:
            for on_final in on_move_final:
                on_final(session, move)

    return hook


def advance(
    session: Session, ledger: Ledger, settings: GatewaySettings, child: Operation
) -> Operation | None:
    """Take the next step of `child`'s move now that `child` is final; returns the move
    (None, and nothing done, for an operation that is no step of an unfinished move)."""
    if child.parent_id is None:
        return None
    move = session.get(Operation, child.parent_id)
    if move is None or move.kind != OperationKind.MOVE or OperationStatus(move.status).is_final:
        return None
    member = session.get_one(Member, move.member_id)
    confirmed = child.status == OperationStatus.CONFIRMED
    if child.step == STEP_DEPOSIT:
        if confirmed:
            _conversion(session, ledger, settings, move, member)
        else:
            _fail(session, move, child.error_code, child.error_detail, {"failed_step": "deposit"})
    elif child.step == STEP_CONVERSION:
        if confirmed:
            _after_conversion(session, move, member, child)
        else:
            _compensation(session, move, member, child, attempt=1)
    elif child.step == STEP_WITHDRAWAL:
        _after_withdrawal(session, settings, move, member, child)
    elif child.step == STEP_COMPENSATION:
        _after_compensation(session, settings, move, member, child)
    return move


# ---------------------------------------------------------------------- steps


def _deposit(session: Session, move: Operation, member: Member) -> Operation:
    p = move.params
    return _child(
        session,
        move,
        member,
        STEP_DEPOSIT,
        OperationKind.DEPOSIT,
        p["from_brand"],
        {"amount": p["amount"], "source": SOURCE_CODES["spend"], "brand_ref": p["brand_ref"]},
    )


def _conversion(
    session: Session, ledger: Ledger, settings: GatewaySettings, move: Operation, member: Member
) -> Operation:
    p = move.params
    return _child(
        session,
        move,
        member,
        STEP_CONVERSION,
        OperationKind.CONVERSION,
        p["from_brand"],
        {
            "from_brand": p["from_brand"],
            "to_brand": p["to_brand"],
            "amount_in": p["amount"],
            "min_amount_out": p["min_amount_out"],
            "deadline": int(time.time()) + settings.move_deadline_s,
            "from_token": ledger.brand(p["from_brand"]).address,
            "to_token": ledger.brand(p["to_brand"]).address,
            "signature": "0x",
        },
    )


def _after_conversion(session: Session, move: Operation, member: Member, child: Operation) -> None:
    amount_out = int((child.result or {})["amount_out"])
    if amount_out == 0:
        _confirm(session, move)  # nothing arrived at B, so there is nothing to withdraw
        return
    _withdrawal(session, move, member, move.params["to_brand"], amount_out, attempt=1)


def _withdrawal(
    session: Session, move: Operation, member: Member, brand: str, amount: int, *, attempt: int
) -> Operation:
    return _child(
        session,
        move,
        member,
        STEP_WITHDRAWAL,
        OperationKind.WITHDRAWAL,
        brand,
        {
            "amount": amount,
            "token_brand": brand,
            "brand_ref": brand_ref(f"move:{move.id}:withdrawal"),
            "attempt": attempt,
        },
    )


def _compensation(
    session: Session, move: Operation, member: Member, cause: Operation, *, attempt: int
) -> Operation:
    """Give the deposited points back to A's programme (a withdrawal at A)."""
    brand = move.params["from_brand"]
    return _child(
        session,
        move,
        member,
        STEP_COMPENSATION,
        OperationKind.WITHDRAWAL,
        brand,
        {
            "amount": move.params["amount"],
            "token_brand": brand,
            "brand_ref": brand_ref(f"move:{move.id}:compensation"),
            "attempt": attempt,
            "cause_code": cause.params.get("cause_code", cause.error_code),
            "cause_detail": cause.params.get("cause_detail", cause.error_detail),
        },
    )


def _after_withdrawal(
    session: Session,
    settings: GatewaySettings,
    move: Operation,
    member: Member,
    child: Operation,
) -> None:
    if child.status == OperationStatus.CONFIRMED:
        _confirm(session, move)
    elif _retry_allowed(settings, child):
        p = child.params
        _withdrawal(session, move, member, p["token_brand"], p["amount"], attempt=p["attempt"] + 1)
    else:
        brand, amount = child.params["token_brand"], child.params["amount"]
        _fail(
            session,
            move,
            child.error_code,
            child.error_detail,
            _points_left("withdrawal", brand, amount),
        )


def _after_compensation(
    session: Session,
    settings: GatewaySettings,
    move: Operation,
    member: Member,
    child: Operation,
) -> None:
    p = child.params
    if child.status == OperationStatus.CONFIRMED:
        facts = {"failed_step": "conversion", "compensated": True}
        facts["amount_compensated"] = p["amount"]
        _fail(session, move, p["cause_code"], p["cause_detail"], facts)
    elif _retry_allowed(settings, child):
        _compensation(session, move, member, child, attempt=p["attempt"] + 1)
    else:
        facts = _points_left("conversion", p["token_brand"], p["amount"])
        facts["compensation_error"] = child.error_code
        _fail(session, move, p["cause_code"], p["cause_detail"], facts)


def _retry_allowed(settings: GatewaySettings, child: Operation) -> bool:
    attempts_max = 1 + settings.move_withdrawal_retries_max
    return child.error_code not in NOT_RETRIED and child.params["attempt"] < attempts_max


def _points_left(failed_step: str, brand: str, amount: int) -> dict[str, Any]:
    return {
        "failed_step": failed_step,
        "compensated": False,
        "points_left_brand": brand,
        "points_left_amount": amount,
        "note": f"the {amount} points stay on the member's ledger balance at {brand}",
    }


# ---------------------------------------------------------------------- bookkeeping


def _child(
    session: Session,
    move: Operation,
    member: Member,
    step: int,
    kind: OperationKind,
    brand_code: str,
    params: dict[str, Any],
) -> Operation:
    return create_operation(
        session,
        kind=kind,
        brand_code=brand_code,
        member=member,
        params={**params, "member_address": member.address, "step_name": STEP_NAMES[step]},
        parent=move,
        step=step,
    )


def children(session: Session, move: Operation) -> list[Operation]:
    """The move's step operations, oldest first."""
    return list(
        session.scalars(
            select(Operation).where(Operation.parent_id == move.id).order_by(Operation.id)
        )
    )


def _summary(session: Session, move: Operation) -> dict[str, Any]:
    """What every finished move reports: its steps and the figures of those that applied."""
    steps = children(session, move)
    confirmed = {c.step: c for c in steps if c.status == OperationStatus.CONFIRMED}
    conversion_step, withdrawal = confirmed.get(STEP_CONVERSION), confirmed.get(STEP_WITHDRAWAL)
    conversion = (conversion_step.result if conversion_step is not None else None) or {}
    return {
        "amount_deposited": move.params["amount"] if STEP_DEPOSIT in confirmed else 0,
        "amount_out": int(conversion.get("amount_out", 0)),
        "fee_points": int(conversion.get("fee_points", 0)),
        "amount_withdrawn": withdrawal.params["amount"] if withdrawal is not None else 0,
        "to_brand": move.params["to_brand"],
        "child_operation_ids": [c.id for c in steps],
    }


def _confirm(session: Session, move: Operation) -> None:
    move.status = OperationStatus.CONFIRMED
    move.result = _summary(session, move)


def _fail(
    session: Session,
    move: Operation,
    code: str | None,
    detail: str | None,
    facts: dict[str, Any],
) -> None:
    move.status = OperationStatus.FAILED
    move.error_code = code or errors.ChainRejected.code
    move.error_detail = detail
    move.result = {"compensated": False, **facts, **_summary(session, move)}
