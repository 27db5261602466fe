"""The fraud rules' thresholds: one settings class, env prefix `ALLIANCE_FRAUD_`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FraudSettings(BaseSettings):
    """Thresholds of every fraud rule. Values are whole alliance value units (1 unit is
    1 USD at the reference peg); points are the receiving brand's points."""

    model_config = SettingsConfigDict(
        env_prefix="ALLIANCE_FRAUD_", frozen=True, use_attribute_docstrings=True
    )

    velocity_conversions_max: int = Field(default=20, ge=1)
    """Conversions one member may make in a period before `velocity_count` fires (a member
    converting by hand rarely makes more than a handful a day)."""

    velocity_value_max_units: int = Field(default=1_000, ge=1)
    """Value one member may convert in a period before `velocity_value` fires."""

    spike_increase_pct: int = Field(default=200, ge=1)
    """A closing balance this many percent above its trailing average fires `spike`
    (200: the balance is at least three times its average)."""

    spike_window_days: int = Field(default=30, ge=1, le=366)
    """Days of the trailing average (the days before the period's day)."""

    spike_average_min_points: int = Field(default=100, ge=1)
    """Trailing averages below this are ignored: a new or near-empty balance growing is
    normal (the `new_account` rule covers fresh accounts)."""

    round_trip_window_s: int = Field(default=86_400, ge=1)
    """A conversion A→B followed by B→A within this many seconds is a round trip."""

    rate_change_window_s: int = Field(default=172_800, ge=1)
    """Conversions this close before a scheduled rate change, in the direction that profits
    from it, count towards `rate_change_bunching`."""

    rate_change_value_min_units: int = Field(default=200, ge=1)
    """Value one member must move ahead of a rate change for `rate_change_bunching` to fire."""

    fan_in_senders_min: int = Field(default=5, ge=2)
    """Distinct members gifting into one member at one brand in a period for `fan_in`."""

    new_account_age_max_s: int = Field(default=7 * 86_400, ge=1)
    """An account first seen on chain less than this long before it converts is new."""

    new_account_value_min_units: int = Field(default=100, ge=1)
    """Value a new account must convert in a period for `new_account` to fire."""

    structuring_ratio_pct: int = Field(default=90, ge=1, le=100)
    """A conversion whose amount out is at least this percentage of the pair's maximum is
    'just under the limit'."""

    structuring_count_min: int = Field(default=3, ge=2)
    """Conversions just under a pair's maximum by one member in a period for `structuring`."""
