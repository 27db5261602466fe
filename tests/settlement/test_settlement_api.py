"""The gateway's settlement endpoints over HTTP, on a real stack (Anvil, the test alliance,
the gateway in a subprocess, SQLite or PostgreSQL), around a period closed for real.

Brands upload their reported liability through `POST .../liability-report` (idempotent,
validated, replaceable until the close); one brand's figure is one point off, and the close
(`run_settlement`, in process, as in test_close.py) must name exactly that brand as a
`brand_total_mismatch` — the upload feeds reconciliation. Then the statement reads: JSON
and CSV for the caller's own brand only, the published `statements.json` whose keccak256
must equal the `statementsHash` read from the anchor contract, and `report.html`. Last, the
acknowledgement: one `PeriodAcknowledged` event however often it is asked for, also when
the gateway is killed between recording the signed transaction and sending it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from eth_utils import keccak

from alliance.db.settlement import BrandReport, Discrepancy
from gateway.pipeline.failpoints import AFTER_RECORD_BEFORE_SEND
from settlement.service import run_settlement
from settlement.settings import SettlementSettings
from tests.gateway.api_client import Api, assert_problem
from tests.gateway.stack import FAILPOINT_VARIABLE, Databases, Stack, books_url, build_stack
from tests.settlement.chain_support import chain_day, rpc, settlement_sessions

DEATH_TIMEOUT_S = 30.0
BRAND_CLIENTS = {"bean": "brand-bean", "sky": "brand-sky", "cart": "brand-cart"}


@pytest.fixture(scope="module")
def stack(
    compiled: Any, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with build_stack("settleapi", tmp_path_factory.mktemp("settleapi"), databases) as built:
        yield built


def period_of(day: date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


def close_the_day(stack: Stack, day: date) -> None:
    midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    rpc(stack, "evm_setNextBlockTimestamp", int(midnight.timestamp()) + 5)
    rpc(stack, "evm_mine")


def settle(stack: Stack, day: date) -> Any:
    settings = SettlementSettings(
        database_url=books_url(stack.gateway.database_url, stack.data_dir),
        pending_grace_s=0,
        rescan_samples=4,
        rescan_blocks=50,
    )
    return run_settlement(stack.settings, settings, day)


def anchor_contract(stack: Stack) -> Any:
    deployment = stack.ledger.deployment
    return deployment.contract("SettlementAnchor", deployment.manifest.settlement_anchor.address)


def acknowledged_events(stack: Stack, period_id: int) -> list[Any]:
    logs = (
        anchor_contract(stack)
        .events.PeriodAcknowledged()
        .get_logs(from_block=stack.ledger.from_block)
    )
    return [log for log in logs if log["args"]["periodId"] == period_id]


def report(api: Api, period: int | str, brand: str, points: Any, key: str | None = None) -> Any:
    return api.post(
        f"/v1/settlement/periods/{period}/liability-report",
        {"liability_points": points},
        BRAND_CLIENTS[brand],
        key,
    )


def acknowledge(api: Api, period: int, client: str, key: str | None = None) -> httpx.Response:
    return api.post(f"/v1/settlement/periods/{period}/acknowledgement", {}, client, key)


@pytest.fixture(scope="module")
def settled(stack: Stack) -> dict[str, Any]:
    """A day of deposits with every brand's report uploaded over HTTP (sky's one point
    high, after a first figure it replaced), closed and anchored."""
    api = stack.api
    day = chain_day(stack)
    period = period_of(day)
    api.funded_member("bean", 4_000)
    api.funded_member("sky", 2_500)
    supplies = {
        brand: int(token.functions.totalSupply().call())
        for brand, token in stack.ledger.tokens.items()
    }
    first = report(api, period, "sky", 1)
    assert first.status_code == 200, first.text
    for brand, supply in supplies.items():
        response = report(api, period, brand, supply + (1 if brand == "sky" else 0))
        assert response.status_code == 200, response.text
        assert response.json()["liability_points"] == supply + (1 if brand == "sky" else 0)
    close_the_day(stack, day)
    result = settle(stack, day)
    return {"day": day, "period": period, "supplies": supplies, "result": result}


# ------------------------------------------------------------------ reports


def test_a_report_replays_for_the_same_key_and_body_and_conflicts_for_another_body(
    stack: Stack,
) -> None:
    api = stack.api
    period = period_of(chain_day(stack) + timedelta(days=30))

    first = report(api, period, "bean", 1_234, key="report-key-1")
    again = report(api, period, "bean", 1_234, key="report-key-1")
    other = report(api, period, "bean", 1_235, key="report-key-1")

    assert first.status_code == again.status_code == 200, first.text
    assert again.json() == first.json()
    assert first.json()["liability_points"] == 1_234
    assert first.json()["brand"] == "bean" and first.json()["period_id"] == period
    assert_problem(other, 409, "idempotency_conflict")


def test_concurrent_first_reports_of_a_brand_all_succeed_and_one_stands(stack: Stack) -> None:
    api = stack.api
    period = period_of(chain_day(stack) + timedelta(days=31))
    figures = list(range(100, 108))

    with ThreadPoolExecutor(max_workers=len(figures)) as pool:
        answers = list(pool.map(lambda points: report(api, period, "cart", points), figures))

    assert [answer.status_code for answer in answers] == [200] * len(figures), [
        answer.text for answer in answers
    ]
    with settlement_sessions(stack) as sessions, sessions() as session:
        stored = session.get_one(BrandReport, (period, "cart"))
    assert stored.liability_points in figures


@pytest.mark.parametrize(
    ("period", "points", "status", "code"),
    [
        ("20261122", -1, 422, "validation_failed"),
        ("20261122", 1.5, 422, "validation_failed"),
        ("20261122", "12", 422, "validation_failed"),
        ("20261122", 2**256, 422, "validation_failed"),
        ("2026-11-22", 1, 422, "invalid_period"),
        ("20261345", 1, 422, "invalid_period"),
        ("00000101", 1, 422, "invalid_period"),
        ("2026112", 1, 422, "invalid_period"),
    ],
)
def test_a_bad_report_is_a_problem_never_a_server_error(
    stack: Stack, period: str, points: Any, status: int, code: str
) -> None:
    assert_problem(report(stack.api, period, "bean", points), status, code)


def test_operators_and_auditors_cannot_report_or_acknowledge(stack: Stack) -> None:
    api = stack.api
    for client in ("operator", "auditor"):
        body = {"liability_points": 1}
        response = api.post("/v1/settlement/periods/20261122/liability-report", body, client)
        assert_problem(response, 403, "forbidden")
        assert_problem(acknowledge(api, 20261122, client), 403, "forbidden")


def test_an_unsettled_period_has_no_statements(stack: Stack) -> None:
    api = stack.api
    period = period_of(chain_day(stack) + timedelta(days=30))
    for path in ("statements/bean", "statements.json", "report.html"):
        response = api.get(f"/v1/settlement/periods/{period}/{path}", "brand-bean")
        assert_problem(response, 404, "period_not_settled")
    assert_problem(acknowledge(api, period, "brand-bean"), 404, "period_not_settled")


# ------------------------------------------------------------------ the closed period


def test_the_uploaded_reports_feed_reconciliation(stack: Stack, settled: dict[str, Any]) -> None:
    discrepancies = json.loads((settled["result"].output_dir / "discrepancies.json").read_text())
    mismatches = [d for d in discrepancies if d["kind"] == "brand_total_mismatch"]

    assert [(d["brand"], d["evidence"]["difference"]) for d in mismatches] == [("sky", "1")]
    with settlement_sessions(stack) as sessions, sessions() as session:
        stored = session.query(Discrepancy).filter_by(period_id=settled["period"]).all()
    assert [(d.kind, d.brand_code) for d in stored] == [("brand_total_mismatch", "sky")]


def test_a_report_after_the_close_is_refused(stack: Stack, settled: dict[str, Any]) -> None:
    response = report(stack.api, settled["period"], "bean", 5)

    assert_problem(response, 409, "period_closed")


def test_a_brand_reads_its_statement_as_json_with_the_anchor(
    stack: Stack, settled: dict[str, Any]
) -> None:
    period, supplies = settled["period"], settled["supplies"]

    response = stack.api.get(f"/v1/settlement/periods/{period}/statements/sky", "brand-sky")

    assert response.status_code == 200, response.text
    statement = response.json()
    assert statement["period_id"] == period
    assert statement["brand"]["brand"] == "sky"
    assert statement["brand"]["closing_supply"] == str(supplies["sky"])
    assert statement["brand"]["reported_liability"] == str(supplies["sky"] + 1)
    anchored = anchor_contract(stack).functions.anchorOf(period).call()
    assert statement["statements_hash"] == "0x" + bytes(anchored[3]).hex()
    assert statement["balances_root"] == "0x" + bytes(anchored[2]).hex()
    assert statement["closing_block"] == anchored[0]
    assert statement["anchor_tx"] == settled["result"].anchor_transaction


@pytest.mark.parametrize("how", ["query", "accept"])
def test_a_brand_reads_its_statement_as_csv(
    stack: Stack, settled: dict[str, Any], how: str
) -> None:
    path = f"/v1/settlement/periods/{settled['period']}/statements/bean"
    if how == "query":
        response = stack.api.get(path + "?format=csv", "brand-bean")
    else:
        response = stack.api.get(path, "brand-bean", headers={"Accept": "text/csv"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    published = (settled["result"].output_dir / "statements.csv").read_text()
    (published_row,) = [r for r in csv.DictReader(io.StringIO(published)) if r["brand"] == "bean"]
    assert rows == [published_row]
    assert rows[0]["closing_supply"] == str(settled["supplies"]["bean"])


def test_a_brand_cannot_read_another_brands_statement(
    stack: Stack, settled: dict[str, Any]
) -> None:
    path = f"/v1/settlement/periods/{settled['period']}/statements/bean"

    response = stack.api.get(path, "brand-sky")

    assert_problem(response, 404, "not_found")
    assert str(settled["supplies"]["bean"]) not in response.text
    for client in ("operator", "auditor"):
        assert stack.api.get(path, client).json()["brand"]["brand"] == "bean"


def test_the_downloaded_statements_hash_to_the_on_chain_anchor(
    stack: Stack, settled: dict[str, Any]
) -> None:
    period = settled["period"]

    response = stack.api.get(f"/v1/settlement/periods/{period}/statements.json", "brand-cart")

    assert response.status_code == 200, response.text
    anchored = anchor_contract(stack).functions.anchorOf(period).call()
    assert keccak(response.content) == bytes(anchored[3])
    assert response.content == (settled["result"].output_dir / "statements.json").read_bytes()
    assert response.headers["Alliance-Statements-Hash"] == "0x" + bytes(anchored[3]).hex()


def test_the_report_is_served_as_html(stack: Stack, settled: dict[str, Any]) -> None:
    response = stack.api.get(f"/v1/settlement/periods/{settled['period']}/report.html", "auditor")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.content == (settled["result"].output_dir / "report.html").read_bytes()
    assert "<svg" in response.text


# ------------------------------------------------------------------ acknowledgements


def test_an_acknowledgement_is_sent_once_however_often_it_is_asked(
    stack: Stack, settled: dict[str, Any]
) -> None:
    api, period = stack.api, settled["period"]

    keys = ["ack-bean-1", "ack-bean-2", "ack-bean-3", "ack-bean-4"]

    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        racing = list(pool.map(lambda key: acknowledge(api, period, "brand-bean", key), keys))
    first = acknowledge(api, period, "brand-bean", key="ack-bean-1")
    replay = acknowledge(api, period, "brand-bean", key="ack-bean-1")
    again = acknowledge(api, period, "brand-bean")

    assert all(answer.status_code in (200, 202) for answer in racing), [r.text for r in racing]
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "acknowledged"
    assert replay.json() == again.json() == first.json()
    ack_operations = {answer.json()["operation_id"] for answer in [*racing, first]}
    assert ack_operations == {first.json()["operation_id"]}
    (event,) = acknowledged_events(stack, period)
    assert event["transactionHash"].to_0x_hex() == first.json()["transaction_hash"]
    assert event["args"]["token"] == stack.ledger.tokens["bean"].address
    bean_token = stack.ledger.tokens["bean"].address
    assert anchor_contract(stack).functions.isAcknowledged(period, bean_token).call()


def test_an_acknowledgement_survives_a_crash_between_signing_and_sending(
    stack: Stack, settled: dict[str, Any]
) -> None:
    api, period = stack.api, settled["period"]
    stack.gateway.restart(stack.gateway_env | {FAILPOINT_VARIABLE: AFTER_RECORD_BEFORE_SEND})
    with contextlib.suppress(httpx.TransportError, AssertionError):
        acknowledge(api, period, "brand-sky")  # The gateway dies before it answers.
    assert stack.gateway.wait_exit(DEATH_TIMEOUT_S) == -signal.SIGKILL
    sky_events = [
        e
        for e in acknowledged_events(stack, period)
        if e["args"]["token"] == stack.ledger.tokens["sky"].address
    ]
    assert sky_events == []
    stack.ensure_gateway()

    response = acknowledge(api, period, "brand-sky")

    assert response.status_code in (200, 202), response.text
    final = response
    for _ in range(50):
        if final.json()["status"] == "acknowledged":
            break
        final = acknowledge(api, period, "brand-sky")
    assert final.json()["status"] == "acknowledged", final.text
    sky_events = [
        e
        for e in acknowledged_events(stack, period)
        if e["args"]["token"] == stack.ledger.tokens["sky"].address
    ]
    assert len(sky_events) == 1
    assert sky_events[0]["transactionHash"].to_0x_hex() == final.json()["transaction_hash"]
    ack_operations = [o for o in stack.books.unfinished() if o.kind == "acknowledgement"]
    assert ack_operations == []


def test_the_next_period_closes_clean_after_the_acknowledgements(
    stack: Stack, settled: dict[str, Any]
) -> None:
    # Acknowledgements are gateway operations and chain events without a request id: the
    # next period's reconciliation must not mistake them for breaks.
    stack.ensure_gateway()
    day = settled["day"] + timedelta(days=1)
    assert chain_day(stack) == day
    close_the_day(stack, day)

    result = settle(stack, day)

    assert json.loads((result.output_dir / "discrepancies.json").read_text()) == []
    assert result.anchored_now


def test_while_the_chain_is_down_statements_are_read_and_acknowledging_is_503(
    stack: Stack, settled: dict[str, Any]
) -> None:
    # The module's last test: it stops Anvil (SIGTERM: the state file keeps the chain).
    api, period = stack.api, settled["period"]
    stack.ensure_gateway()
    assert stack.chain.stop(), "the chain was not running"
    try:
        refused = acknowledge(api, period, "brand-cart")
        statement = api.get(f"/v1/settlement/periods/{period}/statements/cart", "brand-cart")
    finally:
        stack.chain.start()
        stack.chain.wait_ready(DEATH_TIMEOUT_S)

    assert_problem(refused, 503, "chain_unavailable")
    assert int(refused.headers["Retry-After"]) > 0
    assert statement.status_code == 200, statement.text
    accepted = acknowledge(api, period, "brand-cart")
    assert accepted.status_code == 200, accepted.text
    cart_token = stack.ledger.tokens["cart"].address
    cart_events = [
        e for e in acknowledged_events(stack, period) if e["args"]["token"] == cart_token
    ]
    assert [e["transactionHash"].to_0x_hex() for e in cart_events] == [
        accepted.json()["transaction_hash"]
    ]
