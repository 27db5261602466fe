"""A demo day, end to end, in a throwaway data directory.

`alliance up` (chain, deployed alliance, gateway, settlement service), `alliance demo`
(brands, members, deposits, conversions, a gift, a withdrawal over HTTP), then the local
chain's clock moves past the next UTC midnight, `alliance settle` closes and anchors the
day, and `alliance audit verify` re-derives everything from the chain and the published
statements. Moving the clock is why this runs in its own data directory and ports: the
gateway's deadlines follow the wall clock, so a chain left hours ahead would refuse them.

Run: .venv/bin/python scripts/demo_day.py [--keep]   (prints where the outputs are)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from alliance.localchain import free_port, rpc_call

REPO = Path(__file__).resolve().parents[1]
ALLIANCE = str(REPO / ".venv" / "bin" / "alliance")
READY_TIMEOUT_S = 180.0
RPC_TIMEOUT_S = 10.0


def run(env: dict[str, str], *arguments: str) -> None:
    print(f"\n$ alliance {' '.join(arguments)}", flush=True)
    subprocess.run([ALLIANCE, *arguments], env=env, cwd=REPO, check=True)


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"alliance up exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit(f"the gateway was not ready at {url} within {READY_TIMEOUT_S:.0f} s")


def close_the_day(rpc_url: str) -> str:
    """Mine past the next UTC midnight; return the day that just ended (YYYY-MM-DD)."""
    head = rpc_call(rpc_url, "eth_getBlockByNumber", "latest", False, timeout_s=RPC_TIMEOUT_S)
    assert isinstance(head, dict)
    day = datetime.fromtimestamp(int(head["timestamp"], 16), UTC).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    rpc_call(
        rpc_url,
        "evm_setNextBlockTimestamp",
        int(midnight.timestamp()) + 60,
        timeout_s=RPC_TIMEOUT_S,
    )
    for _ in range(2):  # the anchor's closing block must lie below the current block
        rpc_call(rpc_url, "evm_mine", timeout_s=RPC_TIMEOUT_S)
    return day.isoformat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    options = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="alliance-demo-day-"))
    chain_port, gateway_port = free_port(), free_port()
    env = dict(
        os.environ,
        ALLIANCE_DATA_DIR=str(data_dir),
        ALLIANCE_CHAIN_PORT=str(chain_port),
        ALLIANCE_GATEWAY_PORT=str(gateway_port),
    )
    up = subprocess.Popen(
        [ALLIANCE, "up"],
        env=env,
        cwd=REPO,
        start_new_session=True,
        stdout=(data_dir / "up.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(f"http://127.0.0.1:{gateway_port}/ready", up)
        run(env, "demo")
        day = close_the_day(f"http://127.0.0.1:{chain_port}")
        run(env, "settle", "--period", day)
        run(env, "audit", "verify", "--statements", str(data_dir / "settlement"))
        print(f"\nOutputs of {day}: {data_dir / 'settlement' / day.replace('-', '')}")
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(timeout=30)
        if not options.keep:
            print(f"(data directory {data_dir} kept only with --keep)")
            subprocess.run(["rm", "-rf", str(data_dir)], check=False)


if __name__ == "__main__":
    main()
