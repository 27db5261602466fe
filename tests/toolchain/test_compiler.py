"""The compiler pipeline turns a Solidity tree into per-contract artifacts, only when needed.

Proves, with real solc (solcjs behind the adapter) on small temporary source trees that
import OpenZeppelin from node_modules: artifacts carry every field with consistent hashes,
a second call with unchanged inputs reuses the build, an edit recompiles, compiler errors
surface as `CompilationFailed` with solc's message, and the code targets cancun. Also
checks the adapter itself and that the real contracts/ compile.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from eth_utils import keccak
from solcx import get_installed_solc_versions
from solcx.wrapper import VERSION_REGEX, get_solc_version

from alliance import toolchain
from alliance.compiler import (
    EVM_VERSION,
    OPTIMIZER_RUNS,
    CompileResult,
    compile_contracts,
)
from alliance.errors import ArtifactNotFound, CompilationFailed

TOKEN_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IGreeter} from "./IGreeter.sol";

contract Token is ERC20, IGreeter {
    constructor() ERC20("Token", "TOK") {
        _mint(msg.sender, 1000);
    }

    function greeting() external pure returns (uint256) {
        return 42;
    }
}
"""

GREETER_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface IGreeter {
    function greeting() external view returns (uint256);
}
"""

MOCK_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IGreeter} from "../IGreeter.sol";

contract GreeterMock is IGreeter {
    function greeting() external pure returns (uint256) {
        return 7;
    }
}
"""


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (relative path -> content) under `root/contracts`; return that folder."""
    source_dir = root / "contracts"
    for relative, content in files.items():
        path = source_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return source_dir


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    """A small tree: an OpenZeppelin ERC20, an interface, and a mock under mocks/."""
    return write_tree(
        tmp_path,
        {"Token.sol": TOKEN_SOURCE, "IGreeter.sol": GREETER_SOURCE, "mocks/Mock.sol": MOCK_SOURCE},
    )


@pytest.fixture
def first_build(source_dir: Path, tmp_path: Path) -> CompileResult:
    """The tree compiled once into a fresh build dir."""
    return compile_contracts(source_dir, tmp_path / "build")


def test_adapter_reports_its_version_like_native_solc() -> None:
    adapter = toolchain.ensure_solc_adapter()
    output = subprocess.run(
        [str(adapter), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert output.startswith("solc, the solidity compiler commandline interface\n")
    assert f"Version: {toolchain.solc_version()}+commit." in output
    match = re.search(VERSION_REGEX, output)
    assert match is not None, "py-solc-x could not parse the version"
    assert match.group(1) == toolchain.solc_version()
    assert str(get_solc_version(adapter)) == toolchain.solc_version()
    assert get_solc_version(adapter) in get_installed_solc_versions()


def test_installing_the_adapter_twice_changes_nothing() -> None:
    first = toolchain.ensure_solc_adapter()
    modified_ns = first.stat().st_mtime_ns
    second = toolchain.ensure_solc_adapter()
    assert second == first
    assert second.stat().st_mtime_ns == modified_ns


def test_compile_writes_one_artifact_per_contract_including_mocks(
    first_build: CompileResult,
) -> None:
    assert first_build.compiled
    assert first_build.contract_names == ("GreeterMock", "IGreeter", "Token")
    files = sorted(path.name for path in (first_build.build_dir / "contracts").iterdir())
    assert files == ["GreeterMock.json", "IGreeter.json", "Token.json"]


def test_artifact_file_has_every_field(first_build: CompileResult) -> None:
    data = json.loads(first_build.artifact_path("Token").read_text())
    for field in ("contractName", "sourceName", "abi", "bytecode", "deployedBytecode"):
        assert data[field], field
    assert data["contractName"] == "Token"
    assert data["sourceName"] == "contracts/Token.sol"
    assert data["bytecode"].startswith("0x60")
    assert {item.get("name") for item in data["abi"]} >= {"transfer", "greeting", "Transfer"}


def test_artifact_hashes_are_keccak_of_metadata_and_canonical_abi(
    first_build: CompileResult,
) -> None:
    artifact = first_build.load_artifact("Token")
    canonical_abi = json.dumps(artifact.abi, sort_keys=True, separators=(",", ":"))
    assert artifact.metadata_hash == "0x" + keccak(text=artifact.metadata).hex()
    assert artifact.abi_hash == "0x" + keccak(text=canonical_abi).hex()


def test_interfaces_get_an_artifact_without_creation_code(first_build: CompileResult) -> None:
    interface = first_build.load_artifact("IGreeter")
    assert not interface.is_deployable
    assert first_build.load_artifact("Token").is_deployable


def test_artifacts_target_cancun_with_the_configured_optimizer(
    first_build: CompileResult,
) -> None:
    settings = json.loads(first_build.load_artifact("Token").metadata)["settings"]
    assert EVM_VERSION == "cancun"
    assert settings["evmVersion"] == "cancun"
    assert settings["optimizer"] == {"enabled": True, "runs": OPTIMIZER_RUNS}


def test_unchanged_inputs_reuse_the_previous_build(
    first_build: CompileResult, source_dir: Path
) -> None:
    (source_dir / "Token.sol").touch()  # A new mtime alone is not a change: content counts.
    again = compile_contracts(source_dir, first_build.build_dir)
    assert not again.compiled
    assert again.fingerprint == first_build.fingerprint
    assert again.contract_names == first_build.contract_names


def test_editing_a_source_recompiles(first_build: CompileResult, source_dir: Path) -> None:
    before = first_build.load_artifact("Token").deployed_bytecode
    token = source_dir / "Token.sol"
    token.write_text(token.read_text().replace("return 42;", "return 43;"))
    again = compile_contracts(source_dir, first_build.build_dir)
    assert again.compiled
    assert again.fingerprint != first_build.fingerprint
    assert again.load_artifact("Token").deployed_bytecode != before


def test_force_recompiles_unchanged_sources(first_build: CompileResult, source_dir: Path) -> None:
    again = compile_contracts(source_dir, first_build.build_dir, force=True)
    assert again.compiled
    assert again.fingerprint == first_build.fingerprint


def test_deleting_a_source_removes_its_stale_artifact(
    first_build: CompileResult, source_dir: Path
) -> None:
    (source_dir / "mocks" / "Mock.sol").unlink()
    again = compile_contracts(source_dir, first_build.build_dir)
    assert again.contract_names == ("IGreeter", "Token")
    with pytest.raises(ArtifactNotFound):
        again.load_artifact("GreeterMock")


def test_syntax_error_raises_compilation_failed_with_the_solc_message(tmp_path: Path) -> None:
    broken = GREETER_SOURCE.replace("returns (uint256);", "returns (uint256)")
    source_dir = write_tree(tmp_path, {"IGreeter.sol": broken})
    with pytest.raises(CompilationFailed) as raised:
        compile_contracts(source_dir, tmp_path / "build")
    assert raised.value.code == "compilation_failed"
    assert any("ParserError" in message for message in raised.value.messages)
    assert "contracts/IGreeter.sol" in str(raised.value)
    assert not (tmp_path / "build" / "fingerprint").exists()


def test_missing_import_raises_compilation_failed(tmp_path: Path) -> None:
    source = GREETER_SOURCE + 'import "@openzeppelin/contracts/NoSuchFile.sol";\n'
    source_dir = write_tree(tmp_path, {"IGreeter.sol": source})
    with pytest.raises(CompilationFailed, match=r"NoSuchFile\.sol"):
        compile_contracts(source_dir, tmp_path / "build")


def test_the_real_contracts_compile_into_loadable_artifacts(compiled: CompileResult) -> None:
    for name in compiled.contract_names:
        artifact = compiled.load_artifact(name)
        assert artifact.contract_name == name
        assert artifact.source_name.startswith("contracts/")
