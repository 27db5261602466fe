"""`alliance settle --period 2026-11-22`: close (or re-run) one settlement period now."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import typer

from alliance.cli import app, reports_errors
from alliance.localchain import LocalChain
from alliance.settings import Settings, load_settings
from gateway.settings import GatewaySettings
from settlement.risk import risk_hook
from settlement.service import SettlementService, run_settlement
from settlement.settings import SettlementSettings


@app.command("settle")
@reports_errors
def settle_command(
    period: str = typer.Option(..., "--period", help="The local day to close, YYYY-MM-DD."),
) -> None:
    """Close one period: index, reconcile, net, anchor, and write its statements."""
    try:
        day = date.fromisoformat(period)
    except ValueError:
        raise typer.BadParameter("expected a date as YYYY-MM-DD", param_hint="--period") from None
    core = load_settings()
    LocalChain(core.chain, core.data).require_running()
    result = run_settlement(
        core,
        SettlementSettings(),
        day,
        gateway_database_url=GatewaySettings().database_url,
        alerts_hook=risk_hook(core),
    )
    anchored = "anchored now" if result.anchored_now else "already anchored"
    typer.echo(
        f"period {result.period_id}: blocks {result.opening_block}-{result.closing_block}, "
        f"{result.discrepancies} discrepancies, root {result.balances_root}, "
        f"statements {result.statements_hash} ({anchored}: {result.anchor_transaction})"
    )
    typer.echo(f"outputs in {result.output_dir}")


def serve_with_settlement(
    core: Settings, gateway_settings: GatewaySettings, serve: Callable[[Settings, Any], None]
) -> None:
    """`alliance up`: the nightly settlement service in a thread beside the gateway (which
    runs in the foreground until stopped; the daemon thread ends with the process)."""
    SettlementService(
        core,
        SettlementSettings(),
        gateway_database_url=gateway_settings.database_url,
        alerts_hook=risk_hook(core),
    ).start()
    serve(core, gateway_settings)
