"""Gas per deposit, withdrawal, single conversion and batched conversion item.

Deploys the embedded default alliance (config/alliance.yaml) on a private Anvil in a
temporary directory, gives a set of members balances in two brands, then measures each
operation from its receipt. "Existing holders" means the member already holds both brands'
points (the common case; a first-ever balance costs ~17k more for the new storage slot).
Request ids are sequential, as the gateway issues them, so they share bitmap words: the
first id in each 256-id word costs ~17k more once; the figures below are for the other 255.

Run: .venv/bin/python bench/gas.py [--members 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account

from alliance.chain import ChainClient
from alliance.compiler import compile_contracts
from alliance.deploy import Parties, deploy_alliance
from alliance.deploy_config import load_alliance_config
from alliance.keys import DevKeyStore
from alliance.localchain import LocalChain, free_port
from alliance.settings import ChainSettings, DataSettings
from alliance.toolchain import repo_dir

BATCH_SIZES = (1, 10, 100)
DEADLINE_FAR = 2**40
BRAND_REF = b"\x01" * 32


class GasBench:
    """A deployed alliance plus counters for request ids."""

    def __init__(self, client: ChainClient, compiled: Any, parties: Parties, manifest: Any) -> None:
        self.client = client
        self.parties = parties
        token = compiled.load_artifact("PointToken")
        self.exchange = client.contract(
            compiled.load_artifact("AllianceExchange"), manifest.exchange.address
        )
        self.tokens = {b.code: client.contract(token, b.token.address) for b in manifest.brands}
        # Start on a word boundary and burn the first id of the word, so every measured
        # request id lands in an already-used bitmap word (see module docstring).
        self._next_request_id = 1 << 20

    def request_id(self) -> int:
        self._next_request_id += 1
        return self._next_request_id

    def deposit(self, code: str, member: str, amount: int) -> int:
        issuer = self.parties.brands[code]["issuer"]
        function = self.tokens[code].functions.mint(member, amount, self.request_id(), 1, BRAND_REF)
        return int(self.client.transact(issuer, function)["gasUsed"])

    def withdraw(self, code: str, member: str, amount: int) -> int:
        issuer = self.parties.brands[code]["issuer"]
        function = self.tokens[code].functions.burn(member, amount, self.request_id(), 2, BRAND_REF)
        return int(self.client.transact(issuer, function)["gasUsed"])

    def conversion(self, member: str, from_code: str, to_code: str, amount: int) -> tuple[Any, ...]:
        return (
            self.request_id(),
            member,
            self.tokens[from_code].address,
            self.tokens[to_code].address,
            amount,
            0,
            DEADLINE_FAR,
        )

    def convert(self, member: str) -> int:
        function = self.exchange.functions.convert(self.conversion(member, "bean", "sky", 100))
        return int(self.client.transact(self.parties.alliance["operator"], function)["gasUsed"])

    def convert_batch(self, members: list[str]) -> int:
        requests = [self.conversion(member, "bean", "sky", 100) for member in members]
        function = self.exchange.functions.convertBatch(requests, [])
        receipt = self.client.transact(self.parties.alliance["operator"], function)
        applied = len(self.exchange.events.ConversionRejected().process_receipt(receipt))
        assert applied == 0, "a benchmark batch item was rejected"
        return int(receipt["gasUsed"])


def measure(bench: GasBench, member_count: int) -> dict[str, Any]:
    members = [Account.create().address for _ in range(member_count)]
    bench.deposit("bean", members[0], 1)  # uses the first id of the bitmap word
    new_holder = [bench.deposit("bean", member, 1_000_000) for member in members]
    for member in members:
        bench.deposit("sky", member, 1)
    existing_holder = [bench.deposit("bean", member, 1_000) for member in members[:20]]
    withdrawals = [bench.withdraw("bean", member, 10) for member in members[:20]]
    conversions = [bench.convert(member) for member in members[:20]]
    batches = {}
    for size in BATCH_SIZES:
        total = bench.convert_batch(members[:size])
        batches[size] = {"total": total, "per_item": total / size}
    return {
        "deposit_new_holder": statistics.median(new_holder),
        "deposit_existing_holder": statistics.median(existing_holder),
        "withdrawal": statistics.median(withdrawals),
        "conversion_existing_holders": statistics.median(conversions),
        "batch": batches,
    }


def run(member_count: int) -> dict[str, Any]:
    root = repo_dir()
    compiled = compile_contracts(root / "contracts", root / "build")
    with tempfile.TemporaryDirectory() as data_dir:
        chain_settings = ChainSettings(port=free_port())
        chain = LocalChain(chain_settings, DataSettings(data_dir=Path(data_dir)))
        chain.start()
        try:
            chain.wait_ready()
            artifacts = [compiled.load_artifact(name) for name in compiled.contract_names]
            client = ChainClient.connect(chain.rpc_url, artifacts)
            config = load_alliance_config(root / "config" / "alliance.yaml")
            parties = Parties.from_keys(DevKeyStore(Path(data_dir)), config)
            manifest = deploy_alliance(client, compiled.load_artifact, config, parties)
            return measure(GasBench(client, compiled, parties, manifest), member_count)
        finally:
            chain.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100, help="members (>= largest batch size)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    arguments = parser.parse_args()
    assert arguments.members >= max(BATCH_SIZES), (
        "need at least as many members as the largest batch"
    )
    results = run(arguments.members)
    if arguments.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'operation':<44}{'gas':>12}")
    for name in (
        "deposit_new_holder",
        "deposit_existing_holder",
        "withdrawal",
        "conversion_existing_holders",
    ):
        print(f"{name:<44}{results[name]:>12,.0f}")
    for size, figures in results["batch"].items():
        label = f"batched conversion, batch of {size}: per item"
        print(f"{label:<44}{figures['per_item']:>12,.0f}   (total {figures['total']:,})")


if __name__ == "__main__":
    main()
