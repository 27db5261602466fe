"""Development signing keys, generated on first use and kept outside git.

The embedded default runs every party (governors, brand issuers, the operator, the
settlement service) on one machine, so their keys live in one JSON file under the data
directory with owner-only permissions. A production deployment keeps each party's key with
that party; nothing in the code depends on the keys sharing a file.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

KEYS_FILE_NAME = "dev-keys.json"


class DevKeyStore:
    """Named private keys in `<data_dir>/dev-keys.json`, created on first request."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / KEYS_FILE_NAME
        self._keys: dict[str, str] = self._load()

    @property
    def path(self) -> Path:
        """The key file."""
        return self._path

    def account(self, name: str) -> LocalAccount:
        """The account called `name`, generating and saving a key if it is new."""
        if name not in self._keys:
            self._keys[name] = "0x" + secrets.token_bytes(32).hex()
            self._save()
        account: LocalAccount = Account.from_key(self._keys[name])
        return account

    def names(self) -> list[str]:
        """Every key name in the store."""
        return sorted(self._keys)

    def _load(self) -> dict[str, str]:
        if not self._path.exists():
            return {}
        loaded: dict[str, str] = json.loads(self._path.read_text())
        return loaded

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_suffix(".tmp")
        # Create with 0600 from the start so the keys are never world-readable, then swap
        # in atomically so a crash never leaves a half-written key file.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(self._keys, handle, indent=2, sort_keys=True)
        os.replace(temporary, self._path)
