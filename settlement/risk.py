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

Both read only the indexed events up to the closing block, in one pass that feeds the lots
and the fraud records together (`replay_risk`), and write only by natural keys, so a
re-run of the period finds the same alerts and asks for no second burn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alliance.db.session import unit_of_work
from alliance.deploy_config import load_alliance_config
from alliance.events import canonical_address
from alliance.settings import Settings
from gateway.services.operations import create_operation
from gateway.webhooks import enqueue_brand_event
from settlement.context import SettlementContext
from settlement.expiry import EVENT_NAMES as EXPIRY_EVENTS
from settlement.expiry import ExpiryResult, ExpirySettings, LotReplay, expire, policies_of
from settlement.fraud.inputs import EVENT_NAMES as FRAUD_EVENTS
from settlement.fraud.inputs import FraudReplay
from settlement.fraud.run import period_of, raise_alerts, stored_alert_documents
from settlement.fraud.settings import FraudSettings
from settlement.history import event_of, stored_block_times, stored_rows
from settlement.lots import ExpiryPolicy
from settlement.period import PeriodWindow
from settlement.run import AlertsHook

RISK_EVENTS = tuple(dict.fromkeys(FRAUD_EVENTS + EXPIRY_EVENTS))
"""What the expiry lots and the fraud records read, in one pass."""


@dataclass
class RiskReplay:
    """The expiry lots and the fraud records, replayed together to a closing block."""

    lots: LotReplay
    fraud: FraudReplay


def replay_risk(
    context: SettlementContext, window: PeriodWindow, fraud_settings: FraudSettings
) -> RiskReplay:
    """One pass over the indexed events from the deployment to the closing block, feeding
    both the expiry lots and the fraud records (each used to read every event itself)."""
    lower = {address.lower(): brand for address, brand in context.addresses.token_brand.items()}
    period = period_of(window.period_id, window.start_timestamp, window.end_timestamp)
    replay = RiskReplay(
        LotReplay(lower), FraudReplay(lower, period, context.settings.zone, fraud_settings)
    )
    deploy_block, closing = context.manifest.deploy_block, window.closing_block
    with context.factory() as session:
        times = stored_block_times(session, context.rpc, RISK_EVENTS, deploy_block, closing)
        lots, fraud = replay.lots, replay.fraud
        for row in stored_rows(session, RISK_EVENTS, deploy_block, closing):
            name, token, block_number, log_index, _, sender, recipient, amount, _ = row
            at = times[block_number]
            if name == "Transfer":
                # Most rows: straight from the columns, no event object (see `stored_rows`),
                # the addresses made canonical once for both replays.
                token = token.lower()
                sender, recipient = canonical_address(sender), canonical_address(recipient)
                lots.add_transfer(token, sender, recipient, amount, (block_number, log_index), at)
                fraud.add_transfer(token, sender, recipient, amount, block_number, at)
                continue
            event = event_of(row)
            if name in EXPIRY_EVENTS:
                lots.add(event, at)
            fraud.add(event, at)
    return replay


def expiry_step(
    context: SettlementContext,
    window: PeriodWindow,
    lots: LotReplay,
    policies: dict[str, ExpiryPolicy],
    settings: ExpirySettings,
) -> ExpiryResult:
    """Warn and burn for the period (see the module docstring)."""
    period = period_of(window.period_id, window.start_timestamp, window.end_timestamp)
    return expire(
        context.factory,
        lots,
        period_id=window.period_id,
        now=period.end,
        policies=policies,
        settings=settings,
        create_operation=create_operation,
        notify=enqueue_brand_event,
    )


def fraud_step(
    context: SettlementContext,
    window: PeriodWindow,
    fraud: FraudReplay,
    settings: FraudSettings,
) -> list[dict[str, Any]]:
    """Run the rules, store new alerts, and return the period's alert documents."""
    raise_alerts(context.factory, fraud.inputs(), settings, enqueue_brand_event)
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
        replay = replay_risk(context, window, fraud_settings)
        expiry_step(context, window, replay.lots, policies, expiry_settings)
        fraud = replay.fraud
        del replay  # The lots (millions on a busy day) are done with: free them first.
        return fraud_step(context, window, fraud, fraud_settings)

    return hook
