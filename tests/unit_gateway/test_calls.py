"""The gateway's hand-built chain calls are byte for byte what web3.py would build.

The submitter encodes `convertBatch` by hand and the request path encodes the conversion
simulation the same way (web3's contract-function path was most of their CPU, then
eth_abi's encoder); receipts are read raw and `Converted` logs decoded by hand. These tests
compare each against web3's own encoding of the same call (using the compiled exchange ABI,
so a changed ABI or a wrong type string fails here rather than on chain) or eth_abi's
decoding of the same log.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from web3 import Web3

from alliance.compiler import CompileResult
from alliance.db.models import Operation, OperationKind
from gateway.pipeline.calls import (
    CONVERTED_DATA,
    conversion_batch_calldata,
    conversion_result,
    converted_result,
    log_bytes,
    receipt_from_rpc,
)
from gateway.simulation import convert_calldata

EXCHANGE = "0x" + "11" * 20
MEMBER = Web3.to_checksum_address("0x" + "22" * 20)
FROM_TOKEN = Web3.to_checksum_address("0x" + "33" * 20)
TO_TOKEN = Web3.to_checksum_address("0x" + "44" * 20)


@pytest.fixture(scope="module")
def exchange(compiled: CompileResult) -> Any:
    abi = compiled.load_artifact("AllianceExchange").abi
    return Web3().eth.contract(address=Web3.to_checksum_address(EXCHANGE), abi=abi)


def _conversion(request_id: int, amount_in: int, signature: str = "0x") -> Operation:
    return Operation(
        id=request_id,
        request_id=request_id,
        kind=OperationKind.CONVERSION,
        params={
            "member_address": MEMBER,
            "from_token": FROM_TOKEN,
            "to_token": TO_TOKEN,
            "amount_in": amount_in,
            "min_amount_out": amount_in // 2,
            "deadline": 2_000_000_000,
            "signature": signature,
        },
    )


def _request(operation: Operation) -> tuple[Any, ...]:
    p = operation.params
    return (
        operation.request_id,
        p["member_address"],
        p["from_token"],
        p["to_token"],
        p["amount_in"],
        p["min_amount_out"],
        p["deadline"],
    )


@pytest.mark.parametrize("count", [1, 3, 100])
def test_batch_calldata_matches_web3_for_custodial_batches(exchange: Any, count: int) -> None:
    operations = [_conversion((7 << 24) + i, 100 + i) for i in range(count)]

    expected = exchange.functions.convertBatch([_request(o) for o in operations], [])

    assert "0x" + conversion_batch_calldata(operations).hex() == expected._encode_transaction_data()


def test_batch_calldata_matches_web3_when_items_are_signed(exchange: Any) -> None:
    signature = "0x" + "ab" * 65
    operations = [_conversion(1, 100, signature), _conversion(2, 200)]

    expected = exchange.functions.convertBatch(
        [_request(o) for o in operations], [bytes.fromhex("ab" * 65), b""]
    )

    assert "0x" + conversion_batch_calldata(operations).hex() == expected._encode_transaction_data()


@pytest.mark.parametrize(
    "signature_sizes", [[65, 0, 64, 1, 33], [0, 0, 32], [96]], ids=["mixed", "word", "long"]
)
def test_batch_calldata_matches_web3_for_signatures_of_any_length(
    exchange: Any, signature_sizes: list[int]
) -> None:
    signatures = [bytes(range(1, size + 1)) for size in signature_sizes]
    operations = [
        _conversion(i + 1, 100 + i, "0x" + signature.hex())
        for i, signature in enumerate(signatures)
    ]

    expected = exchange.functions.convertBatch([_request(o) for o in operations], signatures)

    assert "0x" + conversion_batch_calldata(operations).hex() == expected._encode_transaction_data()


def test_batch_calldata_refuses_what_the_abi_cannot_hold() -> None:
    with pytest.raises(EncodingError):
        conversion_batch_calldata([_conversion(1, -1)])
    with pytest.raises(EncodingError):
        conversion_batch_calldata([_conversion(1 << 256, 1)])


def test_simulation_calldata_matches_web3(exchange: Any) -> None:
    request = (0, MEMBER, FROM_TOKEN, TO_TOKEN, 1_000, 900, 2_000_000_000)

    expected = exchange.functions.convert(request)._encode_transaction_data()

    assert "0x" + convert_calldata(request).hex() == expected


def test_raw_receipt_keeps_what_settling_reads() -> None:
    raw = {
        "status": "0x1",
        "blockNumber": "0x2a",
        "transactionHash": "0x" + "aa" * 32,
        "logs": [{"address": EXCHANGE, "topics": ["0x" + "bb" * 32], "data": "0x01"}],
        "gasUsed": "0x5208",
    }

    receipt = receipt_from_rpc(raw)

    assert receipt["status"] == 1
    assert receipt["blockNumber"] == 42
    assert receipt["transactionHash"].to_0x_hex() == "0x" + "aa" * 32
    assert log_bytes(receipt["logs"][0]["topics"][0]) == bytes.fromhex("bb" * 32)
    assert log_bytes(receipt["logs"][0]["data"]) == b"\x01"


def test_converted_figures_match_eth_abis_decoding() -> None:
    values = (TO_TOKEN, 1_000, 987, 10, 2**255, 2**96 - 1, 12_345, 65_535)
    names = ["toToken", "amountIn", "amountOut", "feePoints", "valueIn", "rateFrom", "rateTo"]

    figures = converted_result(abi_encode(CONVERTED_DATA, list(values)))

    assert figures == conversion_result(dict(zip([*names, "feeBps"], values, strict=True)))
    assert figures["value_in_units"] == str(2**255) and figures["fee_bps"] == 65_535
