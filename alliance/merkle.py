"""The balances Merkle tree anchored each period: leaves, root, inclusion proofs.

A leaf commits to one holding at the period's closing block:

    leaf = keccak256(keccak256(abi.encode(address account, address token, uint256 balance)))

(double hashing, as OpenZeppelin's StandardMerkleTree, so a leaf can never be mistaken for
an inner node). Only non-zero balances are leaves. Leaves are sorted by their hash; each
level pairs neighbours with a commutative hash (`keccak256(min(a, b) ‖ max(a, b))`) and
carries an odd last node up unchanged. A proof is the list of siblings from the leaf up,
so OpenZeppelin's `MerkleProof.verify(proof, root, leaf)` accepts it on chain as well.

The settlement service builds the root it anchors with this module and the audit tool
rebuilds it from the chain alone with the same code: one definition, two paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from sha3 import keccak_256

from alliance.errors import NotALeaf

EMPTY_ROOT = keccak_256(b"").digest()
"""The root of a tree without leaves (the anchor refuses an all-zero root)."""


def _address_word(address: str) -> bytes:
    return bytes.fromhex(address[2:].rjust(64, "0"))


def leaf_hash(account: str, token: str, balance: int) -> bytes:
    """The leaf of one holding (addresses as 0x-hex, any case; balance in points)."""
    encoded = _address_word(account) + _address_word(token) + balance.to_bytes(32, "big")
    return keccak_256(keccak_256(encoded).digest()).digest()


def hash_pair(left: bytes, right: bytes) -> bytes:
    """The commutative inner-node hash OpenZeppelin's MerkleProof uses."""
    return keccak_256(left + right if left < right else right + left).digest()


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    paired = [hash_pair(level[index], level[index + 1]) for index in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


def balances_root(balances: Iterable[tuple[str, str, int]]) -> bytes:
    """The root `BalancesTree.from_balances(balances).root` gives, keeping one level at a
    time: a settlement close needs the root of two million leaves, not every level."""
    level = sorted(leaf_hash(a, t, balance) for a, t, balance in balances if balance)
    assert all(a != b for a, b in pairwise(level)), "duplicate leaf"
    while len(level) > 1:
        level = _next_level(level)
    return level[0] if level else EMPTY_ROOT


@dataclass(frozen=True)
class BalancesTree:
    """A built tree: every level from the sorted leaves up to the root."""

    levels: tuple[tuple[bytes, ...], ...]

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> BalancesTree:
        """Build the tree over `leaves` (leaf hashes, any order; duplicates are a bug)."""
        level = sorted(leaves)
        assert all(a != b for a, b in pairwise(level)), "duplicate leaf"
        levels = [tuple(level)]
        while len(level) > 1:
            level = _next_level(level)
            levels.append(tuple(level))
        return cls(tuple(levels))

    @classmethod
    def from_balances(cls, balances: Iterable[tuple[str, str, int]]) -> BalancesTree:
        """Build the tree over (account, token, balance) holdings; zero balances are skipped."""
        return cls.from_leaves(
            leaf_hash(account, token, balance) for account, token, balance in balances if balance
        )

    @property
    def root(self) -> bytes:
        """The root (EMPTY_ROOT when there are no leaves)."""
        top = self.levels[-1]
        return top[0] if top else EMPTY_ROOT

    @property
    def leaf_count(self) -> int:
        return len(self.levels[0])

    def proof(self, account: str, token: str, balance: int) -> list[bytes]:
        """The sibling hashes from the holding's leaf up to the root."""
        leaf = leaf_hash(account, token, balance)
        index = _index_of(self.levels[0], leaf)
        if index is None:
            raise NotALeaf(account=account, token=token, balance=balance)
        siblings = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                siblings.append(level[sibling])
            index //= 2
        return siblings


def _index_of(sorted_leaves: Sequence[bytes], leaf: bytes) -> int | None:
    low, high = 0, len(sorted_leaves)
    while low < high:
        middle = (low + high) // 2
        if sorted_leaves[middle] < leaf:
            low = middle + 1
        else:
            high = middle
    return low if low < len(sorted_leaves) and sorted_leaves[low] == leaf else None


def verify_proof(
    root: bytes, account: str, token: str, balance: int, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the holding is a leaf of the tree with `root`."""
    node = leaf_hash(account, token, balance)
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root
