"""Compile the Solidity sources into one JSON artifact per contract, only when inputs change.

Every `*.sol` under the source folder (mocks included) goes into one Standard JSON
compilation through py-solc-x and the solc adapter (`alliance.toolchain`). Imports of
`@openzeppelin/contracts/...` are resolved by the adapter from `node_modules`.

A fingerprint of everything that can change the output (sources, compiler and
OpenZeppelin versions, compiler settings, artifact format) is stored beside the
artifacts; a later call with the same fingerprint reuses the build instead of compiling.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from eth_utils import keccak

from alliance import toolchain
from alliance.artifacts import (
    ARTIFACTS_SUBDIR,
    Artifact,
    artifact_names,
    artifact_path,
    load_artifact,
)
from alliance.errors import CompilationFailed, DuplicateContractName

# Compiler settings, used by every compilation (and mirrored in ape-config.yaml).
EVM_VERSION = "cancun"
"""Target EVM; cancun is supported by Hyperledger Besu, the production chain."""

OPTIMIZER_RUNS = 20000
"""Optimizer tuned for many calls per deployment (cheaper calls, larger code)."""

VIA_IR = True
"""Compile through the Yul IR pipeline: it saves ~7k gas per conversion (docs/benchmarks.md)
at the cost of a slower (cached) compile."""

ARTIFACT_FORMAT_VERSION = 1
"""Bump when the artifact file layout changes so existing builds are invalidated."""

FINGERPRINT_FILE = "fingerprint"

OUTPUT_SELECTION = [
    "abi",
    "metadata",
    "evm.bytecode.object",
    "evm.bytecode.linkReferences",
    "evm.deployedBytecode.object",
]


@dataclass(frozen=True)
class CompileResult:
    """What `compile_contracts` produced."""

    build_dir: Path
    compiled: bool
    """True when solc ran; False when the previous build matched the inputs and was reused."""
    fingerprint: str
    """sha256 hex over every input that can change the output."""
    contract_names: tuple[str, ...]
    """Names of all contracts with an artifact in this build, sorted."""
    warnings: tuple[str, ...] = ()
    """solc's formatted warnings (only when `compiled`; a reused build has none)."""

    def load_artifact(self, contract_name: str) -> Artifact:
        """Read the artifact of `contract_name` from this build."""
        return load_artifact(self.build_dir, contract_name)

    def artifact_path(self, contract_name: str) -> Path:
        """Return the artifact file of `contract_name` in this build."""
        return artifact_path(self.build_dir, contract_name)


def compiler_settings() -> dict[str, Any]:
    """Return the Standard JSON `settings` (without outputSelection) for every compile."""
    return {
        "evmVersion": EVM_VERSION,
        "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
        "viaIR": VIA_IR,
    }


def compile_contracts(source_dir: Path, build_dir: Path, *, force: bool = False) -> CompileResult:
    """Compile every `*.sol` under `source_dir` into `build_dir/contracts/<Name>.json`.

    Reuses the existing build when its fingerprint matches, unless `force` is set.
    Raises `CompilationFailed` with solc's formatted messages when solc reports errors.
    Concurrent callers (parallel test runs, a CLI beside a test) take turns on a lock, so
    the second one reuses the first one's build instead of racing it.
    """
    with _build_lock(build_dir):
        return _compile_locked(source_dir, build_dir, force=force)


@contextmanager
def _build_lock(build_dir: Path) -> Iterator[None]:
    build_dir.mkdir(parents=True, exist_ok=True)
    with (build_dir / ".lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def _compile_locked(source_dir: Path, build_dir: Path, *, force: bool) -> CompileResult:
    sources = collect_sources(source_dir)
    fingerprint = compute_fingerprint(sources)
    if not force and _read_fingerprint(build_dir) == fingerprint:
        names = artifact_names(build_dir)
        return CompileResult(
            build_dir, compiled=False, fingerprint=fingerprint, contract_names=names
        )
    output = _run_solc(sources, base_path=source_dir.resolve().parent) if sources else {}
    artifacts = _artifacts_from_output(output, set(sources))
    _write_build(build_dir, artifacts, fingerprint)
    return CompileResult(
        build_dir,
        compiled=True,
        fingerprint=fingerprint,
        contract_names=tuple(sorted(artifact.contract_name for artifact in artifacts)),
        warnings=_formatted_messages(output, severity="warning"),
    )


def collect_sources(source_dir: Path) -> dict[str, str]:
    """Map source unit names (`<dir name>/<relative path>`) to contents, sorted by name.

    Names are relative to the source folder's parent, so relative imports between our
    files resolve inside the compiled sources and the names read like `contracts/X.sol`.
    Hidden folders are skipped: they hold tools' scratch copies (Ape's `.cache`), not
    our sources.
    """
    root = source_dir.resolve()
    paths = sorted(
        path
        for path in root.rglob("*.sol")
        if not any(part.startswith(".") for part in path.relative_to(root).parts)
    )
    return {
        path.relative_to(root.parent).as_posix(): path.read_text(encoding="utf-8") for path in paths
    }


def compute_fingerprint(sources: dict[str, str]) -> str:
    """Return a sha256 hex digest over every input that can change the compiled output."""
    digest = hashlib.sha256()
    header = {
        "artifactFormat": ARTIFACT_FORMAT_VERSION,
        "solc": toolchain.checked_npm_version("solc"),
        "openzeppelin": toolchain.checked_npm_version(toolchain.OPENZEPPELIN_PACKAGE),
        "settings": compiler_settings(),
        "outputSelection": OUTPUT_SELECTION,
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for name in sorted(sources):
        # Length-prefixing keeps (name, content) pairs from running into each other.
        for part in (name.encode(), sources[name].encode()):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def _read_fingerprint(build_dir: Path) -> str | None:
    path = build_dir / FINGERPRINT_FILE
    if not path.is_file() or not (build_dir / ARTIFACTS_SUBDIR).is_dir():
        return None
    return path.read_text(encoding="utf-8").strip()


def _standard_input(sources: dict[str, str]) -> dict[str, Any]:
    selection = {name: {"*": OUTPUT_SELECTION} for name in sources}
    return {
        "language": "Solidity",
        "sources": {name: {"content": content} for name, content in sources.items()},
        "settings": {**compiler_settings(), "outputSelection": selection},
    }


def _run_solc(sources: dict[str, str], *, base_path: Path) -> dict[str, Any]:
    """Run solc (through the adapter) on the sources; translate its failures."""
    # Imported here: py-solc-x is only needed by commands that compile.
    import solcx
    from solcx.exceptions import SolcError

    solc_binary = toolchain.ensure_solc_adapter()
    try:
        output: dict[str, Any] = solcx.compile_standard(
            _standard_input(sources), base_path=base_path, solc_binary=solc_binary
        )
    except SolcError as error:
        # py-solc-x annotates error_dict as a dict; it holds solc's list of error objects.
        error_dicts = cast(list[dict[str, Any]], error.error_dict or [])
        messages = tuple(
            item["formattedMessage"] for item in error_dicts if item.get("severity") == "error"
        )
        raise CompilationFailed(messages=messages or (str(error),)) from error
    return output


def _formatted_messages(output: dict[str, Any], *, severity: str) -> tuple[str, ...]:
    return tuple(
        item["formattedMessage"]
        for item in output.get("errors", [])
        if item.get("severity") == severity
    )


def _artifacts_from_output(output: dict[str, Any], source_names: set[str]) -> list[Artifact]:
    """Build one artifact per contract defined in our own sources."""
    artifacts: dict[str, Artifact] = {}
    for source_name, contracts in sorted(output.get("contracts", {}).items()):
        if source_name not in source_names:
            continue  # Imported library sources (OpenZeppelin) get no artifact of their own.
        for contract_name, compiled in sorted(contracts.items()):
            if contract_name in artifacts:
                previous = artifacts[contract_name].source_name
                raise DuplicateContractName(contract_name, (previous, source_name))
            artifacts[contract_name] = _artifact(source_name, contract_name, compiled)
    return list(artifacts.values())


def _artifact(source_name: str, contract_name: str, compiled: dict[str, Any]) -> Artifact:
    abi = compiled["abi"]
    metadata = compiled["metadata"]
    canonical_abi = json.dumps(abi, sort_keys=True, separators=(",", ":"))
    return Artifact(
        contract_name=contract_name,
        source_name=source_name,
        abi=abi,
        bytecode=_hex(compiled["evm"]["bytecode"]["object"]),
        deployed_bytecode=_hex(compiled["evm"]["deployedBytecode"]["object"]),
        link_references=compiled["evm"]["bytecode"].get("linkReferences", {}),
        metadata=metadata,
        metadata_hash="0x" + keccak(text=metadata).hex(),
        abi_hash="0x" + keccak(text=canonical_abi).hex(),
    )


def _hex(code: str) -> str:
    return code if code.startswith("0x") else f"0x{code}"


def _write_build(build_dir: Path, artifacts: list[Artifact], fingerprint: str) -> None:
    """Replace the build's artifacts; the fingerprint is written last, as the commit mark."""
    build_dir.mkdir(parents=True, exist_ok=True)
    fingerprint_path = build_dir / FINGERPRINT_FILE
    # Invalidate first: a crash while writing must not leave a fingerprint that vouches
    # for a half-written set of artifacts.
    fingerprint_path.unlink(missing_ok=True)
    staging = build_dir / f".{ARTIFACTS_SUBDIR}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for artifact in artifacts:
        text = json.dumps(artifact.to_json(), indent=2) + "\n"
        (staging / f"{artifact.contract_name}.json").write_text(text, encoding="utf-8")
    final = build_dir / ARTIFACTS_SUBDIR
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    fingerprint_path.write_text(fingerprint + "\n", encoding="utf-8")
