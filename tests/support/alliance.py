"""A deployed test alliance and the helpers contract tests share.

`DeployedAlliance` wraps the real deployment (same `deploy_alliance` code as `alliance
deploy`) with typed handles and small verbs (deposit, convert, govern) so each test reads
as the behaviour it proves. `reverts` asserts a revert by its custom error and arguments.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.contract import Contract
from web3.types import TxReceipt

from alliance.chain import ChainClient
from alliance.compiler import CompileResult
from alliance.deploy import Parties
from alliance.deploy_config import AllianceConfig
from alliance.errors import ContractReverted
from alliance.governance import GovernedCall, run_proposal
from alliance.manifest import DeploymentManifest

DEADLINE_FAR = 2**40
"""A deadline no test reaches."""

_request_ids = itertools.count(1_000_000)

TEST_CONFIG = {
    "governance": {"threshold": 2, "notice_period_days": 30},
    "brands": [
        {
            "code": "bean",
            "name": "Bean Points",
            "symbol": "BEAN",
            "points_per_unit": 100,
            "gifting": True,
        },
        {
            "code": "sky",
            "name": "Sky Points",
            "symbol": "SKY",
            "points_per_unit": 50,
            "gifting": False,
        },
        {
            "code": "cart",
            "name": "Cart Points",
            "symbol": "CART",
            "points_per_unit": 200,
            "gifting": True,
        },
    ],
    "default_pair_policy": {
        "enabled": True,
        "fee_bps": 100,
        "min_amount_out": 1,
        "max_amount_out": 1_000_000,
        "daily_cap": 10_000_000,
    },
    "pair_policies": [
        {"from": "cart", "to": "sky", "enabled": False},
        {
            "from": "bean",
            "to": "cart",
            "fee_bps": 0,
            "min_amount_out": 10,
            "max_amount_out": 5_000,
            "daily_cap": 8_000,
        },
    ],
}
"""The alliance every contract test starts from (see `DeployedAlliance`)."""


def next_request_id() -> int:
    """A request id no other test in this session uses."""
    return next(_request_ids)


def new_member() -> LocalAccount:
    """A fresh member account (custodial by default; its key can sign for self-custody)."""
    account: LocalAccount = Account.create()
    return account


@contextmanager
def reverts(error_name: str, *arguments: Any) -> Iterator[pytest.ExceptionInfo[ContractReverted]]:
    """Assert the block reverts with custom error `error_name` (and `arguments`, if given)."""
    with pytest.raises(ContractReverted) as caught:
        yield caught
    assert caught.value.error_name == error_name, caught.value
    if arguments:
        assert tuple(caught.value.arguments) == tuple(arguments), caught.value


@dataclass
class DeployedAlliance:
    """Handles on a deployed alliance: contracts, parties and the chain client."""

    client: ChainClient
    compiled: CompileResult
    config: AllianceConfig
    manifest: DeploymentManifest
    parties: Parties
    governance: Contract
    exchange: Contract
    anchor: Contract
    tokens: dict[str, Contract]

    # ------------------------------------------------------------------ parties

    @property
    def operator(self) -> LocalAccount:
        return self.parties.alliance["operator"]

    @property
    def guardian(self) -> LocalAccount:
        return self.parties.alliance["guardian"]

    @property
    def settler(self) -> LocalAccount:
        return self.parties.alliance["settler"]

    def brand_party(self, code: str, role: str) -> LocalAccount:
        """A brand's role holder: admin, issuer, approver, freezer_a, freezer_b, governor."""
        return self.parties.brands[code][role]

    @property
    def governors(self) -> list[LocalAccount]:
        return self.parties.governors(self.config)

    # ------------------------------------------------------------------ verbs

    def transact(self, sender: LocalAccount, function: Any) -> TxReceipt:
        return self.client.transact(sender, function)

    def call(self, function: Any) -> Any:
        return self.client.call(function)

    def deposit(
        self, code: str, member: str, amount: int, request_id: int | None = None
    ) -> TxReceipt:
        """Mint `amount` points of brand `code` to `member` as a Spend deposit."""
        token = self.tokens[code]
        request_id = next_request_id() if request_id is None else request_id
        return self.transact(
            self.brand_party(code, "issuer"),
            token.functions.mint(member, amount, request_id, 1, b"\x01" * 32),
        )

    def conversion(
        self,
        member: str,
        from_code: str,
        to_code: str,
        amount_in: int,
        *,
        min_amount_out: int = 0,
        deadline: int = DEADLINE_FAR,
        request_id: int | None = None,
    ) -> tuple[int, str, str, str, int, int, int]:
        """A ConversionRequest tuple as the contract takes it."""
        request_id = next_request_id() if request_id is None else request_id
        return (
            request_id,
            member,
            self.tokens[from_code].address,
            self.tokens[to_code].address,
            amount_in,
            min_amount_out,
            deadline,
        )

    def convert(
        self, member: str, from_code: str, to_code: str, amount_in: int, **kwargs: Any
    ) -> TxReceipt:
        """Convert as the member's custodian (the operator)."""
        request = self.conversion(member, from_code, to_code, amount_in, **kwargs)
        return self.transact(self.operator, self.exchange.functions.convert(request))

    def govern(self, calls: Sequence[GovernedCall], description: str = "test") -> list[int]:
        """Run calls through an M-of-N proposal."""
        return run_proposal(self.client, self.governance, self.governors, calls, description)

    def balance(self, code: str, member: str) -> int:
        return int(self.call(self.tokens[code].functions.balanceOf(member)))

    def events(self, receipt: TxReceipt, contract: Contract, name: str) -> list[dict[str, Any]]:
        """Decoded `name` events `contract` emitted in `receipt`, as plain dicts."""
        event = getattr(contract.events, name)()
        return [dict(log["args"]) for log in event.process_receipt(receipt, errors=_DISCARD)]

    def timestamp(self) -> int:
        return int(self.client.w3.eth.get_block("latest")["timestamp"])

    def advance_time(self, seconds: int) -> None:
        """Move chain time forward and mine a block."""
        self.client.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _discard_flag() -> Any:
    from web3.logs import DISCARD

    return DISCARD


_DISCARD = _discard_flag()


def emitted_by(receipt: TxReceipt, contract: Contract, name: str) -> list[dict[str, Any]]:
    """Decoded `name` events from logs that `contract` itself emitted in `receipt`.

    `DeployedAlliance.events` decodes every log whose topic matches, whatever its address,
    so it mixes e.g. `Paused` or `RoleRevoked` from several contracts in one receipt; this
    keeps only the logs at `contract.address`."""
    event = getattr(contract.events, name)()
    return [
        dict(log["args"])
        for log in event.process_receipt(receipt, errors=_DISCARD)
        if log["address"] == contract.address
    ]


def govern_once(
    alliance: DeployedAlliance, calls: Sequence[GovernedCall], description: str = "test"
) -> TxReceipt:
    """Run `calls` as one M-of-N proposal (propose, approve up to the threshold, execute)
    and return the execution receipt, which carries the events the calls emitted."""
    client, governance = alliance.client, alliance.governance
    encoded = [call.encoded() for call in calls]
    threshold = client.call(governance.functions.threshold())
    proposer, *approvers = alliance.governors[:threshold]
    proposal_id = client.call(governance.functions.proposalCount()) + 1
    client.transact(proposer, governance.functions.propose(encoded, description))
    for governor in approvers:
        client.transact(governor, governance.functions.approve(proposal_id))
    return client.transact(proposer, governance.functions.execute(proposal_id, encoded))


def deploy_test_alliance(compiled: CompileResult, rpc_url: str, keys_dir: Any) -> DeployedAlliance:
    """Deploy TEST_CONFIG to the chain at `rpc_url` with keys under `keys_dir`."""
    from alliance.deploy import deploy_alliance
    from alliance.keys import DevKeyStore

    config = AllianceConfig.model_validate(TEST_CONFIG)
    client = ChainClient.connect(
        rpc_url, [compiled.load_artifact(n) for n in compiled.contract_names]
    )
    parties = Parties.from_keys(DevKeyStore(keys_dir), config)
    manifest = deploy_alliance(client, compiled.load_artifact, config, parties)
    token = compiled.load_artifact("PointToken")

    def handle(name: str, address: str) -> Contract:
        return client.contract(compiled.load_artifact(name), address)

    return DeployedAlliance(
        client=client,
        compiled=compiled,
        config=config,
        manifest=manifest,
        parties=parties,
        governance=handle("AllianceGovernance", manifest.governance.address),
        exchange=handle("AllianceExchange", manifest.exchange.address),
        anchor=handle("SettlementAnchor", manifest.settlement_anchor.address),
        tokens={b.code: client.contract(token, b.token.address) for b in manifest.brands},
    )
