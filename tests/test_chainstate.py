"""Hand decoding in alliance/chainstate.py gives exactly what eth_abi gives. Pure."""

from __future__ import annotations

from eth_abi import encode
from hypothesis import given
from hypothesis import strategies as st

from alliance.chainstate import uint256_array


@given(st.lists(st.integers(min_value=0, max_value=2**256 - 1), max_size=50))
def test_a_uint256_array_decodes_as_eth_abi_encodes_it(values: list[int]) -> None:
    assert uint256_array("0x" + encode(["uint256[]"], [values]).hex()) == values
