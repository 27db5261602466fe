"""`alliance up`, `deploy` and `export-allowlist` work end to end as a user runs them.

Runs the real console script in subprocesses against a private data dir and ports: the
first `up` starts Anvil, deploys the configured alliance and serves the gateway; a second
`up` after a clean stop finds it already deployed (state persisted), and the other
commands use the manifest.
"""

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.conftest import free_port

UP_TIMEOUT_S = 120


def _env(data_dir: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "ALLIANCE_DATA_DIR": str(data_dir),
        "ALLIANCE_CHAIN_PORT": str(port),
        "ALLIANCE_GATEWAY_PORT": str(free_port()),
    }


def _alliance(repo_root: Path) -> str:
    return str(Path(sys.executable).parent / "alliance")


def _start_up(repo_root: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [_alliance(repo_root), "up"],
        cwd=repo_root,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + UP_TIMEOUT_S
    while "gateway on" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"alliance up did not come up:\n{log.read_text()}")
        time.sleep(0.2)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_up_deploys_once_and_finds_the_alliance_again_after_a_restart(repo_root, tmp_path):
    env = _env(tmp_path / "data", free_port())
    first = _start_up(repo_root, env, tmp_path / "up1.log")
    try:
        assert "alliance deployed on chain 4242" in (tmp_path / "up1.log").read_text()
        manifest = json.loads((tmp_path / "data" / "deployment.json").read_text())
        assert [brand["code"] for brand in manifest["brands"]] == ["bean", "sky", "cart"]

        deploy = subprocess.run(
            [_alliance(repo_root), "deploy"], cwd=repo_root, env=env, capture_output=True, text=True
        )
        assert deploy.returncode == 0, deploy.stderr
        assert "already deployed" in deploy.stdout

        output = tmp_path / "permissions_config.toml"
        export = subprocess.run(
            [_alliance(repo_root), "export-allowlist", "-o", str(output)],
            cwd=repo_root,
            env=env,
            capture_output=True,
            text=True,
        )
        assert export.returncode == 0, export.stderr
        accounts = tomllib.loads(output.read_text())["accounts-allowlist"]
        assert manifest["parties"]["operator"].lower() in accounts
    finally:
        _stop(first)

    second = _start_up(repo_root, env, tmp_path / "up2.log")
    try:
        log = (tmp_path / "up2.log").read_text()
        assert "alliance already deployed" in log
        assert manifest["exchange"]["address"] in log
    finally:
        _stop(second)


def test_deploy_without_a_running_chain_says_so(repo_root, tmp_path):
    env = _env(tmp_path / "data", free_port())
    result = subprocess.run(
        [_alliance(repo_root), "deploy"], cwd=repo_root, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "error [chain_not_running]" in result.stderr
    assert "Traceback" not in result.stderr
