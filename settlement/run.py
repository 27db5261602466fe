"""One period's close: index, prove the index, reconcile, net, anchor, publish.

`run_settlement(core, settings, day)` is the entry point of the command and the service.
Each step is recorded before the next, so a run killed anywhere is completed by running
it again, and a completed period re-run gives byte-identical files without anchoring twice:

1. sync the index and prove it whole (supply per token, random re-scans);
2. replay balances to the closing block and check them against chain state;
3. reconcile once and freeze the result into the run row (`reconciled`): discrepancies,
   brand reports and the gateway's high-water mark; re-runs reuse the frozen result;
4. build the statements; anchor them once (`anchored`), or compare with the anchor;
5. write the output files (`complete`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from alliance.bulkgc import bulk_gc
from alliance.db.reports import lock_period_reports
from alliance.db.session import unit_of_work
from alliance.db.settlement import (
    BrandReport,
    Discrepancy,
    DiscrepancyKind,
    RunStatus,
    SettlementRun,
    chain_events_table,
)
from alliance.merkle import balances_root
from alliance.statements import (
    BrandInfo,
    PeriodActivity,
    PeriodFacts,
    build_statements,
    canonical_bytes,
    statements_hash,
    tie_out_failures,
)
from settlement import reconcile
from settlement.anchoring import Anchorer
from settlement.balances import BalanceReader, ReplayedBalances, replay_transfers
from settlement.context import SettlementContext
from settlement.errors import BalancesDoNotMatch, IndexIncomplete, PeriodNotClosable
from settlement.failpoints import AFTER_RECONCILE, BEFORE_OUTPUTS, failpoint
from settlement.outputs import period_dir, write_outputs
from settlement.period import PeriodWindow, locate_period, period_id_of
from settlement.records import (
    balances_to_read,
    operations_high_water,
    period_pass,
    unseen_operations,
)

BALANCE_CHECK_CHUNK = 50_000
"""Holdings compared with `balanceOf` at a time (read in lens calls of `balance_batch_size`)."""

AlertsHook = Callable[[SettlementContext, PeriodWindow], list[dict[str, Any]]]
"""Fraud checks for a period: alert documents, each with a "brand" key. The fraud
rules plug in here (`run_settlement(..., alerts_hook=...)`); none by default."""


def no_alerts(context: SettlementContext, window: PeriodWindow) -> list[dict[str, Any]]:
    return []


@dataclass
class RunResult:
    """What a run produced."""

    period_id: int
    opening_block: int
    closing_block: int
    balances_root: str
    statements_hash: str
    anchor_transaction: str | None
    anchored_now: bool
    discrepancies: int
    output_dir: Path
    files: list[Path] = field(default_factory=list)


def close_period(
    context: SettlementContext, day: date, *, alerts_hook: AlertsHook = no_alerts
) -> RunResult:
    """Close the period of `day` (see the module docstring)."""
    with bulk_gc():
        return _close_period(context, day, alerts_hook)


def _close_period(context: SettlementContext, day: date, alerts_hook: AlertsHook) -> RunResult:
    settings = context.settings
    checkpoint = context.indexer.sync()
    window = locate_period(
        context.rpc,
        day,
        settings.zone,
        opening_block=previous_closing_block(context, period_id_of(day)) + 1,
        confirmed_head=checkpoint,
    )
    prove_index(context, window, checkpoint)
    tokens = sorted(context.addresses.token_brand)
    replayed = replay_transfers(context.factory, tokens, window.opening_block, window.closing_block)
    closing_supply = context.indexer.total_supplies(tokens, window.closing_block)
    opening_supply = context.indexer.total_supplies(tokens, window.opening_block - 1)
    totals = supply_findings(replayed, closing_supply)
    expected = moved_balances(replayed)
    root = balances_root(replayed.holdings())
    del replayed  # The largest structure of the run; free it before reconciliation.
    with ThreadPoolExecutor(1, thread_name_prefix="balance-check") as pool:
        # Reading two million balances is mostly the node's work: it runs beside the pass
        # over the period's events, and must pass before the reconciliation is frozen.
        check = pool.submit(check_balances, context, window, expected, totals)
        del expected
        run, activity = reconciled_period(
            context, window, checkpoint, closing_supply, before_freezing=check.result
        )
    discrepancies = stored_discrepancies(context.factory, window.period_id)
    alerts = alerts_hook(context, window)
    code = context.addresses.token_brand
    facts = PeriodFacts(
        period_id=window.period_id,
        time_zone=settings.timezone,
        opening_block=window.opening_block,
        closing_block=window.closing_block,
        balances_root=root,
        peg=settings.peg,
        currency=settings.currency,
        brands=[BrandInfo(code[token], token) for token in tokens],
        opening_supply={code[t]: supply for t, supply in opening_supply.items()},
        closing_supply={code[t]: supply for t, supply in closing_supply.items()},
        reported_liability={b: int(v) for b, v in (run.reported_liability or {}).items()},
        discrepancies=_count_by_brand(discrepancies),
        alerts=_count_by_brand(alerts),
    )
    document = build_statements(facts, activity)
    failures = tie_out_failures(document)
    assert not failures, f"statements do not tie out after a proven index: {failures}"
    data = canonical_bytes(document)
    anchor = Anchorer(context).ensure_anchored(window, root, statements_hash(data), data)
    failpoint(BEFORE_OUTPUTS)
    directory = period_dir(context.data_dir, window.period_id)
    files = write_outputs(directory, data, document, discrepancies, alerts, anchor.document)
    mark_complete(context.factory, window.period_id)
    return RunResult(
        period_id=window.period_id,
        opening_block=window.opening_block,
        closing_block=window.closing_block,
        balances_root="0x" + root.hex(),
        statements_hash="0x" + statements_hash(data).hex(),
        anchor_transaction=anchor.transaction_hash,
        anchored_now=anchor.anchored_now,
        discrepancies=len(discrepancies),
        output_dir=directory,
        files=files,
    )


def _count_by_brand(items: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        # An alert involving several brands ("brands") counts once for each of them.
        brands = item.get("brands") or ([item["brand"]] if item.get("brand") else [])
        for brand in brands:
            counts[brand] = counts.get(brand, 0) + 1
    return counts


def previous_closing_block(context: SettlementContext, period_id: int) -> int:
    """The closing block of the latest period anchored before `period_id` (from the
    indexed `PeriodAnchored` events), or the block before the deployment."""
    table = chain_events_table
    statement = select(table.c.args).where(
        table.c.name == "PeriodAnchored", table.c.address == context.addresses.anchor
    )
    closing = context.manifest.deploy_block - 1
    with context.factory() as session:
        anchored: Iterable[dict[str, Any]] = session.scalars(statement)
        for args in anchored:
            if int(args["periodId"]) < period_id:
                closing = max(closing, int(args["closingBlock"]))
    return closing


def prove_index(context: SettlementContext, window: PeriodWindow, checkpoint: int) -> None:
    """Supply per token at the checkpoint and random re-scans; a gap stops the run."""
    indexer = context.indexer
    findings = indexer.supply_findings(context.addresses.token_brand, checkpoint)
    rng = random.Random(f"{window.period_id}:{checkpoint}")
    findings += indexer.rescan_findings(rng, checkpoint)
    if findings:
        record_blocking(
            context.factory,
            window.period_id,
            [
                reconcile.Finding(DiscrepancyKind.INDEX_GAP, None, evidence={"finding": text})
                for text in findings
            ],
        )
        raise IndexIncomplete(findings)


def supply_findings(replayed: ReplayedBalances, closing_supply: Mapping[str, int]) -> list[str]:
    """Tokens whose replayed balances do not add up to their `totalSupply`."""
    return [
        f"{token}: replayed total {replayed.total(token)}, totalSupply {supply}"
        for token, supply in closing_supply.items()
        if replayed.total(token) != supply
    ]


def moved_balances(replayed: ReplayedBalances) -> list[tuple[str, str, int]]:
    """(token, account, replayed balance) of every holding that moved in the period, in a
    stable order: what `check_balances` compares with the chain."""
    return [
        (token, account, replayed.balances[token].get(account, 0))
        for token, account in balances_to_read(replayed.moved)
    ]


def check_balances(
    context: SettlementContext,
    window: PeriodWindow,
    expected: Sequence[tuple[str, str, int]],
    totals: Sequence[str],
) -> None:
    """Replayed balances against `balanceOf` at the closing block (and the supply totals
    found by `supply_findings`): any difference stops the run."""
    reader = BalanceReader(context.rpc, context.lens, context.settings.balance_batch_size)
    drift: list[reconcile.Finding] = []
    # In chunks: two dicts over every holding that moved (millions on a busy day) would
    # double the run's peak memory for no gain in what is found.
    for start in range(0, len(expected), BALANCE_CHECK_CHUNK):
        chunk = expected[start : start + BALANCE_CHECK_CHUNK]
        holdings = [(token, account) for token, account, _ in chunk]
        on_chain = dict(zip(holdings, reader.read(holdings, window.closing_block), strict=True))
        flat = {(token, account): balance for token, account, balance in chunk}
        drift += reconcile.balance_drift(flat, on_chain, context.addresses.token_brand)
    if totals or drift:
        record_blocking(context.factory, window.period_id, drift)
        raise BalancesDoNotMatch(
            window.period_id, [*totals, *(str(d.evidence) for d in drift[:10])]
        )


def record_blocking(
    factory: sessionmaker[Session], period_id: int, findings: Sequence[reconcile.Finding]
) -> None:
    """Persist findings that stop the run (index gaps, balance drift), replacing the
    previous attempt's, so the operator sees them next to the period."""
    kinds = {finding.kind for finding in findings} | {DiscrepancyKind.INDEX_GAP}
    with unit_of_work(factory) as session:
        session.execute(
            delete(Discrepancy).where(
                Discrepancy.period_id == period_id,
                Discrepancy.kind.in_([str(kind) for kind in kinds]),
            )
        )
        session.add_all(_rows(period_id, findings))


def _rows(period_id: int, findings: Sequence[reconcile.Finding]) -> list[Discrepancy]:
    return [
        Discrepancy(
            period_id=period_id,
            kind=str(finding.kind),
            brand_code=finding.brand_code,
            request_id=finding.request_id,
            transaction_hash=finding.transaction_hash,
            evidence=finding.evidence,
        )
        for finding in sorted(findings, key=reconcile.Finding.sort_key)
    ]


def reconciled_period(
    context: SettlementContext,
    window: PeriodWindow,
    checkpoint: int,
    closing_supply: Mapping[str, int],
    *,
    before_freezing: Callable[[], object] = lambda: None,
) -> tuple[SettlementRun, PeriodActivity]:
    """The period's activity, and its run row with the reconciliation frozen: done now on
    the first run, reused after. One pass over the period's events either way;
    `before_freezing` runs after it and may stop the run before anything is written."""
    with context.factory() as session:
        run = session.get(SettlementRun, window.period_id)
    opening, closing = window.opening_block, window.closing_block
    if run is not None and run.status != RunStatus.STARTED:
        if (run.opening_block, run.closing_block) != (opening, closing):
            raise PeriodNotClosable(
                window.period_id,
                f"recorded as blocks {run.opening_block}-{run.closing_block}, now "
                f"{opening}-{closing}",
            )
        scan = period_pass(context.factory, context.addresses, opening, closing, checkpoint, None)
        before_freezing()
        return run, scan.activity
    low = previous_high_water(context.factory, window.period_id)
    young_before = datetime.now().astimezone() - timedelta(seconds=context.settings.pending_grace_s)
    high = operations_high_water(context.factory, low, young_before)
    scan = period_pass(
        context.factory, context.addresses, opening, closing, checkpoint, (low, high)
    )
    before_freezing()
    findings = reconcile.match_events(scan.matched)
    unseen = unseen_operations(context.factory, context.addresses, scan.seen)
    findings += reconcile.missing_on_chain(unseen)
    code = context.addresses.token_brand
    supply_by_brand = {code[t]: supply for t, supply in closing_supply.items()}
    with unit_of_work(context.factory) as session:
        # The reports are read and frozen under their lock: one uploaded meanwhile is
        # either in these figures or refused `period_closed` (alliance/db/reports.py).
        lock_period_reports(session, window.period_id)
        reported = brand_reports(session, window.period_id)
        findings += reconcile.brand_total_mismatches(reported, supply_by_brand)
        session.execute(delete(Discrepancy).where(Discrepancy.period_id == window.period_id))
        session.add_all(_rows(window.period_id, findings))
        run = session.get(SettlementRun, window.period_id) or SettlementRun(
            period_id=window.period_id
        )
        run.status = RunStatus.RECONCILED
        run.opening_block, run.closing_block = opening, closing
        run.reported_liability = {brand: str(points) for brand, points in reported.items()}
        run.operations_high_water = high
        session.add(run)
    failpoint(AFTER_RECONCILE)
    return run, scan.activity


def brand_reports(session: Session, period_id: int) -> dict[str, int]:
    rows = session.scalars(select(BrandReport).where(BrandReport.period_id == period_id))
    return {row.brand_code: row.liability_points for row in rows}


def previous_high_water(factory: sessionmaker[Session], period_id: int) -> int:
    """The high-water mark of the latest reconciled period before `period_id` (0 if none)."""
    with factory() as session:
        value = session.scalar(
            select(SettlementRun.operations_high_water)
            .where(
                SettlementRun.period_id < period_id,
                SettlementRun.operations_high_water.is_not(None),
            )
            .order_by(SettlementRun.period_id.desc())
            .limit(1)
        )
    return int(value or 0)


def stored_discrepancies(factory: sessionmaker[Session], period_id: int) -> list[dict[str, Any]]:
    """The period's discrepancies as `discrepancies.json` lists them."""
    with factory() as session:
        rows = session.scalars(select(Discrepancy).where(Discrepancy.period_id == period_id))
        findings = [
            reconcile.Finding(
                DiscrepancyKind(row.kind),
                row.brand_code,
                row.request_id,
                row.transaction_hash,
                row.evidence,
            )
            for row in rows
        ]
    return reconcile.findings_document(findings)


def mark_complete(factory: sessionmaker[Session], period_id: int) -> None:
    with unit_of_work(factory) as session:
        run = session.get(SettlementRun, period_id)
        assert run is not None and run.status != RunStatus.STARTED
        if run.status != RunStatus.COMPLETE:
            run.status = RunStatus.COMPLETE
            run.completed_at = datetime.now().astimezone()
