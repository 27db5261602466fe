"""Balances at a closing block: replayed from the indexed `Transfer`s, checked on chain.

The replay is the balances tree's source; chain state checks it twice (docs/settlement.md,
"Balances tree"): each token's `totalSupply` against the sum of its replayed balances, and
`balanceOf` at the closing block for every holding that moved in the period. A million
holdings are read with a deployless "lens" `eth_call` (`contracts/audit/BalanceLens.sol`:
its creation code runs `balanceOf` in a loop and returns the array), a few calls per
JSON-RPC batch; without the lens artifact, plain batched `balanceOf` calls do the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alliance.artifacts import Artifact
from alliance.db.settlement import chain_events_table
from alliance.rpc import JsonRpc

ZERO_ADDRESS = "0x" + "00" * 20
BALANCE_OF_SELECTOR = "70a08231"
LENS_CALLS_PER_BATCH = 8
"""Lens calls per JSON-RPC batch (each already reads `balance_batch_size` holdings)."""
STREAM_ROWS = 50_000
"""Rows fetched per round trip while replaying."""


@dataclass
class ReplayedBalances:
    """Balances per token at the closing block, and the holdings that moved in the period."""

    balances: dict[str, dict[str, int]]
    moved: dict[str, set[str]] = field(default_factory=dict)

    def holdings(self) -> Iterator[tuple[str, str, int]]:
        """(account, token, balance) for every non-zero balance."""
        for token, accounts in self.balances.items():
            for account, balance in accounts.items():
                if balance:
                    yield account, token, balance

    def total(self, token: str) -> int:
        return sum(self.balances[token].values())


def replay_transfers(
    factory: sessionmaker[Session], tokens: Sequence[str], opening: int, closing: int
) -> ReplayedBalances:
    """Replay every indexed `Transfer` of `tokens` up to `closing`; note holdings that
    moved in [opening, closing]."""
    balances: dict[str, dict[str, int]] = {token: {} for token in tokens}
    moved: dict[str, set[str]] = {token: set() for token in tokens}
    table = chain_events_table
    statement = (
        select(
            table.c.block_number,
            table.c.address,
            table.c.account,
            table.c.counterparty,
            table.c.amount,
        )
        .where(table.c.name == "Transfer", table.c.block_number <= closing)
        .order_by(table.c.block_number, table.c.log_index)
        .execution_options(yield_per=STREAM_ROWS)
    )
    with factory() as session:
        rows: Iterable[Any] = session.connection().execute(statement)
        for block, token, sender, receiver, amount in rows:
            accounts = balances.get(token)
            if accounts is None:
                continue  # Not an alliance token (cannot happen: only alliance logs are indexed).
            if sender != ZERO_ADDRESS:
                accounts[sender] = accounts.get(sender, 0) - amount
            if receiver != ZERO_ADDRESS:
                accounts[receiver] = accounts.get(receiver, 0) + amount
            if block >= opening:
                moved[token].update(a for a in (sender, receiver) if a != ZERO_ADDRESS)
    return ReplayedBalances(balances, moved)


class BalanceReader:
    """Reads many `balanceOf` at one block, through the lens when it is available."""

    def __init__(self, rpc: JsonRpc, lens: Artifact | None, batch_size: int) -> None:
        self.rpc = rpc
        self.lens = lens
        self.batch_size = batch_size

    def read(self, holdings: Sequence[tuple[str, str]], block: int) -> list[int]:
        """balanceOf(account) on token for each (token, account), at `block`."""
        if self.lens is None:
            return self._read_plain(holdings, block)
        chunks = [
            holdings[start : start + self.batch_size]
            for start in range(0, len(holdings), self.batch_size)
        ]
        results: list[int] = []
        for first in range(0, len(chunks), LENS_CALLS_PER_BATCH):
            group = chunks[first : first + LENS_CALLS_PER_BATCH]
            replies = self.rpc.batch(
                [("eth_call", [self._lens_call(c), hex(block)]) for c in group]
            )
            for reply in replies:
                (values,) = abi_decode(["uint256[]"], bytes.fromhex(reply[2:]))
                results.extend(values)
        assert len(results) == len(holdings)
        return results

    def _lens_call(self, chunk: Sequence[tuple[str, str]]) -> dict[str, str]:
        assert self.lens is not None
        (constructor,) = [entry for entry in self.lens.abi if entry["type"] == "constructor"]
        if constructor["inputs"][1]["type"] == "bytes":
            # Packed holdings (one byte of token index, then the account): initcode and
            # returned data are size-capped (EIP-3860, EIP-170), so 21 bytes per holding.
            tokens = sorted({token for token, _ in chunk})
            index = {token: position for position, token in enumerate(tokens)}
            packed = b"".join(
                bytes([index[token]]) + bytes.fromhex(account[2:]) for token, account in chunk
            )
            arguments = abi_encode(["address[]", "bytes"], [tokens, packed])
        else:
            arguments = abi_encode(
                ["address[]", "address[]"], [[t for t, _ in chunk], [a for _, a in chunk]]
            )
        # No gas given: the node runs calls with its block gas limit, which bounds
        # `balance_batch_size` (about 3,000 gas per holding read).
        return {"data": self.lens.bytecode + arguments.hex()}

    def _read_plain(self, holdings: Sequence[tuple[str, str]], block: int) -> list[int]:
        requests = [
            (
                "eth_call",
                [
                    {"to": token, "data": "0x" + BALANCE_OF_SELECTOR + account[2:].rjust(64, "0")},
                    hex(block),
                ],
            )
            for token, account in holdings
        ]
        return [int(reply, 16) for reply in self.rpc.batch(requests)]
