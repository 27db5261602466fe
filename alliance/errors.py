"""The project's exception hierarchy.

Every error the project raises on purpose derives from `AllianceError`. Each subclass is a
dataclass: its fields are the typed facts needed to diagnose the problem, its class-level
`code` is a stable identifier (safe to match on in callers, logs and HTTP problem
responses), and `describe()` builds the human message from the fields. To add an error,
copy one of the subclasses below: pick a new `code`, declare the fields, write `describe`.

Broken invariants are not errors: they are bugs and are asserted, never raised from here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar


class AllianceError(Exception):
    """Root of every error the project raises on purpose."""

    code: ClassVar[str] = "alliance_error"
    """Stable machine-readable identifier of the error kind."""

    def __post_init__(self) -> None:
        # Dataclass subclasses generate __init__ without calling Exception.__init__;
        # setting args here keeps str(), repr() and tracebacks showing the real message.
        Exception.__init__(self, self.describe())

    def describe(self) -> str:
        """Return the human-readable message built from the error's fields."""
        return "unspecified Alliance error"

    def __str__(self) -> str:
        return self.describe()

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickling replays self.args into __init__, which would not match the
        # dataclass fields; replay the fields instead (multiprocessing, pytest-xdist).
        fields = dataclasses.fields(self)  # type: ignore[arg-type]  # Subclasses are dataclasses.
        values = tuple(getattr(self, field.name) for field in fields)
        return (self.__class__, values)


# --- Toolchain --------------------------------------------------------------------------


@dataclass(eq=False)
class ToolchainMissing(AllianceError):
    """A tool the project needs (node, solcjs, Anvil, the solc adapter) is not installed."""

    code: ClassVar[str] = "toolchain_missing"
    tool: str
    looked_at: str
    hint: str = "run `make up` or `make test` once to bootstrap the toolchain"

    def describe(self) -> str:
        return f"{self.tool} not found (looked at {self.looked_at}); {self.hint}"


@dataclass(eq=False)
class ToolchainMismatch(AllianceError):
    """An installed tool's version differs from the version the project pins."""

    code: ClassVar[str] = "toolchain_mismatch"
    tool: str
    expected_version: str
    found_version: str

    def describe(self) -> str:
        return (
            f"{self.tool} {self.found_version} is installed but the project pins "
            f"{self.expected_version}; run `npm ci` (or `make up`) to reinstall"
        )


# --- Compilation ------------------------------------------------------------------------


@dataclass(eq=False)
class CompilationFailed(AllianceError):
    """solc reported at least one error (severity "error") or could not run at all."""

    code: ClassVar[str] = "compilation_failed"
    messages: tuple[str, ...]

    def describe(self) -> str:
        joined = "\n".join(message.rstrip() for message in self.messages)
        return f"Solidity compilation failed:\n{joined}"


@dataclass(eq=False)
class DuplicateContractName(AllianceError):
    """Two source files define a contract with the same name (artifacts are keyed by name)."""

    code: ClassVar[str] = "duplicate_contract_name"
    contract_name: str
    source_names: tuple[str, ...]

    def describe(self) -> str:
        sources = ", ".join(self.source_names)
        return f"contract name {self.contract_name!r} is defined in several files: {sources}"


@dataclass(eq=False)
class ArtifactNotFound(AllianceError):
    """No compiled artifact exists for the requested contract name."""

    code: ClassVar[str] = "artifact_not_found"
    contract_name: str
    build_dir: Path

    def describe(self) -> str:
        return (
            f"no artifact for contract {self.contract_name!r} in {self.build_dir}; "
            "run `alliance compile`"
        )


# --- Local chain ------------------------------------------------------------------------


@dataclass(eq=False)
class ChainStartFailed(AllianceError):
    """The local Anvil chain could not be started or did not become ready."""

    code: ClassVar[str] = "chain_start_failed"
    rpc_url: str
    reason: str
    log_file: Path | None = None

    def describe(self) -> str:
        where = f" (see {self.log_file})" if self.log_file is not None else ""
        return f"local chain at {self.rpc_url} failed to start: {self.reason}{where}"


@dataclass(eq=False)
class ChainPortTaken(ChainStartFailed):
    """The chain's port is already held by a process that is not our Anvil."""

    code: ClassVar[str] = "chain_port_taken"

    def describe(self) -> str:
        return (
            f"cannot start the local chain: {self.rpc_url} is already in use by another "
            f"process ({self.reason}); stop it or set ALLIANCE_CHAIN_PORT to a free port"
        )


@dataclass(eq=False)
class ChainNotRunning(AllianceError):
    """An operation needs the local chain but it is not running."""

    code: ClassVar[str] = "chain_not_running"
    rpc_url: str

    def describe(self) -> str:
        return f"the local chain at {self.rpc_url} is not running; run `alliance chain start`"


@dataclass(eq=False)
class ChainRpcFailed(AllianceError):
    """A JSON-RPC call to the chain returned an error object."""

    code: ClassVar[str] = "chain_rpc_failed"
    rpc_url: str
    method: str
    error: object

    def describe(self) -> str:
        return f"{self.method} on {self.rpc_url} failed: {self.error}"


@dataclass(eq=False)
class ChainUnreachable(AllianceError):
    """The JSON-RPC endpoint did not answer (connection refused, timeout, HTTP error)."""

    code: ClassVar[str] = "chain_unreachable"
    rpc_url: str
    reason: str

    def describe(self) -> str:
        return f"the chain at {self.rpc_url} did not answer: {self.reason}"


# --- Contracts and transactions ---------------------------------------------------------


@dataclass(eq=False)
class ContractReverted(AllianceError):
    """A contract call reverted with a decoded custom error (or a plain revert reason).

    `error_name` is the Solidity error's name (e.g. `ExchangePairDisabled`) and `arguments`
    its decoded values in declaration order, so callers map contract failures by name.
    """

    code: ClassVar[str] = "contract_reverted"
    error_name: str
    arguments: tuple[Any, ...]
    function: str = ""

    def describe(self) -> str:
        arguments = ", ".join(repr(argument) for argument in self.arguments)
        where = f" in {self.function}" if self.function else ""
        return f"contract reverted{where}: {self.error_name}({arguments})"


@dataclass(eq=False)
class TransactionFailed(AllianceError):
    """A transaction was mined but reverted, or never got a receipt in time."""

    code: ClassVar[str] = "transaction_failed"
    tx_hash: str
    reason: str

    def describe(self) -> str:
        return f"transaction {self.tx_hash} failed: {self.reason}"


# --- Deployment -------------------------------------------------------------------------


@dataclass(eq=False)
class DeployConfigInvalid(AllianceError):
    """The alliance deploy configuration file is missing, unreadable or inconsistent."""

    code: ClassVar[str] = "deploy_config_invalid"
    path: Path
    reason: str

    def describe(self) -> str:
        return f"deploy configuration {self.path} is invalid: {self.reason}"


@dataclass(eq=False)
class ManifestMissing(AllianceError):
    """No deployment manifest, or it names contracts the chain does not have."""

    code: ClassVar[str] = "manifest_missing"
    path: Path
    reason: str

    def describe(self) -> str:
        return f"deployment manifest {self.path}: {self.reason}; run `alliance deploy`"


# --- Settlement and audit -----------------------------------------------------------------


@dataclass(eq=False)
class NotALeaf(AllianceError):
    """The holding asked for is not a leaf of the balances tree."""

    code: ClassVar[str] = "merkle_not_a_leaf"
    account: str
    token: str
    balance: int

    def describe(self) -> str:
        return f"({self.account}, {self.token}, {self.balance}) is not a leaf of this tree"


@dataclass(eq=False)
class AuditPeriodNotAnchored(AllianceError):
    """The audit was asked about a settlement period that has no anchor on chain."""

    code: ClassVar[str] = "audit_period_not_anchored"
    period_id: int

    def describe(self) -> str:
        return f"period {self.period_id} is not anchored on chain"


@dataclass(eq=False)
class AuditRootMismatch(AllianceError):
    """The balances replayed at a closing block do not give the anchored root, so no
    inclusion proof against that anchor can exist (`alliance audit verify` says more)."""

    code: ClassVar[str] = "audit_root_mismatch"
    period_id: int
    anchored_root: str
    replayed_root: str

    def describe(self) -> str:
        return (
            f"period {self.period_id}: anchored root {self.anchored_root} differs from the "
            f"replayed {self.replayed_root}; run `alliance audit verify`"
        )


@dataclass(eq=False)
class AuditUnknownBrand(AllianceError):
    """A brand code or token address that the deployment manifest does not list."""

    code: ClassVar[str] = "audit_unknown_brand"
    brand: str

    def describe(self) -> str:
        return f"{self.brand!r} is neither a brand code nor a token of this deployment"


@dataclass(eq=False)
class AuditRequestNotFound(AllianceError):
    """No alliance event carries the request id asked for."""

    code: ClassVar[str] = "audit_request_not_found"
    request_id: int

    def describe(self) -> str:
        return f"no alliance event carries request id {self.request_id}"


@dataclass(eq=False)
class AuditProofUnreadable(AllianceError):
    """A proof file is not a balance proof this tool wrote."""

    code: ClassVar[str] = "audit_proof_unreadable"
    path: Path
    reason: str

    def describe(self) -> str:
        return f"proof file {self.path}: {self.reason}"
