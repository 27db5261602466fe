"""The balances Merkle tree: every leaf proves against the root, nothing else does.

Pure tests of alliance/merkle.py (hypothesis over random holdings), plus fixed vectors that
pin the leaf encoding to OpenZeppelin's StandardMerkleTree convention (double keccak of
abi.encode(address, address, uint256)).
"""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from alliance.errors import NotALeaf
from alliance.merkle import (
    EMPTY_ROOT,
    BalancesTree,
    balances_root,
    hash_pair,
    leaf_hash,
    verify_proof,
)

addresses = st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex())
holdings = st.lists(
    st.tuples(addresses, addresses, st.integers(min_value=1, max_value=2**96)),
    min_size=1,
    max_size=40,
    unique_by=lambda holding: (holding[0], holding[1]),
)


def test_leaf_is_double_keccak_of_abi_encoding() -> None:
    account, token = "0x" + "11" * 20, "0x" + "AB" * 20
    encoded = encode(["address", "address", "uint256"], [account, token.lower(), 5])
    assert leaf_hash(account, token, 5) == keccak(keccak(encoded))


def test_pair_hash_is_commutative_and_sorted() -> None:
    low, high = b"\x01" * 32, b"\x02" * 32
    assert hash_pair(low, high) == hash_pair(high, low) == keccak(low + high)


def test_empty_tree_has_the_empty_root() -> None:
    assert BalancesTree.from_balances([]).root == EMPTY_ROOT
    assert BalancesTree.from_balances([("0x" + "11" * 20, "0x" + "22" * 20, 0)]).root == EMPTY_ROOT


@given(holdings)
def test_every_holding_proves_against_the_root(balances: list[tuple[str, str, int]]) -> None:
    tree = BalancesTree.from_balances(balances)
    assert tree.leaf_count == len(balances)
    for account, token, balance in balances:
        proof = tree.proof(account, token, balance)
        assert verify_proof(tree.root, account, token, balance, proof)
        assert not verify_proof(tree.root, account, token, balance + 1, proof)


@given(holdings)
def test_root_does_not_depend_on_input_order(balances: list[tuple[str, str, int]]) -> None:
    assert BalancesTree.from_balances(balances).root == (
        BalancesTree.from_balances(list(reversed(balances))).root
    )


def test_proof_of_a_holding_not_in_the_tree_is_refused() -> None:
    tree = BalancesTree.from_balances([("0x" + "11" * 20, "0x" + "22" * 20, 7)])
    with pytest.raises(NotALeaf):
        tree.proof("0x" + "11" * 20, "0x" + "22" * 20, 8)


@given(
    st.lists(
        st.tuples(addresses, addresses, st.integers(0, 2**96)),
        max_size=40,
        unique_by=lambda h: (h[0], h[1]),
    )
)
def test_the_streamed_root_is_the_built_tree_root(balances: list[tuple[str, str, int]]) -> None:
    assert balances_root(balances) == BalancesTree.from_balances(balances).root
