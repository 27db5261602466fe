"""End-to-end gateway load: synchronous conversion latency at a fixed rate, and the highest
sustained conversion rate, over HTTP against a real gateway process and a local Anvil.

Starts its own stack in a temporary directory (Anvil, the deployed default alliance, the
gateway as a subprocess), funds members through the API, then:

1. open loop: conversions at `--rate` per second for `--seconds`; reports p50/p99 latency
   of the synchronous POST /v1/conversions (201 = final on chain);
2. closed loop: `--concurrency` clients converting as fast as they can for `--seconds`;
   reports conversions confirmed per second;

and the gateway's resident memory (RSS) after each phase. Each phase's start is printed on
stderr with the process ids, to attach a profiler (`py-spy record --gil -p <gateway>`).

Run: .venv/bin/python bench/gateway_load.py [--rate 50] [--seconds 30] [--concurrency 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from alliance.deploy import ensure_deployed
from alliance.localchain import LocalChain, free_port
from alliance.settings import ChainSettings, DataSettings, Settings
from alliance.toolchain import repo_dir

MEMBERS = 200
DEPOSIT_POINTS = 10_000_000
CONVERSION_POINTS = 100


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Stack:
    """Anvil + deployed alliance + gateway subprocess in a temporary directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.chain_port, self.gateway_port = free_port(), free_port()
        root = repo_dir()
        self.settings = Settings(
            chain=ChainSettings(port=self.chain_port),
            data=DataSettings(data_dir=data_dir, build_dir=root / "build"),
        )
        self.chain = LocalChain(self.settings.chain, self.settings.data)
        self.gateway: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.gateway_port}"

    def start(self) -> None:
        self.chain.start()
        self.chain.wait_ready()
        ensure_deployed(self.settings)
        env = {
            **os.environ,
            "ALLIANCE_DATA_DIR": str(self.data_dir),
            "ALLIANCE_CHAIN_PORT": str(self.chain_port),
            "ALLIANCE_GATEWAY_PORT": str(self.gateway_port),
            "ALLIANCE_GATEWAY_RATE_LIMIT_PER_S": "100000",
            "ALLIANCE_GATEWAY_RATE_LIMIT_BURST": "100000",
        }
        log = (self.data_dir / "gateway.log").open("wb")
        self.gateway = subprocess.Popen(
            [str(Path(sys.executable).parent / "alliance"), "gateway", "serve"],
            cwd=repo_dir(),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/openapi.json", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(
            "gateway did not start:\n" + (self.data_dir / "gateway.log").read_text()[-3000:]
        )

    def stop(self) -> None:
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.send_signal(signal.SIGTERM)
            self.gateway.wait(30)
        self.chain.stop()

    def token(self, client_id: str) -> str:
        clients = json.loads((self.data_dir / "gateway-clients.json").read_text())
        response = httpx.post(
            self.url + "/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                **{k: clients[client_id][k] for k in ("client_id", "client_secret")},
            },
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


async def post(
    client: aiohttp.ClientSession, path: str, body: dict[str, Any]
) -> tuple[int, float, Any]:
    started = time.perf_counter()
    try:
        async with client.post(
            path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
        ) as response:
            answer = await response.json(content_type=None)
    except aiohttp.ClientError as error:
        return 0, time.perf_counter() - started, repr(error)
    return response.status, time.perf_counter() - started, answer


async def fund_members(client: aiohttp.ClientSession, count: int) -> list[str]:
    gate = asyncio.Semaphore(32)

    async def one(index: int) -> str:
        async with gate:
            return await fund_one(index)

    async def fund_one(index: int) -> str:
        status, _, member = await post(
            client, "/v1/members", {"brand_member_id": f"load-{uuid.uuid4().hex}"}
        )
        assert status == 201, member
        status, _, deposit = await post(
            client,
            "/v1/deposits",
            {
                "member_id": member["id"],
                "amount": DEPOSIT_POINTS,
                "brand_transaction_id": f"fund-{index}",
            },
        )
        assert status == 202, deposit
        await settled(client, deposit["id"])
        return str(member["id"])

    members = await asyncio.gather(*(one(i) for i in range(count)))
    return list(members)


async def settled(client: aiohttp.ClientSession, operation_id: int) -> None:
    """Wait until an operation is confirmed (funding must land before measuring)."""
    for _ in range(600):
        async with client.get(f"/v1/operations/{operation_id}") as response:
            operation = await response.json()
        if operation["status"] == "confirmed":
            return
        assert operation["status"] != "failed", operation
        await asyncio.sleep(0.2)
    raise AssertionError(f"operation {operation_id} did not settle")


def _code(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("code") or body.get("status"))
    return str(body)[:80]


def conversion(member_id: str) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "from_brand": "bean",
        "to_brand": "sky",
        "amount_in": CONVERSION_POINTS,
    }


async def open_loop(
    client: aiohttp.ClientSession, members: list[str], rate: float, seconds: float
) -> dict[str, Any]:
    count = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for index in range(count):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(
            asyncio.create_task(
                post(client, "/v1/conversions", conversion(members[index % len(members)]))
            )
        )
    results = await asyncio.gather(*tasks)
    latencies = sorted(latency for status, latency, _ in results if status == 201)
    return {
        "requests": count,
        "confirmed": len(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "statuses": {
            str(code): sum(1 for s, _, _ in results if s == code)
            for code in {s for s, _, _ in results}
        },
        "errors": sorted({_code(body) for status, _, body in results if status not in (201,)})[:5],
    }


async def closed_loop(
    client: aiohttp.ClientSession, members: list[str], concurrency: int, seconds: float
) -> dict[str, Any]:
    confirmed = 0
    other: dict[int, int] = {}
    stop_at = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal confirmed
        index = offset
        while time.perf_counter() < stop_at:
            status, _, _ = await post(
                client, "/v1/conversions", conversion(members[index % len(members)])
            )
            index += concurrency
            if status == 201:
                confirmed += 1
            else:
                other[status] = other.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "confirmed": confirmed,
        "seconds": elapsed,
        "per_second": confirmed / elapsed,
        "other": other,
    }


async def run(stack: Stack, arguments: argparse.Namespace) -> dict[str, Any]:
    headers = {"Authorization": "Bearer " + stack.token("brand-bean")}
    # aiohttp, not httpx: httpx's connection pool costs the load generator milliseconds of
    # CPU per request at high concurrency, and it shares the 2 cores with the gateway.
    connector = aiohttp.TCPConnector(limit=arguments.concurrency + 50)
    async with aiohttp.ClientSession(
        base_url=stack.url,
        headers=headers,
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=60),
    ) as client:
        members = await fund_members(client, arguments.members)
        assert stack.gateway is not None
        processes = {
            "gateway": stack.gateway.pid,
            "anvil": stack.chain.pid() or 0,
            "load_generator": os.getpid(),
        }
        _phase("open loop", processes)
        before = {name: cpu_s(pid) for name, pid in processes.items()}
        latency = await open_loop(client, members, arguments.rate, arguments.seconds)
        latency["gateway_rss_mib"] = rss_mib(stack.gateway.pid)
        latency["cpu_ms_per_conversion"] = _cpu_per(processes, before, latency["requests"])
        _phase("closed loop", processes)
        before = {name: cpu_s(pid) for name, pid in processes.items()}
        throughput = await closed_loop(client, members, arguments.concurrency, arguments.seconds)
        throughput["gateway_rss_mib"] = rss_mib(stack.gateway.pid)
        throughput["cpu_ms_per_conversion"] = _cpu_per(
            processes, before, throughput["confirmed"] + sum(throughput["other"].values())
        )
    return {"open_loop": latency, "closed_loop": throughput}


def _phase(name: str, processes: dict[str, int]) -> None:
    """Say on stderr when a phase starts, with the process ids (to attach a profiler)."""
    print(f"{time.strftime('%H:%M:%S')} {name}: {processes}", file=sys.stderr, flush=True)


def _cpu_per(processes: dict[str, int], before: dict[str, float], count: int) -> dict[str, float]:
    """CPU milliseconds each process spent per conversion since `before` (a robust figure
    on a shared machine, where wall-clock rates depend on what else runs)."""
    return {
        name: round(1000 * (cpu_s(pid) - before[name]) / max(count, 1), 2)
        for name, pid in processes.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--members", type=int, default=MEMBERS)
    parser.add_argument("--keep-log", type=Path, help="copy the gateway's log here at the end")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        stack = Stack(Path(data_dir))
        try:
            stack.start()
            results = asyncio.run(run(stack, arguments))
        finally:
            stack.stop()
            log = (Path(data_dir) / "gateway.log").read_text()
            if arguments.keep_log is not None:
                arguments.keep_log.write_text(log)
            if "Traceback" in log:
                print(log[-5000:], file=sys.stderr)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
