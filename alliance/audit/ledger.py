"""The replayed ledger: balances, supplies, request ids and why every point moved.

A pure state machine over the tokens' `Transfer`, `PointsMinted`, `PointsBurned`,
`ApprovalRequested`, `ApprovalCancelled` and the exchange's `Converted` and `Gifted`
events, in chain order. It checks contract invariants 1-3 (docs/contracts.md): balances
and supplies are sums of transfers and never negative; every mint, burn and move is
explained in its own transaction by exactly one issuer or exchange event; a request id is
processed at most once per contract, with a reason code its entry point accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alliance.audit.findings import Finding, hex_bytes
from alliance.events import ChainEvent
from alliance.statements import reason_name

ZERO_ADDRESS = "0x" + "00" * 20

SOURCES = ("none", "spend", "campaign", "referral", "compensation")
"""IPointToken.Source by value."""

DIRECT_MINT_SOURCES = frozenset({1, 2, 3})
"""Sources `PointToken.mint` accepts (Spend, Campaign, Referral), always with Deposit."""

DIRECT_BURN_REASONS = frozenset({2, 4})
"""Reasons `PointToken.burn` accepts: Withdrawal, Expiry."""

APPROVED_KINDS = frozenset({(1, 4), (5, 0)})
"""(reason, source) that need two approvers: Deposit+Compensation, Correction."""


def source_name(source: int) -> str:
    return SOURCES[source] if source < len(SOURCES) else f"source_{source}"


@dataclass
class Ledger:
    """Balances, supplies and request ids as the events tell them."""

    balances: dict[tuple[str, str], int] = field(default_factory=dict)
    """(token, account) → points."""
    supplies: dict[str, int] = field(default_factory=dict)
    token_request_ids: dict[str, set[int]] = field(default_factory=dict)
    exchange_request_ids: set[int] = field(default_factory=set)
    pending_approvals: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    _transaction: str = ""
    _unexplained: list[ChainEvent] = field(default_factory=list)

    # ------------------------------------------------------------------ transfers

    def transfer(self, event: ChainEvent) -> list[Finding]:
        """Apply one token `Transfer` (mints from and burns to the zero address)."""
        findings = self._enter(event)
        token, args = event.address, event.args
        sender, receiver, value = args["from"], args["to"], args["value"]
        if sender == ZERO_ADDRESS:
            self.supplies[token] = self.supplies.get(token, 0) + value
        else:
            left = self.balances.get((token, sender), 0) - value
            self.balances[(token, sender)] = left
            if left < 0:
                findings.append(_negative(event, sender, left))
        if receiver == ZERO_ADDRESS:
            self.supplies[token] = self.supplies.get(token, 0) - value
        else:
            key = (token, receiver)
            self.balances[key] = self.balances.get(key, 0) + value
        self._unexplained.append(event)
        return findings

    def _enter(self, event: ChainEvent) -> list[Finding]:
        """Start a new transaction's bookkeeping when `event` opens one."""
        if event.transaction_hash == self._transaction:
            return []
        findings = self.flush()
        self._transaction = event.transaction_hash
        return findings

    def flush(self) -> list[Finding]:
        """Report the transfers of the finished transaction that nothing explained."""
        findings = [
            Finding(
                "unexplained_transfer",
                f"Transfer of {e.args['value']} on {e.address} has no explaining event",
                {**_where(e), "from": e.args["from"], "to": e.args["to"], "value": e.args["value"]},
            )
            for e in self._unexplained
        ]
        self._unexplained.clear()
        return findings

    def _explain(
        self, event: ChainEvent, token: str, sender: str, receiver: str, value: int
    ) -> bool:
        """Match (and consume) the transfer `event` describes in its own transaction."""
        if event.transaction_hash != self._transaction:
            return False
        for index in range(len(self._unexplained) - 1, -1, -1):
            candidate = self._unexplained[index]
            args = candidate.args
            if (
                candidate.address == token
                and args["from"] == sender
                and args["to"] == receiver
                and args["value"] == value
            ):
                del self._unexplained[index]
                return True
        return False

    # ------------------------------------------------------------------ issuer events

    def minted(self, event: ChainEvent) -> list[Finding]:
        """Apply a `PointsMinted`: explained transfer, unique id, valid reason."""
        args = event.args
        findings = self._enter(event)
        if not self._explain(event, event.address, ZERO_ADDRESS, args["account"], args["amount"]):
            findings.append(_unbacked(event))
        kind = (args["reason"], args["source"])
        direct = args["reason"] == 1 and args["source"] in DIRECT_MINT_SOURCES
        findings += self._issuer_request(event, args["amount"], kind, direct)
        return findings

    def burned(self, event: ChainEvent) -> list[Finding]:
        """Apply a `PointsBurned`: explained transfer, unique id, valid reason."""
        args = event.args
        findings = self._enter(event)
        if not self._explain(event, event.address, args["account"], ZERO_ADDRESS, args["amount"]):
            findings.append(_unbacked(event))
        kind = (args["reason"], 0)
        direct = args["reason"] in DIRECT_BURN_REASONS
        findings += self._issuer_request(event, -args["amount"], kind, direct)
        return findings

    def _issuer_request(
        self, event: ChainEvent, delta: int, kind: tuple[int, int], direct: bool
    ) -> list[Finding]:
        token, request_id = event.address, event.args["requestId"]
        pending = self.pending_approvals.pop((token, request_id), None)
        if pending is not None:
            return _approval_findings(event, pending, delta, kind)
        used = self.token_request_ids.setdefault(token, set())
        findings = []
        if request_id in used:
            findings.append(_duplicate(event, token))
        used.add(request_id)
        if kind in APPROVED_KINDS:
            findings.append(
                Finding(
                    "unapproved_mint_or_burn",
                    f"{reason_name(kind[0])} request {request_id} on {token} had no approval "
                    "request",
                    _where(event),
                )
            )
        elif not direct:
            findings.append(_invalid_reason(event, kind))
        return findings

    def approval_requested(self, event: ChainEvent) -> list[Finding]:
        """Apply an `ApprovalRequested`: the id is taken from now on."""
        token, args = event.address, event.args
        used = self.token_request_ids.setdefault(token, set())
        findings = [_duplicate(event, token)] if args["requestId"] in used else []
        used.add(args["requestId"])
        self.pending_approvals[(token, args["requestId"])] = dict(args)
        return findings

    def approval_cancelled(self, event: ChainEvent) -> list[Finding]:
        """Apply an `ApprovalCancelled`: the id stays used, nothing is pending any more."""
        self.pending_approvals.pop((event.address, event.args["requestId"]), None)
        return []

    # ------------------------------------------------------------------ exchange events

    def converted(self, event: ChainEvent) -> list[Finding]:
        """Apply a `Converted`: a burn on fromToken and a mint on toToken, unique id."""
        args = event.args
        findings = self._enter(event)
        member = args["member"]
        burned = self._explain(event, args["fromToken"], member, ZERO_ADDRESS, args["amountIn"])
        minted = self._explain(event, args["toToken"], ZERO_ADDRESS, member, args["amountOut"])
        if not (burned and minted):
            findings.append(_unbacked(event))
        return findings + self._exchange_request(event)

    def gifted(self, event: ChainEvent) -> list[Finding]:
        """Apply a `Gifted`: one move between members of one brand, unique id."""
        args = event.args
        findings = self._enter(event)
        if not self._explain(event, args["token"], args["from"], args["to"], args["amount"]):
            findings.append(_unbacked(event))
        return findings + self._exchange_request(event)

    def _exchange_request(self, event: ChainEvent) -> list[Finding]:
        request_id = event.args["requestId"]
        if request_id in self.exchange_request_ids:
            return [_duplicate(event, event.address)]
        self.exchange_request_ids.add(request_id)
        return []


def _approval_findings(
    event: ChainEvent, pending: dict[str, Any], delta: int, kind: tuple[int, int]
) -> list[Finding]:
    """An approved mint or burn must execute exactly what was requested."""
    requested = (
        pending["account"],
        pending["amountDelta"],
        (pending["reason"], pending["source"]),
        pending["brandRef"],
    )
    executed = (event.args["account"], delta, kind, event.args["brandRef"])
    if requested == executed and kind in APPROVED_KINDS:
        return []
    return [_invalid_reason(event, kind, requested=str(requested))]


def _where(event: ChainEvent) -> dict[str, Any]:
    return {
        "event": event.name,
        "contract": event.address,
        "block": event.block_number,
        "log_index": event.log_index,
        "transaction_hash": event.transaction_hash,
    }


def _negative(event: ChainEvent, account: str, balance: int) -> Finding:
    return Finding(
        "negative_balance",
        f"{account} on {event.address} falls to {balance}",
        {**_where(event), "account": account, "balance": balance},
    )


def _unbacked(event: ChainEvent) -> Finding:
    return Finding(
        "unbacked_event",
        f"{event.name} request {event.args.get('requestId')} has no matching Transfer",
        {**_where(event), "request_id": str(event.args.get("requestId"))},
    )


def _duplicate(event: ChainEvent, contract: str) -> Finding:
    request_id = event.args["requestId"]
    return Finding(
        "duplicate_request_id",
        f"request id {request_id} processed twice by {contract}",
        {**_where(event), "request_id": str(request_id)},
    )


def _invalid_reason(event: ChainEvent, kind: tuple[int, int], **extra: Any) -> Finding:
    reason, source = kind
    return Finding(
        "invalid_reason",
        f"{event.name} with reason {reason_name(reason)} and source {source_name(source)}",
        {
            **_where(event),
            "request_id": str(event.args["requestId"]),
            "reason": reason_name(reason),
            "source": source_name(source),
            "brand_ref": hex_bytes(event.args["brandRef"]),
            **extra,
        },
    )
