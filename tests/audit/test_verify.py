"""`alliance audit verify` on a real Anvil: a clean alliance passes, each tampering is caught.

Proves, on the deployed test alliance with periods settled by the independent stand-in
(tests/audit/support.py): a clean alliance with rate changes, settled periods and
published statements verifies with zero findings (lens and batched balance reads agree);
an altered statements file, a forged anchor written by the settler key with a wrong root,
and a statement whose figures disagree with the events are each caught by their own
finding kind; a replay cache that lost a block range, lost a segment file, or belongs to
another chain history is noticed, ignored from that point and the balances still check out.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from alliance.audit.verify import VerifyReport, verify
from alliance.rpc import JsonRpc
from alliance.statements import canonical_bytes
from tests.audit.support import Settlement, audit_chain
from tests.support.alliance import DeployedAlliance

DAY_S = 86_400
NOTICE_S = 30 * DAY_S
PERIOD = 20261122
NEXT_PERIOD = 20261123


def run_verify(
    alliance: DeployedAlliance,
    rpc: JsonRpc,
    settlement: Settlement | None = None,
    *,
    cache: Path | None = None,
    lens: bool = True,
    window_blocks_max: int | None = None,
) -> VerifyReport:
    chain = audit_chain(alliance, rpc, lens=lens)
    if window_blocks_max is not None:
        chain = dataclasses.replace(chain, window_blocks_max=window_blocks_max)
    statements = settlement.statements_dir if settlement is not None else None
    return verify(chain, statements_dir=statements, cache_dir=cache)


def kinds(report: VerifyReport) -> set[str]:
    return {finding.kind for finding in report.findings}


def schedule_rate(alliance: DeployedAlliance, code: str, rate: int) -> int:
    """Schedule a new rate for `code` at the earliest allowed time; return that time."""
    effective_at = alliance.timestamp() + NOTICE_S + 10
    token = alliance.tokens[code].address
    alliance.transact(
        alliance.brand_party(code, "admin"),
        alliance.exchange.functions.scheduleRate(token, rate, effective_at),
    )
    return effective_at


def test_clean_alliance_with_rate_change_and_settled_periods_has_no_findings(
    alliance, rpc, settlement
):
    settlement.busy_day()
    settlement.settle(PERIOD)
    effective_at = schedule_rate(alliance, "bean", 2 * 10**16)
    alliance.advance_time(effective_at - alliance.timestamp() + 1)
    settlement.busy_day(2)
    settlement.settle(NEXT_PERIOD)
    settlement.busy_day(1)

    report = run_verify(alliance, rpc, settlement)

    assert report.findings == []
    assert report.anchors_checked == 2 and report.statements_checked == 2
    assert report.holdings_checked == len(settlement.members) * 2  # bean and sky each
    assert report.events > 100
    batched = run_verify(alliance, rpc, settlement, lens=False)
    assert batched.findings == [] and batched.holdings_checked == report.holdings_checked


def test_conversions_after_the_rate_change_use_the_new_rate_and_verify(alliance, rpc, settlement):
    member = settlement.member()
    settlement.deposit("bean", member, 10_000)
    effective_at = schedule_rate(alliance, "bean", 2 * 10**16)
    alliance.advance_time(effective_at - alliance.timestamp() + 1)
    receipt = settlement.convert(member, "bean", "sky", 1_000)
    (event,) = alliance.events(receipt, alliance.exchange, "Converted")
    assert event["rateFrom"] == 2 * 10**16

    assert run_verify(alliance, rpc).findings == []


def test_altered_statements_file_is_caught_by_its_hash(alliance, rpc, settlement):
    settlement.busy_day()
    document = settlement.settle(PERIOD)
    path = settlement.statements_dir / str(PERIOD) / "statements.json"
    altered = dict(document, currency="EUR")
    path.write_bytes(canonical_bytes(altered))

    report = run_verify(alliance, rpc, settlement)

    # The currency is the publisher's statement, not a chain figure: only the hash catches it.
    (finding,) = report.findings
    assert finding.kind == "statements_hash_mismatch"
    assert finding.evidence["period_id"] == PERIOD
    assert finding.evidence["file_hash"] != finding.evidence["statements_hash"]


def test_forged_anchor_with_a_wrong_root_is_caught(alliance, rpc, settlement):
    settlement.busy_day()
    document = settlement.close(PERIOD)
    forged_root = b"\x42" * 32
    settlement.publish_and_anchor(document, root=forged_root)

    report = run_verify(alliance, rpc, settlement)

    assert "anchor_root_mismatch" in kinds(report)
    (finding,) = [f for f in report.findings if f.kind == "anchor_root_mismatch"]
    assert finding.evidence["balances_root"] == "0x" + forged_root.hex()
    assert finding.evidence["replayed_root"] == document["balances_root"]
    assert finding.evidence["settler"] == alliance.settler.address.lower()
    # The published file still names the true root, which is not what was anchored.
    assert kinds(report) <= {"anchor_root_mismatch", "statements_figures_mismatch"}


def test_statement_whose_figures_disagree_with_events_is_caught(alliance, rpc, settlement):
    settlement.busy_day()
    document = settlement.close(PERIOD)
    bean = next(b for b in document["brands"] if b["brand"] == "bean")
    bean["minted"]["deposit"] = str(int(bean["minted"]["deposit"]) + 1_000)
    settlement.publish_and_anchor(document)  # Hash matches: the lie is in the figures.

    report = run_verify(alliance, rpc, settlement)

    assert kinds(report) == {"statements_figures_mismatch"}
    (finding,) = report.findings
    assert any("brands[0].minted.deposit" in d for d in finding.evidence["differences"])


def test_a_missing_statement_for_an_anchored_period_is_reported(alliance, rpc, settlement):
    settlement.busy_day()
    settlement.settle(PERIOD)
    (settlement.statements_dir / str(PERIOD) / "statements.json").unlink()

    assert kinds(run_verify(alliance, rpc, settlement)) == {"statements_missing"}


def _cached_run(alliance, rpc, settlement, cache: Path) -> VerifyReport:
    return run_verify(alliance, rpc, settlement, cache=cache, window_blocks_max=4)


def _index(cache: Path) -> tuple[Path, dict]:
    (index_path,) = cache.glob("*/index.json")
    return index_path, json.loads(index_path.read_text())


def test_cache_makes_a_second_run_identical_and_reads_only_new_blocks(
    alliance, rpc, settlement, tmp_path
):
    settlement.busy_day()
    settlement.settle(PERIOD)
    cache = tmp_path / "cache"
    first = _cached_run(alliance, rpc, settlement, cache)
    _, index = _index(cache)
    assert first.findings == [] and len(index["segments"]) > 3
    settlement.busy_day(1)

    second = _cached_run(alliance, rpc, settlement, cache)

    assert second.findings == [] and second.events > first.events
    _, grown = _index(cache)
    assert grown["segments"][: len(index["segments"])] == index["segments"]
    assert grown["segments"][-1]["last"] == second.head_block


def test_cache_that_lost_a_block_range_is_noticed_and_not_trusted(
    alliance, rpc, settlement, tmp_path
):
    members = settlement.busy_day()
    cache = tmp_path / "cache"
    assert _cached_run(alliance, rpc, settlement, cache).findings == []
    index_path, index = _index(cache)
    lost = index["segments"][2]
    del index["segments"][2]  # The range is gone from the index and its file with it.
    (index_path.parent / lost["file"]).unlink()
    index_path.write_text(json.dumps(index))

    report = _cached_run(alliance, rpc, settlement, cache)

    assert kinds(report) == {"cache_gap"}
    (gap,) = report.findings
    assert (gap.evidence["missing_first_block"], gap.evidence["missing_last_block"]) == (
        lost["first"],
        lost["last"],
    )
    # Balances were re-read, not taken from a cache with a hole: every holding checks out.
    assert report.holdings_checked >= len(members) * 2
    assert _cached_run(alliance, rpc, settlement, cache).findings == []


def test_cache_segment_file_lost_or_altered_is_noticed(alliance, rpc, settlement, tmp_path):
    settlement.busy_day()
    cache = tmp_path / "cache"
    _cached_run(alliance, rpc, settlement, cache)
    index_path, index = _index(cache)
    (index_path.parent / index["segments"][1]["file"]).unlink()

    assert kinds(_cached_run(alliance, rpc, settlement, cache)) == {"cache_gap"}

    _, index = _index(cache)
    segment = index_path.parent / index["segments"][1]["file"]
    segment.write_bytes(segment.read_bytes() + b"\x00")
    assert kinds(_cached_run(alliance, rpc, settlement, cache)) == {"cache_corrupt"}


def test_cache_of_another_chain_history_is_noticed_as_stale(alliance, rpc, settlement, tmp_path):
    provider = alliance.client.w3.provider
    snapshot = provider.make_request("evm_snapshot", [])["result"]
    settlement.busy_day(2)
    cache = tmp_path / "cache"
    assert _cached_run(alliance, rpc, settlement, cache).findings == []
    provider.make_request("evm_revert", [snapshot])
    settlement.members.clear()
    settlement.busy_day(3)  # Same block numbers, different blocks.

    report = _cached_run(alliance, rpc, settlement, cache)

    assert kinds(report) == {"cache_stale"}
