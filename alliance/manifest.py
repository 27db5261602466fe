"""The deployment manifest: what was deployed where, read by the gateway, settlement and audit.

It carries only public facts (chain id, addresses, deploy block, ABI and metadata hashes,
public addresses of the parties), so it can be handed to auditors as it is.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alliance.errors import ManifestMissing

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ContractRecord:
    """One deployed contract."""

    name: str
    address: str
    abi_hash: str
    metadata_hash: str


@dataclass(frozen=True)
class BrandRecord:
    """One brand and its point token."""

    code: str
    name: str
    symbol: str
    token: ContractRecord
    rate_value_units: int
    """Opening rate, value units per point scaled by 1e18."""
    gifting: bool
    parties: dict[str, str] = field(default_factory=dict)
    """Public addresses of the brand's role holders (admin, issuer, approver, freezers,
    governor)."""


@dataclass(frozen=True)
class DeploymentManifest:
    """Everything another component needs to find and trust the deployed alliance."""

    chain_id: int
    deploy_block: int
    governance: ContractRecord
    exchange: ContractRecord
    settlement_anchor: ContractRecord
    brands: tuple[BrandRecord, ...]
    parties: dict[str, str]
    """Public addresses of alliance-wide role holders (deployer, guardian, operator, settler)."""
    compiler: dict[str, Any]
    version: int = MANIFEST_VERSION

    def brand(self, code: str) -> BrandRecord:
        """The brand with `code`."""
        for brand in self.brands:
            if brand.code == code:
                return brand
        raise KeyError(code)

    def to_json(self) -> dict[str, Any]:
        """The manifest as a JSON object."""
        data = asdict(self)
        data["brands"] = [asdict(brand) for brand in self.brands]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeploymentManifest:
        """Rebuild a manifest from `to_json` output."""
        brands = tuple(
            BrandRecord(**{**brand, "token": ContractRecord(**brand["token"])})
            for brand in data["brands"]
        )
        return cls(
            chain_id=data["chain_id"],
            deploy_block=data["deploy_block"],
            governance=ContractRecord(**data["governance"]),
            exchange=ContractRecord(**data["exchange"]),
            settlement_anchor=ContractRecord(**data["settlement_anchor"]),
            brands=brands,
            parties=data["parties"],
            compiler=data["compiler"],
            version=data["version"],
        )

    def save(self, path: Path) -> None:
        """Write atomically, so readers never see a half-written manifest."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        os.replace(temporary, path)


def load_manifest(path: Path) -> DeploymentManifest:
    """Read the manifest at `path`."""
    if not path.exists():
        raise ManifestMissing(path, "no such file")
    try:
        return DeploymentManifest.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as error:
        raise ManifestMissing(path, f"unreadable ({error})") from None
