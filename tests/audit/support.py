"""A settled test alliance for the audit tests, built independently of the audit code.

`Settlement` plays the settlement service with the core's pure modules only: it records
the period's activity from the test's own transaction receipts (decoded by web3.py, not by
the audit's replay), reads the closing balances of the members it created with
`balanceOf` at the closing block, builds the root (`alliance.merkle`) and the statements
document (`alliance.statements`), publishes `<dir>/<period_id>/statements.json` and
anchors both with the settler's key. So a clean verify is two independent paths agreeing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from web3.types import TxReceipt

from alliance.audit.reading import AuditChain
from alliance.events import alliance_catalogue
from alliance.merkle import BalancesTree
from alliance.netting import Conversion
from alliance.rpc import JsonRpc
from alliance.statements import (
    BrandInfo,
    PeriodActivity,
    PeriodFacts,
    build_statements,
    canonical_bytes,
    statements_hash,
)
from tests.support.alliance import DeployedAlliance, new_member


def audit_chain(alliance: DeployedAlliance, rpc: JsonRpc, *, lens: bool = True) -> AuditChain:
    """The audit's view of the test alliance."""
    load = alliance.compiled.load_artifact
    return AuditChain(
        rpc=rpc,
        manifest=alliance.manifest,
        catalogue=alliance_catalogue(load),
        lens_code=load("BalanceLens").bytecode if lens else None,
    )


@dataclass
class Settlement:
    """Drives activity and settles periods like the settlement service would."""

    alliance: DeployedAlliance
    statements_dir: Path
    members: list[str] = field(default_factory=list)
    activity: PeriodActivity = field(default_factory=PeriodActivity)
    opening_block: int = 0
    opening_supply: dict[str, int] = field(default_factory=dict)
    anchors: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.opening_block = self.alliance.manifest.deploy_block
        self.opening_supply = {code: 0 for code in self.alliance.tokens}

    # ------------------------------------------------------------------ activity

    def member(self) -> str:
        address = new_member().address
        self.members.append(address)
        return address

    def deposit(self, code: str, member: str, amount: int) -> TxReceipt:
        receipt = self.alliance.deposit(code, member, amount)
        self.activity.add_mint(code, 1, amount)
        return receipt

    def convert(self, member: str, from_code: str, to_code: str, amount: int) -> TxReceipt:
        receipt = self.alliance.convert(member, from_code, to_code, amount)
        (event,) = self.alliance.events(receipt, self.alliance.exchange, "Converted")
        self.activity.add_conversion(
            Conversion(
                from_brand=from_code,
                to_brand=to_code,
                amount_in=event["amountIn"],
                amount_out=event["amountOut"],
                fee_points=event["feePoints"],
                value_in=event["valueIn"],
                rate_to=event["rateTo"],
            )
        )
        return receipt

    def busy_day(self, members: int = 3) -> list[str]:
        """Deposits in two brands and conversions both ways."""
        created = [self.member() for _ in range(members)]
        for index, member in enumerate(created):
            self.deposit("bean", member, 10_000 + index)
            self.deposit("sky", member, 5_000)
            self.convert(member, "bean", "sky", 1_000 + 7 * index)
            self.convert(member, "sky", "bean", 300)
        return created

    # ------------------------------------------------------------------ settling

    def close(self, period_id: int) -> dict[str, Any]:
        """Close the period at the latest block; return the document and its facts."""
        w3 = self.alliance.client.w3
        closing_block = int(w3.eth.block_number)
        holdings = [
            (member, token.address, self._balance(token, member, closing_block))
            for member in self.members
            for token in self.alliance.tokens.values()
        ]
        root = BalancesTree.from_balances(holdings).root
        supply = {
            code: int(token.functions.totalSupply().call(block_identifier=closing_block))
            for code, token in self.alliance.tokens.items()
        }
        facts = PeriodFacts(
            period_id=period_id,
            time_zone="UTC",
            opening_block=self.opening_block,
            closing_block=closing_block,
            balances_root=root,
            peg=Decimal(1),
            currency="USD",
            brands=[BrandInfo(code, t.address.lower()) for code, t in self.alliance.tokens.items()],
            opening_supply=self.opening_supply,
            closing_supply=supply,
        )
        document = build_statements(facts, self.activity)
        self.activity = PeriodActivity()
        self.opening_block, self.opening_supply = closing_block + 1, supply
        return document

    def publish_and_anchor(
        self, document: dict[str, Any], *, root: bytes | None = None, data: bytes | None = None
    ) -> TxReceipt:
        """Write statements.json and anchor it (a forged `root` or `data` if given)."""
        data = canonical_bytes(document) if data is None else data
        folder = self.statements_dir / str(document["period_id"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "statements.json").write_bytes(data)
        anchored_root = bytes.fromhex(document["balances_root"][2:]) if root is None else root
        # The anchor needs a closing block below the current one.
        self.alliance.client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        function = self.alliance.anchor.functions.anchor(
            document["period_id"],
            document["closing_block"],
            anchored_root,
            statements_hash(data),
        )
        receipt = self.alliance.transact(self.alliance.settler, function)
        self.anchors.append({"document": document, "receipt": receipt})
        return receipt

    def settle(self, period_id: int) -> dict[str, Any]:
        document = self.close(period_id)
        self.publish_and_anchor(document)
        return document

    @staticmethod
    def _balance(token: Any, member: str, block: int) -> int:
        return int(token.functions.balanceOf(member).call(block_identifier=block))
