"""The deploy configuration: brands, opening rates, pair policies and governance members."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from alliance.errors import DeployConfigInvalid
from alliance.money import RATE_SCALE

UINT40_MAX = 2**40 - 1
UINT48_MAX = 2**48 - 1


class GovernanceConfig(BaseModel):
    """M-of-N governance parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: int = Field(default=2, ge=2)
    """Approvals a proposal needs."""
    notice_period_days: int = Field(default=30, ge=1, le=365)
    """Days between scheduling a rate and its taking effect."""


class ExpiryConfig(BaseModel):
    """A brand's expiry policy: `fixed` expires each lot of points `months` after it was
    earned; `rolling` expires all of a member's points `months` after their last movement
    at the brand. Brands without one never expire points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["fixed", "rolling"]
    months: int = Field(ge=1, le=120)


class BrandConfig(BaseModel):
    """One brand and its point token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")
    """Short stable identifier used in keys, manifests and the API."""
    name: str = Field(min_length=1, max_length=64)
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,11}$")
    points_per_unit: int = Field(gt=0)
    """How many of the brand's points equal one alliance value unit."""
    gifting: bool = False
    governor: bool = True
    """Whether the brand holds a governance seat."""
    expiry: ExpiryConfig | None = None
    """When the brand's points expire (None: never)."""

    @property
    def rate_value_units(self) -> int:
        """The brand's rate: value units per point, scaled by 1e18."""
        return RATE_SCALE // self.points_per_unit

    @model_validator(mode="after")
    def _rate_is_exact(self) -> BrandConfig:
        if RATE_SCALE % self.points_per_unit:
            raise PydanticCustomError(
                "rate_inexact",
                "points_per_unit {value} must divide 10**18 exactly",
                {"value": self.points_per_unit},
            )
        return self


class PairPolicyConfig(BaseModel):
    """The receiving brand's policy for conversions from one sending brand."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    fee_bps: int = Field(default=0, ge=0, le=10_000)
    min_amount_out: int = Field(default=1, ge=0, le=UINT40_MAX)
    max_amount_out: int = Field(default=0, ge=0, le=UINT40_MAX)
    """0 means no per-conversion maximum."""
    daily_cap: int = Field(default=0, ge=0, le=UINT48_MAX)
    """0 means no daily inflow cap."""


class PairPolicyEntry(PairPolicyConfig):
    """A policy for one named ordered pair."""

    from_brand: str = Field(alias="from")
    to_brand: str = Field(alias="to")


class AllianceConfig(BaseModel):
    """A whole alliance to deploy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    governance: GovernanceConfig = GovernanceConfig()
    brands: tuple[BrandConfig, ...] = Field(min_length=2, max_length=64)
    default_pair_policy: PairPolicyConfig | None = None
    pair_policies: tuple[PairPolicyEntry, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> AllianceConfig:
        codes = [brand.code for brand in self.brands]
        if len(set(codes)) != len(codes):
            raise PydanticCustomError("duplicate_brand", "brand codes must be unique")
        governors = sum(brand.governor for brand in self.brands)
        if self.governance.threshold > governors:
            raise PydanticCustomError(
                "threshold_too_high",
                "threshold {threshold} exceeds {governors} governors",
                {"threshold": self.governance.threshold, "governors": governors},
            )
        for entry in self.pair_policies:
            unknown = {entry.from_brand, entry.to_brand} - set(codes)
            if unknown or entry.from_brand == entry.to_brand:
                raise PydanticCustomError(
                    "unknown_pair",
                    "pair {pair} is not two known brands",
                    {"pair": f"{entry.from_brand}->{entry.to_brand}"},
                )
        return self

    def policy_for(self, from_code: str, to_code: str) -> PairPolicyConfig | None:
        """The configured policy for an ordered pair, falling back to the default."""
        for entry in self.pair_policies:
            if (entry.from_brand, entry.to_brand) == (from_code, to_code):
                return entry
        return self.default_pair_policy


def load_alliance_config(path: Path) -> AllianceConfig:
    """Read and validate a YAML deploy configuration."""
    try:
        raw = yaml.safe_load(path.read_text())
        return AllianceConfig.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise DeployConfigInvalid(path, str(error)) from None
