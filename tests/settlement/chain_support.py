"""Shared pieces of the settlement suites that run on a real stack (tests/gateway/stack.py):
the chain's events as the settlement reads them, chain time travel, the settlement's view
of the gateway's database, and a brand's webhook receiver (a small real HTTP server).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from alliance.db.session import make_engine, make_session_factory
from alliance.events import ChainEvent, LogReader, alliance_addresses, alliance_catalogue
from alliance.rpc import JsonRpc
from settlement.history import block_times
from tests.gateway.stack import Stack, books_url

POLL_S = 0.1


def rpc(stack: Stack, method: str, *params: Any) -> Any:
    """One JSON-RPC call to the stack's Anvil (time travel, mining); errors fail the test."""
    provider = stack.ledger.deployment.client.w3.provider
    reply = provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in reply, reply
    return reply["result"]


def chain_day(stack: Stack) -> date:
    """The UTC day of the stack's latest block."""
    block = stack.ledger.deployment.client.w3.eth.get_block("latest")
    return datetime.fromtimestamp(block["timestamp"], UTC).date()


@dataclass
class ChainRead:
    """Every alliance event up to a block, their block times, and the tokens' brands."""

    events: list[ChainEvent]
    times: dict[int, datetime]
    token_brand: dict[str, str]
    head: int

    @property
    def head_time(self) -> datetime:
        return self.times[self.head]


def read_chain(stack: Stack) -> ChainRead:
    """The chain from the deployment block to the head, as the settlement reads it."""
    deployment = stack.ledger.deployment
    manifest = deployment.manifest
    with JsonRpc(stack.settings.chain.rpc_url) as rpc:
        head = rpc.block_number()
        reader = LogReader(
            rpc,
            alliance_catalogue(deployment.compiled.load_artifact),
            alliance_addresses(manifest),
        )
        events = list(reader.events(manifest.deploy_block, head))
        times = block_times(rpc, [event.block_number for event in events] + [head])
    tokens = {brand.token.address.lower(): brand.code for brand in manifest.brands}
    return ChainRead(events, times, tokens, head)


def advance_chain_time(stack: Stack, seconds: int) -> datetime:
    """Move the chain's clock forward and mine a block; returns the new block's time."""
    with JsonRpc(stack.settings.chain.rpc_url) as rpc:
        rpc.call("evm_increaseTime", seconds)
        rpc.call("evm_mine")
        head = rpc.block_number()
        return block_times(rpc, [head])[head].astimezone(UTC)


@contextmanager
def settlement_sessions(stack: Stack) -> Iterator[sessionmaker[Session]]:
    """Sessions on the gateway's database, as the settlement service opens them."""
    engine = make_engine(books_url(stack.gateway.database_url, stack.data_dir))
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@dataclass
class Receiver:
    """A brand's webhook endpoint: records every event it is sent (answers 204)."""

    server: ThreadingHTTPServer
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        with self.lock:
            return [event for event in self.events if event["type"] == event_type]

    def wait_for(self, event_type: str, count: int, timeout_s: float = 30) -> list[dict[str, Any]]:
        """The events of `event_type` once at least `count` arrived (fails after timeout)."""
        deadline = time.monotonic() + timeout_s
        while len(found := self.of_type(event_type)) < count:
            assert time.monotonic() < deadline, f"{len(found)} {event_type} events, not {count}"
            time.sleep(POLL_S)
        return found


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """A receiver on a free loopback port, stopped on the way out."""
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test asserts on what arrived."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(server, received, lock)
    finally:
        server.shutdown()
        server.server_close()
