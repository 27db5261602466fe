"""Entry point of the `alliance` console script."""

from __future__ import annotations

import typer
import uvicorn

import alliance_cli.settle  # noqa: F401  (registers `alliance settle`)
from alliance.cli import app, ensure_deployed_and_report, reports_errors, run_chain_in_foreground
from alliance.localchain import LocalChain
from alliance.settings import load_settings
from alliance_cli.audit import audit_app
from alliance_cli.demo import run_demo
from alliance_cli.settle import serve_with_settlement
from gateway.app import create_app
from gateway.logging import configure_logging
from gateway.settings import GatewaySettings

gateway_app = typer.Typer(help="Run the brand-facing gateway.", no_args_is_help=True)
app.add_typer(gateway_app, name="gateway")
app.add_typer(audit_app, name="audit")


@gateway_app.command("serve")
@reports_errors
def gateway_serve_command() -> None:
    """Serve the gateway (the chain must be running and the alliance deployed)."""
    core = load_settings()
    settings = GatewaySettings()
    LocalChain(core.chain, core.data).require_running()
    serve(core, settings)


def serve(core: object, settings: GatewaySettings) -> None:
    configure_logging()
    web_app = create_app(core, settings)  # type: ignore[arg-type]
    typer.echo(f"gateway on http://{settings.host}:{settings.port} (docs at /docs)")
    uvicorn.run(
        web_app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        # Longer than any client's idle pool timeout, so clients never reuse a socket the
        # server is closing (a lost POST response).
        timeout_keep_alive=75,
        # uvicorn's records go to the root handlers, through the masking filter.
        log_config=None,
    )


@app.command("up")
@reports_errors
def up_command() -> None:
    """Bring the local exchange up: chain, deployed alliance, gateway and nightly settlement."""
    core = load_settings()
    settings = GatewaySettings()
    run_chain_in_foreground(
        LocalChain(core.chain, core.data),
        on_ready=lambda: ensure_deployed_and_report(core),
        serve=lambda: serve_with_settlement(core, settings, serve),
    )


@app.command("demo")
@reports_errors
def demo_command() -> None:
    """Walk through the running gateway: members, link, deposits, conversions, gift, withdrawal."""
    core = load_settings()
    settings = GatewaySettings()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    run_demo(
        f"http://{host}:{settings.port}",
        core.data.data_dir / "gateway-clients.json",
        core.data.manifest_file,
        typer.echo,
    )
