"""Pure checks of one `Converted` event against the rate book and pair policy in force.

Invariant 4 of docs/contracts.md: the event's rates are `rateAt(token, t)` of its block
time, its fee rate is the pair policy's, and its amounts are `quote_conversion` of those
(floor for the gross amount, ceiling for the fee); the pair was enabled and the amount out
within the policy's minimum, maximum and daily cap.
"""

from __future__ import annotations

from typing import Any

from alliance.audit.findings import Finding
from alliance.audit.rates import PairPolicy, RateVersion
from alliance.events import ChainEvent
from alliance.money import quote_conversion


def check_conversion(
    event: ChainEvent,
    timestamp: int,
    rate_from: RateVersion | None,
    rate_to: RateVersion | None,
    policy: PairPolicy | None,
    inflow_today: int,
) -> list[Finding]:
    """Findings for one conversion; `inflow_today` includes this conversion's amount out."""
    args = event.args
    if _conforms(args, rate_from, rate_to, policy, inflow_today):
        return []
    evidence = _evidence(event, timestamp)
    if rate_from is None or rate_to is None:
        return [Finding("conversion_unknown_brand", "conversion with an unlisted brand", evidence)]
    findings = _rate_findings(args, rate_from, rate_to, evidence)
    findings += _policy_findings(args, policy, inflow_today, evidence)
    quote = quote_conversion(args["amountIn"], args["rateFrom"], args["rateTo"], args["feeBps"])
    actual = (args["amountOut"], args["feePoints"], args["valueIn"])
    expected = (quote.amount_out_points, quote.fee_points, quote.value_in_units)
    if actual != expected:
        findings.append(
            Finding(
                "conversion_arithmetic",
                f"conversion {args['requestId']}: (out, fee, value) {actual} != {expected}",
                {
                    **evidence,
                    "expected_amount_out": expected[0],
                    "expected_fee_points": expected[1],
                    "expected_value_in": str(expected[2]),
                },
            )
        )
    return findings


def _conforms(
    args: dict[str, Any],
    rate_from: RateVersion | None,
    rate_to: RateVersion | None,
    policy: PairPolicy | None,
    inflow_today: int,
) -> bool:
    """The fast path: whether every check passes (evidence is only built when one fails)."""
    if rate_from is None or rate_to is None or policy is None or not policy.enabled:
        return False
    amount_out = args["amountOut"]
    quote = quote_conversion(args["amountIn"], args["rateFrom"], args["rateTo"], args["feeBps"])
    return (
        args["rateFrom"] == rate_from.rate_value_units
        and args["rateTo"] == rate_to.rate_value_units
        and args["feeBps"] == policy.fee_bps
        and amount_out >= policy.minimum_out
        and (policy.max_amount_out == 0 or amount_out <= policy.max_amount_out)
        and (policy.daily_cap == 0 or inflow_today <= policy.daily_cap)
        and quote.amount_out_points == amount_out
        and quote.fee_points == args["feePoints"]
        and quote.value_in_units == args["valueIn"]
    )


def _rate_findings(
    args: dict[str, Any], rate_from: RateVersion, rate_to: RateVersion, evidence: dict[str, Any]
) -> list[Finding]:
    if (args["rateFrom"], args["rateTo"]) == (rate_from.rate_value_units, rate_to.rate_value_units):
        return []
    return [
        Finding(
            "conversion_rate_mismatch",
            f"conversion {args['requestId']} used rates ({args['rateFrom']}, {args['rateTo']}), "
            f"the rate book says ({rate_from.rate_value_units}, {rate_to.rate_value_units})",
            {
                **evidence,
                "rate_from_in_force": rate_from.to_json(),
                "rate_to_in_force": rate_to.to_json(),
            },
        )
    ]


def _policy_findings(
    args: dict[str, Any], policy: PairPolicy | None, inflow_today: int, evidence: dict[str, Any]
) -> list[Finding]:
    request_id = args["requestId"]
    if policy is None or not policy.enabled:
        return [Finding("conversion_pair_disabled", f"conversion {request_id}", evidence)]
    evidence = {**evidence, "policy_in_force": policy.to_json()}
    findings = []
    if args["feeBps"] != policy.fee_bps:
        findings.append(
            Finding(
                "conversion_fee_mismatch",
                f"conversion {request_id} charged {args['feeBps']} bps, policy says "
                f"{policy.fee_bps}",
                evidence,
            )
        )
    amount_out = args["amountOut"]
    above_maximum = policy.max_amount_out != 0 and amount_out > policy.max_amount_out
    if amount_out < policy.minimum_out or above_maximum:
        findings.append(
            Finding("conversion_limit", f"conversion {request_id} out {amount_out}", evidence)
        )
    if policy.daily_cap != 0 and inflow_today > policy.daily_cap:
        findings.append(
            Finding(
                "conversion_daily_cap",
                f"conversion {request_id} brings the day's inflow to {inflow_today}",
                {**evidence, "inflow_today": inflow_today},
            )
        )
    return findings


def _evidence(event: ChainEvent, timestamp: int) -> dict[str, Any]:
    args = event.args
    return {
        "request_id": str(args["requestId"]),
        "member": args["member"],
        "from_token": args["fromToken"],
        "to_token": args["toToken"],
        "amount_in": str(args["amountIn"]),
        "amount_out": str(args["amountOut"]),
        "fee_points": str(args["feePoints"]),
        "value_in": str(args["valueIn"]),
        "rate_from": str(args["rateFrom"]),
        "rate_to": str(args["rateTo"]),
        "fee_bps": args["feeBps"],
        "block": event.block_number,
        "block_timestamp": timestamp,
        "transaction_hash": event.transaction_hash,
    }
