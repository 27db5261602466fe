"""Settlement day: close a day of `--conversions` conversions among `--members` members.

Generation starts a private Anvil (zero fees, a 2e9 block gas limit, blocks mined by
hand), deploys a 10-brand alliance (`<dir>/alliance.yaml`, every pair enabled, caps set
high), funds every member with one issuer mint at its home brand, then converts through
`AllianceExchange.convertBatch` (custodial: the operator submits) to the other brands,
every block inside one UTC day; finally it mines one block after midnight so the day can
be closed. Transactions are encoded by hand and signed with coincurve (one issuer key per
brand with its own nonce sequence), sent as batched `eth_sendRawTransaction`.

The gateway's database gets the `operations` rows the gateway would have recorded for
these deposits and conversions (confirmed, same request ids, parameters and results), so
the run reconciles every event against an operation with no discrepancy: the realistic
nightly workload.

Each run copies the generated data directory (keys, manifest, database before any
settlement; with `--warm-index`, the copy indexed by the first such run, `<dir>/indexed`),
takes an Anvil snapshot, and times `settlement.run.close_period` with the
risk hook (expiry and fraud checks) in a fresh process, step by step, with its peak RSS;
it checks the outputs and the anchor, and the chain is reverted for the next run. The day
is not saved for later: Anvil's state dump would need every historical state (the run
reads balances at the closing block and supplies before the deployment), gigabytes at
this size; regenerate it instead.

Run: .venv/bin/python bench/settlement_day.py [--conversions 1000000] [--members 1000000]
     [--dir /tmp/settlement-day] [--runs N] [--rerun] [--warm-index] [--profile FILE]
     [--wait-for FILE] [--attach PORT --anvil-pid PID] [--keep-chain]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import coincurve
import httpx
import rlp
import yaml
from sha3 import keccak_256
from sqlalchemy import insert

from alliance import toolchain
from alliance.db.migrate import upgrade_to_head
from alliance.db.models import GatewayMeta, Operation
from alliance.db.session import database_url, make_engine
from alliance.deploy import ensure_deployed
from alliance.deploy_config import RATE_SCALE
from alliance.keys import DevKeyStore
from alliance.localchain import free_port
from alliance.settings import ChainSettings, DataSettings, Settings

REPO = Path(__file__).resolve().parent.parent
CHAIN_ID = 4242
BLOCK_GAS_LIMIT = 2_000_000_000
MINT_GAS = 120_000
CONVERSION_GAS = 70_000
"""Gas limit per batch item (~34k measured, ~52k when the member's first balance at the
receiving brand is a new storage slot; unused gas is free at price zero)."""
STATES_KEPT = 16
"""Block states Anvil keeps in memory (`--prune-history`)."""
MINTS_PER_BLOCK = 10_000
BATCHES_PER_BLOCK = 50
SEND_CHUNK = 1_000
"""Raw mint transactions per JSON-RPC batch."""
BATCHES_PER_SEND = 5
"""convertBatch transactions per JSON-RPC batch (~90 kB of hex each; Anvil caps a request's
body at a few MB)."""
BLOCK_SPACING_S = 10
"""Seconds between generated blocks (a day holds 8,640 of them)."""
DEADLINE_FAR = 2**40
BPS = 10_000
SOURCE_BRAND = 1
"""`IPointToken.Source` code of a brand-funded deposit (`Reason` deposit)."""

MINT_SELECTOR = keccak_256(b"mint(address,uint256,uint256,uint8,bytes32)").digest()[:4]
CONVERT_BATCH_SELECTOR = keccak_256(
    b"convertBatch((uint256,address,address,address,uint256,uint256,uint256)[],bytes[])"
).digest()[:4]

BRANDS = (
    # code, points per value unit, expiry policy
    ("bean", 100, {"kind": "fixed", "months": 24}),
    ("sky", 50, {"kind": "rolling", "months": 18}),
    ("cart", 200, {"kind": "rolling", "months": 12}),
    ("fuel", 10, {"kind": "fixed", "months": 36}),
    ("book", 25, None),
    ("stay", 100, {"kind": "fixed", "months": 24}),
    ("fit", 500, {"kind": "rolling", "months": 24}),
    ("tea", 20, None),
    ("ride", 40, {"kind": "fixed", "months": 12}),
    ("play", 1000, {"kind": "rolling", "months": 6}),
)
FEE_BPS = 100


# ------------------------------------------------------------------------------ Anvil


class Anvil:
    """A private Anvil process of this bench (never the developer's chain)."""

    def __init__(self, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(toolchain.anvil_executable()),
            *("--port", str(self.port)),
            *("--chain-id", str(CHAIN_ID)),
            *("--hardfork", "cancun"),
            *("--gas-price", "0"),
            *("--base-fee", "0"),
            "--disable-min-priority-fee",
            *("--gas-limit", str(BLOCK_GAS_LIMIT)),
            *extra,
        ]
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.http = httpx.Client(timeout=600)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"anvil exited, see {log}"
            try:
                self.call("eth_chainId")
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("anvil did not start")

    @classmethod
    def attach(cls, port: int, pid: int) -> Anvil:
        """An Anvil this bench started earlier (its generation is still in memory)."""
        anvil = cls.__new__(cls)
        anvil.port, anvil.url = port, f"http://127.0.0.1:{port}"
        anvil.http = httpx.Client(timeout=600)
        anvil.process = _Attached(pid)  # type: ignore[assignment]
        anvil.call("eth_chainId")
        return anvil

    def call(self, method: str, *params: Any) -> Any:
        reply = self.http.post(
            self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        ).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def send_raw(self, raws: list[bytes]) -> None:
        if not raws:
            return
        body = [
            {"jsonrpc": "2.0", "id": n, "method": "eth_sendRawTransaction", "params": [raw]}
            for n, raw in enumerate("0x" + r.hex() for r in raws)
        ]
        replies = self.http.post(self.url, json=body).json()
        errors = [reply["error"] for reply in replies if "error" in reply]
        assert not errors, errors[:3]

    def mine(self, timestamp: int) -> None:
        self.call("evm_setNextBlockTimestamp", timestamp)
        self.call("evm_mine")
        status = self.call("txpool_status")
        assert int(status["pending"], 16) == 0 and int(status["queued"], 16) == 0, status

    def rss_mib(self) -> float:
        return process_rss_mib(self.process.pid)

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class _Attached:
    """Enough of `subprocess.Popen` for an Anvil started by an earlier bench process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll(self) -> int | None:
        return None if Path(f"/proc/{self.pid}").exists() else 0

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout or 600)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("anvil", timeout or 600)
            time.sleep(0.2)
        return 0


class AnvilClient:
    """The run's view of the bench's Anvil (started by the parent process)."""

    def __init__(self, port: int, pid: int) -> None:
        self.http = httpx.Client(timeout=600)
        self.url = f"http://127.0.0.1:{port}"
        self.pid = pid

    call = Anvil.call

    def rss_mib(self) -> float:
        return process_rss_mib(self.pid)


def process_rss_mib(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ------------------------------------------------------------------------- transactions


class Signer:
    """Signs legacy EIP-155 transactions for one key with coincurve, nonces in sequence."""

    def __init__(self, private_key: bytes, nonce: int) -> None:
        self.key = coincurve.PrivateKey(private_key)
        self.nonce = nonce

    def sign(self, to: bytes, data: bytes, gas: int) -> bytes:
        fields = [self.nonce, 0, gas, to, 0, data]
        digest = keccak_256(rlp.encode([*fields, CHAIN_ID, 0, 0])).digest()
        signature = self.key.sign_recoverable(digest, hasher=None)
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
        self.nonce += 1
        return rlp.encode([*fields, signature[64] + CHAIN_ID * 2 + 35, r, s])


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def mint_data(member: str, amount: int, request_id: int, brand_ref: bytes) -> bytes:
    return (
        MINT_SELECTOR
        + address_word(member)
        + word(amount)
        + word(request_id)
        + word(SOURCE_BRAND)
        + brand_ref
    )


def convert_batch_data(items: list[tuple[int, str, str, str, int]]) -> bytes:
    """convertBatch(requests, []) encoded by hand: static tuples, no signatures."""
    head = word(64) + word(64 + 32 + 32 * 7 * len(items)) + word(len(items))
    body = b"".join(
        word(request_id)
        + address_word(member)
        + address_word(source)
        + address_word(target)
        + word(amount_in)
        + word(0)
        + word(DEADLINE_FAR)
        for request_id, member, source, target, amount_in in items
    )
    return CONVERT_BATCH_SELECTOR + head + body + word(0)


def quote(amount_in: int, rate_from: int, rate_to: int) -> tuple[int, int, int]:
    """ConversionMath.quote: (amount out, fee points, value in)."""
    value_in = amount_in * rate_from
    gross = value_in // rate_to
    fee = -(-gross * FEE_BPS // BPS)
    return gross - fee, fee, value_in


# --------------------------------------------------------------------------- the day


def bench_config(path: Path) -> None:
    """A 10-brand alliance, every pair enabled with high caps (the bench's load is its own)."""
    config = {
        "governance": {"threshold": 2, "notice_period_days": 30},
        "brands": [
            {
                "code": code,
                "name": f"{code.title()} Points",
                "symbol": code.upper(),
                "points_per_unit": points,
                "gifting": False,
                "governor": index < 3,
                **({"expiry": expiry} if expiry else {}),
            }
            for index, (code, points, expiry) in enumerate(BRANDS)
        ],
        "default_pair_policy": {
            "enabled": True,
            "fee_bps": FEE_BPS,
            "min_amount_out": 1,
            "max_amount_out": 2**40 - 1,
            "daily_cap": 2**48 - 1,
        },
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def core_settings(directory: Path, port: int) -> Settings:
    return Settings(
        chain=ChainSettings(port=port, chain_id=CHAIN_ID),
        data=DataSettings(
            data_dir=directory / "data",
            build_dir=REPO / "build",
            contracts_dir=REPO / "contracts",
            deploy_config_file=directory / "alliance.yaml",
        ),
    )


def member_address(index: int) -> str:
    """A deterministic member address (no key: members are custodial)."""
    return "0x" + keccak_256(f"member:{index}".encode()).digest()[12:].hex()


class Day:
    """The generated day's plan: members, amounts, request ids, the rows to record."""

    def __init__(self, members: int, conversions: int, manifest: Any, base: int) -> None:
        self.members = members
        self.conversions = conversions
        self.codes = [brand.code for brand in manifest.brands]
        self.tokens = [brand.token.address.lower() for brand in manifest.brands]
        self.rates = [brand.rate_value_units for brand in manifest.brands]
        self.points = [RATE_SCALE // rate for rate in self.rates]
        self.base = base
        self.rounds = -(-conversions // members)

    def home(self, member: int) -> int:
        return member % len(self.codes)

    def amount_in(self, member: int) -> int:
        # 5-44 value units: below the new-account and velocity thresholds (a clean day).
        return self.points[self.home(member)] * (5 + member % 40)

    def deposit(self, member: int) -> int:
        return self.amount_in(member) * self.rounds + self.points[self.home(member)] * 7

    def target(self, conversion: int) -> int:
        member = conversion % self.members
        brands = len(self.codes)
        return (self.home(member) + 1 + (conversion // self.members + member) % (brands - 1)) % (
            brands
        )


def generate(
    directory: Path, members: int, conversions: int, batch: int
) -> tuple[Anvil, dict[str, Any]]:
    """Generate the day on a new Anvil, left running (see the module docstring)."""
    timings: dict[str, float] = {}
    directory.mkdir(parents=True, exist_ok=True)
    bench_config(directory / "alliance.yaml")
    # Anvil keeps a full copy of the state for every block it holds in memory: at a
    # million members that ran out of memory after ~190 blocks. The run needs only the
    # latest states (the closing block and the head).
    anvil = Anvil(directory / "anvil.log", *("--prune-history", str(STATES_KEPT)))
    try:
        started = time.perf_counter()
        core = core_settings(directory, anvil.port)
        deployment, _ = ensure_deployed(core)
        manifest = deployment.manifest
        timings["deploy_s"] = time.perf_counter() - started
        head = anvil.call("eth_getBlockByNumber", "latest", False)
        day = datetime.fromtimestamp(int(head["timestamp"], 16), UTC).date() + timedelta(days=1)
        clock = Clock(anvil, day)
        anvil.call("evm_setAutomine", False)
        base = int(time.time()) << 24
        plan = Day(members, conversions, manifest, base)
        keys = DevKeyStore(core.data.data_dir)
        started = time.perf_counter()
        mint_blocks = send_mints(anvil, plan, keys, clock)
        timings["mints_s"] = time.perf_counter() - started
        started = time.perf_counter()
        batches = send_conversions(anvil, plan, keys, clock, manifest.exchange.address, batch)
        timings["conversions_s"] = time.perf_counter() - started
        midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
        anvil.mine(int(midnight.timestamp()) + 5)
        anvil.call("evm_setAutomine", True)
        check_supplies(anvil, plan)
        started = time.perf_counter()
        record_operations(core, plan, clock.start)
        timings["operations_s"] = time.perf_counter() - started
        anvil_rss = anvil.rss_mib()
    except BaseException:
        anvil.stop()
        raise
    summary = {
        "day": day.isoformat(),
        "members": members,
        "conversions": conversions,
        "brands": len(plan.codes),
        "batch_size": batch,
        "conversion_transactions": batches,
        "mint_blocks": mint_blocks,
        "deploy_block": manifest.deploy_block,
        "anvil_rss_mib": round(anvil_rss),
        "timings_s": {key: round(value, 1) for key, value in timings.items()},
    }
    (directory / "day.json").write_text(json.dumps(summary, indent=2))
    return anvil, summary


class Clock:
    """Block timestamps of the generated day: from 00:01 on, `BLOCK_SPACING_S` apart."""

    def __init__(self, anvil: Anvil, day: date) -> None:
        self.anvil = anvil
        self.day = day
        self.start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(minutes=1)
        self.blocks = 0

    def mine(self) -> None:
        at = self.start + timedelta(seconds=BLOCK_SPACING_S * self.blocks)
        assert at.date() == self.day, "the day is full: raise the transactions per block"
        self.anvil.mine(int(at.timestamp()))
        self.blocks += 1


def send_mints(anvil: Anvil, plan: Day, keys: DevKeyStore, clock: Clock) -> int:
    """One issuer mint per member at its home brand; request id = base + member + 1."""
    signers = [
        Signer(keys.account(f"{code}.issuer").key, nonce_of(anvil, keys, f"{code}.issuer"))
        for code in plan.codes
    ]
    tokens = [bytes.fromhex(token[2:]) for token in plan.tokens]
    pending: list[bytes] = []
    blocks = 0
    for member in range(plan.members):
        home = plan.home(member)
        data = mint_data(
            member_address(member),
            plan.deposit(member),
            plan.base + member + 1,
            keccak_256(f"deposit:{member}".encode()).digest(),
        )
        pending.append(signers[home].sign(tokens[home], data, MINT_GAS))
        if len(pending) == SEND_CHUNK:
            anvil.send_raw(pending)
            pending = []
        if (member + 1) % MINTS_PER_BLOCK == 0:
            anvil.send_raw(pending)
            pending = []
            clock.mine()
            blocks += 1
            progress(f"mints {member + 1:,}")
    if pending or plan.members % MINTS_PER_BLOCK:
        anvil.send_raw(pending)
        clock.mine()
        blocks += 1
    return blocks


def nonce_of(anvil: Anvil, keys: DevKeyStore, name: str) -> int:
    return int(anvil.call("eth_getTransactionCount", keys.account(name).address, "pending"), 16)


def conversion_items(plan: Day, first: int, last: int) -> list[tuple[int, str, str, str, int]]:
    items = []
    for conversion in range(first, last):
        member = conversion % plan.members
        items.append(
            (
                plan.base + plan.members + conversion + 1,
                member_address(member),
                plan.tokens[plan.home(member)],
                plan.tokens[plan.target(conversion)],
                plan.amount_in(member),
            )
        )
    return items


def send_conversions(
    anvil: Anvil, plan: Day, keys: DevKeyStore, clock: Clock, exchange: str, batch: int
) -> int:
    """convertBatch transactions of `batch` conversions, `BATCHES_PER_BLOCK` per block."""
    operator = Signer(keys.account("operator").key, nonce_of(anvil, keys, "operator"))
    to = bytes.fromhex(exchange[2:])
    pending: list[bytes] = []
    transactions = 0
    for first in range(0, plan.conversions, batch):
        items = conversion_items(plan, first, min(first + batch, plan.conversions))
        pending.append(operator.sign(to, convert_batch_data(items), CONVERSION_GAS * len(items)))
        transactions += 1
        if len(pending) == BATCHES_PER_BLOCK:
            for start in range(0, len(pending), BATCHES_PER_SEND):
                anvil.send_raw(pending[start : start + BATCHES_PER_SEND])
            pending = []
            clock.mine()
            progress(f"conversions {first + len(items):,}")
    for start in range(0, len(pending), BATCHES_PER_SEND):
        anvil.send_raw(pending[start : start + BATCHES_PER_SEND])
    if pending:
        clock.mine()
    return transactions


def check_supplies(anvil: Anvil, plan: Day) -> None:
    """Each token's totalSupply is what the plan minted and converted (no item rejected)."""
    expected = [0] * len(plan.codes)
    for member in range(plan.members):
        expected[plan.home(member)] += plan.deposit(member)
    for conversion in range(plan.conversions):
        member = conversion % plan.members
        home, target = plan.home(member), plan.target(conversion)
        amount_in = plan.amount_in(member)
        amount_out, _, _ = quote(amount_in, plan.rates[home], plan.rates[target])
        expected[home] -= amount_in
        expected[target] += amount_out
    for token, supply in zip(plan.tokens, expected, strict=True):
        reply = anvil.call("eth_call", {"to": token, "data": "0x18160ddd"}, "latest")
        assert int(reply, 16) == supply, (token, int(reply, 16), supply)


OPERATION_CHUNK = 20_000


def record_operations(core: Settings, plan: Day, start: datetime) -> None:
    """The gateway's confirmed operations for every deposit and conversion (Core inserts)."""
    engine = make_engine(database_url("", core.data.data_dir))
    upgrade_to_head(engine)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(GatewayMeta),
                [{"key": "request_id_base", "value": str(plan.base)}],
            )
        rows = operation_rows(plan, start)
        chunk: list[dict[str, Any]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == OPERATION_CHUNK:
                with engine.begin() as connection:
                    connection.execute(insert(Operation), chunk)
                chunk = []
        if chunk:
            with engine.begin() as connection:
                connection.execute(insert(Operation), chunk)
    finally:
        engine.dispose()


def operation_rows(plan: Day, at: datetime) -> Iterator[dict[str, Any]]:
    """Operation rows shaped as gateway/services/movements.py records them."""
    for member in range(plan.members):
        home = plan.home(member)
        code = plan.codes[home]
        yield {
            "id": member + 1,
            "request_id": plan.base + member + 1,
            "kind": "deposit",
            "status": "confirmed",
            "brand_code": code,
            "signer": f"{code}.issuer",
            "step": 0,
            "params": {
                "member_address": checksum(member_address(member)),
                "amount": plan.deposit(member),
                "source": SOURCE_BRAND,
                "brand_ref": keccak_256(f"deposit:{member}".encode()).hexdigest(),
            },
            "result": None,
            "created_at": at,
            "updated_at": at,
        }
    for conversion in range(plan.conversions):
        member = conversion % plan.members
        home, target = plan.home(member), plan.target(conversion)
        amount_in = plan.amount_in(member)
        amount_out, fee, value_in = quote(amount_in, plan.rates[home], plan.rates[target])
        yield {
            "id": plan.members + conversion + 1,
            "request_id": plan.base + plan.members + conversion + 1,
            "kind": "conversion",
            "status": "confirmed",
            "brand_code": plan.codes[home],
            "signer": "operator",
            "step": 0,
            "params": {
                "from_brand": plan.codes[home],
                "to_brand": plan.codes[target],
                "amount_in": amount_in,
                "min_amount_out": 0,
                "deadline": DEADLINE_FAR,
                "member_address": checksum(member_address(member)),
                "from_token": checksum(plan.tokens[home]),
                "to_token": checksum(plan.tokens[target]),
                "signature": "0x",
            },
            "result": {
                "amount_in": str(amount_in),
                "amount_out": str(amount_out),
                "fee_points": str(fee),
                "value_in_units": str(value_in),
                "rate_from_units": str(plan.rates[home]),
                "rate_to_units": str(plan.rates[target]),
                "fee_bps": FEE_BPS,
            },
            "created_at": at,
            "updated_at": at,
        }


def checksum(address: str) -> str:
    """EIP-55 (eth_utils' version is slow enough to matter at a million rows)."""
    lower = address[2:].lower()
    digest = keccak_256(lower.encode()).hexdigest()
    return "0x" + "".join(
        c.upper() if c.isalpha() and int(h, 16) >= 8 else c
        for c, h in zip(lower, digest[:40], strict=True)
    )


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the run


STEP_TARGETS = (
    # (module, attribute, step name): functions close_period calls, timed in place
    ("settlement.run", "period_pass", "read_and_match_events"),
    ("settlement.run", "prove_index", "prove_index"),
    ("settlement.run", "replay_transfers", "replay_balances"),
    ("settlement.run", "balances_root", "merkle_root"),
    ("settlement.run", "check_balances", "check_balances"),
    ("settlement.run", "reconciled_period", "reconcile"),
    ("settlement.risk", "replay_risk", "replay_lots_and_fraud_records"),
    ("settlement.risk", "expiry_step", "expiry"),
    ("settlement.risk", "fraud_step", "fraud"),
    ("settlement.run", "build_statements", "statements"),
    ("settlement.run", "write_outputs", "outputs"),
)


def instrument(timings: dict[str, float]) -> None:
    """Wrap each step's function so its wall time lands in `timings`."""
    import importlib

    for module_name, attribute, step in STEP_TARGETS:
        module = importlib.import_module(module_name)
        original = getattr(module, attribute)
        setattr(module, attribute, timed(original, step, timings))


def timed(function: Callable[..., Any], step: str, timings: dict[str, float]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timings[step] = timings.get(step, 0.0) + time.perf_counter() - started
            progress(f"{step} {timings[step]:.1f} s, peak RSS {peak_rss_mib():.0f} MiB")

    return wrapper


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_once(
    directory: Path,
    rpc_port: int,
    anvil_pid: int,
    rerun: bool,
    profile: Path | None,
    warm_index: bool,
) -> dict[str, Any]:
    """Close the generated day in this process (called in a fresh process by `run`)."""
    from settlement import anchoring, indexer, run
    from settlement.context import open_context
    from settlement.risk import risk_hook
    from settlement.settings import SettlementSettings

    summary = json.loads((directory / "day.json").read_text())
    day = date.fromisoformat(summary["day"])
    run_dir = directory / "run"
    anvil = AnvilClient(rpc_port, anvil_pid)
    results: dict[str, Any] = {}
    try:
        core = core_settings(run_dir, rpc_port)
        timings: dict[str, float] = {}
        instrument(timings)
        indexer.EventIndexer.sync = timed(indexer.EventIndexer.sync, "index", timings)  # type: ignore[method-assign]
        anchoring.Anchorer.ensure_anchored = timed(  # type: ignore[method-assign]
            anchoring.Anchorer.ensure_anchored, "anchor", timings
        )
        settings = SettlementSettings()
        context = open_context(core, settings)
        hook = risk_hook(core)
        if warm_index and not (directory / "indexed").exists():
            # What the settlement service does between closes (settlement/service.py): the
            # close then finds the index up to date. Kept for the next runs (`run`).
            started = time.perf_counter()
            context.indexer.sync()
            results["index_ahead_s"] = round(time.perf_counter() - started, 1)
            timings.clear()
            save_indexed(run_dir / "data", directory / "indexed")
        profiler = None
        if profile is not None:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.01)
            profiler.start()
        started, cpu_started = time.perf_counter(), time.process_time()
        result = run.close_period(context, day, alerts_hook=hook)
        total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        if profiler is not None and profile is not None:
            profiler.stop()
            profile.write_text(profiler.output_html())
            progress(profiler.output_text(unicode=True, color=False, show_all=False)[:20_000])
        results["first_run"] = {
            "total_s": round(total, 1),
            "cpu_s": round(cpu, 1),
            "steps_s": {step: round(seconds, 1) for step, seconds in timings.items()},
            "peak_rss_mib": round(peak_rss_mib()),
            "anvil_rss_mib": round(anvil.rss_mib()),
            **check_result(result, anvil, context),
        }
        if rerun:
            before = {path.name: path.read_bytes() for path in result.files}
            timings.clear()
            started = time.perf_counter()
            again = run.close_period(context, day, alerts_hook=hook)
            results["rerun"] = {
                "total_s": round(time.perf_counter() - started, 1),
                "steps_s": {step: round(seconds, 1) for step, seconds in timings.items()},
                "anchored_again": again.anchored_now,
                "identical_files": before == {p.name: p.read_bytes() for p in again.files},
            }
        context.close()
    finally:
        anvil.http.close()
    return results


def check_result(result: Any, anvil: Any, context: Any) -> dict[str, Any]:
    """The outputs exist, the file hash is the anchored hash, the anchor is on chain."""
    statements = (result.output_dir / "statements.json").read_bytes()
    assert "0x" + keccak_256(statements).hexdigest() == result.statements_hash
    anchored = context.anchor_contract.functions.anchorOf(result.period_id).call()
    on_chain = [value for value in anchored if isinstance(value, bytes)]
    assert "0x" + on_chain[0].hex() == result.balances_root, (anchored, result)
    assert "0x" + on_chain[1].hex() == result.statements_hash, (anchored, result)
    receipt = anvil.call("eth_getTransactionReceipt", result.anchor_transaction)
    assert int(receipt["status"], 16) == 1
    document = json.loads(statements)
    conversions = sum(flow["count"] for flow in document["flows"])
    alerts = json.loads((result.output_dir / "alerts.json").read_bytes())
    return {
        "period_id": result.period_id,
        "blocks": [result.opening_block, result.closing_block],
        "conversions_in_statements": conversions,
        "discrepancies": result.discrepancies,
        "alerts": len(alerts),
        "anchored_now": result.anchored_now,
        "files": sorted(path.name for path in result.files),
    }


def save_indexed(data: Path, target: Path) -> None:
    """A copy of the data directory with the day indexed (SQLite's online backup, so the
    copy is consistent), for later `--warm-index` runs: indexing a million conversions'
    five million logs ahead again would take minutes per run."""
    import sqlite3
    from contextlib import closing

    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(data, staging, ignore=shutil.ignore_patterns("alliance.db*"))
    with (
        closing(sqlite3.connect(data / "alliance.db")) as source,
        closing(sqlite3.connect(staging / "alliance.db")) as copy,
    ):
        source.backup(copy)
    staging.rename(target)


def run(
    anvil: Anvil, directory: Path, rerun: bool, profile: Path | None, warm_index: bool
) -> dict[str, Any]:
    """A fresh copy of the generated data directory (database before any settlement), then
    `run_once` in a fresh process (a clean peak RSS); the chain is reverted afterwards, so
    every run indexes, anchors and burns as the first close of the day does."""
    run_dir = directory / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    indexed = directory / "indexed"
    source = indexed if warm_index and indexed.exists() else directory / "data"
    shutil.copytree(source, run_dir / "data")
    shutil.copy(directory / "alliance.yaml", run_dir / "alliance.yaml")
    command = [sys.executable, __file__, "--run-once", str(directory)]
    command += ["--rpc-port", str(anvil.port), "--anvil-pid", str(anvil.process.pid)]
    if rerun:
        command.append("--rerun")
    if warm_index:
        command.append("--warm-index")
    if profile is not None:
        command += ["--profile", str(profile)]
    snapshot = anvil.call("evm_snapshot")
    try:
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    finally:
        assert anvil.call("evm_revert", snapshot)
    return dict(json.loads(output))


def print_table(summary: dict[str, Any], results: dict[str, Any]) -> None:
    first = results["first_run"]
    print(
        f"\nday {summary['day']}: {summary['conversions']:,} conversions, "
        f"{summary['members']:,} members, {summary['brands']} brands"
    )
    print(f"generation: {summary['timings_s']}")
    print(f"{'step':<22}{'seconds':>10}")
    for step, seconds in first["steps_s"].items():
        print(f"{step:<22}{seconds:>10.1f}")
    print(f"{'total':<22}{first['total_s']:>10.1f}")
    print(f"{'CPU of the close':<22}{first['cpu_s']:>10.1f}")
    print(f"peak RSS {first['peak_rss_mib']} MiB (Anvil {first['anvil_rss_mib']} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversions", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=200, help="conversions per convertBatch")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/settlement-day"))
    parser.add_argument("--runs", type=int, default=1, help="timed runs of the close")
    parser.add_argument("--rerun", action="store_true", help="re-run the period and compare")
    parser.add_argument("--profile", type=Path, help="pyinstrument HTML of the first run")
    parser.add_argument(
        "--wait-for", type=Path, help="start the runs once this file exists (change code meanwhile)"
    )
    parser.add_argument(
        "--warm-index",
        action="store_true",
        help="sync the index before the close, as the service does during the day",
    )
    parser.add_argument(
        "--attach",
        type=int,
        help="run against the Anvil of an earlier generation still up on this port "
        "(with --anvil-pid and the same --dir); it is stopped at the end",
    )
    parser.add_argument(
        "--keep-chain",
        action="store_true",
        help="leave Anvil running at the end (for later --attach runs)",
    )
    parser.add_argument("--run-once", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rpc-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--anvil-pid", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.run_once is not None:
        result = run_once(
            arguments.run_once,
            arguments.rpc_port,
            arguments.anvil_pid,
            arguments.rerun,
            arguments.profile,
            arguments.warm_index,
        )
        print(json.dumps(result))
        return
    directory = arguments.dir
    if arguments.attach is not None:
        anvil = Anvil.attach(arguments.attach, arguments.anvil_pid)
        summary = json.loads((directory / "day.json").read_text())
    else:
        if directory.exists():
            shutil.rmtree(directory)
        anvil, summary = generate(
            directory, arguments.members, arguments.conversions, arguments.batch
        )
        progress(json.dumps(summary))
    try:
        while arguments.wait_for is not None and not arguments.wait_for.exists():
            time.sleep(5)
        for number in range(arguments.runs):
            profile = arguments.profile if number == 0 else None
            results = run(anvil, directory, arguments.rerun, profile, arguments.warm_index)
            print(json.dumps({"day": summary, **results}, indent=2), flush=True)
            print_table(summary, results)
    finally:
        if arguments.keep_chain:
            progress(f"Anvil left running: --attach {anvil.port} --anvil-pid {anvil.process.pid}")
        else:
            anvil.stop()


if __name__ == "__main__":
    main()
