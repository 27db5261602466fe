"""Expiry and fraud checks as a step of the nightly run (`close_period(alerts_hook=...)`).

The run calls the hook after the index is proven and the period reconciled, before the
statements are built and anchored. The hook:

1. **Expiry** (`settlement.expiry`): lots up to the closing block, evaluated at the
   period's end; warnings queued for the brands; expiry burns handed to the gateway's
   pipeline. The burns are mined after the closing block, so they appear in the *next*
   period's statements (`burned.expiry`) and balances tree; this period's anchored
   balances are the chain's at its closing block, untouched by them.
2. **Fraud** (`settlement.fraud`): every rule over the events up to the closing block;
   alerts stored once by natural key and queued for their brands' webhooks. The period's
   stored alerts are returned for `alerts.json`, the report and the statements' per-brand
   alert counts (each alert counts once for each brand it involves).

Both read only the indexed events up to the closing block and write only by natural keys,
so a re-run of the period finds the same alerts and asks for no second burn.
"""

from __future__ import annotations

from typing import Any

from alliance.db.session import unit_of_work
from alliance.deploy_config import load_alliance_config
from alliance.settings import Settings
from gateway.services.operations import create_operation
from gateway.webhooks import enqueue_brand_event
from settlement.context import SettlementContext
from settlement.expiry import EVENT_NAMES as EXPIRY_EVENTS
from settlement.expiry import ExpiryResult, ExpirySettings, policies_of, run_expiry
from settlement.fraud.run import period_of, run_fraud_checks, stored_alert_documents
from settlement.fraud.settings import FraudSettings
from settlement.history import stored_block_times, stored_events
from settlement.lots import ExpiryPolicy
from settlement.period import PeriodWindow
from settlement.run import AlertsHook


def expiry_step(
    context: SettlementContext,
    window: PeriodWindow,
    policies: dict[str, ExpiryPolicy],
    settings: ExpirySettings,
) -> ExpiryResult:
    """Warn and burn for the period (see the module docstring)."""
    deploy_block = context.manifest.deploy_block
    period = period_of(window.period_id, window.start_timestamp, window.end_timestamp)
    with context.factory() as session:
        times = stored_block_times(
            session, context.rpc, EXPIRY_EVENTS, deploy_block, window.closing_block
        )
        events = stored_events(session, EXPIRY_EVENTS, deploy_block, window.closing_block)
        return run_expiry(
            context.factory,
            events,
            times,
            token_brand=context.addresses.token_brand,
            period_id=window.period_id,
            now=period.end,
            policies=policies,
            settings=settings,
            create_operation=create_operation,
            notify=enqueue_brand_event,
        )


def fraud_step(
    context: SettlementContext, window: PeriodWindow, settings: FraudSettings
) -> list[dict[str, Any]]:
    """Run the rules, store new alerts, and return the period's alert documents."""
    run_fraud_checks(
        context.factory,
        context.rpc,
        token_brand=context.addresses.token_brand,
        period=period_of(window.period_id, window.start_timestamp, window.end_timestamp),
        zone=context.settings.zone,
        deploy_block=context.manifest.deploy_block,
        closing_block=window.closing_block,
        settings=settings,
        notify=enqueue_brand_event,
    )
    with unit_of_work(context.factory) as session:
        return stored_alert_documents(session, window.period_id)


def risk_hook(
    core: Settings,
    fraud: FraudSettings | None = None,
    expiry: ExpirySettings | None = None,
) -> AlertsHook:
    """The hook to pass as `alerts_hook` to `run_settlement` / `SettlementService`: expiry,
    then fraud checks, with the brands' expiry policies from the deploy configuration."""
    policies = policies_of(load_alliance_config(core.data.deploy_config_file))
    fraud_settings = fraud or FraudSettings()
    expiry_settings = expiry or ExpirySettings()

    def hook(context: SettlementContext, window: PeriodWindow) -> list[dict[str, Any]]:
        expiry_step(context, window, policies, expiry_settings)
        return fraud_step(context, window, fraud_settings)

    return hook
