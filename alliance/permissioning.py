"""Export the on-chain alliance allow-list as Hyperledger Besu local permissioning files.

Besu 25.6 removed on-chain permissioning, so each node operator keeps a local
`permissions_config.toml`. Governance decides the allow-list on chain (M-of-N); this
module turns the chain's answer into the file, so operators apply decisions without
retyping addresses. Only externally owned accounts are exported: alliance contracts are on
the on-chain list so they can hold roles, but they never sign transactions.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from web3 import Web3
from web3.contract import Contract
from web3.types import BlockIdentifier

from alliance.chain import ChainClient

ACCOUNTS_ALLOWLIST_KEY = "accounts-allowlist"


def allowlisted_accounts(
    client: ChainClient, governance: Contract, block: BlockIdentifier = "latest"
) -> list[str]:
    """Allow-listed externally owned accounts at `block`, lowercase hex, sorted."""
    accounts = client.call(governance.functions.allowedAccounts(), block=block)
    return sorted(
        account.lower()
        for account in accounts
        if len(client.w3.eth.get_code(Web3.to_checksum_address(account), block_identifier=block))
        == 0
    )


def render_permissions_config(accounts: list[str], existing: dict[str, Any] | None = None) -> str:
    """The TOML text of a permissions file allowing `accounts`.

    Other keys of an existing file (a node operator's `nodes-allowlist`) are kept as they are.
    """
    document = dict(existing or {})
    document[ACCOUNTS_ALLOWLIST_KEY] = accounts
    return tomli_w.dumps(document)


def export_permissions_config(client: ChainClient, governance: Contract, path: Path) -> list[str]:
    """Write (or update) `path` with the chain's allow-list; return the exported accounts."""
    existing = tomllib.loads(path.read_text()) if path.exists() else None
    accounts = allowlisted_accounts(client, governance)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(render_permissions_config(accounts, existing))
    os.replace(temporary, path)
    return accounts
