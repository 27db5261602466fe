"""The move saga takes the right next step for every way a step can end.

Runs against a real SQLite database in a temporary directory (schema from the models) with
a stub ledger (brand codes and token addresses only); no chain and no submitter. Each test
settles the move's current step by hand, calling `moves.advance` inside the settling
transaction exactly as the submitter's `on_final` hook does, and checks the step recorded
next and the move's final status and result.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.base import Base
from alliance.db.models import Operation, OperationKind, OperationStatus
from alliance.db.session import make_engine, make_session_factory, unit_of_work
from gateway import errors
from gateway.crypto import GatewaySecrets
from gateway.schemas import MoveCreate
from gateway.services import members, moves
from gateway.settings import GatewaySettings

SECRETS = GatewaySecrets.from_master(b"\x05" * 32)
SETTINGS = GatewaySettings(move_withdrawal_retries_max=3)


@dataclass(frozen=True)
class StubBrand:
    code: str
    address: str


class StubLedger:
    """The part of `Ledger` a move touches: brands by code."""

    brands: ClassVar[dict[str, StubBrand]] = {
        code: StubBrand(code, "0x" + f"{index:040x}")
        for index, code in enumerate(("bean", "sky", "cart"), start=1)
    }

    def brand(self, code: str) -> StubBrand:
        if code not in self.brands:
            raise errors.UnknownBrand(f"no brand {code!r}")
        return self.brands[code]


LEDGER = StubLedger()
CONTEXT: Any = SimpleNamespace(ledger=LEDGER, settings=SETTINGS)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'alliance.db'}")
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


def member_at(sessions: sessionmaker[Session], *brands: str) -> str:
    """A member registered at the first brand and linked at the others; its public id."""
    with unit_of_work(sessions) as session:
        member = members.register(session, SECRETS, brands[0], "m-1")
        for brand in brands[1:]:
            code, _ = members.issue_link_code(session, SECRETS, member, brands[0], 600)
            members.link_with_code(session, SECRETS, brand, f"m-{brand}", code)
        return member.public_id


def start_move(sessions: sessionmaker[Session], member_id: str, amount: int = 1000) -> int:
    body = MoveCreate(
        member_id=member_id, to_brand="sky", amount=amount, brand_transaction_id="bean-tx-1"
    )
    with unit_of_work(sessions) as session:
        return moves.create_move(session, CONTEXT, "bean", body).id


def current_step(sessions: sessionmaker[Session], move_id: int) -> Operation:
    with sessions() as session:
        query = select(Operation).where(Operation.parent_id == move_id)
        step = session.scalars(query.order_by(Operation.id.desc())).first()
        assert step is not None, f"move {move_id} has no steps"
        return step


def settle_current(
    sessions: sessionmaker[Session],
    move_id: int,
    *,
    result: dict[str, Any] | None = None,
    error_code: str | None = None,
) -> Operation:
    """Make the move's newest step final (confirmed with `result`, or failed with
    `error_code`) and run the saga hook in the same transaction; return that step."""
    step_id = current_step(sessions, move_id).id
    with unit_of_work(sessions) as session:
        step = session.get_one(Operation, step_id)
        if error_code is None:
            step.status, step.result = OperationStatus.CONFIRMED, result or {}
        else:
            step.status, step.error_code = OperationStatus.FAILED, error_code
            step.error_detail = f"{error_code} for the test"
        moves.advance(session, LEDGER, SETTINGS, step)  # type: ignore[arg-type]
        return step


def read_move(sessions: sessionmaker[Session], move_id: int) -> Operation:
    with sessions() as session:
        return session.get_one(Operation, move_id)


def shape(step: Operation) -> tuple[str | None, str, str, int]:
    return (step.params["step_name"], step.kind, step.brand_code, step.params["amount"])


def test_move_starts_with_a_deposit_at_the_calling_brand(
    sessions: sessionmaker[Session],
) -> None:
    move_id = start_move(sessions, member_at(sessions, "bean", "sky"))
    move = read_move(sessions, move_id)
    assert (move.kind, move.status, move.signer, move.request_id) == (
        "move",
        "accepted",
        None,
        None,
    )
    deposit = current_step(sessions, move_id)
    assert (deposit.kind, deposit.brand_code, deposit.step) == ("deposit", "bean", 1)
    assert deposit.signer == "bean.issuer" and deposit.params["amount"] == 1000


def test_move_completes_with_deposit_conversion_and_withdrawal_at_b(
    sessions: sessionmaker[Session],
) -> None:
    move_id = start_move(sessions, member_at(sessions, "bean", "sky"))
    settle_current(sessions, move_id)
    conversion = current_step(sessions, move_id)
    assert (conversion.kind, conversion.signer, conversion.params["amount_in"]) == (
        "conversion",
        "operator",
        1000,
    )
    assert conversion.params["to_token"] == LEDGER.brands["sky"].address
    settle_current(sessions, move_id, result={"amount_out": "495", "fee_points": "5"})
    assert shape(current_step(sessions, move_id)) == ("withdrawal", "withdrawal", "sky", 495)
    settle_current(sessions, move_id)
    move = read_move(sessions, move_id)
    assert move.status == OperationStatus.CONFIRMED
    result = move.result or {}
    assert (result["amount_deposited"], result["amount_out"], result["amount_withdrawn"]) == (
        1000,
        495,
        495,
    )
    assert len(result["child_operation_ids"]) == 3


def test_move_compensates_at_a_when_the_conversion_fails(
    sessions: sessionmaker[Session],
) -> None:
    move_id = start_move(sessions, member_at(sessions, "bean", "sky"))
    settle_current(sessions, move_id)
    settle_current(sessions, move_id, error_code="above_maximum")
    assert shape(current_step(sessions, move_id)) == ("compensation", "withdrawal", "bean", 1000)
    assert read_move(sessions, move_id).status == OperationStatus.ACCEPTED
    settle_current(sessions, move_id)
    move = read_move(sessions, move_id)
    assert (move.status, move.error_code) == (OperationStatus.FAILED, "above_maximum")
    assert (move.result or {})["compensated"] is True
    assert (move.result or {})["amount_compensated"] == 1000


def test_move_retries_the_withdrawal_at_b_then_leaves_the_points_there(
    sessions: sessionmaker[Session],
) -> None:
    move_id = start_move(sessions, member_at(sessions, "bean", "sky"))
    settle_current(sessions, move_id)
    settle_current(sessions, move_id, result={"amount_out": "495"})
    for attempt in range(1, 1 + SETTINGS.move_withdrawal_retries_max):
        failed = settle_current(sessions, move_id, error_code="member_frozen")
        assert failed.params["attempt"] == attempt
        assert read_move(sessions, move_id).status == OperationStatus.ACCEPTED
    settle_current(sessions, move_id, error_code="member_frozen")
    move = read_move(sessions, move_id)
    assert (move.status, move.error_code) == (OperationStatus.FAILED, "member_frozen")
    result = move.result or {}
    assert (result["compensated"], result["points_left_brand"], result["points_left_amount"]) == (
        False,
        "sky",
        495,
    )
    assert len(result["child_operation_ids"]) == 2 + 1 + SETTINGS.move_withdrawal_retries_max


def test_move_fails_without_compensation_when_the_deposit_fails(
    sessions: sessionmaker[Session],
) -> None:
    move_id = start_move(sessions, member_at(sessions, "bean", "sky"))
    settle_current(sessions, move_id, error_code="brand_suspended")
    move = read_move(sessions, move_id)
    assert (move.status, move.error_code) == (OperationStatus.FAILED, "brand_suspended")
    assert (move.result or {})["compensated"] is False
    assert (move.result or {})["amount_deposited"] == 0


def test_cancelled_withdrawal_is_not_retried(sessions: sessionmaker[Session]) -> None:
    move_id = start_move(sessions, member_at(sessions, "bean", "sky"))
    settle_current(sessions, move_id)
    settle_current(sessions, move_id, result={"amount_out": "495"})
    settle_current(sessions, move_id, error_code=errors.Cancelled.code)
    move = read_move(sessions, move_id)
    assert (move.status, move.error_code) == (OperationStatus.FAILED, "cancelled")


def test_a_final_move_ignores_late_steps(sessions: sessionmaker[Session]) -> None:
    move_id = start_move(sessions, member_at(sessions, "bean", "sky"))
    settle_current(sessions, move_id, error_code="brand_suspended")
    settle_current(sessions, move_id)  # the same step again: the move is already final
    with sessions() as session:
        steps = session.scalars(select(Operation).where(Operation.parent_id == move_id)).all()
    assert len(steps) == 1


def test_operations_outside_a_move_are_left_alone(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        deposit = Operation(
            kind=OperationKind.DEPOSIT,
            status=OperationStatus.CONFIRMED,
            brand_code="bean",
            params={"amount": 1},
        )
        session.add(deposit)
        session.flush()
        moves.advance(session, LEDGER, SETTINGS, deposit)  # type: ignore[arg-type]
        assert session.scalars(select(Operation)).all() == [deposit]


@pytest.mark.parametrize(
    ("linked", "to_brand", "error"),
    [
        (("bean",), "sky", errors.NotFound),
        (("bean", "sky"), "bean", errors.SameBrand),
        (("bean", "sky"), "nope", errors.UnknownBrand),
    ],
)
def test_move_is_refused_before_anything_is_recorded(
    sessions: sessionmaker[Session],
    linked: tuple[str, ...],
    to_brand: str,
    error: type[errors.GatewayError],
) -> None:
    member_id = member_at(sessions, *linked)
    body = MoveCreate(member_id=member_id, to_brand=to_brand, amount=10, brand_transaction_id="t")
    with pytest.raises(error), unit_of_work(sessions) as session:
        moves.create_move(session, CONTEXT, "bean", body)
    with sessions() as session:
        assert session.scalars(select(Operation)).all() == []


def test_move_hook_tells_its_listeners_once_when_the_move_ends(
    sessions: sessionmaker[Session],
) -> None:
    ended: list[tuple[int, str]] = []
    hook = moves.move_hook(
        LEDGER,  # type: ignore[arg-type]
        SETTINGS,
        [lambda session, move: ended.append((move.id, move.status))],
    )
    move_id = start_move(sessions, member_at(sessions, "bean", "sky"))
    for result in ({}, {"amount_out": "495"}, {}):
        step_id = current_step(sessions, move_id).id
        with unit_of_work(sessions) as session:
            step = session.get_one(Operation, step_id)
            step.status, step.result = OperationStatus.CONFIRMED, result
            hook(session, step)
    assert ended == [(move_id, OperationStatus.CONFIRMED)]
