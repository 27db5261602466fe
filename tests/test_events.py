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


def test_hex_decoding_matches_eth_abi_for_signed_bool_and_hash_words(compiled: Any) -> None:
    # The catalogue reads static words straight from the hex text; check it against eth_abi
    # on values the chain tests rarely produce: a negative int256, true, and a bytes32.
    from eth_abi import encode

    catalogue = alliance_catalogue(compiled.load_artifact)
    spec = catalogue.spec("ApprovalRequested")
    account = "0x" + "ab" * 20
    values = [-12345, 5, 0, b"\x07" * 32, "0x" + "cd" * 20]
    data = encode(["int256", "uint8", "uint8", "bytes32", "address"], values)
    log = {
        "address": "0x" + "01" * 20,
        "topics": [
            "0x" + spec.topic0.hex(),
            "0x" + (2**255 + 1).to_bytes(32, "big").hex(),
            "0x" + bytes.fromhex(account[2:]).rjust(32, b"\0").hex(),
        ],
        "data": "0x" + data.hex(),
        "blockNumber": "0x5",
        "logIndex": "0x0",
        "transactionHash": "0x" + "00" * 32,
    }
    event = catalogue.decode(log)
    assert event is not None and event.args == {
        "requestId": 2**255 + 1,
        "account": account,
        "amountDelta": -12345,
        "reason": 5,
        "source": 0,
        "brandRef": b"\x07" * 32,
        "proposer": "0x" + "cd" * 20,
    }
    frozen = catalogue.spec("FreezeChanged")
    flag = frozen.decode_hex(
        ["0x" + frozen.topic0.hex(), log["topics"][2], log["topics"][2]],
        "0x" + encode(["bool", "address", "address"], [True, account, account]).hex(),
    )
    assert flag["frozen"] is True and flag["member"] == account
