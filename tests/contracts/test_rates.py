"""A brand's rate changes only by announcement: scheduled by its admin, no sooner than the
notice period, cancellable until it takes effect, and kept forever in the rate history.

Proves, against the real exchange on Anvil: scheduling emits `RateScheduled` and is refused
when too soon, when one is already pending, for a zero rate or by anyone but the brand's
admin; conversions use the old rate up to the second before `effectiveAt` and the new one
from that second on (block times are set exactly with `evm_setNextBlockTimestamp`);
cancelling removes the version; a later schedule folds the earlier one in; `rateAt` answers
the rate at any past time; and governance's notice period moves the earliest allowed time.
"""

from __future__ import annotations

from typing import Any

from alliance.governance import GovernedCall
from tests.support.alliance import DeployedAlliance, new_member
from tests.support.exchange import (
    DAY_S,
    block_timestamp,
    reverts_with,
    set_next_block_timestamp,
)

NOTICE_S = 30 * DAY_S
"""The test alliance's notice period (TEST_CONFIG governance.notice_period_days)."""
BEAN_RATE = 10**16
SKY_RATE = 2 * 10**16
NEW_BEAN_RATE = 2 * 10**16
"""BEAN doubles in value: 50 points per unit instead of 100."""
UINT48_MAX = 2**48 - 1


def bean(alliance: DeployedAlliance) -> str:
    return str(alliance.tokens["bean"].address)


def schedule(alliance: DeployedAlliance, rate: int, effective_at: int, sender: Any = None) -> Any:
    """Schedule BEAN's next rate as its admin (or as `sender`)."""
    sender = sender or alliance.brand_party("bean", "admin")
    return alliance.transact(
        sender, alliance.exchange.functions.scheduleRate(bean(alliance), rate, effective_at)
    )


def cancel(alliance: DeployedAlliance, sender: Any = None) -> Any:
    sender = sender or alliance.brand_party("bean", "admin")
    return alliance.transact(
        sender, alliance.exchange.functions.cancelScheduledRate(bean(alliance))
    )


def history(alliance: DeployedAlliance) -> list[tuple[int, int, int]]:
    """BEAN's rate history as (rate, effectiveAt, scheduledAt) tuples."""
    return [
        tuple(version)
        for version in alliance.call(alliance.exchange.functions.rateHistory(bean(alliance)))
    ]


def rate_at(alliance: DeployedAlliance, timestamp: int) -> tuple[int, int]:
    return tuple(alliance.call(alliance.exchange.functions.rateAt(bean(alliance), timestamp)))


def listed_at(alliance: DeployedAlliance) -> int:
    return history(alliance)[0][1]


def convert_bean_to_sky_at(alliance: DeployedAlliance, timestamp: int) -> dict[str, Any]:
    """Convert 1,000 BEAN to SKY in a block at exactly `timestamp`; the Converted event."""
    member = new_member().address
    alliance.deposit("bean", member, 1_000)
    set_next_block_timestamp(alliance, timestamp)
    receipt = alliance.convert(member, "bean", "sky", 1_000)
    assert block_timestamp(alliance, receipt) == timestamp
    [converted] = alliance.events(receipt, alliance.exchange, "Converted")
    return converted


def test_brand_admin_schedules_a_rate_and_rate_scheduled_is_emitted(alliance):
    admin = alliance.brand_party("bean", "admin")
    effective_at = alliance.timestamp() + NOTICE_S + 3_600

    receipt = schedule(alliance, NEW_BEAN_RATE, effective_at)

    assert alliance.events(receipt, alliance.exchange, "RateScheduled") == [
        {
            "token": bean(alliance),
            "version": 1,
            "rateValueUnits": NEW_BEAN_RATE,
            "effectiveAt": effective_at,
            "scheduledBy": admin.address,
        }
    ]
    assert tuple(alliance.call(alliance.exchange.functions.scheduledRate(bean(alliance)))) == (
        NEW_BEAN_RATE,
        effective_at,
    )
    assert alliance.call(alliance.exchange.functions.currentRate(bean(alliance))) == BEAN_RATE
    assert history(alliance)[1] == (NEW_BEAN_RATE, effective_at, block_timestamp(alliance, receipt))


def test_schedule_rejects_an_effective_time_inside_the_notice_period(alliance):
    earliest = alliance.timestamp() + NOTICE_S

    with reverts_with("RateBookEffectiveTooSoon", earliest - 1, earliest):
        schedule(alliance, NEW_BEAN_RATE, earliest - 1)


def test_schedule_rejects_a_second_rate_while_one_is_pending(alliance):
    effective_at = alliance.timestamp() + NOTICE_S + 3_600
    schedule(alliance, NEW_BEAN_RATE, effective_at)

    with reverts_with("RateBookAlreadyScheduled", bean(alliance), NEW_BEAN_RATE, effective_at):
        schedule(alliance, 3 * 10**16, effective_at + DAY_S)


def test_schedule_rejects_a_zero_rate(alliance):
    with reverts_with("RateBookInvalidRate", 0):
        schedule(alliance, 0, alliance.timestamp() + NOTICE_S + 3_600)


def test_schedule_and_cancel_reject_anyone_but_the_brand_admin(alliance):
    effective_at = alliance.timestamp() + NOTICE_S + 3_600
    for outsider in (
        alliance.brand_party("sky", "admin"),
        alliance.brand_party("bean", "issuer"),
        alliance.operator,
    ):
        with reverts_with("ExchangeNotBrandAdmin", bean(alliance), outsider.address):
            schedule(alliance, NEW_BEAN_RATE, effective_at, sender=outsider)
    schedule(alliance, NEW_BEAN_RATE, effective_at)
    sky_admin = alliance.brand_party("sky", "admin")

    with reverts_with("ExchangeNotBrandAdmin", bean(alliance), sky_admin.address):
        cancel(alliance, sender=sky_admin)


def test_schedule_rejects_a_token_that_is_not_a_listed_brand(alliance):
    stranger = new_member().address
    scheduling = alliance.exchange.functions.scheduleRate(stranger, NEW_BEAN_RATE, UINT48_MAX)

    with reverts_with("ExchangeUnknownBrand", stranger):
        alliance.transact(alliance.brand_party("bean", "admin"), scheduling)


def test_a_scheduled_rate_applies_only_after_notice(alliance):
    effective_at = alliance.timestamp() + NOTICE_S + 3_600
    schedule(alliance, NEW_BEAN_RATE, effective_at)

    before = convert_bean_to_sky_at(alliance, effective_at - 1)
    after = convert_bean_to_sky_at(alliance, effective_at)

    # Old: 1,000 BEAN = 10 units = 500 SKY gross, fee 5. New: 20 units = 1,000 gross, fee 10.
    assert (before["rateFrom"], before["valueIn"], before["amountOut"]) == (BEAN_RATE, 10**19, 495)
    assert (after["rateFrom"], after["valueIn"], after["amountOut"]) == (
        NEW_BEAN_RATE,
        2 * 10**19,
        990,
    )
    assert before["rateTo"] == after["rateTo"] == SKY_RATE
    assert alliance.call(alliance.exchange.functions.currentRate(bean(alliance))) == NEW_BEAN_RATE
    assert tuple(alliance.call(alliance.exchange.functions.scheduledRate(bean(alliance)))) == (0, 0)


def test_cancel_before_effect_emits_rate_cancelled_and_removes_the_version(alliance):
    effective_at = alliance.timestamp() + NOTICE_S + 3_600
    schedule(alliance, NEW_BEAN_RATE, effective_at)

    receipt = cancel(alliance)

    assert alliance.events(receipt, alliance.exchange, "RateCancelled") == [
        {
            "token": bean(alliance),
            "version": 1,
            "rateValueUnits": NEW_BEAN_RATE,
            "effectiveAt": effective_at,
        }
    ]
    assert len(history(alliance)) == 1
    assert tuple(alliance.call(alliance.exchange.functions.scheduledRate(bean(alliance)))) == (0, 0)
    assert convert_bean_to_sky_at(alliance, effective_at + DAY_S)["rateFrom"] == BEAN_RATE
    assert rate_at(alliance, effective_at + DAY_S) == (BEAN_RATE, 0)


def test_cancel_rejects_a_rate_that_already_took_effect(alliance):
    effective_at = alliance.timestamp() + NOTICE_S + 3_600
    schedule(alliance, NEW_BEAN_RATE, effective_at)
    alliance.advance_time(effective_at - alliance.timestamp())

    with reverts_with("RateBookNothingScheduled", bean(alliance)):
        cancel(alliance)
    assert len(history(alliance)) == 2


def test_cancel_rejects_a_brand_with_nothing_scheduled(alliance):
    with reverts_with("RateBookNothingScheduled", bean(alliance)):
        cancel(alliance)


def test_scheduling_after_an_earlier_rate_took_effect_folds_it_in(alliance):
    first_at = alliance.timestamp() + NOTICE_S + 3_600
    schedule(alliance, NEW_BEAN_RATE, first_at)
    alliance.advance_time(first_at + DAY_S - alliance.timestamp())
    second_at = alliance.timestamp() + NOTICE_S + 3_600
    third_rate = 4 * 10**16

    receipt = schedule(alliance, third_rate, second_at)

    assert alliance.events(receipt, alliance.exchange, "RateScheduled")[0]["version"] == 2
    assert alliance.call(alliance.exchange.functions.currentRate(bean(alliance))) == NEW_BEAN_RATE
    assert convert_bean_to_sky_at(alliance, second_at - 1)["rateFrom"] == NEW_BEAN_RATE
    assert convert_bean_to_sky_at(alliance, second_at)["rateFrom"] == third_rate
    assert [(rate, effective_at) for rate, effective_at, _ in history(alliance)] == [
        (BEAN_RATE, listed_at(alliance)),
        (NEW_BEAN_RATE, first_at),
        (third_rate, second_at),
    ]


def test_rate_at_answers_the_rate_in_force_at_any_time_since_listing(alliance):
    listed = listed_at(alliance)
    first_at = alliance.timestamp() + NOTICE_S + 3_600
    schedule(alliance, NEW_BEAN_RATE, first_at)
    alliance.advance_time(first_at + DAY_S - alliance.timestamp())
    second_at = alliance.timestamp() + NOTICE_S + 3_600
    schedule(alliance, 4 * 10**16, second_at)

    expected = {
        listed: (BEAN_RATE, 0),
        first_at - 1: (BEAN_RATE, 0),
        first_at: (NEW_BEAN_RATE, 1),
        first_at + 1: (NEW_BEAN_RATE, 1),
        second_at - 1: (NEW_BEAN_RATE, 1),
        second_at: (4 * 10**16, 2),
        UINT48_MAX: (4 * 10**16, 2),
    }
    assert {timestamp: rate_at(alliance, timestamp) for timestamp in expected} == expected


def test_rate_at_rejects_a_time_before_the_brand_was_listed(alliance):
    listed = listed_at(alliance)

    for timestamp in (0, listed - 1):
        with reverts_with("RateBookNoRateAt", bean(alliance), timestamp):
            rate_at(alliance, timestamp)


def test_governance_notice_period_moves_the_earliest_effective_time(alliance):
    one_day_later = alliance.timestamp() + DAY_S + 3_600
    with reverts_with("RateBookEffectiveTooSoon", one_day_later, alliance.timestamp() + NOTICE_S):
        schedule(alliance, NEW_BEAN_RATE, one_day_later)

    alliance.govern([GovernedCall(alliance.exchange, "setNoticePeriod", (DAY_S,))])

    [changed] = alliance.exchange.events.NoticePeriodChanged().get_logs(from_block="latest")
    assert dict(changed["args"]) == {"previousPeriod": NOTICE_S, "newPeriod": DAY_S}
    assert alliance.call(alliance.exchange.functions.noticePeriod()) == DAY_S
    earliest = alliance.timestamp() + DAY_S
    with reverts_with("RateBookEffectiveTooSoon", earliest - 1, earliest):
        schedule(alliance, NEW_BEAN_RATE, earliest - 1)
    receipt = schedule(alliance, NEW_BEAN_RATE, one_day_later)
    assert (
        alliance.events(receipt, alliance.exchange, "RateScheduled")[0]["effectiveAt"]
        == one_day_later
    )
