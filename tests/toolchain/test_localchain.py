"""The local Anvil chain starts, answers, stops and keeps its state across restarts.

Proves, with the real Anvil from node_modules on free loopback ports and temporary data
dirs: the chain answers with the configured chain id and a zero gas price; stop closes
the port; balances and contract code survive a clean stop/start (SIGTERM makes Anvil
write its state file) and, up to the last state interval, a SIGKILL; starting twice is
a no-op; a port held by a foreign listener is refused with a clear error.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.types import Wei

from alliance.errors import ChainNotRunning, ChainPortTaken
from alliance.localchain import LocalChain
from alliance.settings import ChainSettings, DataSettings

from ..conftest import free_port

# Init code that deploys the 10-byte runtime `602a60005260206000f3` ("return 42").
RETURN_42_INIT_CODE = HexStr("0x600a600c600039600a6000f3602a60005260206000f3")
RETURN_42_RUNTIME_CODE = bytes.fromhex("602a60005260206000f3")

ChainFactory = Callable[..., LocalChain]


def web3_of(chain: LocalChain) -> Web3:
    """Return a web3.py client of `chain`."""
    return Web3(Web3.HTTPProvider(chain.rpc_url))


def port_is_open(chain: LocalChain) -> bool:
    """Whether anything accepts TCP connections on the chain's port."""
    with socket.socket() as probe:
        return probe.connect_ex((chain.chain_settings.host, chain.chain_settings.port)) == 0


def fund_fresh_address(w3: Web3, value_wei: int) -> ChecksumAddress:
    """Send `value_wei` from Anvil's first dev account to a new address; return it."""
    recipient = Account.create().address
    transaction_hash = w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": recipient, "value": Wei(value_wei), "gasPrice": Wei(0)}
    )
    assert w3.eth.wait_for_transaction_receipt(transaction_hash)["status"] == 1
    return recipient


def deploy_return_42(w3: Web3) -> ChecksumAddress:
    """Deploy the tiny "return 42" contract; return its address."""
    transaction_hash = w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "data": RETURN_42_INIT_CODE, "gasPrice": Wei(0)}
    )
    address = w3.eth.wait_for_transaction_receipt(transaction_hash)["contractAddress"]
    assert address is not None
    return address


def test_started_chain_answers_with_configured_chain_id_and_zero_gas_price(
    anvil: LocalChain, w3: Web3
) -> None:
    assert anvil.is_running()
    assert w3.eth.chain_id == anvil.chain_settings.chain_id == 4242
    assert w3.eth.gas_price == 0
    assert w3.eth.get_block("latest")["baseFeePerGas"] == 0


def test_transactions_cost_nothing_at_zero_gas_price(w3: Web3) -> None:
    sender = list(w3.eth.accounts)[1]
    balance_before_wei = w3.eth.get_balance(sender)
    transaction_hash = w3.eth.send_transaction(
        {"from": sender, "to": Account.create().address, "value": Wei(1), "gasPrice": Wei(0)}
    )
    w3.eth.wait_for_transaction_receipt(transaction_hash)
    assert w3.eth.get_balance(sender) == balance_before_wei - 1


def test_stopped_chain_closes_its_port(chain_factory: ChainFactory) -> None:
    chain = chain_factory()
    assert port_is_open(chain)
    assert chain.stop()
    assert not chain.is_running()
    assert not port_is_open(chain)
    assert not chain.pid_file.exists()


def test_stopping_a_stopped_chain_reports_it_was_not_running(
    chain_factory: ChainFactory,
) -> None:
    chain = chain_factory()
    assert chain.stop()
    assert not chain.stop()
    with pytest.raises(ChainNotRunning):
        chain.require_running()


def test_state_survives_a_stop_and_start(chain_factory: ChainFactory) -> None:
    chain = chain_factory()
    w3 = web3_of(chain)
    recipient = fund_fresh_address(w3, 12_345)
    contract = deploy_return_42(w3)
    block_number = w3.eth.block_number
    chain.stop()
    assert chain.data_settings.state_file.is_file()

    chain.start()
    chain.wait_ready()
    assert w3.eth.get_balance(recipient) == 12_345
    assert w3.eth.get_code(contract) == RETURN_42_RUNTIME_CODE
    assert w3.eth.block_number == block_number


@pytest.mark.slow
def test_killed_chain_keeps_the_state_written_at_the_last_interval(
    chain_factory: ChainFactory,
) -> None:
    chain = chain_factory()
    w3 = web3_of(chain)
    recipient = fund_fresh_address(w3, 777)
    # Let at least one periodic dump (every state_interval_s) happen after the transfer.
    time.sleep(chain.chain_settings.state_interval_s * 2.5)
    pid = chain.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while chain.is_running():
        time.sleep(0.05)

    chain.start()
    chain.wait_ready()
    assert w3.eth.get_balance(recipient) == 777


def test_starting_a_running_chain_is_a_no_op(chain_factory: ChainFactory) -> None:
    chain = chain_factory()
    pid = chain.pid()
    assert chain.start() is False
    assert chain.pid() == pid
    twin = LocalChain(chain.chain_settings, chain.data_settings)
    assert twin.start() is False
    twin.wait_ready()
    assert twin.pid() == pid


def test_port_held_by_a_foreign_listener_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        port = foreign.getsockname()[1]
        chain = LocalChain(ChainSettings(port=port), DataSettings(data_dir=tmp_path))
        with pytest.raises(ChainPortTaken) as raised:
            chain.start()
    assert raised.value.code == "chain_port_taken"
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert "already in use" in str(raised.value)
    assert not chain.is_running()


def test_free_port_returns_a_port_nobody_listens_on() -> None:
    port = free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
