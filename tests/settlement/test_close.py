"""A nightly close on a real stack finds exactly the injected discrepancies, anchors once,
and re-runs to byte-identical files; a run killed mid-way completes when run again.

The stack is real: Anvil, the test alliance, the gateway serving HTTP in a subprocess and
its database. A day of traffic goes through the gateway; then four breaks are injected,
one per discrepancy class the reconciliation must name:
- a mint sent straight to the chain with the brand's issuer key (unknown to the gateway);
- a gateway operation row altered after it confirmed (amount mismatch);
- a lost receipt: the gateway killed after recording a signed deposit, before sending it
  (recorded as submitted, never on chain);
- a brand-reported liability off by one (brand total mismatch).
Anvil's clock is then moved past midnight (`evm_setNextBlockTimestamp`, `evm_mine`) and the
period is closed in process with `run_settlement`. The crash test kills `alliance settle`
with `ALLIANCE_SETTLEMENT_FAILPOINT` at each crash window, then runs it again.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, delete, select, update
from sqlalchemy.orm import Session

from alliance.db.models import Operation
from alliance.db.reports import record_brand_report
from alliance.db.session import make_session_factory, unit_of_work
from alliance.db.settlement import Discrepancy, SettlementRun, chain_events_table
from alliance.keys import DevKeyStore
from alliance.statements import statements_hash, tie_out_failures
from gateway.pipeline.failpoints import AFTER_RECORD_BEFORE_SEND
from settlement import failpoints
from settlement.context import open_context
from settlement.errors import BalancesDoNotMatch, IndexIncomplete, PeriodEmpty
from settlement.risk import risk_hook
from settlement.service import close_due, run_settlement
from settlement.settings import SettlementSettings
from tests.gateway.api_client import conversion_body
from tests.gateway.stack import (
    ALLIANCE_EXECUTABLE,
    FAILPOINT_VARIABLE,
    REPO_DIR,
    Databases,
    Stack,
    books_url,
    build_stack,
)
from tests.gateway.wallets import register_wallet_member, signable_quote, signed_conversion
from tests.settlement.chain_support import chain_day, rpc

DEATH_TIMEOUT_S = 30.0
BYPASS_REQUEST_ID = 2**200 + 7
"""A request id the gateway's sequence never reaches."""


@pytest.fixture(scope="module")
def stack(
    compiled: Any, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with build_stack("settle", tmp_path_factory.mktemp("settle"), databases) as built:
        yield built


def close_the_day(stack: Stack, day: date) -> None:
    """Mine a block just after the next UTC midnight, so the day can be closed."""
    midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    rpc(stack, "evm_setNextBlockTimestamp", int(midnight.timestamp()) + 5)
    rpc(stack, "evm_mine")


def settlement_settings(stack: Stack) -> SettlementSettings:
    return SettlementSettings(
        database_url=books_url(stack.gateway.database_url, stack.data_dir),
        pending_grace_s=0,
        rescan_samples=8,
        rescan_blocks=50,
    )


def settle(stack: Stack, day: date) -> Any:
    return run_settlement(stack.settings, settlement_settings(stack), day)


def alter_confirmed_deposit(stack: Stack, operation_id: int) -> int:
    """What a bad hand-edit of the gateway's books would do: one more point than minted.
    Returns the operation's request id."""
    factory = make_session_factory(
        create_engine(books_url(stack.gateway.database_url, stack.data_dir))
    )
    with unit_of_work(factory) as session:
        operation = session.get(Operation, operation_id)
        assert operation is not None and operation.status == "confirmed"
        operation.params = {**operation.params, "amount": int(operation.params["amount"]) + 1}
        request_id = operation.request_id
    assert request_id is not None
    return request_id


def mint_bypassing_gateway(stack: Stack, brand: str, address: str, amount: int) -> str:
    token = stack.ledger.tokens[brand]
    issuer = DevKeyStore(stack.data_dir).account(f"{brand}.issuer")
    receipt = stack.ledger.deployment.client.transact(
        issuer, token.functions.mint(address, amount, BYPASS_REQUEST_ID, 1, b"\x01" * 32)
    )
    return receipt["transactionHash"].to_0x_hex()


def lose_a_receipt(stack: Stack, member_id: str) -> int:
    """A deposit the gateway records as submitted, whose transaction is never sent."""
    stack.gateway.restart({FAILPOINT_VARIABLE: AFTER_RECORD_BEFORE_SEND})
    with contextlib.suppress(httpx.TransportError, AssertionError):
        stack.api.deposit(member_id, 321)  # The gateway may die before it answers.
    assert stack.gateway.wait_exit(DEATH_TIMEOUT_S) == -signal.SIGKILL
    (lost,) = [o for o in stack.books.unfinished() if o.kind == "deposit"]
    assert lost.status == "submitted" and lost.request_id is not None
    return lost.request_id


def signed_conversion_of_a_wallet_member(stack: Stack) -> dict[str, Any]:
    """A self-custody member's conversion, signed over its quote's reserved request id
    (beyond the gateway's sequence, yet the gateway's own): settlement must match it."""
    member, wallet = register_wallet_member(stack.api)
    assert stack.api.wait_final(stack.api.deposit(member["id"], 1_000)["id"])["status"] == (
        "confirmed"
    )
    quote = signable_quote(stack.api, member["id"], 500)
    response = stack.api.post("/v1/conversions", signed_conversion(member["id"], quote, wallet))
    assert response.status_code == 201, response.text
    operation: dict[str, Any] = response.json()
    assert operation["request_id"] == quote["request_id"]
    return operation


def report(stack: Stack, period_id: int, brand: str, points: int) -> None:
    engine = create_engine(books_url(stack.gateway.database_url, stack.data_dir))
    with Session(engine) as session, session.begin():
        record_brand_report(session, period_id, brand, points, f"{brand}-client")
    engine.dispose()


def output_bytes(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def anchored_events(stack: Stack, period_id: int) -> list[Any]:
    anchor = stack.ledger.deployment.contract(
        "SettlementAnchor", stack.ledger.deployment.manifest.settlement_anchor.address
    )
    logs = anchor.events.PeriodAnchored().get_logs(from_block=stack.ledger.from_block)
    return [log for log in logs if log["args"]["periodId"] == period_id]


def test_a_day_with_four_injected_breaks_is_closed_anchored_and_rerun_identically(
    stack: Stack,
) -> None:
    api, ledger = stack.api, stack.ledger
    day = chain_day(stack)
    period_id = day.year * 10_000 + day.month * 100 + day.day
    alice = api.funded_member("bean", 10_000)
    bob = api.funded_member("sky", 5_000)
    for body, client in (
        (conversion_body(alice["id"], "bean", "sky", 1_000), "brand-bean"),
        (conversion_body(bob["id"], "sky", "bean", 400), "brand-sky"),
        (conversion_body(alice["id"], "bean", "cart", 2_000), "brand-bean"),
    ):
        response = api.post("/v1/conversions", body, client)
        assert response.status_code in (201, 202), response.text
        assert api.wait_final(response.json()["id"])["status"] == "confirmed"
    signed_conversion_of_a_wallet_member(stack)  # matched by its reserved request id
    altered = api.wait_final(api.deposit(bob["id"], 250, "sky")["id"])
    altered_request = alter_confirmed_deposit(stack, altered["id"])
    bypass_tx = mint_bypassing_gateway(stack, "cart", alice["address"], 7)
    lost_request = lose_a_receipt(stack, alice["id"])
    supplies = {
        brand: int(token.functions.totalSupply().call()) for brand, token in ledger.tokens.items()
    }
    for brand, supply in supplies.items():
        report(stack, period_id, brand, supply + (1 if brand == "sky" else 0))
    close_the_day(stack, day)

    result = settle(stack, day)

    discrepancies = json.loads((result.output_dir / "discrepancies.json").read_text())
    found = sorted((d["kind"], d["brand"], d["request_id"]) for d in discrepancies)
    assert found == sorted(
        [
            ("amount_mismatch", "sky", str(altered_request)),
            ("brand_total_mismatch", "sky", None),
            ("missing_on_chain", "bean", str(lost_request)),
            ("unknown_to_gateway", "cart", str(BYPASS_REQUEST_ID)),
        ]
    )
    by_kind = {d["kind"]: d for d in discrepancies}
    assert by_kind["unknown_to_gateway"]["transaction_hash"] == bypass_tx
    assert by_kind["amount_mismatch"]["evidence"]["differences"] == {"amount": ["251", "250"]}
    assert by_kind["brand_total_mismatch"]["evidence"]["difference"] == "1"
    assert by_kind["missing_on_chain"]["evidence"]["gateway_status"] == "submitted"

    data = (result.output_dir / "statements.json").read_bytes()
    document = json.loads(data)
    assert tie_out_failures(document) == []
    assert {b["brand"]: int(b["closing_supply"]) for b in document["brands"]} == supplies
    assert sum(int(b["multilateral_net_units"]) for b in document["brands"]) == 0
    assert [(f["from"], f["to"], f["count"]) for f in document["flows"]] == [
        ("bean", "cart", 1),
        ("bean", "sky", 2),  # one of them signed by a self-custody member
        ("sky", "bean", 1),
    ]
    (event,) = anchored_events(stack, period_id)
    assert event["args"]["statementsHash"] == statements_hash(data)
    assert "0x" + event["args"]["balancesRoot"].hex() == document["balances_root"]
    assert result.anchored_now
    for name in ("statements.csv", "flows.csv", "alerts.json", "report.html", "anchor.json"):
        assert (result.output_dir / name).stat().st_size > 0
    assert "<svg" in (result.output_dir / "report.html").read_text()

    first = output_bytes(result.output_dir)
    again = settle(stack, day)
    assert not again.anchored_now
    assert output_bytes(again.output_dir) == first
    assert len(anchored_events(stack, period_id)) == 1
    stack.ensure_gateway()


@pytest.mark.parametrize(
    "failpoint",
    [failpoints.AFTER_RECONCILE, failpoints.AFTER_ANCHOR_SENT, failpoints.BEFORE_OUTPUTS],
)
def test_a_run_killed_at_each_crash_window_completes_when_run_again(
    stack: Stack, failpoint: str
) -> None:
    stack.ensure_gateway()
    api = stack.api
    day = chain_day(stack)
    # A deposit (conversions carry a wall-clock deadline, which the moved chain clock passed).
    api.funded_member("bean", 3_000)
    close_the_day(stack, day)

    killed = settle_in_subprocess(stack, day, {failpoints.ENVIRONMENT_VARIABLE: failpoint})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    finished = settle_in_subprocess(stack, day, {})
    assert finished.returncode == 0, finished.stderr

    period_id = day.year * 10_000 + day.month * 100 + day.day
    assert len(anchored_events(stack, period_id)) == 1
    result = settle(stack, day)
    data = (result.output_dir / "statements.json").read_bytes()
    (event,) = anchored_events(stack, period_id)
    assert event["args"]["statementsHash"] == statements_hash(data)
    assert json.loads((result.output_dir / "discrepancies.json").read_text()) == []


def settle_in_subprocess(
    stack: Stack, day: date, extra: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    env = stack.gateway.environment({}) | {
        "ALLIANCE_CHAIN_PORT": str(stack.chain.chain_settings.port),
        "ALLIANCE_SETTLEMENT_DATABASE_URL": books_url(stack.gateway.database_url, stack.data_dir),
        "ALLIANCE_SETTLEMENT_PENDING_GRACE_S": "0",
        **extra,
    }
    env.pop(FAILPOINT_VARIABLE, None)
    return subprocess.run(
        [str(ALLIANCE_EXECUTABLE), "settle", "--period", day.isoformat()],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_dropped_event_in_the_index_stops_the_run_loudly(stack: Stack) -> None:
    """An indexed mint deleted behind the indexer's back (what a listener that drops an
    event leaves): the supply proof and the re-scan see it, the run refuses to close and
    records an index_gap discrepancy; restoring the row lets the next run through."""
    stack.ensure_gateway()
    day = chain_day(stack)
    stack.api.funded_member("sky", 1_234)
    close_the_day(stack, day)
    index_to_head(stack)
    engine = create_engine(books_url(stack.gateway.database_url, stack.data_dir))
    table = chain_events_table
    with engine.begin() as connection:
        row = connection.execute(
            select(table).where(table.c.name == "Transfer", table.c.amount == 1_234)
        ).one()
        connection.execute(
            delete(table).where(
                table.c.block_number == row.block_number, table.c.log_index == row.log_index
            )
        )

    with pytest.raises(IndexIncomplete) as raised:
        settle(stack, day)

    assert any("totalSupply" in finding for finding in raised.value.findings)
    with Session(engine) as session:
        kinds = session.scalars(
            select(Discrepancy.kind).where(Discrepancy.period_id == period_of(day))
        ).all()
    assert "index_gap" in kinds
    with engine.begin() as connection:
        connection.execute(table.insert(), [dict(row._mapping)])
    engine.dispose()
    assert settle(stack, day).anchored_now


def test_a_redirected_transfer_in_the_index_is_caught_as_balance_drift(stack: Stack) -> None:
    """An indexed mint whose recipient was changed behind the indexer's back keeps every
    supply right, and with no re-scan to notice it only the balance check at the closing
    block can: the run stops before freezing its reconciliation or anchoring, with a
    balance_drift discrepancy per holding; restoring the row lets the next run through."""
    stack.ensure_gateway()
    day = chain_day(stack)
    member = stack.api.funded_member("bean", 2_345)
    close_the_day(stack, day)
    index_to_head(stack)
    engine = create_engine(books_url(stack.gateway.database_url, stack.data_dir))
    table = chain_events_table
    elsewhere = "0x" + "5e" * 20
    where = (table.c.name == "Transfer", table.c.amount == 2_345)
    with engine.begin() as connection:
        row = connection.execute(select(table).where(*where)).one()
        connection.execute(update(table).where(*where).values(counterparty=elsewhere))
    unchecked = settlement_settings(stack).model_copy(update={"rescan_samples": 0})

    with pytest.raises(BalancesDoNotMatch):
        run_settlement(stack.settings, unchecked, day)

    with Session(engine) as session:
        drift = session.scalars(
            select(Discrepancy).where(
                Discrepancy.period_id == period_of(day), Discrepancy.kind == "balance_drift"
            )
        ).all()
        run = session.get(SettlementRun, period_of(day))
    drifted = {
        (d.evidence["account"], d.evidence["indexed_balance"], d.evidence["chain_balance"])
        for d in drift
    }
    # The member's own holding no longer moves in the index, so only the phantom one is read.
    assert drifted == {(elsewhere, "2345", "0")}, member
    assert run is None or run.status == "started"
    assert anchored_events(stack, period_of(day)) == []
    with engine.begin() as connection:
        connection.execute(update(table).where(*where).values(counterparty=row.counterparty))
    engine.dispose()
    assert run_settlement(stack.settings, unchecked, day).anchored_now


def index_to_head(stack: Stack) -> None:
    """Bring the index up to the head (as the first step of a run does)."""
    context = open_context(stack.settings, settlement_settings(stack))
    try:
        context.indexer.sync()
    finally:
        context.close()


def period_of(day: date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


def test_the_service_passes_over_a_day_without_blocks(stack: Stack) -> None:
    """A day in which no block was mined (a quiet night on a local chain) has nothing to
    close: the service passes over it and still closes the days after it."""
    stack.ensure_gateway()
    first = chain_day(stack)
    stack.api.funded_member("cart", 55)
    close_the_day(stack, first)  # a block early on the second day
    empty = first + timedelta(days=2)
    close_the_day(stack, empty)  # the next block is on the fourth day: the third stays empty
    close_the_day(stack, empty + timedelta(days=1))
    days = [first + timedelta(days=n) for n in range(4)]

    context = open_context(stack.settings, settlement_settings(stack))
    try:
        closed = close_due(context, days, alerts_hook=risk_hook(stack.settings))
    finally:
        context.close()

    assert [result.period_id for result in closed] == [
        period_of(day) for day in days if day != empty
    ]
    with pytest.raises(PeriodEmpty):
        settle(stack, empty)
