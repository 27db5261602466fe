"""`ape compile` works offline with the repository's ape-config.yaml.

Proves it by running the real `.venv/bin/ape compile` in a temporary copy of the project
(ape-config.yaml, package.json, node_modules linked) holding a contract that imports
OpenZeppelin's ERC20: Ape must take solc 0.8.30 from the adapter and OpenZeppelin from
node_modules. Proxies pointing at a closed local port make any network attempt fail, and
a fresh Ape data folder makes sure nothing was cached by an earlier run. Also checks that
ape-config.yaml repeats the compiler settings and pins of alliance/compiler.py and
package.json (YAML cannot import them, so a test keeps the copies in step).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from alliance import toolchain
from alliance.compiler import EVM_VERSION, OPTIMIZER_RUNS, VIA_IR

APE_TIMEOUT_S = 300

TOKEN_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

contract ApeToken is ERC20 {
    constructor() ERC20("Ape Token", "APET") {}
}
"""

# Port 9 (discard) on loopback has no listener: a request through this proxy fails at once.
UNREACHABLE_PROXY = "http://127.0.0.1:9"


@pytest.fixture
def project_copy(repo_root: Path, tmp_path: Path) -> Path:
    """A throwaway project: the repo's Ape and npm config plus one OZ-importing contract."""
    project = tmp_path / "project"
    (project / "contracts").mkdir(parents=True)
    for name in ("ape-config.yaml", "package.json"):
        shutil.copy(repo_root / name, project / name)
    (project / "node_modules").symlink_to(repo_root / "node_modules")
    (project / "contracts" / "ApeToken.sol").write_text(TOKEN_SOURCE)
    return project


def offline_environment(tmp_path: Path) -> dict[str, str]:
    """The current environment with the network cut off and a fresh Ape data folder."""
    env = dict(os.environ)
    env.update(
        HTTP_PROXY=UNREACHABLE_PROXY,
        HTTPS_PROXY=UNREACHABLE_PROXY,
        http_proxy=UNREACHABLE_PROXY,
        https_proxy=UNREACHABLE_PROXY,
        NO_PROXY="",
        no_proxy="",
        APE_DATA_FOLDER=str(tmp_path / "ape-data"),
    )
    return env


def test_ape_compiles_an_openzeppelin_import_offline(
    repo_root: Path, project_copy: Path, tmp_path: Path
) -> None:
    toolchain.ensure_solc_adapter()
    completed = subprocess.run(
        [str(repo_root / ".venv" / "bin" / "ape"), "compile"],
        cwd=project_copy,
        env=offline_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=APE_TIMEOUT_S,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "Internet connection required" not in output
    manifest = json.loads((project_copy / ".build" / "__local__.json").read_text())
    assert "ApeToken" in manifest["contractTypes"]
    assert manifest["contractTypes"]["ApeToken"]["deploymentBytecode"]["bytecode"]
    (compiler,) = manifest["compilers"]
    assert compiler["version"].startswith(toolchain.solc_version())
    assert compiler["settings"]["evmVersion"] == EVM_VERSION
    assert compiler["settings"]["optimizer"] == {"enabled": True, "runs": OPTIMIZER_RUNS}


def test_ape_config_repeats_the_compiler_settings_and_pins(repo_root: Path) -> None:
    config = yaml.safe_load((repo_root / "ape-config.yaml").read_text())
    solidity = config["solidity"]
    assert solidity["version"] == toolchain.solc_version()
    assert solidity["evm_version"] == EVM_VERSION
    assert solidity["optimize"] is True
    assert solidity["optimization_runs"] == OPTIMIZER_RUNS
    assert solidity["via_ir"] is VIA_IR
    (openzeppelin,) = config["dependencies"]
    pinned = toolchain.pinned_npm_version(toolchain.OPENZEPPELIN_PACKAGE)
    assert openzeppelin["npm"] == toolchain.OPENZEPPELIN_PACKAGE
    assert str(openzeppelin["version"]) == pinned
    assert solidity["import_remapping"] == [f"@openzeppelin/contracts=openzeppelin/{pinned}"]
