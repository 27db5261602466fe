"""`prove` and `check-proof`: one member's balance in an anchored period, provably.

`prove` replays the chain to the period's closing block, rebuilds the balances tree
(`alliance.merkle`, the same code the settlement service anchors with), checks its root
against the anchor, and writes the holding's leaf and sibling path as a JSON document a
member or brand can hand to anyone. `check_proof` needs only that document: it recomputes
the root from the leaf and the path, and compares it with a root the checker trusts (given
offline) or with the anchor read from the chain (`anchorOf(periodId)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from alliance.audit.findings import hex_bytes
from alliance.audit.reading import AuditChain, Progress, _no_progress, run_replay
from alliance.audit.replay import Anchor, PeriodClose
from alliance.errors import AuditProofUnreadable, AuditRootMismatch, NotALeaf
from alliance.merkle import BalancesTree, leaf_hash, verify_proof
from alliance.rpc import JsonRpc

PROOF_FORMAT = "alliance-balance-proof/1"
ANCHOR_OF = keccak(text="anchorOf(uint256)")[:4]


def replay_period(
    chain: AuditChain, anchor: Anchor, *, cache_dir: Path | None, progress: Progress
) -> PeriodClose:
    """The replayed state at the anchor's closing block, its root checked against the anchor."""
    replay = chain.new_replay(anchor.closing_block, [anchor.closing_block], keep_balances=True)
    run_replay(chain, replay, anchor.closing_block, cache_dir=cache_dir, progress=progress)
    close = replay.closes[anchor.closing_block]
    if close.balances_root != anchor.balances_root:
        raise AuditRootMismatch(
            anchor.period_id, hex_bytes(anchor.balances_root), hex_bytes(close.balances_root)
        )
    return close


def proof_document(
    chain: AuditChain, anchor: Anchor, close: PeriodClose, account: str, token: str
) -> dict[str, Any]:
    """The proof of (account, token) at the period's close, as a self-contained document."""
    assert close.balances is not None, "replay_period keeps the balances"
    account = account.lower()
    balance = close.balances.get((token, account), 0)
    if balance == 0:
        raise NotALeaf(account=account, token=token, balance=0)
    tree = BalancesTree.from_balances((a, t, b) for (t, a), b in close.balances.items())
    siblings = tree.proof(account, token, balance)
    return {
        "format": PROOF_FORMAT,
        "chain_id": chain.chain_id(),
        "settlement_anchor": chain.anchor,
        "period_id": anchor.period_id,
        "closing_block": anchor.closing_block,
        "anchor_transaction": anchor.transaction_hash,
        "anchor_block": anchor.block_number,
        "balances_root": hex_bytes(anchor.balances_root),
        "statements_hash": hex_bytes(anchor.statements_hash),
        "leaf": {
            "account": account,
            "token": token,
            "brand": chain.brands[token],
            "balance": str(balance),
        },
        "leaf_hash": hex_bytes(leaf_hash(account, token, balance)),
        "leaf_encoding": "keccak256(keccak256(abi.encode(address account, address token, "
        "uint256 balance)))",
        "proof": [hex_bytes(sibling) for sibling in siblings],
        "proof_hashing": "sorted pairs, keccak256 (OpenZeppelin MerkleProof)",
    }


def prove(
    chain: AuditChain,
    period_id: int,
    account: str,
    brand: str,
    *,
    cache_dir: Path | None = None,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """Replay to `period_id`'s closing block and prove the member's balance there."""
    anchor = chain.anchor_of(period_id, chain.rpc.block_number())
    close = replay_period(chain, anchor, cache_dir=cache_dir, progress=progress)
    return proof_document(chain, anchor, close, account, chain.token_of(brand))


@dataclass
class ProofCheck:
    """What `check_proof` established (`ok` only when every check it made passed)."""

    leaf_matches_root: bool
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.leaf_matches_root and all(self.checks.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "leaf_matches_root": self.leaf_matches_root,
            "checks": self.checks,
            "notes": self.notes,
        }


def check_proof(
    document: dict[str, Any], *, rpc: JsonRpc | None = None, trusted_root: str | None = None
) -> ProofCheck:
    """Verify a proof document offline (against `trusted_root`) and/or against the chain."""
    try:
        leaf = document["leaf"]
        root = bytes.fromhex(document["balances_root"][2:])
        siblings = [bytes.fromhex(item[2:]) for item in document["proof"]]
        account, token, balance = leaf["account"], leaf["token"], int(leaf["balance"])
    except (KeyError, ValueError, TypeError) as error:
        raise AuditProofUnreadable(Path("<document>"), str(error)) from None
    result = ProofCheck(verify_proof(root, account, token, balance, siblings))
    if trusted_root is not None:
        result.checks["root_equals_trusted_root"] = trusted_root.lower() == hex_bytes(root)
    if rpc is not None:
        _check_on_chain(document, rpc, root, result)
    if not result.checks:
        result.notes.append("no trusted root or chain given: only the path itself was checked")
    return result


def _check_on_chain(
    document: dict[str, Any], rpc: JsonRpc, root: bytes, result: ProofCheck
) -> None:
    call = {
        "to": document["settlement_anchor"],
        "data": "0x" + (ANCHOR_OF + abi_encode(["uint256"], [document["period_id"]])).hex(),
    }
    raw = bytes.fromhex(rpc.call("eth_call", call, "latest")[2:])
    ((closing_block, anchored_at, balances_root, _),) = abi_decode(
        ["(uint64,uint48,bytes32,bytes32)"], raw
    )
    result.checks["period_anchored_on_chain"] = anchored_at != 0
    result.checks["root_equals_anchor"] = balances_root == root
    result.checks["closing_block_equals_anchor"] = closing_block == document["closing_block"]
    chain_id = int(rpc.call("eth_chainId"), 16)
    result.checks["chain_id_matches"] = chain_id == document["chain_id"]
