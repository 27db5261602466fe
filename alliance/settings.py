"""Settings, one pydantic-settings class per concern, read from the environment.

Nothing here is instantiated at import time: callers build settings with
`load_settings()` (or a single class directly) and pass them down.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ChainSettings(BaseSettings):
    """The local Anvil chain that stands in for the permissioned Besu network."""

    model_config = SettingsConfigDict(
        env_prefix="ALLIANCE_CHAIN_", frozen=True, use_attribute_docstrings=True
    )

    host: str = "127.0.0.1"
    """Interface Anvil listens on; loopback keeps the development chain private."""

    port: int = Field(default=8545, ge=1, le=65535)
    """TCP port of Anvil's JSON-RPC endpoint."""

    chain_id: int = Field(default=4242, ge=1)
    """EIP-155 chain id; deliberately not Anvil's 31337 so signed transactions from
    other local chains are rejected."""

    hardfork: str = "cancun"
    """EVM hardfork Anvil runs; cancun is the newest one Hyperledger Besu supports that
    our contracts target (see `alliance.compiler.EVM_VERSION`)."""

    block_time_s: int = Field(default=0, ge=0)
    """Seconds between blocks; 0 mines every transaction immediately (Anvil automine)."""

    state_interval_s: int = Field(default=1, ge=1)
    """How often Anvil dumps its state to disk, bounding what a crash can lose."""

    start_timeout_s: float = Field(default=30, gt=0)
    """How long to wait for a freshly started Anvil to answer JSON-RPC."""

    @property
    def rpc_url(self) -> str:
        """HTTP JSON-RPC endpoint of the chain."""
        return f"http://{self.host}:{self.port}"


class DataSettings(BaseSettings):
    """Where the project reads sources and keeps generated files.

    Relative paths are relative to the working directory, which is the repository root
    when commands run through `make`.
    """

    model_config = SettingsConfigDict(
        env_prefix="ALLIANCE_", frozen=True, use_attribute_docstrings=True
    )

    data_dir: Path = Path(".alliance")
    """Runtime data: chain state, generated keys, deployment manifest (never committed)."""

    build_dir: Path = Path("build")
    """Compiled contract artifacts; rebuilt from `contracts_dir` when sources change."""

    contracts_dir: Path = Path("contracts")
    """Solidity sources compiled by `alliance compile`."""

    deploy_config_file: Path = Path("config/alliance.yaml")
    """The alliance `alliance deploy` and `alliance up` deploy: brands, rates, pair policies."""

    @property
    def chain_dir(self) -> Path:
        """Anvil's state file, log and pid file."""
        return self.data_dir / "chain"

    @property
    def state_file(self) -> Path:
        """Anvil's state dump, loaded at start and written periodically and at exit."""
        return self.chain_dir / "state.json"

    @property
    def permissions_file(self) -> Path:
        """Default output of `alliance export-allowlist` (Besu local permissioning)."""
        return self.data_dir / "besu" / "permissions_config.toml"

    @property
    def manifest_file(self) -> Path:
        """Deployment manifest: addresses of the deployed contracts on the local chain."""
        return self.data_dir / "deployment.json"


@dataclass(frozen=True)
class Settings:
    """All settings of the core, grouped by concern."""

    chain: ChainSettings
    data: DataSettings


def load_settings() -> Settings:
    """Read every settings group from the environment (and defaults)."""
    return Settings(chain=ChainSettings(), data=DataSettings())
