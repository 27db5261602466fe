"""Event reading for the indexer and the audit tool: alliance/events.py and alliance/rpc.py.

Proves, on a real Anvil with the deployed test alliance: every log the alliance emitted is
decoded by the catalogue with the same arguments web3.py's ABI decoder gives, and a
bounded-window read returns every log exactly once, in chain order, whatever the window.
"""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3
from web3.logs import DISCARD

from alliance.events import LogReader, alliance_addresses, alliance_catalogue
from alliance.rpc import JsonRpc
from tests.support.alliance import new_member


def _normalised(value: Any) -> Any:
    if isinstance(value, str) and Web3.is_address(value):
        return value.lower()
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return value


@pytest.fixture
def busy_alliance(alliance: Any) -> Any:
    """The session alliance after deposits and conversions (rolled back afterwards)."""
    for _ in range(3):
        member = new_member().address
        alliance.deposit("bean", member, 10_000)
        alliance.convert(member, "bean", "sky", 1_000)
    return alliance


def test_catalogue_decodes_every_log_as_web3_does(busy_alliance: Any) -> None:
    alliance = busy_alliance
    catalogue = alliance_catalogue(alliance.compiled.load_artifact)
    head = alliance.client.w3.eth.block_number
    with JsonRpc(alliance.client.w3.provider.endpoint_uri) as rpc:
        reader = LogReader(rpc, catalogue, alliance_addresses(alliance.manifest))
        events = list(reader.events(alliance.manifest.deploy_block, head))
    names = {event.name for event in events}
    assert {"Transfer", "PointsMinted", "Converted", "PairPolicySet", "BrandListed"} <= names
    contracts = {"Converted": alliance.exchange, "PointsMinted": alliance.tokens["bean"]}
    checked = 0
    for event in events:
        contract = contracts.get(event.name)
        if contract is None or event.address != contract.address.lower():
            continue
        receipt = alliance.client.w3.eth.get_transaction_receipt(event.transaction_hash)
        web3_logs = getattr(contract.events, event.name)().process_receipt(receipt, errors=DISCARD)
        match = next(log for log in web3_logs if log["logIndex"] == event.log_index)
        assert event.args == {key: _normalised(value) for key, value in match["args"].items()}
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize("window", [1, 3, 5_000])
def test_bounded_windows_return_every_log_once_in_order(busy_alliance: Any, window: int) -> None:
    alliance = busy_alliance
    catalogue = alliance_catalogue(alliance.compiled.load_artifact)
    addresses = alliance_addresses(alliance.manifest)
    head = alliance.client.w3.eth.block_number
    start = max(alliance.manifest.deploy_block, head - 40)
    with JsonRpc(alliance.client.w3.provider.endpoint_uri) as rpc:
        whole = list(
            LogReader(rpc, catalogue, addresses, block_range_max=10_000).events(start, head)
        )
        windowed = list(
            LogReader(rpc, catalogue, addresses, block_range_max=window).events(start, head)
        )
    assert [event.position for event in windowed] == [event.position for event in whole]
    assert [event.position for event in whole] == sorted(event.position for event in whole)
    assert len(whole) > 0
