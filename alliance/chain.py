"""The chain boundary: a web3.py client that signs locally and speaks in project errors.

Every transaction is signed here with a local key and sent raw, so a retry resends the
same bytes (same hash, same nonce) and can never double-apply. Web3 exceptions are
translated here and nowhere else: a contract revert becomes `ContractReverted` carrying the
decoded custom error's name and arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.types import BlockIdentifier, TxParams, TxReceipt, Wei

from alliance.artifacts import Artifact
from alliance.errors import ContractReverted, TransactionFailed

RECEIPT_TIMEOUT_S = 30.0
"""How long to wait for a receipt before declaring a transaction failed."""

RECEIPT_POLL_S = 0.01
"""Receipt polling interval; Anvil and QBFT blocks land in milliseconds to seconds."""

GAS_HEADROOM_NUMERATOR = 6
GAS_HEADROOM_DENOMINATOR = 5
"""Gas limit = estimate * 6/5: headroom for state that changes between estimate and mining."""

_BUILTIN_ERRORS: dict[bytes, tuple[str, tuple[str, ...]]] = {
    keccak(text="Error(string)")[:4]: ("Error", ("string",)),
    keccak(text="Panic(uint256)")[:4]: ("Panic", ("uint256",)),
}


def abi_type(component: Mapping[str, Any]) -> str:
    """The canonical ABI type string of one input, expanding tuples."""
    type_name: str = component["type"]
    if type_name.startswith("tuple"):
        inner = ",".join(abi_type(child) for child in component["components"])
        return f"({inner}){type_name[len('tuple') :]}"
    return type_name


class ErrorDecoder:
    """Maps revert data to (error name, arguments) using the custom errors of given ABIs."""

    def __init__(self, abis: Iterable[list[dict[str, Any]]]) -> None:
        self._errors = dict(_BUILTIN_ERRORS)
        for abi in abis:
            for entry in abi:
                if entry.get("type") != "error":
                    continue
                types = tuple(abi_type(item) for item in entry["inputs"])
                selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
                self._errors[selector] = (entry["name"], types)

    def decode(self, data: bytes) -> tuple[str, tuple[Any, ...]]:
        """Decode revert `data`; unknown or empty data decodes as `UnknownRevert`."""
        known = self._errors.get(bytes(data[:4]))
        if known is None:
            return "UnknownRevert", ("0x" + bytes(data).hex(),)
        name, types = known
        return name, tuple(abi_decode(list(types), bytes(data[4:])))


def revert_data(error: ContractLogicError) -> bytes:
    """The raw revert bytes web3.py attached to `error` (empty when it had none)."""
    data = error.data
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, str) or not data.startswith("0x"):
        return b""
    return bytes.fromhex(data[2:])


@dataclass
class ChainClient:
    """A web3 connection plus the error decoder for every alliance contract."""

    w3: Web3
    decoder: ErrorDecoder

    @classmethod
    def connect(cls, rpc_url: str, artifacts: Iterable[Artifact]) -> ChainClient:
        """Connect over HTTP JSON-RPC; `artifacts` supply the custom errors to decode."""
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": RECEIPT_TIMEOUT_S}))
        return cls(w3=w3, decoder=ErrorDecoder(artifact.abi for artifact in artifacts))

    def contract(self, artifact: Artifact, address: str) -> Contract:
        """A contract handle at `address` with `artifact`'s ABI."""
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)

    def call(
        self,
        function: ContractFunction,
        *,
        block: BlockIdentifier = "latest",
        sender: str | None = None,
    ) -> Any:
        """Run a read-only call (as `sender`, if given), translating reverts."""
        transaction: TxParams = {"from": Web3.to_checksum_address(sender)} if sender else {}
        try:
            return function.call(transaction, block_identifier=block)
        except ContractLogicError as error:
            raise self._reverted(error, function) from None

    def transact(
        self, sender: LocalAccount, function: ContractFunction, *, gas: int | None = None
    ) -> TxReceipt:
        """Estimate, sign, send and wait for `function` from `sender`; raise on revert."""
        transaction = function.build_transaction(
            self._base_transaction(
                sender, gas=gas or self.estimate(function, sender=sender.address)
            )
        )
        return self._sign_and_send(sender, transaction)

    def deploy(
        self, sender: LocalAccount, artifact: Artifact, *args: Any
    ) -> tuple[Contract, TxReceipt]:
        """Deploy `artifact` with constructor `args`; return the contract and the receipt."""
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        constructor = factory.constructor(*args)
        try:
            gas = constructor.estimate_gas({"from": sender.address})
        except ContractLogicError as error:
            raise self._reverted(error, None, f"{artifact.contract_name}.constructor") from None
        transaction = constructor.build_transaction(
            self._base_transaction(
                sender, gas=gas * GAS_HEADROOM_NUMERATOR // GAS_HEADROOM_DENOMINATOR
            )
        )
        receipt = self._sign_and_send(sender, transaction)
        address = receipt["contractAddress"]
        assert address is not None, receipt
        return self.contract(artifact, address), receipt

    def send_signed(self, raw_transaction: bytes) -> TxReceipt:
        """Send signed bytes and wait for the receipt; a reverted receipt raises."""
        tx_hash = self.w3.eth.send_raw_transaction(raw_transaction)
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=RECEIPT_POLL_S
            )
        except TimeExhausted:
            raise TransactionFailed(tx_hash.to_0x_hex(), "no receipt in time") from None
        if receipt["status"] != 1:
            raise TransactionFailed(tx_hash.to_0x_hex(), "reverted on chain")
        return receipt

    def _sign_and_send(self, sender: LocalAccount, transaction: TxParams) -> TxReceipt:
        signed = sender.sign_transaction(cast(dict[str, Any], transaction))
        return self.send_signed(signed.raw_transaction)

    def estimate(self, function: ContractFunction, *, sender: str) -> int:
        """A gas limit for `function` from `sender` (estimate plus headroom); a revert raises
        `ContractReverted` without anything being sent."""
        try:
            estimate = function.estimate_gas({"from": Web3.to_checksum_address(sender)})
        except ContractLogicError as error:
            raise self._reverted(error, function) from None
        return estimate * GAS_HEADROOM_NUMERATOR // GAS_HEADROOM_DENOMINATOR

    def _base_transaction(self, sender: LocalAccount, *, gas: int) -> TxParams:
        # Gas is free on the permissioned chain (gas price zero), so a legacy transaction
        # with price zero is accepted by Anvil and by Besu QBFT alike.
        return {
            "from": sender.address,
            "nonce": self.w3.eth.get_transaction_count(sender.address, "pending"),
            "gas": gas,
            "gasPrice": Wei(0),
            "chainId": self.w3.eth.chain_id,
        }

    def _reverted(
        self, error: ContractLogicError, function: ContractFunction | None, name: str = ""
    ) -> ContractReverted:
        error_name, arguments = self.decoder.decode(revert_data(error))
        function_name = name or (function.fn_name if function is not None else "")
        return ContractReverted(error_name, arguments, function_name)
