"""Audit replay: verify an alliance of ~1,000,000 events from the chain alone.

Deploys the embedded default alliance (config/alliance.yaml) on a private Anvil in a
temporary directory, deposits bean and cart points to `--members` members, then sends
`convertBatch` transactions of 256 conversions (four pairs in turn; each conversion is
three logs: two Transfers and Converted) until the chain holds `--events` alliance logs.
Transactions are encoded with eth_abi and signed locally, with a fixed gas limit, so
generating is bounded by Anvil, not by web3.py.

Then it measures, in this process, exactly what `alliance audit verify` runs:
1. a cold verify (no cache): read every log, replay, check, compare every balance;
2. the same with `--cache` (cold, writing the cache), then again from the warm cache;
3. balance reads alone, `BalanceLens` deployless calls versus batched `balanceOf` calls,
   over `--holdings` (token, account) pairs.

Run: .venv/bin/python bench/audit_replay.py [--events 1000000] [--members 1000] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak
from web3 import Web3

from alliance.audit.reading import AuditChain
from alliance.audit.verify import verify
from alliance.chain import ChainClient
from alliance.chainstate import balances_batched, balances_lens
from alliance.compiler import compile_contracts
from alliance.deploy import Parties, deploy_alliance
from alliance.deploy_config import load_alliance_config
from alliance.events import alliance_catalogue
from alliance.keys import DevKeyStore
from alliance.localchain import LocalChain, free_port
from alliance.rpc import JsonRpc
from alliance.settings import ChainSettings, DataSettings
from alliance.toolchain import repo_dir

BATCH_SIZE = 256
"""Conversions per convertBatch (the exchange's maximum)."""
BATCH_GAS = 20_000_000
"""Fixed gas limit of a batch (~35k per item measured; unused gas is free at price zero)."""
MINT_GAS = 200_000
LOGS_PER_CONVERSION = 3
PAIRS = (("bean", "sky"), ("bean", "cart"), ("cart", "bean"), ("cart", "sky"))
AMOUNT_IN = 100
DEPOSIT = 10**12
DEADLINE_FAR = 2**40
CONVERT_BATCH = keccak(
    text="convertBatch((uint256,address,address,address,uint256,uint256,uint256)[],bytes[])"
)[:4]
MINT = keccak(text="mint(address,uint256,uint256,uint8,bytes32)")[:4]


class Sender:
    """Signs locally and sends raw transactions without waiting (Anvil mines each at once)."""

    def __init__(self, w3: Web3, chain_id: int) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        self.nonces: dict[str, int] = {}
        self.last_hash: Any = None

    def send(self, account: Any, to: str, data: bytes, gas: int) -> None:
        nonce = self.nonces.get(account.address)
        if nonce is None:
            nonce = self.w3.eth.get_transaction_count(account.address, "pending")
        self.nonces[account.address] = nonce + 1
        transaction = {
            "to": to,
            "data": data,
            "gas": gas,
            "gasPrice": 0,
            "nonce": nonce,
            "chainId": self.chain_id,
        }
        signed = Account.sign_transaction(transaction, account.key)
        self.last_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)

    def settle(self) -> None:
        receipt = self.w3.eth.wait_for_transaction_receipt(self.last_hash, timeout=120)
        assert receipt["status"] == 1, receipt


def generate(
    w3: Web3, manifest: Any, parties: Parties, events_target: int, member_count: int
) -> dict[str, Any]:
    """Deposits and conversion batches until the alliance has ~`events_target` logs."""
    started = time.perf_counter()
    sender = Sender(w3, manifest.chain_id)
    tokens = {brand.code: brand.token.address for brand in manifest.brands}
    members = [Account.create().address for _ in range(member_count)]
    request_ids = itertools.count(1)
    for code in ("bean", "cart"):
        issuer = parties.brands[code]["issuer"]
        for member in members:
            arguments = abi_encode(
                ["address", "uint256", "uint256", "uint8", "bytes32"],
                [member, DEPOSIT, next(request_ids), 1, b"\x01" * 32],
            )
            sender.send(issuer, tokens[code], MINT + arguments, MINT_GAS)
    logs = 2 * 2 * member_count  # Transfer + PointsMinted per deposit
    batches = 0
    operator = parties.alliance["operator"]
    while logs < events_target:
        requests = []
        for index in range(BATCH_SIZE):
            from_code, to_code = PAIRS[(batches + index) % len(PAIRS)]
            member = members[(batches * BATCH_SIZE + index) % member_count]
            requests.append(
                (
                    next(request_ids),
                    member,
                    tokens[from_code],
                    tokens[to_code],
                    AMOUNT_IN,
                    0,
                    DEADLINE_FAR,
                )
            )
        arguments = abi_encode(
            ["(uint256,address,address,address,uint256,uint256,uint256)[]", "bytes[]"],
            [requests, []],
        )
        sender.send(operator, manifest.exchange.address, CONVERT_BATCH + arguments, BATCH_GAS)
        batches += 1
        logs += BATCH_SIZE * LOGS_PER_CONVERSION
    sender.settle()
    return {
        "members": member_count,
        "batches": batches,
        "conversions": batches * BATCH_SIZE,
        "logs_planned": logs,
        "blocks": int(w3.eth.block_number),
        "generate_s": round(time.perf_counter() - started, 1),
    }


def timed_verify(chain: AuditChain, cache: Path | None) -> dict[str, Any]:
    started = time.perf_counter()
    report = verify(chain, cache_dir=cache)
    elapsed = time.perf_counter() - started
    return {
        "seconds": round(elapsed, 1),
        "events": report.events,
        "events_per_s": round(report.events / elapsed),
        "holdings_checked": report.holdings_checked,
        "findings": report.counts,
        "timings_s": {key: round(value, 2) for key, value in report.timings_s.items()},
    }


def balance_reads(chain: AuditChain, holdings_count: int) -> dict[str, Any]:
    """Holdings read per second, lens versus batched calls, on random accounts."""
    tokens = list(chain.brands)
    rng = random.Random(7)
    holdings = [
        (tokens[i % len(tokens)], "0x" + rng.randbytes(20).hex()) for i in range(holdings_count)
    ]
    head = chain.rpc.block_number()
    assert chain.lens_code is not None
    results = {}
    for name, read in (
        ("lens", lambda: balances_lens(chain.rpc, chain.lens_code or "", holdings, head)),
        ("batched_calls", lambda: balances_batched(chain.rpc, holdings, head)),
    ):
        started = time.perf_counter()
        balances = read()
        elapsed = time.perf_counter() - started
        assert len(balances) == holdings_count and not any(balances)
        results[name] = {
            "seconds": round(elapsed, 2),
            "holdings_per_s": round(holdings_count / elapsed),
        }
    return results


def run(arguments: argparse.Namespace) -> dict[str, Any]:
    root = repo_dir()
    compiled = compile_contracts(root / "contracts", root / "build")
    with tempfile.TemporaryDirectory() as data_dir:
        # Dump state rarely: at 1M events a dump every second would compete with the run.
        chain_settings = ChainSettings(port=free_port(), state_interval_s=3_600)
        local = LocalChain(chain_settings, DataSettings(data_dir=Path(data_dir)))
        local.start()
        try:
            local.wait_ready()
            artifacts = [compiled.load_artifact(name) for name in compiled.contract_names]
            client = ChainClient.connect(local.rpc_url, artifacts)
            config = load_alliance_config(root / "config" / "alliance.yaml")
            parties = Parties.from_keys(DevKeyStore(Path(data_dir)), config)
            manifest = deploy_alliance(client, compiled.load_artifact, config, parties)
            generated = generate(client.w3, manifest, parties, arguments.events, arguments.members)
            stderr_note(json.dumps({"generated": generated}))
            with JsonRpc(local.rpc_url) as rpc:
                chain = AuditChain(
                    rpc=rpc,
                    manifest=manifest,
                    catalogue=alliance_catalogue(compiled.load_artifact),
                    lens_code=compiled.load_artifact("BalanceLens").bytecode,
                )
                cache = Path(data_dir) / "audit-cache"
                results = {"generated": generated}
                steps = {
                    "verify_cold": lambda: timed_verify(chain, None),
                    "verify_writing_cache": lambda: timed_verify(chain, cache),
                    "verify_warm_cache": lambda: timed_verify(chain, cache),
                    "balance_reads": lambda: balance_reads(chain, arguments.holdings),
                }
                for name, step in steps.items():
                    results[name] = step()
                    # Each figure as soon as it exists: a long run that fails late keeps them.
                    print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)
                return results
        finally:
            local.stop()


def stderr_note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="alliance logs to generate")
    parser.add_argument("--members", type=int, default=1_000, help="members converting")
    parser.add_argument("--holdings", type=int, default=100_000, help="holdings for balance reads")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    arguments = parser.parse_args()
    results = run(arguments)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
