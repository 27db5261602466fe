"""The audit's pure state machines: each broken invariant yields its own finding kind.

Proves, table-driven over synthetic decoded events (no chain: these are states the
contracts refuse to create, which is why the auditor must still check them): conversion
rates, fee, limits, daily cap and arithmetic against the replayed rate book and pair
policy; rates scheduled inside the notice period; duplicate request ids, invalid reasons,
unapproved corrections, unexplained transfers and unbacked events; negative balances; and,
as a property, that any conversion computed by `quote_conversion` passes while any change
of its amount out is caught.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alliance.audit.findings import Finding
from alliance.audit.ledger import ZERO_ADDRESS
from alliance.audit.replay import Replay
from alliance.events import ChainEvent
from alliance.money import quote_conversion

EXCHANGE = "0x" + "e0" * 20
ANCHOR = "0x" + "a0" * 20
BEAN = "0x" + "b1" * 20
SKY = "0x" + "b2" * 20
MEMBER = "0x" + "11" * 20
OTHER = "0x" + "22" * 20
ADMIN = "0x" + "33" * 20
DAY_S = 86_400
NOTICE_S = 30 * DAY_S
BEAN_RATE = 10**16
SKY_RATE = 2 * 10**16
T0 = 1_800_000_000
"""Block time of the listing: a UTC day starts at T0 - T0 % DAY_S."""


class Chain:
    """Builds decoded events in chain order and feeds them to a fresh Replay."""

    def __init__(self) -> None:
        self.replay = Replay(
            brands={BEAN: "bean", SKY: "sky"},
            exchange=EXCHANGE,
            anchor=ANCHOR,
            deploy_block=1,
            notice_period_s=NOTICE_S,
        )
        self.block = 1
        self.positions = itertools.count()
        self.findings: list[Finding] = []
        self.emit(EXCHANGE, "BrandListed", T0, token=BEAN, rateValueUnits=BEAN_RATE)
        self.emit(EXCHANGE, "BrandListed", T0, token=SKY, rateValueUnits=SKY_RATE)
        self.policy(enabled=True, feeBps=100, minAmountOut=1, maxAmountOut=10_000, dailyCap=0)
        self.findings.clear()

    def emit(
        self, address: str, name: str, timestamp: int, *, tx: str | None = None, **args: Any
    ) -> None:
        self.block += 1 if tx is None else 0
        event = ChainEvent(
            name=name,
            address=address,
            block_number=self.block,
            log_index=next(self.positions),
            transaction_hash=tx or f"0x{self.block:064x}",
            args=args,
        )
        self.findings += self.replay.apply(event, timestamp)

    def finish(self) -> set[str]:
        self.findings += self.replay.finish(self.block)
        return {finding.kind for finding in self.findings}

    def policy(self, **fields: Any) -> None:
        self.emit(EXCHANGE, "PairPolicySet", T0, fromToken=BEAN, toToken=SKY, setBy=ADMIN, **fields)

    def mint(
        self, amount: int, request_id: int, reason: int = 1, source: int = 1, **kw: Any
    ) -> None:
        tx = f"0x{self.block + 1:064x}"
        self.emit(BEAN, "Transfer", T0, **{"from": ZERO_ADDRESS, "to": MEMBER, "value": amount})
        self.emit(
            BEAN,
            "PointsMinted",
            T0,
            tx=tx,
            requestId=request_id,
            account=MEMBER,
            amount=amount,
            reason=reason,
            source=source,
            brandRef=b"\x01" * 32,
            **kw,
        )

    def convert(self, amount_in: int, timestamp: int = T0 + 60, **override: Any) -> None:
        quote = quote_conversion(amount_in, BEAN_RATE, SKY_RATE, 100)
        args = {
            "requestId": override.pop("requestId", 7),
            "member": MEMBER,
            "fromToken": BEAN,
            "toToken": SKY,
            "amountIn": amount_in,
            "amountOut": quote.amount_out_points,
            "feePoints": quote.fee_points,
            "valueIn": quote.value_in_units,
            "rateFrom": BEAN_RATE,
            "rateTo": SKY_RATE,
            "feeBps": 100,
        }
        args.update(override)
        tx = f"0x{self.block + 1:064x}"
        burn = {"from": MEMBER, "to": ZERO_ADDRESS, "value": args["amountIn"]}
        self.emit(BEAN, "Transfer", timestamp, **burn)
        mint = {"from": ZERO_ADDRESS, "to": MEMBER, "value": args["amountOut"]}
        self.emit(SKY, "Transfer", timestamp, tx=tx, **mint)
        self.emit(EXCHANGE, "Converted", timestamp, tx=tx, **args)


@pytest.fixture
def chain() -> Chain:
    chain = Chain()
    chain.mint(100_000, request_id=1)
    return chain


def test_a_correct_conversion_has_no_findings(chain):
    chain.convert(1_000)
    assert chain.finish() == set()
    assert chain.replay.ledger.balances[(SKY, MEMBER)] == 495  # 1000 bean = 500 sky - 1% fee


@pytest.mark.parametrize(
    ("override", "kind"),
    [
        ({"amountOut": 496}, "conversion_arithmetic"),
        ({"feePoints": 4}, "conversion_arithmetic"),
        ({"valueIn": 1}, "conversion_arithmetic"),
        (
            {
                "rateFrom": 2 * BEAN_RATE,
                "valueIn": 1_000 * 2 * BEAN_RATE,
                "amountOut": 990,
                "feePoints": 10,
            },
            "conversion_rate_mismatch",
        ),
        ({"feeBps": 0, "amountOut": 500, "feePoints": 0}, "conversion_fee_mismatch"),
    ],
)
def test_a_conversion_that_does_not_follow_from_book_and_policy_is_caught(chain, override, kind):
    chain.convert(1_000, **override)
    assert chain.finish() == {kind}


def test_conversions_outside_the_policy_are_caught(chain):
    chain.convert(30_000, requestId=8)  # 14,850 out, above the 10,000 maximum
    chain.policy(enabled=False, feeBps=100, minAmountOut=1, maxAmountOut=10_000, dailyCap=0)
    chain.convert(1_000, requestId=9)
    assert chain.finish() == {"conversion_limit", "conversion_pair_disabled"}


def test_the_daily_cap_counts_per_utc_day(chain):
    chain.policy(enabled=True, feeBps=100, minAmountOut=1, maxAmountOut=0, dailyCap=1_000)
    day_end = T0 - T0 % DAY_S + DAY_S - 1
    chain.convert(1_500, timestamp=day_end - 10, requestId=10)  # 743
    chain.convert(1_500, timestamp=day_end + 10, requestId=11)  # next day: 743 again
    assert chain.finish() == set()
    chain.convert(1_000, timestamp=day_end + 20, requestId=12)  # 743 + 495 > 1,000
    assert chain.finish() == {"conversion_daily_cap"}


def test_a_conversion_before_a_brand_is_listed_is_caught(chain):
    chain.convert(1_000, timestamp=T0 - 1)
    assert chain.finish() == {"conversion_unknown_brand"}


def test_rates_in_force_follow_effective_time_and_cancellation(chain):
    effective_at = T0 + NOTICE_S
    chain.emit(
        EXCHANGE,
        "RateScheduled",
        T0,
        token=BEAN,
        version=1,
        rateValueUnits=2 * BEAN_RATE,
        effectiveAt=effective_at,
        scheduledBy=ADMIN,
    )
    assert chain.replay.rates.rate_at(BEAN, effective_at - 1).rate_value_units == BEAN_RATE
    assert chain.replay.rates.rate_at(BEAN, effective_at).rate_value_units == 2 * BEAN_RATE
    chain.emit(
        EXCHANGE,
        "RateCancelled",
        T0 + 5,
        token=BEAN,
        version=1,
        rateValueUnits=2 * BEAN_RATE,
        effectiveAt=effective_at,
    )
    assert chain.replay.rates.rate_at(BEAN, effective_at).rate_value_units == BEAN_RATE
    assert chain.finish() == set()


def test_a_rate_scheduled_inside_the_notice_period_is_caught(chain):
    chain.emit(
        EXCHANGE,
        "RateScheduled",
        T0,
        token=BEAN,
        version=1,
        rateValueUnits=2 * BEAN_RATE,
        effectiveAt=T0 + NOTICE_S - 1,
        scheduledBy=ADMIN,
    )
    assert chain.finish() == {"rate_notice_too_short"}
    (finding,) = chain.findings
    assert finding.evidence["earliest_effective_at"] == T0 + NOTICE_S


def test_the_notice_period_follows_governance_changes(chain):
    chain.emit(EXCHANGE, "NoticePeriodChanged", T0, previousPeriod=NOTICE_S, newPeriod=DAY_S)
    chain.emit(
        EXCHANGE,
        "RateScheduled",
        T0,
        token=BEAN,
        version=1,
        rateValueUnits=2 * BEAN_RATE,
        effectiveAt=T0 + DAY_S,
        scheduledBy=ADMIN,
    )
    assert chain.finish() == set()
    chain.emit(EXCHANGE, "NoticePeriodChanged", T0, previousPeriod=NOTICE_S, newPeriod=DAY_S)
    assert chain.finish() == {"notice_period_mismatch"}


@pytest.mark.parametrize(
    ("reason", "source", "kind"),
    [
        (1, 0, "invalid_reason"),  # a deposit must say why
        (3, 0, "invalid_reason"),  # conversion mints come from the exchange, not the issuer
        (1, 4, "unapproved_mint_or_burn"),  # compensation needs two approvers
        (5, 0, "unapproved_mint_or_burn"),  # so does a correction
    ],
)
def test_mints_with_a_reason_their_entry_point_refuses_are_caught(chain, reason, source, kind):
    chain.mint(10, request_id=2, reason=reason, source=source)
    assert chain.finish() == {kind}


def test_an_approved_correction_is_accepted_and_a_changed_one_is_not(chain):
    request = {"account": MEMBER, "reason": 5, "source": 0, "brandRef": b"\x01" * 32}
    chain.emit(
        BEAN, "ApprovalRequested", T0, requestId=3, amountDelta=10, proposer=ADMIN, **request
    )
    chain.mint(10, request_id=3, reason=5, source=0)
    assert chain.finish() == set()
    chain.emit(
        BEAN, "ApprovalRequested", T0, requestId=4, amountDelta=10, proposer=ADMIN, **request
    )
    chain.mint(11, request_id=4, reason=5, source=0)
    assert chain.finish() == {"invalid_reason"}


def test_request_ids_are_unique_per_contract(chain):
    chain.mint(10, request_id=1)
    chain.convert(1_000, requestId=5)
    tx = f"0x{chain.block + 1:064x}"
    chain.emit(BEAN, "Transfer", T0, **{"from": MEMBER, "to": OTHER, "value": 1})
    chain.emit(
        EXCHANGE,
        "Gifted",
        T0,
        tx=tx,
        requestId=5,
        token=BEAN,
        **{"from": MEMBER, "to": OTHER, "amount": 1},
    )
    assert chain.finish() == {"duplicate_request_id"}
    assert len(chain.findings) == 2


def test_transfers_and_explanations_must_pair_up_within_a_transaction(chain):
    chain.emit(BEAN, "Transfer", T0, **{"from": ZERO_ADDRESS, "to": OTHER, "value": 5})
    assert chain.finish() == {"unexplained_transfer"}
    chain.findings.clear()
    chain.emit(
        BEAN,
        "PointsBurned",
        T0,
        requestId=6,
        account=MEMBER,
        amount=5,
        reason=2,
        brandRef=b"\x01" * 32,
    )
    assert chain.finish() == {"unbacked_event"}


def test_a_balance_driven_below_zero_is_caught(chain):
    chain.emit(SKY, "Transfer", T0, **{"from": OTHER, "to": ZERO_ADDRESS, "value": 1})
    chain.emit(
        SKY,
        "PointsBurned",
        T0,
        tx=f"0x{chain.block:064x}",
        requestId=6,
        account=OTHER,
        amount=1,
        reason=2,
        brandRef=b"\x01" * 32,
    )
    assert chain.finish() == {"negative_balance"}


@given(
    amount_in=st.integers(1, 10**12),
    rate_from=st.integers(1, 10**20),
    rate_to=st.integers(1, 10**20),
    fee_bps=st.integers(0, 10_000),
    nudge=st.sampled_from([-1, 1]),
)
def test_quoted_conversions_pass_and_any_other_amount_out_fails(
    amount_in, rate_from, rate_to, fee_bps, nudge
):
    from alliance.audit.checks import check_conversion
    from alliance.audit.rates import PairPolicy, RateVersion

    quote = quote_conversion(amount_in, rate_from, rate_to, fee_bps)
    args = {
        "requestId": 1,
        "member": MEMBER,
        "fromToken": BEAN,
        "toToken": SKY,
        "amountIn": amount_in,
        "amountOut": quote.amount_out_points,
        "feePoints": quote.fee_points,
        "valueIn": quote.value_in_units,
        "rateFrom": rate_from,
        "rateTo": rate_to,
        "feeBps": fee_bps,
    }
    versions = [RateVersion(t, 0, r, 0, 0, 1, "0x") for t, r in ((BEAN, rate_from), (SKY, rate_to))]
    policy = PairPolicy(BEAN, SKY, True, fee_bps, 0, 0, 0, ADMIN, 1, 0, "0x")

    def findings(amount_out: int) -> list[Finding]:
        event = ChainEvent("Converted", EXCHANGE, 2, 0, "0x", {**args, "amountOut": amount_out})
        return check_conversion(event, T0, *versions, policy, max(amount_out, 0))

    limit_kinds = {"conversion_limit"}  # an amount out of 0 is also below the minimum
    assert {f.kind for f in findings(quote.amount_out_points)} <= limit_kinds
    assert "conversion_arithmetic" in {f.kind for f in findings(quote.amount_out_points + nudge)}
