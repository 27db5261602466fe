"""`evidence`: everything the chain says about one request id, in one JSON bundle.

For a dispute handler who must keep a record that stands on its own: the events carrying
the request id (any alliance contract; token and exchange ids are separate namespaces, so
all matches are listed), each transaction and receipt exactly as the node returned them,
the rate versions and pair policy in force at the event, the anchored period the event
falls in and the inclusion proofs of the member's resulting balances in that period.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alliance.audit.proofs import proof_document, replay_period
from alliance.audit.rates import PairPolicyBook, RateBookReplay
from alliance.audit.reading import (
    AuditChain,
    Progress,
    _no_progress,
    rate_book,
    topic_events,
)
from alliance.audit.replay import Anchor
from alliance.chainstate import transaction_and_receipt
from alliance.errors import AuditRequestNotFound, NotALeaf
from alliance.events import ChainEvent

EVIDENCE_FORMAT = "alliance-evidence/1"
REQUEST_EVENTS = (
    "Converted",
    "ConversionRejected",
    "Gifted",
    "PointsMinted",
    "PointsBurned",
    "ApprovalRequested",
    "ApprovalCancelled",
)
"""Events whose first indexed argument is a request id."""


def evidence(
    chain: AuditChain,
    request_id: int,
    *,
    cache_dir: Path | None = None,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """The evidence bundle of `request_id`."""
    head = chain.rpc.block_number()
    word = "0x" + request_id.to_bytes(32, "big").hex()
    matches = topic_events(chain, REQUEST_EVENTS, head, second_topic=word)
    if not matches:
        raise AuditRequestNotFound(request_id)
    rates, policies = rate_book(chain, head)
    anchors = chain.anchors(head)
    last_event = matches[-1][0]
    anchor = next((a for a in anchors if a.closing_block >= last_event.block_number), None)
    bundle: dict[str, Any] = {
        "format": EVIDENCE_FORMAT,
        "request_id": str(request_id),
        "chain_id": chain.chain_id(),
        "head_block": head,
        "events": [_event_json(chain, e, t, rates, policies) for e, t in matches],
        "transactions": _transactions(chain, [event for event, _ in matches]),
        "period": anchor.to_json() if anchor else None,
        "proofs": [],
        "notes": [],
    }
    if anchor is None:
        bundle["notes"].append("the request's block is not in an anchored period yet")
    else:
        _add_proofs(chain, anchor, [e for e, _ in matches], bundle, cache_dir, progress)
    return bundle


def _event_json(
    chain: AuditChain,
    event: ChainEvent,
    timestamp: int,
    rates: RateBookReplay,
    policies: PairPolicyBook,
) -> dict[str, Any]:
    tokens = _tokens_of(chain, event)
    entry: dict[str, Any] = {
        "event": event.name,
        "contract": event.address,
        "contract_name": _contract_name(chain, event.address),
        "block": event.block_number,
        "block_timestamp": timestamp,
        "log_index": event.log_index,
        "transaction_hash": event.transaction_hash,
        "args": {key: _plain(value) for key, value in event.args.items()},
        "rates_in_force": {
            chain.brands.get(token, token): _version_json(rates.rate_at(token, timestamp))
            for token in tokens
        },
        "rate_history": {
            chain.brands.get(token, token): [v.to_json() for v in rates.versions.get(token, [])]
            for token in tokens
        },
    }
    if event.name == "Converted":
        pair = (event.args["fromToken"], event.args["toToken"])
        policy = policies.at(pair, event.position)
        entry["pair_policy_in_force"] = policy.to_json() if policy else None
    return entry


def _add_proofs(
    chain: AuditChain,
    anchor: Anchor,
    events: list[ChainEvent],
    bundle: dict[str, Any],
    cache_dir: Path | None,
    progress: Progress,
) -> None:
    close = replay_period(chain, anchor, cache_dir=cache_dir, progress=progress)
    holdings = sorted(
        {(member, token) for event in events for member, token in _holdings_of(chain, event)}
    )
    for member, token in holdings:
        try:
            bundle["proofs"].append(proof_document(chain, anchor, close, member, token))
        except NotALeaf:
            bundle["notes"].append(
                f"{member} held no {chain.brands[token]} points at block {anchor.closing_block}"
                " (zero balances are not leaves)"
            )


def _tokens_of(chain: AuditChain, event: ChainEvent) -> list[str]:
    args = event.args
    if event.name == "Converted":
        return [args["fromToken"], args["toToken"]]
    if event.name == "Gifted":
        return [args["token"]]
    return [event.address] if event.address in chain.brands else []


def _holdings_of(chain: AuditChain, event: ChainEvent) -> list[tuple[str, str]]:
    args = event.args
    if event.name == "Converted":
        return [(args["member"], args["fromToken"]), (args["member"], args["toToken"])]
    if event.name == "Gifted":
        return [(args["from"], args["token"]), (args["to"], args["token"])]
    if event.name in ("PointsMinted", "PointsBurned", "ApprovalRequested"):
        return [(args["account"], event.address)]
    return []


def _transactions(chain: AuditChain, events: list[ChainEvent]) -> list[dict[str, Any]]:
    hashes = list(dict.fromkeys(event.transaction_hash for event in events))
    bundles = []
    for transaction_hash in hashes:
        transaction, receipt = transaction_and_receipt(chain.rpc, transaction_hash)
        bundles.append({"hash": transaction_hash, "transaction": transaction, "receipt": receipt})
    return bundles


def _contract_name(chain: AuditChain, address: str) -> str:
    manifest = chain.manifest
    if address in chain.brands:
        return f"PointToken ({chain.brands[address]})"
    names = {
        manifest.exchange.address.lower(): "AllianceExchange",
        manifest.governance.address.lower(): "AllianceGovernance",
        manifest.settlement_anchor.address.lower(): "SettlementAnchor",
    }
    return names.get(address, "unknown")


def _version_json(version: Any) -> Any:
    return version.to_json() if version is not None else None


def _plain(value: Any) -> Any:
    """Event argument as JSON: bytes as hex, big integers as decimal strings."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53:
        return str(value)
    return value
