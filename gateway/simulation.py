"""Conversion simulations as raw `eth_call`s, from the event loop.

Before a synchronous conversion is recorded, the chain is asked whether it would pass now,
so a refusal answers its documented problem and leaves no trace. That check runs once per
request, so it skips web3's contract-call path (ABI lookup, argument normalisation,
middleware, and an `eth_chainId` round trip per call: ~10 ms of CPU under load): the
calldata is encoded with eth_abi behind a cached selector and posted as JSON-RPC over one
keep-alive HTTP session. Simulations asked for while others are on their way to the node
go together as one JSON-RPC batch (an HTTP request costs the gateway more CPU than the
call it carries). A revert is decoded and translated like any other
(`gateway.ledger.translate`); a node that does not answer skips the check (the conversion
is accepted and the pipeline completes it when the chain returns).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiohttp
import orjson
from eth_utils import keccak

from alliance.chain import ErrorDecoder
from alliance.errors import ContractReverted
from gateway import errors
from gateway.ledger import Ledger, translate
from gateway.pipeline.calls import CONVERSION_REQUEST_TYPE, conversion_request_words

CONVERT_SELECTOR = keccak(text=f"convert({CONVERSION_REQUEST_TYPE})")[:4]

SIMULATION_TIMEOUT_S = 10.0
"""Longest a simulation may take before the node counts as unreachable."""

SIMULATION_CONNECTIONS_MAX = 32
"""Most simultaneous HTTP connections to the node for simulations."""

SIMULATION_REQUESTS_IN_FLIGHT_MAX = 4
"""Most HTTP requests of simulations on their way to the node at once; simulations asked
for meanwhile wait and then go together in one JSON-RPC batch."""

SIMULATION_BATCH_SIZE_MAX = 64
"""Most simulations in one JSON-RPC batch request."""

ConversionRequest = tuple[int, str, str, str, int, int, int]
"""The exchange's ConversionRequest: request id, member, from token, to token, amount in,
minimum out, deadline."""


def convert_calldata(request: ConversionRequest) -> bytes:
    """The calldata of `AllianceExchange.convert(request)`."""
    return CONVERT_SELECTOR + conversion_request_words(request)


class ChainSimulator:
    """Runs read-only calls for request checks; one per app, used from its event loop."""

    def __init__(self, rpc_url: str, exchange: str, operator: str, decoder: ErrorDecoder) -> None:
        self.rpc_url = rpc_url
        self.exchange = exchange
        self.operator = operator
        self.decoder = decoder
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self._queued: list[tuple[dict[str, Any], asyncio.Future[Any]]] = []
        self._in_flight = 0

    @classmethod
    def for_ledger(cls, ledger: Ledger) -> ChainSimulator:
        rpc_url = str(ledger.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
        operator = ledger.keys("operator").address
        return cls(rpc_url, ledger.exchange.address, operator, ledger.client.decoder)

    async def conversion(self, request: ConversionRequest) -> None:
        """Whether the operator's `convert(request)` would pass now: returns if so, raises
        the translated refusal if not, and returns (accepting) if the node is unreachable."""
        try:
            await self._call(self.operator, self.exchange, convert_calldata(request))
        except errors.ChainUnavailable:
            return

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, sender: str, to: str, data: bytes) -> bytes:
        payload = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": "eth_call",
            "params": [{"from": sender, "to": to, "data": "0x" + data.hex()}, "latest"],
        }
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((payload, answer))
        if self._in_flight < SIMULATION_REQUESTS_IN_FLIGHT_MAX:
            self._send_queued()
        result = await answer
        if "error" in result:
            raise self._refusal(result["error"])
        return bytes.fromhex(str(result["result"])[2:])

    def _send_queued(self) -> None:
        """Send what is queued (up to a batch) as one HTTP request, in a task of its own."""
        batch = self._queued[:SIMULATION_BATCH_SIZE_MAX]
        del self._queued[: len(batch)]
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._post(batch))
        task.add_done_callback(self._sent)

    def _sent(self, _: asyncio.Task[None]) -> None:
        self._in_flight -= 1
        if self._queued:
            self._send_queued()

    async def _post(self, batch: list[tuple[dict[str, Any], asyncio.Future[Any]]]) -> None:
        """One JSON-RPC request for one call, a batch for several; each caller gets its own
        answer (matched by id), or `ChainUnavailable` if the node did not answer it."""
        body = batch[0][0] if len(batch) == 1 else [payload for payload, _ in batch]
        answers: dict[Any, Any] = {}
        try:
            async with self._http().post(
                self.rpc_url,
                data=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
            ) as response:
                answer = orjson.loads(await response.read())
            for one in answer if isinstance(answer, list) else [answer]:
                if isinstance(one, dict):
                    answers[one.get("id")] = one
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
            pass  # every caller of the batch hears `ChainUnavailable`
        finally:  # also when cancelled (shutdown): nobody is left waiting
            _settle_all(batch, answers)

    def _refusal(self, error: Any) -> errors.GatewayError:
        """A JSON-RPC error: a revert becomes its translated contract error; anything else
        means the node cannot answer this now (the pipeline will have the last word)."""
        data = error.get("data") if isinstance(error, dict) else None
        if isinstance(data, dict):
            data = data.get("data")
        if not isinstance(data, str) or not data.startswith("0x"):
            return errors.ChainUnavailable(f"the chain did not simulate: {error!r}"[:300])
        name, arguments = self.decoder.decode(bytes.fromhex(data[2:]))
        return translate(ContractReverted(name, arguments, "convert"))

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=SIMULATION_CONNECTIONS_MAX),
                timeout=aiohttp.ClientTimeout(total=SIMULATION_TIMEOUT_S),
            )
        return self._session


def _settle_all(
    batch: list[tuple[dict[str, Any], asyncio.Future[Any]]], answers: dict[Any, Any]
) -> None:
    for payload, future in batch:
        if future.done():
            continue  # its request went away
        answer = answers.get(payload["id"])
        if isinstance(answer, dict) and ("result" in answer or "error" in answer):
            future.set_result(answer)
        else:
            future.set_exception(errors.ChainUnavailable("the chain is unreachable"))
