"""The `alliance` command line: thin commands over the core modules.

Each command builds settings with `load_settings()`, calls into the core and prints the
outcome; project errors (`AllianceError`) become a one-line message and exit status 1.
Sub-command groups are separate Typer apps added to `app` (`chain`, `toolchain`); new
top-level commands (`deploy`, `export-allowlist`, ...) are plain `@app.command()`s. The
console script is `alliance_cli.main:app`, which adds the apps' commands (`up`, `gateway`).
"""

from __future__ import annotations

import functools
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, ParamSpec, TypeVar

import typer

from alliance import toolchain
from alliance.compiler import compile_contracts
from alliance.deploy import Deployment, ensure_deployed, load_deployment
from alliance.errors import AllianceError
from alliance.localchain import LocalChain
from alliance.permissioning import export_permissions_config
from alliance.settings import Settings, load_settings

RUN_POLL_INTERVAL_S = 1.0
"""How often `chain run` checks that Anvil is still alive."""

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(help="Alliance Points Exchange tools.", no_args_is_help=True)
chain_app = typer.Typer(help="Run the local Anvil chain.", no_args_is_help=True)
toolchain_app = typer.Typer(help="Install the compiler toolchain.", no_args_is_help=True)
app.add_typer(chain_app, name="chain")
app.add_typer(toolchain_app, name="toolchain")


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn project errors raised by `command` into a message on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except AllianceError as error:
            typer.secho(f"error [{error.code}]: {error}", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=1) from error

    return wrapper


def _local_chain() -> LocalChain:
    settings = load_settings()
    return LocalChain(settings.chain, settings.data)


@app.command("compile")
@reports_errors
def compile_command(
    force: bool = typer.Option(False, "--force", help="Compile even if nothing changed."),
) -> None:
    """Compile contracts/ into build/contracts/<Name>.json (only when inputs changed)."""
    data = load_settings().data
    result = compile_contracts(data.contracts_dir, data.build_dir, force=force)
    for warning in result.warnings:
        typer.secho(warning, err=True, fg=typer.colors.YELLOW)
    verb = "compiled" if result.compiled else "up to date:"
    typer.echo(f"{verb} {len(result.contract_names)} contracts in {result.build_dir}")


@toolchain_app.command("install")
@reports_errors
def toolchain_install_command() -> None:
    """Install the solc adapter into py-solc-x's folder (idempotent)."""
    path = toolchain.ensure_solc_adapter()
    typer.echo(f"solc {toolchain.solc_version()} adapter: {path}")


@chain_app.command("start")
@reports_errors
def chain_start_command() -> None:
    """Start Anvil in the background and wait until it answers."""
    chain = _local_chain()
    started = chain.start()
    chain.wait_ready()
    typer.echo(f"{'started' if started else 'already running'}: {chain.rpc_url}")


@chain_app.command("stop")
@reports_errors
def chain_stop_command() -> None:
    """Stop Anvil (it saves its state first)."""
    chain = _local_chain()
    typer.echo("stopped" if chain.stop() else "not running")


@chain_app.command("status")
@reports_errors
def chain_status_command() -> None:
    """Print whether Anvil is running; exit status 1 if it is not."""
    chain = _local_chain()
    pid = chain.pid()
    if pid is None:
        typer.echo(f"not running ({chain.rpc_url})")
        raise typer.Exit(code=1)
    typer.echo(f"running: {chain.rpc_url} (pid {pid}, state {chain.data_settings.state_file})")


@chain_app.command("run")
@reports_errors
def chain_run_command() -> None:
    """Run Anvil in the foreground until Ctrl-C, then stop it cleanly."""
    run_chain_in_foreground(_local_chain())


def run_chain_in_foreground(
    chain: LocalChain,
    on_ready: Callable[[], object] | None = None,
    serve: Callable[[], None] | None = None,
) -> None:
    """Start (or attach to) the chain and run `on_ready`; then run `serve` (a blocking
    server) or wait for Ctrl-C/SIGTERM. The chain is stopped afterwards if we started it."""
    started = chain.start()
    # Both signals end the wait, also when the shell started us with SIGINT ignored
    # (background jobs), so the chain is always stopped through the `finally` below.
    previous_handlers = {
        number: signal.signal(number, _raise_keyboard_interrupt)
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        chain.wait_ready()
        if on_ready is not None:
            on_ready()
        typer.echo(f"chain ready at {chain.rpc_url}; press Ctrl-C to stop")
        if serve is not None:
            serve()
            return
        while chain.is_running():
            time.sleep(RUN_POLL_INTERVAL_S)
        typer.secho("Anvil exited unexpectedly", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1)
    except KeyboardInterrupt:
        typer.echo("stopping")
    finally:
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)
        # A chain started elsewhere (`alliance chain start`) is left running for its owner.
        if started:
            chain.stop()


def _raise_keyboard_interrupt(signal_number: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command("deploy")
@reports_errors
def deploy_command(
    redeploy: bool = typer.Option(False, "--redeploy", help="Deploy anew even if deployed."),
) -> None:
    """Deploy the alliance in ALLIANCE_DEPLOY_CONFIG_FILE to the running chain (if needed)
    and write the deployment manifest."""
    settings = load_settings()
    LocalChain(settings.chain, settings.data).require_running()
    deployment, deployed_now = ensure_deployed(settings, redeploy=redeploy)
    _print_deployment(deployment, deployed_now, settings.data.manifest_file)


@app.command("export-allowlist")
@reports_errors
def export_allowlist_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write or update.")
    ] = None,
) -> None:
    """Write the on-chain allow-list as a Besu `permissions_config.toml` (accounts-allowlist).
    Other keys of an existing file, such as nodes-allowlist, are kept."""
    settings = load_settings()
    deployment = load_deployment(settings)
    governance = deployment.contract("AllianceGovernance", deployment.manifest.governance.address)
    path = output or settings.data.permissions_file
    accounts = export_permissions_config(deployment.client, governance, path)
    typer.echo(f"wrote {len(accounts)} accounts to {path}")


def ensure_deployed_and_report(settings: Settings) -> Deployment:
    """Deploy the configured alliance if the chain lacks it, and say what is where."""
    deployment, deployed_now = ensure_deployed(settings)
    _print_deployment(deployment, deployed_now, settings.data.manifest_file)
    return deployment


def _print_deployment(deployment: Deployment, deployed_now: bool, manifest_file: Path) -> None:
    manifest = deployment.manifest
    verb = "deployed" if deployed_now else "already deployed"
    typer.echo(f"alliance {verb} on chain {manifest.chain_id} (manifest: {manifest_file})")
    typer.echo(f"  governance        {manifest.governance.address}")
    typer.echo(f"  exchange          {manifest.exchange.address}")
    typer.echo(f"  settlement anchor {manifest.settlement_anchor.address}")
    for brand in manifest.brands:
        typer.echo(f"  {brand.code:<17} {brand.token.address}  {brand.symbol}")
