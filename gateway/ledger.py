"""The gateway's view of the deployed alliance: contract handles, reads, simulations and
the mapping from contract custom errors to gateway errors (the only place it happens)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from alliance.chain import ChainClient
from alliance.deploy import Deployment
from alliance.errors import ContractReverted
from alliance.manifest import BrandRecord
from gateway import errors

CHAIN_DOWN = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError)
"""What web3's HTTP provider raises when the node does not answer."""

CONTRACT_ERRORS: dict[str, Callable[..., errors.GatewayError]] = {
    "ExchangePairDisabled": errors.PairDisabled,
    "ExchangeBelowMinimum": errors.BelowMinimum,
    "ExchangeAboveMaximum": errors.AboveMaximum,
    "ExchangeDailyCapExceeded": errors.DailyCapExceeded,
    "ExchangeInsufficientOutput": errors.SlippageExceeded,
    "ExchangeAccountFrozen": errors.MemberFrozen,
    "PointTokenAccountFrozen": errors.MemberFrozen,
    "ERC20InsufficientBalance": errors.InsufficientPoints,
    "PointTokenGiftingDisabled": errors.GiftingDisabled,
    "EnforcedPause": errors.BrandSuspended,
    "ExchangeSameBrand": errors.SameBrand,
    "ExchangeInvalidAmount": errors.InvalidAmount,
    "ExchangeDeadlinePassed": errors.QuoteExpired,
    "ExchangeSelfCustodied": errors.SelfCustodyRequired,
    "ExchangeInvalidSignature": errors.InvalidSignature,
    "ExchangeUnknownBrand": errors.UnknownBrand,
    "SettlementAnchorAlreadyAcknowledged": errors.PeriodAlreadyAcknowledged,
}


def translate(error: ContractReverted) -> errors.GatewayError:
    """The gateway error for a contract revert (unknown reverts become `chain_rejected`)."""
    factory = CONTRACT_ERRORS.get(error.error_name, errors.ChainRejected)
    return factory(f"{error.error_name}{tuple(error.arguments)!r}")


def error_code_for(error_name: str) -> str:
    """The stable code for a decoded contract error name."""
    return CONTRACT_ERRORS.get(error_name, errors.ChainRejected).code  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Brand:
    """A brand as the gateway uses it."""

    code: str
    record: BrandRecord
    token: Contract

    @property
    def address(self) -> str:
        return self.token.address


@dataclass
class Ledger:
    """The deployed alliance, seen from the gateway."""

    deployment: Deployment
    brands: dict[str, Brand]
    exchange: Contract
    keys: Callable[[str], LocalAccount]
    """Signing accounts by party name: `operator`, `<brand>.issuer`, `<brand>.admin`."""

    @classmethod
    def from_deployment(cls, deployment: Deployment, keys: Callable[[str], LocalAccount]) -> Ledger:
        token = deployment.compiled.load_artifact("PointToken")
        brands = {
            record.code: Brand(
                record.code, record, deployment.client.contract(token, record.token.address)
            )
            for record in deployment.manifest.brands
        }
        exchange = deployment.contract("AllianceExchange", deployment.manifest.exchange.address)
        return cls(deployment, brands, exchange, keys)

    @property
    def client(self) -> ChainClient:
        return self.deployment.client

    @property
    def w3(self) -> Web3:
        return self.deployment.client.w3

    @cached_property
    def anchor(self) -> Contract:
        """`SettlementAnchor`: where periods are anchored and brands acknowledge them."""
        return self.deployment.contract(
            "SettlementAnchor", self.deployment.manifest.settlement_anchor.address
        )

    def acknowledgement(
        self, period_id: int, brand_code: str, from_block: int
    ) -> dict[str, Any] | None:
        """The brand's on-chain acknowledgement of `period_id` (`tx_hash`, `block_number`,
        `acknowledged_by`), or None. `from_block`: where to look for its `PeriodAcknowledged`
        log (the period's closing block: the anchor, and so any acknowledgement, is later).
        Untranslated: an unreachable node raises one of `CHAIN_DOWN`."""
        token = self.brand(brand_code).address
        if not self.client.call(self.anchor.functions.isAcknowledged(period_id, token)):
            return None
        logs = self.anchor.events.PeriodAcknowledged().get_logs(
            argument_filters={"periodId": period_id, "token": token}, from_block=from_block
        )
        assert len(logs) == 1, f"{brand_code} acknowledged {period_id} with {len(logs)} logs"
        return {
            "tx_hash": logs[0]["transactionHash"].to_0x_hex(),
            "block_number": logs[0]["blockNumber"],
            "acknowledged_by": logs[0]["args"]["acknowledgedBy"],
        }

    def brand(self, code: str) -> Brand:
        """The brand `code`, or `unknown_brand`."""
        try:
            return self.brands[code]
        except KeyError:
            raise errors.UnknownBrand(f"no brand {code!r}") from None

    def read(self, function: Any) -> Any:
        """A chain read; an unreachable node becomes `chain_unavailable`."""
        try:
            return self.client.call(function)
        except ContractReverted as reverted:
            raise translate(reverted) from None
        except CHAIN_DOWN:
            raise errors.ChainUnavailable("the chain is unreachable") from None

    def simulate(self, sender: LocalAccount, function: Any) -> Any:
        """Run `function` as `sender` without sending it: its result, or its revert translated."""
        try:
            return self.client.call(function, sender=sender.address)
        except ContractReverted as reverted:
            raise translate(reverted) from None
        except CHAIN_DOWN:
            raise errors.ChainUnavailable("the chain is unreachable") from None

    def is_reachable(self) -> bool:
        try:
            _ = self.w3.eth.block_number
        except CHAIN_DOWN:
            return False
        return True
