"""Compiled contract artifacts: one JSON file per contract under `<build_dir>/contracts/`.

The file format (camelCase keys, Hardhat-like) is written by `alliance.compiler` and read
back here as an immutable `Artifact`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alliance.errors import ArtifactNotFound

ARTIFACTS_SUBDIR = "contracts"
"""Folder under the build dir holding one `<ContractName>.json` per contract."""


@dataclass(frozen=True)
class Artifact:
    """One compiled contract, as read from its artifact file."""

    contract_name: str
    source_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    """Creation bytecode, 0x-prefixed hex; "0x" for interfaces and abstract contracts."""
    deployed_bytecode: str
    """Runtime bytecode, 0x-prefixed hex."""
    link_references: dict[str, Any]
    """Unlinked library placeholders in `bytecode` (empty when there are none)."""
    metadata: str
    """solc's metadata JSON string, exactly as emitted (its hash is `metadata_hash`)."""
    metadata_hash: str
    """keccak256 of `metadata`, 0x-prefixed hex."""
    abi_hash: str
    """keccak256 of the canonical JSON of `abi`, 0x-prefixed hex; changes iff the ABI does."""

    @property
    def is_deployable(self) -> bool:
        """Whether the contract has creation code (interfaces and abstract ones do not)."""
        return self.bytecode not in ("", "0x")

    def to_json(self) -> dict[str, Any]:
        """Return the artifact file's JSON object."""
        return {
            "contractName": self.contract_name,
            "sourceName": self.source_name,
            "abi": self.abi,
            "bytecode": self.bytecode,
            "deployedBytecode": self.deployed_bytecode,
            "linkReferences": self.link_references,
            "metadata": self.metadata,
            "metadataHash": self.metadata_hash,
            "abiHash": self.abi_hash,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        """Build an artifact from an artifact file's JSON object."""
        return cls(
            contract_name=data["contractName"],
            source_name=data["sourceName"],
            abi=data["abi"],
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
            link_references=data["linkReferences"],
            metadata=data["metadata"],
            metadata_hash=data["metadataHash"],
            abi_hash=data["abiHash"],
        )


def artifact_path(build_dir: Path, contract_name: str) -> Path:
    """Return where the artifact of `contract_name` lives under `build_dir`."""
    return build_dir / ARTIFACTS_SUBDIR / f"{contract_name}.json"


def load_artifact(build_dir: Path, contract_name: str) -> Artifact:
    """Read the artifact of `contract_name` from `build_dir`."""
    path = artifact_path(build_dir, contract_name)
    if not path.is_file():
        raise ArtifactNotFound(contract_name=contract_name, build_dir=build_dir)
    return Artifact.from_json(json.loads(path.read_text(encoding="utf-8")))


def artifact_names(build_dir: Path) -> tuple[str, ...]:
    """Return the names of all contracts with an artifact under `build_dir`, sorted."""
    folder = build_dir / ARTIFACTS_SUBDIR
    return tuple(sorted(path.stem for path in folder.glob("*.json")))
