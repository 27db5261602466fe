"""The local development chain: an Anvil process that outlives the command that started it.

Anvil runs detached (its own session, so Ctrl-C in a terminal or the end of `make` does
not kill it) and is found again through its pid file. Its state lives in one JSON file:
Anvil loads it at start, rewrites it every `state_interval_s` seconds and on SIGTERM, so
a clean stop loses nothing and a crash loses at most one interval.

Anvil's dev accounts come from its well-known public mnemonic ("test test ... junk").
That is acceptable here: the chain is bound to loopback and our contracts trust only
keys the project generates itself, never Anvil's dev accounts.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from alliance import toolchain
from alliance.errors import ChainNotRunning, ChainPortTaken, ChainRpcFailed, ChainStartFailed
from alliance.settings import ChainSettings, DataSettings

RPC_PROBE_TIMEOUT_S = 1.0
"""Timeout of one JSON-RPC readiness probe."""

POLL_INTERVAL_S = 0.1
"""Pause between readiness or exit checks."""

KILL_WAIT_S = 5.0
"""How long to wait for the process to vanish after SIGKILL."""

LOG_TAIL_LINES = 20
"""Lines of Anvil's log quoted in start errors."""


class LocalChain:
    """Start, stop and inspect the local Anvil chain described by the settings."""

    def __init__(self, chain_settings: ChainSettings, data_settings: DataSettings) -> None:
        self.chain_settings = chain_settings
        self.data_settings = data_settings

    @property
    def rpc_url(self) -> str:
        """HTTP JSON-RPC endpoint of the chain."""
        return self.chain_settings.rpc_url

    @property
    def pid_file(self) -> Path:
        """File holding the pid of our running Anvil."""
        return self.data_settings.chain_dir / "anvil.pid"

    @property
    def log_file(self) -> Path:
        """Anvil's combined stdout and stderr (appended across restarts)."""
        return self.data_settings.chain_dir / "anvil.log"

    def pid(self) -> int | None:
        """Return the pid of our Anvil if it is running, else None."""
        try:
            pid = int(self.pid_file.read_text(encoding="utf-8").strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_anvil_process(pid) else None

    def is_running(self) -> bool:
        """Whether our Anvil process (the one in the pid file) is alive."""
        return self.pid() is not None

    def start(self) -> bool:
        """Spawn Anvil detached; return False if ours was already running (no-op).

        Does not wait for readiness: call `wait_ready()`.
        """
        if self.is_running():
            return False
        self.pid_file.unlink(missing_ok=True)  # Stale: its process is gone.
        self._refuse_taken_port()
        self.data_settings.chain_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Dropping the handle is deliberate: the chain outlives this Python process;
        # `_is_pid_alive` reaps it if it exits while we are still its parent.
        self.pid_file.write_text(f"{process.pid}\n", encoding="utf-8")
        return True

    def _command(self) -> list[str]:
        chain = self.chain_settings
        command = [
            str(toolchain.anvil_executable()),
            *("--host", chain.host),
            *("--port", str(chain.port)),
            *("--chain-id", str(chain.chain_id)),
            *("--hardfork", chain.hardfork),
            # Zero fees, as on the permissioned Besu network (min gas price 0). Without
            # --disable-min-priority-fee Anvil still quotes eth_gasPrice as 1 gwei.
            *("--gas-price", "0"),
            *("--base-fee", "0"),
            "--disable-min-priority-fee",
            *("--state", str(self.data_settings.state_file.resolve())),
            *("--state-interval", str(chain.state_interval_s)),
        ]
        if chain.block_time_s > 0:
            command += ["--block-time", str(chain.block_time_s)]
        return command

    def _refuse_taken_port(self) -> None:
        host, port = self.chain_settings.host, self.chain_settings.port
        if _port_accepts_connections(host, port):
            reason = f"something already accepts connections on port {port}"
            raise ChainPortTaken(rpc_url=self.rpc_url, reason=reason)

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Block until Anvil answers `eth_chainId` with the configured chain id."""
        timeout_s = self.chain_settings.start_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_running():
                self._fail_start(f"Anvil exited during startup\n{self._log_tail()}")
            chain_id = self._probe_chain_id()
            if chain_id is not None:
                if chain_id != self.chain_settings.chain_id:
                    expected = self.chain_settings.chain_id
                    self._fail_start(f"it answers chain id {chain_id}, expected {expected}")
                return
            time.sleep(POLL_INTERVAL_S)
        self._fail_start(f"no JSON-RPC answer within {timeout_s:g} s\n{self._log_tail()}")

    def _fail_start(self, reason: str) -> None:
        raise ChainStartFailed(rpc_url=self.rpc_url, reason=reason, log_file=self.log_file)

    def _probe_chain_id(self) -> int | None:
        try:
            result = rpc_call(self.rpc_url, "eth_chainId", timeout_s=RPC_PROBE_TIMEOUT_S)
        except (OSError, ValueError, ChainRpcFailed):
            # Not listening yet, or not answering JSON-RPC yet (OSError covers timeouts,
            # ValueError covers a half-started server's malformed reply).
            return None
        return int(str(result), 16)

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def stop(self, timeout_s: float = 10) -> bool:
        """Stop Anvil with SIGTERM (it writes its state file on the way out).

        Falls back to SIGKILL only if it has not exited within `timeout_s`. Returns False
        if it was not running.
        """
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _send_signal(pid, signal.SIGTERM)
        if not _wait_for_exit(pid, timeout_s):
            # Last resort: the state written at the last interval survives, newer is lost.
            # The whole group, because the npm wrapper (fallback binary) has a child Anvil.
            _send_signal(pid, signal.SIGKILL, whole_group=True)
            _wait_for_exit(pid, KILL_WAIT_S)
        self.pid_file.unlink(missing_ok=True)
        return True

    def require_running(self) -> None:
        """Raise `ChainNotRunning` unless our Anvil is running."""
        if not self.is_running():
            raise ChainNotRunning(rpc_url=self.rpc_url)


def rpc_call(rpc_url: str, method: str, *params: object, timeout_s: float) -> object:
    """Send one JSON-RPC request and return its result (for probes; not a client)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        rpc_url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise ChainRpcFailed(rpc_url=rpc_url, method=method, error=reply["error"])
    return reply["result"]


def _port_accepts_connections(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(RPC_PROBE_TIMEOUT_S)
        return probe.connect_ex((host, port)) == 0


def _is_pid_alive(pid: int) -> bool:
    try:
        # Reap it if it is our exited child; otherwise a zombie would look alive forever.
        reaped_pid, _ = os.waitpid(pid, os.WNOHANG)
        if reaped_pid == pid:
            return False
    except ChildProcessError:
        pass  # Not our child: the kernel's init reaps it.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_anvil_process(pid: int) -> bool:
    """Whether `pid` is alive and (where /proc exists) runs Anvil, guarding pid reuse."""
    if not _is_pid_alive(pid):
        return False
    if not Path("/proc/self").exists():
        return True  # No procfs (macOS): trust the pid file.
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        arguments = cmdline.read_bytes()
    except FileNotFoundError:
        return False
    # Empty while the kernel is still inside exec(): Popen returns once the old image is
    # gone, slightly before the new command line is readable.
    return arguments == b"" or b"anvil" in arguments


def _send_signal(pid: int, signal_number: int, *, whole_group: bool = False) -> None:
    """Signal `pid` (or its process group, which `start` made it lead); gone is fine."""
    try:
        if whole_group:
            os.killpg(pid, signal_number)
        else:
            os.kill(pid, signal_number)
    except ProcessLookupError:
        pass  # It exited between the liveness check and the signal.


def _wait_for_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _is_pid_alive(pid):
            return True
        time.sleep(POLL_INTERVAL_S)
    return not _is_pid_alive(pid)


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now.

    The kernel picks an unused ephemeral port; it is released before the caller binds it, so
    a race is possible but rare, and callers (tests, benchmarks) retry with a new port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
