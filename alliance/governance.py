"""Driving M-of-N governance: propose a batch of calls, collect approvals, execute."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from alliance.chain import ChainClient

PROPOSAL_CALLS_MAX = 64
"""The governance contract's `PROPOSAL_CALLS_MAX`: larger batches are split."""


@dataclass(frozen=True)
class GovernedCall:
    """One call a proposal makes, with the governance contract as the caller."""

    target: Contract
    function: str
    args: tuple[Any, ...]

    def encoded(self) -> tuple[str, str]:
        """The (target, calldata) pair the governance contract stores."""
        data = self.target.encode_abi(self.function, args=list(self.args))
        return (self.target.address, data)


def run_proposal(
    client: ChainClient,
    governance: Contract,
    governors: Sequence[LocalAccount],
    calls: Sequence[GovernedCall],
    description: str,
) -> list[int]:
    """Propose `calls` (split into chunks the contract accepts), approve each chunk with
    the first `threshold` governors and execute it. Returns the proposal ids."""
    threshold = client.call(governance.functions.threshold())
    assert len(governors) >= threshold, "not enough governor keys to reach the threshold"
    proposal_ids = []
    for start in range(0, len(calls), PROPOSAL_CALLS_MAX):
        chunk = [call.encoded() for call in calls[start : start + PROPOSAL_CALLS_MAX]]
        proposal_id = client.call(governance.functions.proposalCount()) + 1
        client.transact(governors[0], governance.functions.propose(chunk, description))
        for governor in governors[1:threshold]:
            client.transact(governor, governance.functions.approve(proposal_id))
        client.transact(governors[0], governance.functions.execute(proposal_id, chunk))
        proposal_ids.append(proposal_id)
    return proposal_ids
