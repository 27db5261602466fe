"""Fraud checks and alerts on a real stack: Anvil, the gateway serving HTTP, its database,
the settlement run with its indexer, and brands' webhook receivers (real HTTP servers).

A day of traffic goes through the gateway: one member converts more often than the
velocity limit allows, another converts once. The day's risk step runs as the nightly run
calls it (indexer synced, period located, `risk_hook`). Proves: exactly one alert
(velocity, about that member) is stored, counted for both brands it involves, and sent to
those brands' webhooks only; a re-run finds the same alerts and sends nothing again;
brands see only their alerts and auditors cannot act; a freeze needs a second, different
principal, and each approval shows on chain as one of the brand's two freezer calls, after
which the member is frozen; and the whole nightly run with the hook writes the alerts to
alerts.json, counts them for each brand in the statements, and re-runs byte for byte.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from alliance.keys import DevKeyStore
from settlement.context import open_context
from settlement.expiry import ExpirySettings
from settlement.fraud import FraudSettings
from settlement.fraud.run import ALERT_EVENT
from settlement.period import locate_period
from settlement.risk import risk_hook
from settlement.run import _count_by_brand
from settlement.service import run_settlement
from settlement.settings import SettlementSettings
from tests.gateway.api_client import assert_problem, conversion_body
from tests.gateway.stack import Databases, Stack, books_url, build_stack
from tests.settlement.chain_support import Receiver, webhook_receiver

FRAUD = FraudSettings(velocity_conversions_max=3)
"""Low enough that four conversions trip it (the default is 20 a day)."""


@pytest.fixture(scope="module")
def stack(
    compiled: Any, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with build_stack("fraud", tmp_path_factory.mktemp("fraud"), databases) as built:
        yield built


@pytest.fixture(scope="module")
def receivers(stack: Stack) -> Iterator[dict[str, Receiver]]:
    with webhook_receiver() as bean, webhook_receiver() as sky, webhook_receiver() as cart:
        running = {"bean": bean, "sky": sky, "cart": cart}
        for brand, receiver in running.items():
            response = stack.api.post("/v1/webhooks", {"url": receiver.url}, f"brand-{brand}")
            assert response.status_code == 201, response.text
        yield running


def _rpc(stack: Stack, method: str, *params: Any) -> Any:
    provider = stack.ledger.deployment.client.w3.provider
    reply = provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in reply, reply
    return reply["result"]


def _close(stack: Stack) -> date:
    """Mine a block just after the next UTC midnight, so the day can be closed."""
    block = stack.ledger.deployment.client.w3.eth.get_block("latest")
    day = datetime.fromtimestamp(block["timestamp"], UTC).date()
    midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    _rpc(stack, "evm_setNextBlockTimestamp", int(midnight.timestamp()) + 5)
    _rpc(stack, "evm_mine")
    return day


def _risk_step(stack: Stack, day: date) -> list[dict[str, Any]]:
    """What the nightly run does for the risk step: sync the indexer, locate the period,
    run the hook (expiry, then fraud). The rest of the run is the settlement suite's."""
    settings = SettlementSettings(
        database_url=books_url(stack.gateway.database_url, stack.data_dir)
    )
    context = open_context(stack.settings, settings)
    try:
        checkpoint = context.indexer.sync()
        window = locate_period(
            context.rpc,
            day,
            settings.zone,
            opening_block=context.manifest.deploy_block,
            confirmed_head=checkpoint,
        )
        return risk_hook(stack.settings, FRAUD, ExpirySettings())(context, window)
    finally:
        context.close()


def _convert(stack: Stack, member_id: str, amount: int) -> None:
    response = stack.api.post("/v1/conversions", conversion_body(member_id, "bean", "sky", amount))
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def closed(stack: Stack, receivers: dict[str, Receiver]) -> dict[str, Any]:
    """The day closed once: the member who trips the rule, and the run's outputs."""
    busy = stack.api.funded_member("bean", 10_000)
    calm = stack.api.funded_member("bean", 10_000)
    for _ in range(4):
        _convert(stack, busy["id"], 100)
    _convert(stack, calm["id"], 100)
    day = _close(stack)
    alerts = _risk_step(stack, day)
    return {"busy": busy, "calm": calm, "day": day, "alerts": alerts}


def test_the_run_raises_exactly_the_velocity_alert(closed: dict[str, Any]) -> None:
    (alert,) = closed["alerts"]
    assert alert["rule"] == "velocity_count"
    assert alert["member_address"] == closed["busy"]["address"].lower()
    assert alert["brands"] == ["bean", "sky"]
    items = alert["evidence"]["items"]
    assert len(items) == 4 and all(item["tx_hash"] and item["request_id"] for item in items)
    assert _count_by_brand(closed["alerts"]) == {"bean": 1, "sky": 1}


def test_the_alert_reaches_the_webhooks_of_its_brands_only(
    closed: dict[str, Any], receivers: dict[str, Receiver]
) -> None:
    (alert,) = closed["alerts"]
    for brand in ("bean", "sky"):
        (event,) = receivers[brand].wait_for(ALERT_EVENT, 1)
        assert event["brand"] == brand
        assert event["data"]["id"] == alert["id"]
        assert event["data"]["member_address"] == alert["member_address"]
    assert receivers["cart"].of_type(ALERT_EVENT) == []


def test_a_rerun_finds_the_same_alerts_and_sends_nothing_again(
    stack: Stack, closed: dict[str, Any], receivers: dict[str, Receiver]
) -> None:
    assert receivers["bean"].wait_for(ALERT_EVENT, 1)
    again = _risk_step(stack, closed["day"])
    assert json.dumps(again, sort_keys=True) == json.dumps(closed["alerts"], sort_keys=True)
    time.sleep(2)  # the webhook worker polls every second: a repeat would have arrived
    assert len(receivers["bean"].of_type(ALERT_EVENT)) == 1


def test_brands_see_their_alerts_and_auditors_only_read(
    stack: Stack, closed: dict[str, Any]
) -> None:
    api = stack.api
    (alert,) = closed["alerts"]
    assert [a["id"] for a in api.get("/v1/alerts", "brand-bean").json()["items"]] == [alert["id"]]
    assert api.get("/v1/alerts", "brand-cart").json()["items"] == []
    assert_problem(api.get(f"/v1/alerts/{alert['id']}", "brand-cart"), 404, "not_found")
    assert api.get(f"/v1/alerts/{alert['id']}", "auditor").json()["status"] == "open"
    path = f"/v1/alerts/{alert['id']}/acknowledge"
    assert_problem(api.post(path, {}, "auditor"), 403, "forbidden")
    acknowledged = api.post(path, {}, "brand-sky")
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["status"] == "acknowledged"
    assert acknowledged.json()["acknowledged_by"] == "brand-sky"
    listed = api.get("/v1/alerts?status=open", "operator").json()["items"]
    assert listed == []


def test_a_freeze_needs_two_principals_and_then_freezes_on_chain(
    stack: Stack, closed: dict[str, Any]
) -> None:
    api, chain = stack.api, stack.ledger
    (alert,) = closed["alerts"]
    member = closed["busy"]["address"]
    token = chain.tokens["bean"].address
    freezers = DevKeyStore(stack.data_dir)
    path = f"/v1/alerts/{alert['id']}/freezes"

    assert_problem(api.post(path, {"brand": "bean"}, "auditor"), 403, "forbidden")
    assert_problem(api.post(path, {"brand": "sky"}, "brand-bean"), 403, "forbidden")
    assert_problem(api.post(path, {"brand": "cart"}, "operator"), 422, "freeze_brand_not_in_alert")
    requested = api.post(path, {"brand": "bean"}, "brand-bean")
    assert requested.status_code == 201, requested.text
    freeze = requested.json()
    assert freeze["status"] == "requested" and freeze["request_tx"]
    pending = chain.exchange.functions.freezeRequestedBy(token, member, True).call()
    assert pending == freezers.account("bean.freezer_a").address
    assert not chain.exchange.functions.isFrozen(token, member).call()
    assert_problem(api.post(path, {"brand": "bean"}, "operator"), 409, "freeze_exists")

    approve = f"/v1/freezes/{freeze['id']}/approve"
    assert_problem(api.post(approve, {}, "brand-bean"), 409, "freeze_self_approval")
    assert_problem(api.post(approve, {}, "brand-sky"), 404, "not_found")
    approved = api.post(approve, {}, "operator")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "applied" and approved.json()["approve_tx"]
    assert chain.exchange.functions.isFrozen(token, member).call()
    receipt = chain.deployment.client.w3.eth.get_transaction_receipt(approved.json()["approve_tx"])
    assert receipt["from"] == freezers.account("bean.freezer_b").address

    again = api.post(approve, {}, "operator")  # a repeat sends nothing
    assert again.status_code == 200 and again.json()["approve_tx"] == approved.json()["approve_tx"]
    balances = api.get(f"/v1/members/{closed['busy']['id']}/balances", "brand-bean").json()
    frozen = {entry["brand"]: entry["frozen"] for entry in balances["balances"]}
    assert frozen == {"bean": True, "sky": False, "cart": False}


def test_the_whole_run_writes_the_alerts_and_counts_them_per_brand(
    stack: Stack, closed: dict[str, Any]
) -> None:
    settings = SettlementSettings(
        database_url=books_url(stack.gateway.database_url, stack.data_dir), pending_grace_s=0
    )
    hook = risk_hook(stack.settings, FRAUD, ExpirySettings())
    result = run_settlement(stack.settings, settings, closed["day"], alerts_hook=hook)
    written = json.loads((result.output_dir / "alerts.json").read_text())
    assert [alert["id"] for alert in written] == [alert["id"] for alert in closed["alerts"]]
    statements = json.loads((result.output_dir / "statements.json").read_text())
    counts = {brand["brand"]: brand["alerts"] for brand in statements["brands"]}
    assert counts == {"bean": 1, "sky": 1, "cart": 0}
    files = {path.name: path.read_bytes() for path in result.output_dir.iterdir()}
    again = run_settlement(stack.settings, settings, closed["day"], alerts_hook=hook)
    assert {path.name: path.read_bytes() for path in again.output_dir.iterdir()} == files


FREEZE_APPLIED_TIMEOUT_S = 60.0
"""The gateway drives an unfinished freeze every `freeze_retry_s` (5 s by default)."""


def test_a_freeze_approved_while_the_chain_is_down_is_applied_once_it_returns(
    stack: Stack, closed: dict[str, Any]
) -> None:
    """The second approval lands while Anvil is stopped: it is recorded (202, with the
    chain step's error), and once the chain is back the gateway's freeze driver applies
    it on its own, nobody repeating the approval; the chain shows the member frozen."""
    api, chain = stack.api, stack.ledger
    (alert,) = closed["alerts"]
    member = closed["busy"]["address"]
    token = chain.tokens["sky"].address
    requested = api.post(f"/v1/alerts/{alert['id']}/freezes", {"brand": "sky"}, "operator")
    assert requested.status_code == 201, requested.text
    freeze = requested.json()

    assert stack.chain.stop(), "the chain was not running"
    try:
        approved = api.post(f"/v1/freezes/{freeze['id']}/approve", {}, "brand-sky")
    finally:
        stack.chain.start()
        stack.chain.wait_ready(30)

    assert approved.status_code == 202, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["error"]
    deadline = time.monotonic() + FREEZE_APPLIED_TIMEOUT_S
    current = approved.json()
    while current["status"] != "applied" and time.monotonic() < deadline:
        time.sleep(0.5)
        current = api.get(f"/v1/freezes/{freeze['id']}", "brand-sky").json()
    assert current["status"] == "applied", current
    assert current["error"] is None and current["approve_tx"]
    assert chain.exchange.functions.isFrozen(token, member).call()
