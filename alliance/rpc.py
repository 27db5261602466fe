"""A lean JSON-RPC reader for bulk reads (logs, blocks, batched calls).

web3.py formats every result field by field, which costs seconds per million logs; the
indexer and the audit tool read raw JSON here instead and decode what they need
(`alliance.events`). Writes never go through this module: they stay in `alliance.chain`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from alliance.errors import ChainRpcFailed, ChainUnreachable

RPC_TIMEOUT_S = 60.0
"""Per-request timeout; a wide getLogs range on a busy node takes seconds."""

BATCH_SIZE_MAX = 500
"""Requests per JSON-RPC batch (nodes cap batch sizes; Besu's default is 1,024)."""

JSON_HEADERS = {"Content-Type": "application/json"}


class JsonRpc:
    """Read-only JSON-RPC over HTTP with batching; errors become project errors."""

    def __init__(self, rpc_url: str, *, timeout_s: float = RPC_TIMEOUT_S) -> None:
        self.rpc_url = rpc_url
        self._http = httpx.Client(timeout=timeout_s)
        self._next_id = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JsonRpc:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(self, method: str, *params: Any) -> Any:
        """One request; returns its `result`."""
        (result,) = self.batch([(method, list(params))])
        return result

    def batch(self, requests: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Send `requests` in batches of BATCH_SIZE_MAX; results in request order."""
        results: list[Any] = []
        for start in range(0, len(requests), BATCH_SIZE_MAX):
            results.extend(self._send(requests[start : start + BATCH_SIZE_MAX]))
        return results

    def _send(self, requests: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        first_id = self._next_id
        self._next_id += len(requests)
        body = [
            {"jsonrpc": "2.0", "id": first_id + offset, "method": method, "params": params}
            for offset, (method, params) in enumerate(requests)
        ]
        try:
            response = self._http.post(self.rpc_url, content=json.dumps(body), headers=JSON_HEADERS)
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise ChainUnreachable(rpc_url=self.rpc_url, reason=str(error)) from error
        decoded = response.json()
        if not isinstance(decoded, list):
            # The node refused the batch as a whole (one error object instead of a list).
            raise ChainRpcFailed(rpc_url=self.rpc_url, method=requests[0][0], error=decoded)
        replies = {reply["id"]: reply for reply in decoded}
        results = []
        for offset, (method, _) in enumerate(requests):
            reply = replies[first_id + offset]
            if "error" in reply:
                raise ChainRpcFailed(rpc_url=self.rpc_url, method=method, error=reply["error"])
            results.append(reply["result"])
        return results

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def block_timestamps(self, numbers: Sequence[int]) -> dict[int, int]:
        """Block number → timestamp (seconds) for `numbers`, in one batched round trip."""
        blocks = self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        return {int(b["number"], 16): int(b["timestamp"], 16) for b in blocks}

    def get_logs(self, addresses: Sequence[str], from_block: int, to_block: int) -> list[Any]:
        """Raw logs of `addresses` in [from_block, to_block] (inclusive)."""
        return list(
            self.call(
                "eth_getLogs",
                {
                    "address": list(addresses),
                    "fromBlock": hex(from_block),
                    "toBlock": hex(to_block),
                },
            )
        )
