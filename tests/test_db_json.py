"""JSON columns read back exactly as `json` would read them, however they were written.

`alliance.db.session.json_loads` reads with orjson for speed; these cases are the ones
where orjson alone would differ (an integer beyond 64 bits becomes a float) or refuse
(NaN, infinities), and ordinary documents of every shape.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alliance.db.session import json_loads

DOCUMENTS = [
    '{"amount": 123456789012345678901234567890}',
    '{"a": [1.5, {"b": 18446744073709551616}]}',
    "[-9223372036854775809]",
    "[NaN, Infinity, -Infinity]",
    "[[[1e400]]]",
    '{"requestId": "30122078015374161", "member": "0x5256", "amountIn": "500"}',
    '{"nested": {"list": [1, 2, {"x": null, "y": true}]}}',
    "7",
    "1.25",
    '"text"',
    "null",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_json_column_reads_as_json_does(text: str) -> None:
    expected, got = json.loads(text), json_loads(text)
    assert repr(got) == repr(expected)


def test_json_column_keeps_a_uint256_integer_exact() -> None:
    value = 2**256 - 1
    assert json_loads(json.dumps({"value": value}))["value"] == value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_any_document_reads_back_as_json_reads_it(value: object) -> None:
    text = json.dumps(value)
    assert json_loads(text) == json.loads(text)
    assert json_loads(text.encode()) == json.loads(text)
