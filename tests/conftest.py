"""Shared session fixtures: the checkout, a compiled build of contracts/, a running Anvil.

Everything is real: solc (through the adapter), Anvil from node_modules, web3.py over HTTP.
Chains get a temporary data dir and a free loopback port, so tests never touch `.alliance/`
or a developer's chain on 8545.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from web3 import Web3

from alliance import toolchain
from alliance.compiler import CompileResult, compile_contracts
from alliance.errors import ChainStartFailed
from alliance.localchain import LocalChain, free_port
from alliance.settings import ChainSettings, DataSettings

START_ATTEMPTS_MAX = 3
"""Fresh ports to try when another process grabs ours between choosing and binding it."""

CHAIN_START_TIMEOUT_S = 30


def start_local_chain(data_dir: Path, **chain_overrides: object) -> LocalChain:
    """Start an Anvil with its data under `data_dir` on a free port and wait until ready."""
    for attempt in range(1, START_ATTEMPTS_MAX + 1):
        chain_settings = ChainSettings(port=free_port(), **chain_overrides)  # type: ignore[arg-type]
        chain = LocalChain(chain_settings, DataSettings(data_dir=data_dir))
        try:
            chain.start()
            chain.wait_ready(CHAIN_START_TIMEOUT_S)
        except ChainStartFailed:
            chain.stop()
            if attempt == START_ATTEMPTS_MAX:
                raise
            continue
        return chain
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The root of this checkout."""
    return toolchain.repo_dir()


@pytest.fixture(scope="session")
def compiled(repo_root: Path) -> CompileResult:
    """The real contracts/ compiled into the checkout's build/ (reused while sources are
    unchanged, as `alliance compile` does)."""
    return compile_contracts(repo_root / "contracts", repo_root / "build")


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalChain]:
    """One Anvil for the whole session (tests that stop or restart chains make their own)."""
    chain = start_local_chain(tmp_path_factory.mktemp("anvil-data"))
    yield chain
    chain.stop()


@pytest.fixture(scope="session")
def w3(anvil: LocalChain) -> Web3:
    """web3.py client of the session's Anvil."""
    return Web3(Web3.HTTPProvider(anvil.rpc_url))


@pytest.fixture
def chain_factory(tmp_path: Path) -> Iterator[Callable[..., LocalChain]]:
    """Start private chains for one test; every chain it started is stopped afterwards."""
    started: list[LocalChain] = []

    def factory(**chain_overrides: object) -> LocalChain:
        chain = start_local_chain(tmp_path / f"data-{len(started)}", **chain_overrides)
        started.append(chain)
        return chain

    yield factory
    for chain in started:
        chain.stop()


# --- A deployed alliance ------------------------------------------------------------------


@pytest.fixture(scope="session")
def deployed(compiled: CompileResult, anvil: LocalChain, tmp_path_factory: pytest.TempPathFactory):
    """The test alliance (tests/support/alliance.py TEST_CONFIG) deployed once per session."""
    from tests.support.alliance import deploy_test_alliance

    return deploy_test_alliance(compiled, anvil.rpc_url, tmp_path_factory.mktemp("keys"))


@pytest.fixture
def alliance(deployed):
    """The session's alliance, with every change a test makes rolled back afterwards
    (Anvil `evm_snapshot` / `evm_revert`)."""
    provider = deployed.client.w3.provider
    snapshot = provider.make_request("evm_snapshot", [])["result"]
    yield deployed
    reverted = provider.make_request("evm_revert", [snapshot])["result"]
    assert reverted, "Anvil refused to revert the test snapshot"
