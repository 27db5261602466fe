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

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alliance.artifacts import Artifact
from alliance.chainstate import balances_batched, balances_lens
from alliance.db.settlement import chain_events_table
from alliance.rpc import JsonRpc

ZERO_ADDRESS = "0x" + "00" * 20
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
    """Reads many `balanceOf` at one block, through the lens when it is available
    (`alliance.chainstate`, shared with the audit tool)."""

    def __init__(self, rpc: JsonRpc, lens: Artifact | None, batch_size: int) -> None:
        self.rpc = rpc
        self.lens = lens
        self.batch_size = batch_size

    def read(self, holdings: Sequence[tuple[str, str]], block: int) -> list[int]:
        """balanceOf(account) on token for each (token, account), at `block`."""
        if self.lens is None:
            return balances_batched(self.rpc, holdings, block)
        results = balances_lens(
            self.rpc, self.lens.bytecode, holdings, block, holdings_per_call=self.batch_size
        )
        assert len(results) == len(holdings)
        return results
