"""Recording many conversions in one transaction keeps each request's idempotency.

`record_operations` is what a burst of concurrent conversions goes through: one write
transaction for whatever was queued. These tests run it on a real SQLite database (migrated
by Alembic) and check, per item, what a lone request would have got: a new operation with
its request id, the replay of the operation its key recorded (earlier, or earlier in the
same batch), or `idempotency_conflict` for a key reused with another body, without the
conflict touching the other items. Then `Batcher` is checked to hand each caller its own
outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.migrate import upgrade_to_head
from alliance.db.models import IdempotencyKey, Member, Operation
from alliance.db.session import make_engine, make_session_factory, unit_of_work
from gateway import errors
from gateway.batching import Batcher
from gateway.services.intake import NewOperation, Recorded, operation_views, record_operations

PARAMS: dict[str, Any] = {"from_brand": "bean", "to_brand": "sky", "amount_in": 100}


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    upgrade_to_head(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def member_id(sessions: sessionmaker[Session]) -> int:
    with unit_of_work(sessions) as session:
        member = Member(public_id="mbr_" + "1" * 24, address="0x" + "11" * 20)
        session.add(member)
        session.flush()
        return member.id


def _new(member_id: int, key: str, hashed: str = "h" * 64) -> NewOperation:
    return NewOperation("brand-bean", key, hashed, "conversion", "bean", member_id, PARAMS)


def _count(sessions: sessionmaker[Session], table: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_a_batch_records_one_operation_per_new_key(
    sessions: sessionmaker[Session], member_id: int
) -> None:
    outcomes = record_operations(sessions, [_new(member_id, f"k{i}") for i in range(5)])

    assert all(isinstance(o, Recorded) and not o.final for o in outcomes)
    assert len({o.id for o in outcomes if isinstance(o, Recorded)}) == 5
    with sessions() as session:
        operations = session.scalars(select(Operation).order_by(Operation.id)).all()
        assert [o.status for o in operations] == ["accepted"] * 5
        assert [o.signer for o in operations] == ["operator"] * 5
        request_ids = [o.request_id for o in operations]
        assert all(
            r is not None and r - o.id == request_ids[0] - operations[0].id
            for r, o in zip(request_ids, operations, strict=True)
        )
    assert _count(sessions, IdempotencyKey) == 5


def test_a_key_seen_earlier_replays_its_operation(
    sessions: sessionmaker[Session], member_id: int
) -> None:
    (first,) = record_operations(sessions, [_new(member_id, "again")])

    (second,) = record_operations(sessions, [_new(member_id, "again")])

    assert second == first
    assert _count(sessions, Operation) == 1


def test_a_key_twice_in_one_batch_records_once(
    sessions: sessionmaker[Session], member_id: int
) -> None:
    outcomes = record_operations(sessions, [_new(member_id, "twin"), _new(member_id, "twin")])

    assert outcomes[0] == outcomes[1]
    assert _count(sessions, Operation) == 1


def test_a_reused_key_with_another_body_conflicts_alone(
    sessions: sessionmaker[Session], member_id: int
) -> None:
    record_operations(sessions, [_new(member_id, "used")])

    outcomes = record_operations(
        sessions,
        [
            _new(member_id, "used", hashed="x" * 64),
            _new(member_id, "fresh"),
            _new(member_id, "fresh", hashed="y" * 64),
        ],
    )

    assert isinstance(outcomes[0], errors.IdempotencyConflict)
    assert isinstance(outcomes[1], Recorded)
    assert isinstance(outcomes[2], errors.IdempotencyConflict)
    assert _count(sessions, Operation) == 2


def test_views_read_each_operation_and_refuse_unknown_ids(
    sessions: sessionmaker[Session], member_id: int
) -> None:
    outcomes = record_operations(sessions, [_new(member_id, "a"), _new(member_id, "b")])
    ids = [o.id for o in outcomes if isinstance(o, Recorded)]

    views = operation_views(sessions, [ids[1], 999_999, ids[0]])

    assert [v.public["id"] for v in (views[0], views[2]) if not isinstance(v, Exception)] == [
        ids[1],
        ids[0],
    ]
    assert isinstance(views[1], errors.NotFound)
    assert not isinstance(views[0], Exception)
    assert views[0].public["member_id"] == "mbr_" + "1" * 24
    assert views[0].public["status"] == "accepted"


def test_a_batcher_answers_each_caller_with_its_own_outcome() -> None:
    def handle(items: list[int]) -> list[int | BaseException]:
        return [ValueError(item) if item < 0 else item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher("test", handle, batch_size_max=4)
    batcher.start()

    async def main() -> list[Any]:
        calls = [batcher.submit(item) for item in (1, -2, 3, 4, 5, 6)]
        return await asyncio.gather(*calls, return_exceptions=True)

    try:
        outcomes = asyncio.run(main())
    finally:
        batcher.stop()

    assert outcomes[0] == 10 and outcomes[2:] == [30, 40, 50, 60]
    assert isinstance(outcomes[1], ValueError)
    assert not batcher.is_alive()
