"""A custody operation's end moves the member's custody as the chain has it, and the member
cache forgets the member only once that is committed.

Real SQLite database migrated to head (so migration 0004's `members.wallet` runs too);
`CustodyHook` is called inside a transaction exactly as the submitter calls its `on_final`
hooks. No chain: what the chain said is the operation's status, as the submitter records it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.migrate import upgrade_to_head
from alliance.db.models import Custody, Member, Operation, OperationKind, OperationStatus
from alliance.db.session import make_engine, make_session_factory, unit_of_work
from gateway.pipeline.calls import signer_name
from gateway.services.custody import CustodyHook
from gateway.services.member_cache import SELF_CUSTODY_TTL_S, MemberCache, MemberSnapshot

FAR_DEADLINE = 4_000_000_000


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    upgrade_to_head(engine)
    yield make_session_factory(engine)
    engine.dispose()


def _member(sessions: sessionmaker[Session], custody: str) -> str:
    with unit_of_work(sessions) as session:
        address = "0x" + f"{time.monotonic_ns():040x}"[-40:]
        member = Member(public_id=f"mbr_{address[-24:]}", address=address, custody=custody)
        member.wallet = True
        session.add(member)
        return member.public_id


def _finish(
    sessions: sessionmaker[Session],
    hook: CustodyHook,
    public_id: str,
    *,
    enabled: bool,
    status: str,
    error_code: str | None = None,
    deadline: int = FAR_DEADLINE,
    forgotten: list[str],
) -> tuple[str, str | None]:
    """Settle a custody operation of the member like the submitter; (custody, error code)."""
    with unit_of_work(sessions) as session:
        member = session.query(Member).filter_by(public_id=public_id).one()
        operation = Operation(
            kind=OperationKind.CUSTODY,
            status=status,
            brand_code="bean",
            member_id=member.id,
            params={"member_address": member.address, "enabled": enabled, "deadline": deadline},
            error_code=error_code,
        )
        session.add(operation)
        session.flush()
        hook(session, operation)
        assert forgotten == [], "forgotten before the commit"
    with sessions() as session:
        member = session.query(Member).filter_by(public_id=public_id).one()
        operation = session.get_one(Operation, operation.id)
        return member.custody, operation.error_code


def test_custody_changes_are_sent_by_the_operator_key() -> None:
    # The exchange lets only the operator role relay a member's SelfCustody signature.
    assert signer_name(OperationKind.CUSTODY, "bean") == "operator"


def test_a_confirmed_change_sets_the_custody_and_forgets_the_member_after_commit(
    sessions: sessionmaker[Session],
) -> None:
    forgotten: list[str] = []
    hook = CustodyHook(forgotten.append)
    public_id = _member(sessions, Custody.SELF)

    custody, code = _finish(
        sessions, hook, public_id, enabled=False, status="confirmed", forgotten=forgotten
    )

    assert (custody, code) == (Custody.CUSTODIAL, None)
    assert forgotten == [public_id]


def test_a_failed_enable_leaves_the_member_custodial_as_the_chain_has_them(
    sessions: sessionmaker[Session],
) -> None:
    forgotten: list[str] = []
    public_id = _member(sessions, Custody.SELF)

    custody, code = _finish(
        sessions,
        CustodyHook(forgotten.append),
        public_id,
        enabled=True,
        status=OperationStatus.FAILED,
        error_code="invalid_signature",
        forgotten=forgotten,
    )

    assert (custody, code) == (Custody.CUSTODIAL, "invalid_signature")


def test_a_failed_disable_leaves_the_member_self(sessions: sessionmaker[Session]) -> None:
    forgotten: list[str] = []
    public_id = _member(sessions, Custody.SELF)

    custody, _ = _finish(
        sessions,
        CustodyHook(forgotten.append),
        public_id,
        enabled=False,
        status=OperationStatus.FAILED,
        error_code="chain_rejected",
        forgotten=forgotten,
    )

    assert custody == Custody.SELF


@pytest.mark.parametrize("error_code", ["quote_expired", "chain_rejected"])
def test_a_change_refused_after_its_deadline_reads_as_an_expired_signature(
    sessions: sessionmaker[Session], error_code: str
) -> None:
    forgotten: list[str] = []
    public_id = _member(sessions, Custody.SELF)

    _, code = _finish(
        sessions,
        CustodyHook(forgotten.append),
        public_id,
        enabled=True,
        status=OperationStatus.FAILED,
        error_code=error_code,
        deadline=int(time.time()) - 1,
        forgotten=forgotten,
    )

    assert code == "signature_expired"


def test_other_operations_are_left_alone(sessions: sessionmaker[Session]) -> None:
    forgotten: list[str] = []
    public_id = _member(sessions, Custody.SELF)
    with unit_of_work(sessions) as session:
        member = session.query(Member).filter_by(public_id=public_id).one()
        operation = Operation(
            kind=OperationKind.DEPOSIT,
            status=OperationStatus.FAILED,
            brand_code="bean",
            member_id=member.id,
            params={},
            error_code="quote_expired",
        )
        session.add(operation)
        session.flush()
        CustodyHook(forgotten.append)(session, operation)
        assert (member.custody, operation.error_code) == (Custody.SELF, "quote_expired")
    assert forgotten == []


def test_the_cache_keeps_custodial_members_and_rereads_self_custody_ones(
    sessions: sessionmaker[Session],
) -> None:
    cache = MemberCache()
    with sessions() as session:
        member = session.query(Member).filter_by(public_id=_member(sessions, Custody.SELF)).one()
        snapshot = MemberSnapshot.of(member)
    custodial = MemberSnapshot(1, "mbr_x", "0x0", Custody.CUSTODIAL, frozenset(), loaded_at=0.0)

    assert snapshot.is_fresh(snapshot.loaded_at + SELF_CUSTODY_TTL_S / 2)
    assert not snapshot.is_fresh(snapshot.loaded_at + SELF_CUSTODY_TTL_S)
    assert custodial.is_fresh(10**9)
    with sessions() as session:
        loaded = cache.load(session, snapshot.public_id, None)
    assert cache.get(snapshot.public_id, None) == loaded
    cache.forget(snapshot.public_id)
    assert cache.get(snapshot.public_id, None) is None
