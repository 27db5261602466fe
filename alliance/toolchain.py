"""Where the pinned npm tools live, and the solc adapter that makes solcjs look native.

No network is reachable at run time except the package registries, so py-solc-x cannot
download a native solc and foundryup cannot download Anvil. Both come from npm instead
(`package.json`): the `solc` package (solcjs, a WebAssembly build of the same compiler)
and `@foundry-rs/anvil` (which ships the native Anvil binary per platform).

py-solc-x and ape-solidity only look for compilers in py-solc-x's install folder, as
executables named `solc-v<version>` that speak the native command line. The adapter
(`scripts/solc-adapter.mjs`) speaks that command line on top of solcjs; this module
installs a tiny launcher for it into that folder.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import tempfile
from pathlib import Path

from alliance.errors import ToolchainMismatch, ToolchainMissing

ADAPTER_SCRIPT = Path("scripts") / "solc-adapter.mjs"
"""The adapter's source, relative to the repository root."""

OPENZEPPELIN_PACKAGE = "@openzeppelin/contracts"
"""npm package that provides the `@openzeppelin/contracts/...` Solidity imports."""


def repo_dir() -> Path:
    """Return the root of this checkout (the directory holding `package.json`)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "package.json").is_file():
        raise ToolchainMissing(tool="package.json", looked_at=str(root))
    return root


def node_modules_dir(root: Path | None = None) -> Path:
    """Return this checkout's `node_modules` folder, which must have been installed."""
    path = (root or repo_dir()) / "node_modules"
    if not path.is_dir():
        raise ToolchainMissing(tool="node_modules", looked_at=str(path))
    return path


def _read_json(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} must hold a JSON object"
    return data


def pinned_npm_version(package: str, root: Path | None = None) -> str:
    """Return the version `package.json` pins for an npm package (the single source)."""
    dependencies = _read_json((root or repo_dir()) / "package.json")["dependencies"]
    assert isinstance(dependencies, dict)
    version = dependencies.get(package)
    if not isinstance(version, str):
        raise ToolchainMissing(tool=package, looked_at="package.json dependencies")
    return version


def installed_npm_version(package: str, root: Path | None = None) -> str:
    """Return the version of an npm package actually present in `node_modules`."""
    manifest = node_modules_dir(root) / package / "package.json"
    if not manifest.is_file():
        raise ToolchainMissing(tool=package, looked_at=str(manifest))
    version = _read_json(manifest)["version"]
    assert isinstance(version, str)
    return version


def checked_npm_version(package: str, root: Path | None = None) -> str:
    """Return the installed version of `package`, refusing one that differs from the pin."""
    expected = pinned_npm_version(package, root)
    found = installed_npm_version(package, root)
    if found != expected:
        raise ToolchainMismatch(tool=package, expected_version=expected, found_version=found)
    return found


def solc_version(root: Path | None = None) -> str:
    """Return the solc version the project compiles with: the `solc` pin in package.json."""
    return pinned_npm_version("solc", root)


def solcx_install_dir() -> Path:
    """Return py-solc-x's install folder (`~/.solcx` unless SOLCX_BINARY_PATH is set)."""
    # Imported here so importing this module stays cheap for commands that never compile.
    import solcx

    folder: Path = solcx.get_solcx_install_folder()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise ToolchainMissing(tool="node", looked_at="PATH", hint="install Node.js 20")
    return node


def _adapter_launcher(root: Path) -> str:
    """Return the launcher script text that runs this checkout's adapter."""
    script = root / ADAPTER_SCRIPT
    if not script.is_file():
        raise ToolchainMissing(tool="solc adapter", looked_at=str(script))
    modules = node_modules_dir(root)
    # Absolute paths are baked in so the launcher works from any working directory and
    # from tools (Ape) that run the compiler with a reduced environment.
    return (
        "#!/bin/sh\n"
        "# solc adapter installed by alliance.toolchain.ensure_solc_adapter():\n"
        "# solcjs from the checkout below, behind a native-solc command line.\n"
        f"ALLIANCE_NODE_MODULES={shlex.quote(str(modules))}\n"
        "export ALLIANCE_NODE_MODULES\n"
        f'exec {shlex.quote(_node_executable())} {shlex.quote(str(script))} "$@"\n'
    )


def ensure_solc_adapter(root: Path | None = None) -> Path:
    """Install the solc adapter as py-solc-x's `solc-v<version>`; return its path.

    Idempotent: the launcher is rewritten only when its content would change (for
    example when another checkout on this machine installed its own).
    """
    root = root or repo_dir()
    version = checked_npm_version("solc", root)
    target = solcx_install_dir() / f"solc-v{version}"
    launcher = _adapter_launcher(root)
    if target.is_file() and target.read_text(encoding="utf-8") == launcher:
        return target
    # Write then rename so a concurrent compile never runs a half-written launcher.
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".solc-adapter-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(launcher)
    os.chmod(temp_name, 0o755)
    os.replace(temp_name, target)
    return target


def _anvil_platform_package() -> str:
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system())
    machine = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine()
    )
    return f"@foundry-rs/anvil-{system}-{machine}"


def anvil_executable(root: Path | None = None) -> Path:
    """Return the Anvil binary: the native one from its platform package when present.

    The `.bin/anvil` wrapper is a Node script that relays signals to a child Anvil; the
    native binary receives SIGTERM directly, which is what makes it write its state file,
    so the wrapper is only the fallback.
    """
    modules = node_modules_dir(root)
    native = modules / _anvil_platform_package() / "bin" / "anvil"
    if native.is_file() and os.access(native, os.X_OK):
        return native
    wrapper = modules / ".bin" / "anvil"
    if wrapper.is_file():
        return wrapper
    raise ToolchainMissing(tool="anvil", looked_at=f"{native} and {wrapper}")
