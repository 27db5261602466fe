"""Secrets and the cryptography built on them.

One master secret (32 random bytes, generated on first run in development, kept outside
git with owner-only permissions) is stretched with HKDF into one key per purpose, so a
leak of one derived key exposes nothing else:

- `lookup`: HMAC-SHA256 keyed hashes of brand member ids (find a member without storing the id);
- `encryption`: AES-256-GCM for brand member ids and webhook secrets at rest;
- `tokens`: HS256 signatures of access tokens;
- `custody`: custodial member keys, derived per member and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gateway.errors import SecretsUnavailable

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
NONCE_BYTES = 12


def _derive(master: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        master
    )


@dataclass(frozen=True)
class GatewaySecrets:
    """Per-purpose keys derived from the master secret."""

    lookup_key: bytes
    encryption_key: bytes
    token_key: bytes
    custody_key: bytes

    @classmethod
    def from_master(cls, master: bytes) -> GatewaySecrets:
        assert len(master) == 32, "the master secret is 32 bytes"
        return cls(
            lookup_key=_derive(master, "alliance/lookup/v1"),
            encryption_key=_derive(master, "alliance/encryption/v1"),
            token_key=_derive(master, "alliance/tokens/v1"),
            custody_key=_derive(master, "alliance/custody/v1"),
        )

    def keyed_hash(self, *parts: str) -> bytes:
        """HMAC-SHA256 over the parts (NUL-separated): stable, unguessable lookup keys."""
        return hmac.new(self.lookup_key, "\x00".join(parts).encode(), hashlib.sha256).digest()

    def encrypt(self, plaintext: str, context: str) -> bytes:
        """AES-GCM with a random nonce; `context` is bound as associated data."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.encryption_key).encrypt(nonce, plaintext.encode(), context.encode())
        return nonce + sealed

    def decrypt(self, ciphertext: bytes, context: str) -> str:
        """Reverse of `encrypt`; fails loudly if the data or its context was tampered with."""
        nonce, sealed = ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:]
        return AESGCM(self.encryption_key).decrypt(nonce, sealed, context.encode()).decode()

    def member_account(self, member_public_id: str) -> LocalAccount:
        """The custodial key of a member, derived on demand (never stored)."""
        digest = hmac.new(self.custody_key, member_public_id.encode(), hashlib.sha256).digest()
        private_key = int.from_bytes(digest, "big") % (SECP256K1_ORDER - 1) + 1
        account: LocalAccount = Account.from_key(private_key.to_bytes(32, "big"))
        return account


def load_or_create_master_secret(path: Path, *, allow_create: bool) -> bytes:
    """Read the master secret; create it (mode 0600) only where development allows."""
    if path.exists():
        return bytes.fromhex(json.loads(path.read_text())["master_secret"])
    if not allow_create:
        raise SecretsUnavailable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    master = secrets.token_bytes(32)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"master_secret": master.hex()}, handle)
    os.replace(temporary, path)
    return master


def hash_client_secret(secret: str) -> str:
    """scrypt hash of a client secret, with its salt: `scrypt$<salt hex>$<hash hex>`."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_client_secret(secret: str, stored: str) -> bool:
    """Constant-time check of `secret` against `hash_client_secret` output."""
    scheme, salt_hex, digest_hex = stored.split("$")
    assert scheme == "scrypt", scheme
    digest = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), digest_hex)
