"""The real parts the gateway suite runs against: the gateway as a subprocess, the database
it writes (SQLite or a fresh PostgreSQL database) and the chain it writes to.

The tests read the books directly (the gateway's tables and the chain's events) to check
what the HTTP answers claim; they never write to the gateway's database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from alliance.db.models import Member, Operation, OperationStatus
from alliance.deploy import Deployment, ensure_deployed, load_deployment
from alliance.keys import DevKeyStore
from alliance.localchain import LocalChain
from alliance.settings import DataSettings, Settings
from tests.conftest import free_port, start_local_chain
from tests.gateway.api_client import Api

REPO_DIR = Path(__file__).resolve().parents[2]
ALLIANCE_EXECUTABLE = Path(sys.executable).parent / "alliance"
"""The `alliance` console script of the interpreter running the tests (the checkout's venv)."""

GATEWAY_START_TIMEOUT_S = 60.0
GATEWAY_STOP_TIMEOUT_S = 15.0
POLL_S = 0.1
LOG_TAIL_LINES = 40

DATABASE_URL_VARIABLE = "ALLIANCE_TEST_DATABASE_URL"
"""Set to a PostgreSQL URL to run the gateway suite on PostgreSQL instead of SQLite."""

FAILPOINT_VARIABLE = "ALLIANCE_GATEWAY_FAILPOINT"

DISABLED_PAIR = ("sky", "cart")
"""The one pair the test alliance disables: cart does not accept conversions from sky."""

UNFINISHED = (OperationStatus.ACCEPTED, OperationStatus.SUBMITTED)


# --- databases -----------------------------------------------------------------------------


class Databases:
    """Hands each stack its own database: SQLite in the stack's data dir by default, or a
    fresh PostgreSQL database (dropped and created) on the server of `server_url`."""

    def __init__(self, server_url: str | None) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    def fresh(self, name: str) -> str:
        """The gateway's database URL for the stack `name` ("" means its default SQLite)."""
        if not self.server_url:
            return ""
        url = make_url(self.server_url)
        database = f"{url.database or 'alliance_test'}_{name}"
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{database}"')
        self.created.append(database)
        return url.set(database=database).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.server_url:
            return
        with self._admin() as connection:
            for database in self.created:
                connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        self.created.clear()

    def _admin(self) -> psycopg.Connection[Any]:
        url = make_url(self.server_url or "")
        return psycopg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password,
            dbname="postgres",
            autocommit=True,
        )


def write_test_alliance_config(data_dir: Path) -> Path:
    """config/alliance.yaml plus one disabled pair (so `pair_disabled` can be provoked without
    sending transactions with keys the gateway owns), written under `data_dir`."""
    config = yaml.safe_load((REPO_DIR / "config" / "alliance.yaml").read_text())
    sending, receiving = DISABLED_PAIR
    config["pair_policies"].append(
        {"from": sending, "to": receiving, "enabled": False, "fee_bps": 100}
    )
    path = data_dir / "alliance-test.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# --- the gateway process -------------------------------------------------------------------


class GatewayProcess:
    """`alliance gateway serve` in a subprocess, with its own log file."""

    def __init__(
        self, data_dir: Path, chain_port: int, database_url: str, port: int, log_file: Path
    ) -> None:
        self.data_dir = data_dir
        self.chain_port = chain_port
        self.database_url = database_url
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.extra_env: dict[str, str] = {}
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self, extra_env: Mapping[str, str]) -> dict[str, str]:
        """The process environment: ours, never an ALLIANCE_* variable of the caller's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALLIANCE_")}
        env |= {
            "ALLIANCE_DATA_DIR": str(self.data_dir),
            "ALLIANCE_BUILD_DIR": str(REPO_DIR / "build"),
            "ALLIANCE_CHAIN_PORT": str(self.chain_port),
            "ALLIANCE_GATEWAY_PORT": str(self.port),
            # A process killed with -9 keeps its signing-key leases until they lapse.
            "ALLIANCE_GATEWAY_LEASE_TTL_S": "2",
        }
        if self.database_url:
            env["ALLIANCE_GATEWAY_DATABASE_URL"] = self.database_url
        return env | dict(extra_env)

    def start(self, extra_env: Mapping[str, str] | None = None) -> None:
        """Start the gateway and wait until it answers HTTP."""
        assert not self.is_running(), "the gateway is already running"
        self.extra_env = dict(extra_env or {})
        with self.log_file.open("ab") as log:
            log.write(f"\n--- start {self.extra_env} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [str(ALLIANCE_EXECUTABLE), "gateway", "serve"],
                cwd=REPO_DIR,
                env=self.environment(self.extra_env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + GATEWAY_START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the gateway exited while starting\n{self.log_tail()}")
            try:
                if httpx.get(self.base_url + "/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(POLL_S)
        raise AssertionError(f"the gateway did not answer in time\n{self.log_tail()}")

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> int:
        """SIGKILL, as a power cut would: no cleanup, leases left to lapse."""
        return self._signal(signal.SIGKILL, GATEWAY_STOP_TIMEOUT_S)

    def terminate(self) -> int:
        """SIGTERM: uvicorn's clean shutdown (submitters stop and hand back their leases)."""
        code = self._signal(signal.SIGTERM, GATEWAY_STOP_TIMEOUT_S)
        if code is None:
            return self.kill()
        return code

    def restart(self, extra_env: Mapping[str, str] | None = None) -> None:
        if self.is_running():
            self.terminate()
        self.start(extra_env)

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit code once the process ends by itself (negative: killed by that signal)."""
        assert self.process is not None
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def _signal(self, number: int, timeout_s: float) -> Any:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(number)
        return self.wait_exit(timeout_s)

    def log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no gateway log)"
        return "\n".join(lines[-LOG_TAIL_LINES:])


# --- the books: the gateway's database and the chain ----------------------------------------


@dataclass(frozen=True)
class OperationRow:
    """An operation as the gateway's database holds it."""

    id: int
    kind: str
    status: str
    request_id: int | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    error_code: str | None


class Books:
    """Read-only queries on the gateway's database."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url)

    def _rows(self, statement: Any) -> list[OperationRow]:
        with Session(self.engine) as session:
            return [
                OperationRow(o.id, o.kind, o.status, o.request_id, o.params, o.result, o.error_code)
                for o in session.scalars(statement)
            ]

    def operations_of(self, member_public_id: str) -> list[OperationRow]:
        """Every operation on a member, oldest first."""
        return self._rows(
            select(Operation)
            .join(Member, Member.id == Operation.member_id)
            .where(Member.public_id == member_public_id)
            .order_by(Operation.id)
        )

    def unfinished(self) -> list[OperationRow]:
        """Operations still accepted or submitted."""
        return self._rows(select(Operation).where(Operation.status.in_(UNFINISHED)))

    def operation_count(self) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(Operation)) or 0)

    def member_count(self) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(Member)) or 0)

    def dispose(self) -> None:
        self.engine.dispose()


class ChainView:
    """The deployed alliance as the tests see it: balances, events, and the brand freezer
    keys (which the gateway never uses, so the tests may sign with them)."""

    def __init__(self, deployment: Deployment, keys: DevKeyStore) -> None:
        self.deployment = deployment
        self.keys = keys
        token = deployment.compiled.load_artifact("PointToken")
        self.tokens = {
            brand.code: deployment.client.contract(token, brand.token.address)
            for brand in deployment.manifest.brands
        }
        self.exchange = deployment.contract(
            "AllianceExchange", deployment.manifest.exchange.address
        )

    @property
    def from_block(self) -> int:
        return self.deployment.manifest.deploy_block

    def balance(self, brand: str, address: str) -> int:
        return int(self.tokens[brand].functions.balanceOf(address).call())

    def balances(self, address: str) -> dict[str, int]:
        return {brand: self.balance(brand, address) for brand in self.tokens}

    def mints(self, brand: str, address: str) -> list[Any]:
        """`PointsMinted` events of `brand` to `address` (deposits)."""
        event = self.tokens[brand].events.PointsMinted()
        logs = event.get_logs(argument_filters={"account": address}, from_block=self.from_block)
        return list(logs)

    def conversions(self, address: str) -> list[Any]:
        """`Converted` events of the member at `address`."""
        event = self.exchange.events.Converted()
        logs = event.get_logs(argument_filters={"member": address}, from_block=self.from_block)
        return list(logs)

    def freeze(self, brand: str, address: str) -> None:
        """Freeze `address` at `brand`: the brand's two freezers request and approve."""
        token = self.tokens[brand].address
        for freezer in ("freezer_a", "freezer_b"):
            self.deployment.client.transact(
                self.keys.account(f"{brand}.{freezer}"),
                self.exchange.functions.setFrozen(token, address, True),
            )
        assert self.exchange.functions.isFrozen(token, address).call()


def books_url(database_url: str, data_dir: Path) -> str:
    """The URL the tests read the books from (the gateway's default SQLite file if empty)."""
    return database_url or f"sqlite:///{(data_dir / 'alliance.db').resolve()}"


# --- a whole stack ---------------------------------------------------------------------------


@dataclass
class Stack:
    """Anvil, the test alliance deployed on it, and a gateway serving it over HTTP."""

    name: str
    data_dir: Path
    chain: LocalChain
    settings: Settings
    gateway: GatewayProcess
    gateway_env: dict[str, str]
    api: Api
    books: Books
    ledger: ChainView

    def ensure_gateway(self) -> None:
        """The gateway running with this stack's own settings (a test that restarted it
        with others, or killed it, and failed before restoring it is repaired here)."""
        if self.gateway.is_running() and self.gateway.extra_env == self.gateway_env:
            return
        self.gateway.restart(self.gateway_env)


@contextmanager
def build_stack(
    name: str,
    data_dir: Path,
    databases: Databases,
    gateway_env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """Start Anvil in `data_dir`, deploy the test alliance, start the gateway; tear all
    three down on the way out."""
    chain = start_local_chain(data_dir)
    gateway: GatewayProcess | None = None
    books: Books | None = None
    api: Api | None = None
    try:
        settings = Settings(
            chain=chain.chain_settings,
            data=DataSettings(
                data_dir=data_dir,
                build_dir=REPO_DIR / "build",
                contracts_dir=REPO_DIR / "contracts",
                deploy_config_file=write_test_alliance_config(data_dir),
            ),
        )
        ensure_deployed(settings)
        database_url = databases.fresh(name)
        gateway = GatewayProcess(
            data_dir, chain.chain_settings.port, database_url, free_port(), data_dir / "gateway.log"
        )
        env = dict(gateway_env or {})
        gateway.start(env)
        books = Books(books_url(database_url, data_dir))
        api = Api(gateway.base_url, data_dir, lambda: gateway.starts if gateway else 0)
        ledger = ChainView(load_deployment(settings), DevKeyStore(data_dir))
        yield Stack(name, data_dir, chain, settings, gateway, env, api, books, ledger)
    finally:
        if gateway is not None:
            gateway.terminate()
        if api is not None:
            api.close()
        if books is not None:
            books.dispose()
        chain.stop()
