"""`history`: an account's or a brand's full on-chain history as CSV, with rates and reasons.

One row per event that concerns the subject: mints and burns with their reason and
source codes, conversions with both rates, the fee and the value moved, gifts, approval
requests, freezes, custody changes; for a brand also its rate versions, pair policies
and pause, gifting and anchor acknowledgements. Each row carries the subject brand's rate
in force at the block and, for an account, its balance in that brand after the event.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alliance.audit.ledger import ZERO_ADDRESS, source_name
from alliance.audit.rates import RateBookReplay
from alliance.audit.reading import AuditChain, Progress, _no_progress, rate_book, replay_events
from alliance.events import ChainEvent
from alliance.statements import reason_name

COLUMNS = (
    "block",
    "timestamp",
    "transaction_hash",
    "log_index",
    "event",
    "brand",
    "account",
    "counterparty",
    "request_id",
    "amount",
    "amount_out",
    "fee_points",
    "fee_bps",
    "value_in_units",
    "rate_from",
    "rate_to",
    "rate_in_force",
    "reason",
    "source",
    "brand_ref",
    "balance_after",
    "detail",
)

ACCOUNT_KEYS = ("account", "member", "from", "to")
"""Event arguments that name a member."""


@dataclass(frozen=True)
class Subject:
    """Whose history: an account (all brands) or a brand (all accounts)."""

    account: str | None = None
    token: str | None = None

    def concerns(self, event: ChainEvent) -> bool:
        args = event.args
        if self.account is not None:
            return event.name != "Transfer" and any(
                args.get(key) == self.account for key in ACCOUNT_KEYS
            )
        return event.name != "Transfer" and (
            event.address == self.token
            or self.token in (args.get("token"), args.get("fromToken"), args.get("toToken"))
        )


def history_csv(
    chain: AuditChain,
    *,
    account: str | None = None,
    brand: str | None = None,
    cache_dir: Path | None = None,
    progress: Progress = _no_progress,
) -> str:
    """The CSV text of the subject's history up to the current head block."""
    head = chain.rpc.block_number()
    subject = Subject(
        account.lower() if account else None, chain.token_of(brand) if brand else None
    )
    rates, _ = rate_book(chain, head)
    rows = list(_rows(chain, subject, rates, head, cache_dir, progress))
    stamps = chain.rpc.block_timestamps(sorted({row["block"] for row in rows}))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        timestamp = stamps[row["block"]]
        token = row.pop("_token", None)
        rate = rates.rate_at(token, timestamp) if token else None
        row["timestamp"] = timestamp
        row["rate_in_force"] = rate.rate_value_units if rate else ""
        writer.writerow(row)
    return buffer.getvalue()


def _rows(
    chain: AuditChain,
    subject: Subject,
    rates: RateBookReplay,
    head: int,
    cache_dir: Path | None,
    progress: Progress,
) -> Iterator[dict[str, Any]]:
    balances: dict[str, int] = {}
    findings: list[Any] = []  # Cache problems only; `verify` reports them.
    for event, _ in replay_events(chain, head, findings, cache_dir=cache_dir, progress=progress):
        if event.name == "Transfer" and subject.account is not None:
            _track(balances, event, subject.account)
        if subject.concerns(event):
            yield _row(chain, event, subject, balances)


def _track(balances: dict[str, int], event: ChainEvent, account: str) -> None:
    args = event.args
    if args["from"] == account:
        balances[event.address] = balances.get(event.address, 0) - args["value"]
    if args["to"] == account:
        balances[event.address] = balances.get(event.address, 0) + args["value"]


def _row(
    chain: AuditChain, event: ChainEvent, subject: Subject, balances: dict[str, int]
) -> dict[str, Any]:
    args = event.args
    token = _subject_token(chain, event, subject)
    row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    row.update(
        block=event.block_number,
        transaction_hash=event.transaction_hash,
        log_index=event.log_index,
        event=event.name,
        brand=chain.brands.get(token, "") if token else "",
        request_id=args.get("requestId", ""),
        _token=token,
    )
    row.update(_fields(event, subject))
    if subject.account is not None and token:
        row["balance_after"] = balances.get(token, 0)
    return row


def _subject_token(chain: AuditChain, event: ChainEvent, subject: Subject) -> str | None:
    args = event.args
    if subject.token is not None:
        return subject.token
    if event.name == "Converted":
        # An account's conversion row is about the brand it left; the rates say both.
        return str(args["fromToken"])
    token = args.get("token", event.address)
    return str(token) if token in chain.brands else None


def _fields(event: ChainEvent, subject: Subject) -> dict[str, Any]:
    args, name = event.args, event.name
    if name == "PointsMinted":
        return {
            "account": args["account"],
            "amount": args["amount"],
            "reason": reason_name(args["reason"]),
            "source": source_name(args["source"]),
            "brand_ref": "0x" + args["brandRef"].hex(),
        }
    if name == "PointsBurned":
        return {
            "account": args["account"],
            "amount": -args["amount"],
            "reason": reason_name(args["reason"]),
            "brand_ref": "0x" + args["brandRef"].hex(),
        }
    if name == "Converted":
        return _conversion_fields(args, subject)
    if name == "Gifted":
        outgoing = subject.account is None or args["from"] == subject.account
        return {
            "account": args["from"] if outgoing else args["to"],
            "counterparty": args["to"] if outgoing else args["from"],
            "amount": -args["amount"] if subject.account and outgoing else args["amount"],
        }
    detail = {key: _plain(value) for key, value in args.items() if key != "requestId"}
    account = args.get("account", args.get("member", ""))
    return {"account": account, "detail": json.dumps(detail, sort_keys=True)}


def _conversion_fields(args: dict[str, Any], subject: Subject) -> dict[str, Any]:
    incoming = subject.token is not None and args["toToken"] == subject.token
    return {
        "account": args["member"],
        "counterparty": args["toToken"] if not incoming else args["fromToken"],
        "amount": args["amountOut"] if incoming else -args["amountIn"],
        "amount_out": args["amountOut"],
        "fee_points": args["feePoints"],
        "fee_bps": args["feeBps"],
        "value_in_units": args["valueIn"],
        "rate_from": args["rateFrom"],
        "rate_to": args["rateTo"],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if value == ZERO_ADDRESS:
        return "0x0"
    return value
