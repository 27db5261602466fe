"""The audit's view of one deployment: what it reads, and the replay driver every command uses.

`AuditChain` bundles the read-only JSON-RPC client, the deployment manifest, the event
catalogue and the lens code. `replay_events` yields every alliance event up to a block
with its block timestamp, from the cache (if given) and the chain; `run_replay` feeds them
through a `Replay`. Progress goes to a callback so the pure parts never print.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alliance.audit.cache import SegmentCache, cache_key
from alliance.audit.findings import Finding
from alliance.audit.rates import PairPolicyBook, RateBookReplay
from alliance.audit.replay import TIMED_EVENTS, Anchor, Replay
from alliance.audit.source import (
    LOGS_PER_WINDOW,
    WINDOW_BLOCKS_MAX,
    ChainSegments,
    Segment,
    prefetched,
)
from alliance.chainstate import notice_period_default, topic_logs
from alliance.errors import AuditPeriodNotAnchored, AuditUnknownBrand
from alliance.events import ChainEvent, EventCatalogue, alliance_addresses
from alliance.manifest import DeploymentManifest
from alliance.rpc import JsonRpc

Progress = Callable[[int, int], None]
"""Called as (last block replayed, events replayed so far)."""


def _no_progress(block: int, events: int) -> None:
    return None


@dataclass(frozen=True)
class AuditChain:
    """Everything the audit reads, passed in (never built at import time)."""

    rpc: JsonRpc
    manifest: DeploymentManifest
    catalogue: EventCatalogue
    lens_code: str | None = None
    """BalanceLens creation code; None reads balances with batched calls instead."""
    logs_per_window: int = LOGS_PER_WINDOW
    window_blocks_max: int = WINDOW_BLOCKS_MAX

    @property
    def addresses(self) -> list[str]:
        return alliance_addresses(self.manifest)

    @property
    def exchange(self) -> str:
        return self.manifest.exchange.address.lower()

    @property
    def anchor(self) -> str:
        return self.manifest.settlement_anchor.address.lower()

    @property
    def brands(self) -> dict[str, str]:
        """Token address → brand code."""
        return {brand.token.address.lower(): brand.code for brand in self.manifest.brands}

    @property
    def deploy_block(self) -> int:
        return self.manifest.deploy_block

    def token_of(self, brand: str) -> str:
        """The token address of a brand code or token address (any case)."""
        for token, code in self.brands.items():
            if brand in (code, token) or brand.lower() == token:
                return token
        raise AuditUnknownBrand(brand)

    def anchor_of(self, period_id: int, last_block: int) -> Anchor:
        """The anchor of `period_id` (the first, if a faulty chain anchored it twice)."""
        for anchor in self.anchors(last_block):
            if anchor.period_id == period_id:
                return anchor
        raise AuditPeriodNotAnchored(period_id)

    def chain_id(self) -> int:
        return int(self.rpc.call("eth_chainId"), 16)

    def anchors(self, last_block: int) -> list[Anchor]:
        """Every `PeriodAnchored` up to `last_block`, read by topic (cheap: few logs)."""
        spec = self.catalogue.spec("PeriodAnchored")
        logs = topic_logs(self.rpc, self.anchor, spec.topic0, self.deploy_block, last_block)
        events = [event for event in map(self.catalogue.decode, logs) if event is not None]
        return [Anchor.from_event(event) for event in events]

    def new_replay(self, last_block: int, closing_blocks: list[int], **options: bool) -> Replay:
        return Replay(
            brands=self.brands,
            exchange=self.exchange,
            anchor=self.anchor,
            deploy_block=self.deploy_block,
            closing_blocks=closing_blocks,
            notice_period_s=notice_period_default(self.rpc, self.exchange, last_block),
            **options,
        )


def replay_events(
    chain: AuditChain,
    last_block: int,
    findings: list[Finding],
    *,
    cache_dir: Path | None = None,
    progress: Progress = _no_progress,
) -> Iterator[tuple[ChainEvent, int]]:
    """Every alliance event in [deploy block, last_block] with its block's timestamp.

    Cache problems are appended to `findings` (the cache is then re-read from the chain).
    """
    events_done = 0
    for segment in _segments(chain, last_block, findings, cache_dir):
        decode, timestamps = chain.catalogue.decode, segment.timestamps
        for log in segment.logs:
            event = decode(log)
            if event is not None:
                yield event, timestamps.get(event.block_number, 0)
                events_done += 1
        progress(segment.last, events_done)


def _segments(
    chain: AuditChain, last_block: int, findings: list[Finding], cache_dir: Path | None
) -> Iterator[Segment]:
    next_block = chain.deploy_block
    cache = None
    if cache_dir is not None:
        key = cache_key(chain.chain_id(), chain.deploy_block, chain.addresses)
        cache = SegmentCache(cache_dir, key)
        findings += cache.validate(chain.rpc, chain.deploy_block)
        for entry in list(cache.entries):
            if entry.first > last_block:
                break
            yield cache.load(entry).trimmed(last_block)
            next_block = entry.last + 1
    if next_block > last_block:
        return
    timed = {"0x" + chain.catalogue.spec(name).topic0.hex() for name in TIMED_EVENTS}
    reader = ChainSegments(
        chain.rpc,
        chain.addresses,
        timed,
        logs_per_window=chain.logs_per_window,
        window_blocks_max=chain.window_blocks_max,
    )
    for segment in prefetched(lambda: reader.segments(next_block, last_block)):
        if cache is not None:
            cache.store(segment)
        yield segment


def run_replay(
    chain: AuditChain,
    replay: Replay,
    last_block: int,
    *,
    cache_dir: Path | None = None,
    progress: Progress = _no_progress,
) -> list[Finding]:
    """Replay every event up to `last_block` into `replay`; return its findings."""
    findings: list[Finding] = []
    apply = replay.apply
    for event, timestamp in replay_events(
        chain, last_block, findings, cache_dir=cache_dir, progress=progress
    ):
        found = apply(event, timestamp)
        if found:
            findings += found
    findings += replay.finish(last_block)
    return findings


RATE_EVENTS = ("BrandListed", "RateScheduled", "RateCancelled", "NoticePeriodChanged")


def topic_events(
    chain: AuditChain,
    names: tuple[str, ...],
    last_block: int,
    *,
    second_topic: str | None = None,
) -> list[tuple[ChainEvent, int]]:
    """The named events (optionally with a given first indexed argument, as 0x-hex
    word) of every alliance contract up to `last_block`, with block timestamps.

    A topic-filtered read: the node returns only these few logs, so `evidence` and the
    rate lookups need no replay of everything."""
    topics: list[Any] = [["0x" + chain.catalogue.spec(name).topic0.hex() for name in names]]
    if second_topic is not None:
        topics.append(second_topic)
    query = {
        "address": chain.addresses,
        "fromBlock": hex(chain.deploy_block),
        "toBlock": hex(last_block),
        "topics": topics,
    }
    logs = chain.rpc.call("eth_getLogs", query)
    events = [event for event in map(chain.catalogue.decode, logs) if event is not None]
    events.sort(key=lambda event: event.position)
    stamps = chain.rpc.block_timestamps(sorted({event.block_number for event in events}))
    return [(event, stamps[event.block_number]) for event in events]


def rate_book(chain: AuditChain, last_block: int) -> tuple[RateBookReplay, PairPolicyBook]:
    """The rate book and pair policies as of `last_block` (every version kept)."""
    rates = RateBookReplay(
        notice_period_s=notice_period_default(chain.rpc, chain.exchange, last_block)
    )
    policies = PairPolicyBook()
    for event, timestamp in topic_events(chain, (*RATE_EVENTS, "PairPolicySet"), last_block):
        if event.address != chain.exchange:
            continue
        if event.name == "PairPolicySet":
            policies.apply(event)
        else:
            rates.apply(event, timestamp)
    return rates, policies
