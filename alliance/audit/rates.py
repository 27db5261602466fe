"""Replayed rate book and pair policies: which rate and policy were in force when.

Pure state machines over the exchange's `BrandListed`, `RateScheduled`, `RateCancelled`,
`NoticePeriodChanged` and `PairPolicySet` events, mirroring `RateBook.sol` and
`PairPolicies.sol`: a scheduled rate is in force from its `effectiveAt` on (by time
alone), a cancellation removes the newest version, a policy is in force from the log
that set it, and a pair's inflow is counted per UTC day of the block timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alliance.audit.findings import Finding
from alliance.events import ChainEvent

DAY_S = 86_400
"""Length of the contract's inflow day (UTC days of the block timestamp)."""

NOTICE_PERIOD_DEFAULT_S = 30 * DAY_S
"""RateBook.NOTICE_PERIOD_DEFAULT: the notice period until governance changes it."""


@dataclass(frozen=True)
class RateVersion:
    """One version of a brand's rate, as the rate book stores it."""

    token: str
    version: int
    rate_value_units: int
    effective_at: int
    scheduled_at: int
    block_number: int
    transaction_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "version": self.version,
            "rate_value_units": str(self.rate_value_units),
            "effective_at": self.effective_at,
            "scheduled_at": self.scheduled_at,
            "block_number": self.block_number,
            "transaction_hash": self.transaction_hash,
        }


@dataclass(frozen=True)
class PairPolicy:
    """One version of a receiving brand's policy for one sending brand."""

    from_token: str
    to_token: str
    enabled: bool
    fee_bps: int
    min_amount_out: int
    max_amount_out: int
    daily_cap: int
    set_by: str
    block_number: int
    log_index: int
    transaction_hash: str

    @property
    def minimum_out(self) -> int:
        """The effective minimum: 0 in the policy means one point (PairPolicies.sol)."""
        return self.min_amount_out or 1

    def to_json(self) -> dict[str, Any]:
        return {
            "from_token": self.from_token,
            "to_token": self.to_token,
            "enabled": self.enabled,
            "fee_bps": self.fee_bps,
            "min_amount_out": self.min_amount_out,
            "max_amount_out": self.max_amount_out,
            "daily_cap": self.daily_cap,
            "set_by": self.set_by,
            "block_number": self.block_number,
            "log_index": self.log_index,
            "transaction_hash": self.transaction_hash,
        }


@dataclass
class RateBookReplay:
    """Every brand's rate history, rebuilt event by event."""

    notice_period_s: int = NOTICE_PERIOD_DEFAULT_S
    versions: dict[str, list[RateVersion]] = field(default_factory=dict)
    cancelled: list[RateVersion] = field(default_factory=list)

    def apply(self, event: ChainEvent, timestamp: int) -> list[Finding]:
        """Apply one rate-book event at block time `timestamp`; return any findings."""
        args = event.args
        if event.name == "BrandListed":
            self.versions[args["token"]] = [_version(event, 0, timestamp, timestamp)]
            return []
        if event.name == "RateScheduled":
            return self._schedule(event, timestamp)
        if event.name == "RateCancelled":
            history = self.versions.get(args["token"], [])
            if history and history[-1].version == args["version"]:
                self.cancelled.append(history.pop())
            return []
        if event.name == "NoticePeriodChanged":
            return self._change_notice(event)
        return []

    def _schedule(self, event: ChainEvent, timestamp: int) -> list[Finding]:
        args = event.args
        version = _version(event, args["version"], args["effectiveAt"], timestamp)
        self.versions.setdefault(args["token"], []).append(version)
        earliest = timestamp + self.notice_period_s
        if args["effectiveAt"] >= earliest:
            return []
        return [
            Finding(
                "rate_notice_too_short",
                f"rate version {args['version']} of {args['token']} takes effect "
                f"{earliest - args['effectiveAt']} s before the notice period ends",
                {
                    **version.to_json(),
                    "block_timestamp": timestamp,
                    "notice_period_s": self.notice_period_s,
                    "earliest_effective_at": earliest,
                },
            )
        ]

    def _change_notice(self, event: ChainEvent) -> list[Finding]:
        previous, new = event.args["previousPeriod"], event.args["newPeriod"]
        findings = []
        if previous != self.notice_period_s:
            findings.append(
                Finding(
                    "notice_period_mismatch",
                    f"NoticePeriodChanged says the period was {previous} s, replay has "
                    f"{self.notice_period_s} s",
                    {"transaction_hash": event.transaction_hash, "block": event.block_number},
                )
            )
        self.notice_period_s = new
        return findings

    def rate_at(self, token: str, timestamp: int) -> RateVersion | None:
        """The version in force at `timestamp` (RateBook.rateAt), None before listing."""
        # Histories hold a handful of versions: a backwards scan beats building an index.
        for version in reversed(self.versions.get(token, ())):
            if version.effective_at <= timestamp:
                return version
        return None


def _version(event: ChainEvent, version: int, effective_at: int, scheduled_at: int) -> RateVersion:
    return RateVersion(
        token=event.args["token"],
        version=version,
        rate_value_units=event.args["rateValueUnits"],
        effective_at=effective_at,
        scheduled_at=scheduled_at,
        block_number=event.block_number,
        transaction_hash=event.transaction_hash,
    )


@dataclass
class PairPolicyBook:
    """Pair policies in force and each pair's inflow per UTC day."""

    in_force: dict[tuple[str, str], PairPolicy] = field(default_factory=dict)
    history: dict[tuple[str, str], list[PairPolicy]] = field(default_factory=dict)
    inflow: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    """(from, to) → (UTC day, points received that day)."""

    def apply(self, event: ChainEvent) -> None:
        """Apply one `PairPolicySet`."""
        args = event.args
        policy = PairPolicy(
            from_token=args["fromToken"],
            to_token=args["toToken"],
            enabled=args["enabled"],
            fee_bps=args["feeBps"],
            min_amount_out=args["minAmountOut"],
            max_amount_out=args["maxAmountOut"],
            daily_cap=args["dailyCap"],
            set_by=args["setBy"],
            block_number=event.block_number,
            log_index=event.log_index,
            transaction_hash=event.transaction_hash,
        )
        key = (policy.from_token, policy.to_token)
        self.in_force[key] = policy
        self.history.setdefault(key, []).append(policy)

    def at(self, pair: tuple[str, str], position: tuple[int, int]) -> PairPolicy | None:
        """The version of the pair's policy in force at chain position (block, log index)."""
        for policy in reversed(self.history.get(pair, ())):
            if (policy.block_number, policy.log_index) < position:
                return policy
        return None

    def record_inflow(self, pair: tuple[str, str], timestamp: int, amount_out: int) -> int:
        """Count `amount_out` into the pair's inflow of that UTC day; return the day's total."""
        day = timestamp // DAY_S
        known_day, total = self.inflow.get(pair, (day, 0))
        total = (total if known_day == day else 0) + amount_out
        self.inflow[pair] = (day, total)
        return total
