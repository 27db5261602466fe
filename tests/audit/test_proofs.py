"""`prove`, `check-proof`, `evidence` and `history` on a real Anvil with settled periods.

Proves: a member's balance proof for an anchored period verifies against the on-chain
anchor and offline against a trusted root, and fails when its balance, path or root is
altered; a proof against a forged anchor cannot be produced; the evidence bundle of a
conversion's request id carries its events, transaction and receipt, the rates and pair
policy in force, the period and proofs that verify; the history CSV lists an account's and
a brand's events with reasons, rates and running balances that match the chain.
"""

from __future__ import annotations

import csv
import io

import pytest

from alliance.audit.evidence import evidence
from alliance.audit.history import history_csv
from alliance.audit.proofs import check_proof, prove
from alliance.errors import AuditPeriodNotAnchored, AuditRequestNotFound, AuditRootMismatch
from tests.audit.support import audit_chain

PERIOD = 20261122


def test_proof_of_a_member_balance_verifies_on_chain_and_offline(alliance, rpc, settlement):
    member, *_ = settlement.busy_day()
    document = settlement.settle(PERIOD)
    settlement.deposit("bean", member, 5)  # Later activity must not change the proof.
    chain = audit_chain(alliance, rpc)

    proof = prove(chain, PERIOD, member, "bean")

    expected_balance = (
        alliance.tokens["bean"]
        .functions.balanceOf(member)
        .call(block_identifier=document["closing_block"])
    )
    assert proof["leaf"]["balance"] == str(expected_balance)
    assert proof["balances_root"] == document["balances_root"]
    assert (
        proof["anchor_transaction"]
        == settlement.anchors[0]["receipt"]["transactionHash"].to_0x_hex()
    )
    on_chain = check_proof(proof, rpc=rpc)
    assert on_chain.ok and on_chain.checks["root_equals_anchor"]
    assert check_proof(proof, trusted_root=document["balances_root"]).ok


def test_altered_proofs_fail(alliance, rpc, settlement):
    member, *_ = settlement.busy_day()
    settlement.settle(PERIOD)
    proof = prove(audit_chain(alliance, rpc), PERIOD, member, "sky")

    inflated = {
        **proof,
        "leaf": {**proof["leaf"], "balance": str(int(proof["leaf"]["balance"]) + 1)},
    }
    assert not check_proof(inflated, rpc=rpc).ok
    truncated = {**proof, "proof": proof["proof"][:-1]}
    assert not check_proof(truncated, rpc=rpc).ok
    other_root = "0x" + "11" * 32
    assert not check_proof(proof, trusted_root=other_root).ok
    rerooted = {**proof, "balances_root": other_root}
    result = check_proof(rerooted, rpc=rpc)
    assert not result.ok and result.checks["root_equals_anchor"] is False


def test_prove_refuses_a_forged_anchor_and_an_unknown_period(alliance, rpc, settlement):
    member, *_ = settlement.busy_day()
    settlement.publish_and_anchor(settlement.close(PERIOD), root=b"\x42" * 32)
    chain = audit_chain(alliance, rpc)

    with pytest.raises(AuditRootMismatch):
        prove(chain, PERIOD, member, "bean")
    with pytest.raises(AuditPeriodNotAnchored):
        prove(chain, PERIOD + 1, member, "bean")


def test_evidence_bundle_of_a_conversion_is_self_contained(alliance, rpc, settlement):
    member = settlement.member()
    settlement.deposit("bean", member, 10_000)
    receipt = settlement.convert(member, "bean", "sky", 2_000)
    (converted,) = alliance.events(receipt, alliance.exchange, "Converted")
    settlement.settle(PERIOD)

    bundle = evidence(audit_chain(alliance, rpc), converted["requestId"])

    (event,) = bundle["events"]
    assert event["event"] == "Converted" and event["args"]["amountOut"] == converted["amountOut"]
    assert event["rates_in_force"]["bean"]["rate_value_units"] == str(converted["rateFrom"])
    assert event["rates_in_force"]["sky"]["rate_value_units"] == str(converted["rateTo"])
    assert event["pair_policy_in_force"]["fee_bps"] == converted["feeBps"]
    (transaction,) = bundle["transactions"]
    assert transaction["receipt"]["status"] == "0x1"
    assert transaction["transaction"]["hash"] == receipt["transactionHash"].to_0x_hex()
    assert bundle["period"]["period_id"] == PERIOD
    assert {p["leaf"]["brand"] for p in bundle["proofs"]} == {"bean", "sky"}
    assert all(check_proof(p, rpc=rpc).ok for p in bundle["proofs"])


def test_evidence_of_an_unknown_request_id_is_an_error(alliance, rpc):
    with pytest.raises(AuditRequestNotFound):
        evidence(audit_chain(alliance, rpc), 2**200)


def test_account_history_lists_reasons_rates_and_running_balances(alliance, rpc, settlement):
    member = settlement.member()
    settlement.deposit("bean", member, 10_000)
    settlement.convert(member, "bean", "sky", 1_000)

    rows = list(
        csv.DictReader(io.StringIO(history_csv(audit_chain(alliance, rpc), account=member)))
    )

    assert [row["event"] for row in rows] == ["PointsMinted", "Converted"]
    minted, converted = rows
    assert (minted["reason"], minted["source"], minted["amount"]) == ("deposit", "spend", "10000")
    assert minted["balance_after"] == "10000" and minted["rate_in_force"] == str(10**16)
    assert converted["amount"] == "-1000" and converted["balance_after"] == "9000"
    assert converted["rate_from"] == str(10**16) and converted["rate_to"] == str(2 * 10**16)


def test_brand_history_includes_its_listing_policies_and_conversions_into_it(
    alliance, rpc, settlement
):
    member = settlement.member()
    settlement.deposit("bean", member, 10_000)
    settlement.convert(member, "bean", "sky", 1_000)

    rows = list(csv.DictReader(io.StringIO(history_csv(audit_chain(alliance, rpc), brand="sky"))))

    events = [row["event"] for row in rows]
    assert {"RoleGranted", "BrandListed", "PairPolicySet"} <= set(events)
    (converted,) = [row for row in rows if row["event"] == "Converted"]
    assert int(converted["amount"]) == alliance.balance("sky", member) > 0
    assert "PointsMinted" not in events  # Only bean was deposited.
