"""`convertBatch` applies each item in isolation: good items apply, failing ones are
rejected with their reason and stay retryable.

Proves, against the real contracts on Anvil: an all-good batch applies every item and
returns their count; in a mixed batch each failing item (replayed id, insufficient balance,
disabled pair, frozen member, forged signature) emits `ConversionRejected` whose `reason`
decodes to the specific custom error, the others apply, and the failed request ids stay
unused so a retry succeeds once the cause is cured; an id repeated inside one batch applies
once; a malformed batch and outside calls of the per-item entry point are refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.alliance import DeployedAlliance, new_member, next_request_id
from tests.support.exchange import (
    balances,
    decode_reason,
    decoded,
    funded_member,
    funded_self_custody_member,
    is_processed,
    reverts_with,
    set_frozen,
    sign_conversion,
)

BATCH_SIZE_MAX = 256
"""The exchange's `BATCH_SIZE_MAX`."""


def convert_batch(alliance: DeployedAlliance, requests: list[Any], signatures: list[bytes]) -> Any:
    """Submit a batch as the operator (`signatures` empty for an all-custodial batch)."""
    return alliance.transact(
        alliance.operator, alliance.exchange.functions.convertBatch(requests, signatures)
    )


def batch_applied_count(
    alliance: DeployedAlliance, requests: list[Any], signatures: list[bytes]
) -> int:
    """What `convertBatch` returns, by eth_call from the operator (nothing is applied)."""
    function = alliance.exchange.functions.convertBatch(requests, signatures)
    return int(function.call({"from": alliance.operator.address}))


def test_batch_applies_every_item_of_an_all_good_batch(alliance):
    members = [funded_member(alliance) for _ in range(3)]
    requests = [
        alliance.conversion(member, "bean", "sky", 1_000 * (i + 1))
        for i, member in enumerate(members)
    ]

    assert batch_applied_count(alliance, requests, []) == 3
    receipt = convert_batch(alliance, requests, [])

    converted = alliance.events(receipt, alliance.exchange, "Converted")
    assert [(c["requestId"], c["member"], c["amountIn"]) for c in converted] == [
        (request[0], request[1], request[4]) for request in requests
    ]
    assert [c["amountOut"] for c in converted] == [495, 990, 1_485]
    assert alliance.events(receipt, alliance.exchange, "ConversionRejected") == []
    assert [alliance.balance("sky", member) for member in members] == [495, 990, 1_485]


class MixedBatch:
    """A batch in which two items are good and five fail, each for its own reason."""

    def __init__(self, alliance: DeployedAlliance) -> None:
        self.good = funded_member(alliance)
        self.poor = funded_member(alliance, amount=50)
        self.frozen = funded_member(alliance)
        set_frozen(alliance, "bean", self.frozen)
        self.signer = funded_self_custody_member(alliance)
        self.impostor = new_member()
        self.replayed_id = next_request_id()
        alliance.convert(self.good, "bean", "sky", 100, request_id=self.replayed_id)
        self.items = {
            "good": alliance.conversion(self.good, "bean", "sky", 1_000),
            "replayed": alliance.conversion(
                self.good, "bean", "sky", 100, request_id=self.replayed_id
            ),
            "poor": alliance.conversion(self.poor, "bean", "sky", 1_000),
            "disabled": alliance.conversion(self.good, "cart", "sky", 1_000),
            "frozen": alliance.conversion(self.frozen, "bean", "sky", 1_000),
            "forged": alliance.conversion(self.signer.address, "bean", "sky", 1_000),
            "signed": alliance.conversion(self.signer.address, "bean", "cart", 500),
        }
        signatures = {
            "forged": sign_conversion(alliance, self.impostor, self.items["forged"]),
            "signed": sign_conversion(alliance, self.signer, self.items["signed"]),
        }
        self.requests = list(self.items.values())
        self.signatures = [signatures.get(name, b"") for name in self.items]

    def expected_reasons(
        self, alliance: DeployedAlliance
    ) -> list[tuple[int, str, tuple[Any, ...]]]:
        bean, sky, cart = (alliance.tokens[code].address for code in ("bean", "sky", "cart"))
        return [
            (self.replayed_id, "ExchangeRequestAlreadyProcessed", decoded(self.replayed_id)),
            (self.items["poor"][0], "ERC20InsufficientBalance", decoded(self.poor, 50, 1_000)),
            (self.items["disabled"][0], "ExchangePairDisabled", decoded(cart, sky)),
            (self.items["frozen"][0], "ExchangeAccountFrozen", decoded(bean, self.frozen)),
            (
                self.items["forged"][0],
                "ExchangeInvalidSignature",
                decoded(self.signer.address, self.impostor.address),
            ),
        ]


def test_batch_applies_the_good_items_and_rejects_each_failing_item_with_its_reason(alliance):
    batch = MixedBatch(alliance)

    assert batch_applied_count(alliance, batch.requests, batch.signatures) == 2
    receipt = convert_batch(alliance, batch.requests, batch.signatures)

    converted = alliance.events(receipt, alliance.exchange, "Converted")
    assert [(c["requestId"], c["member"], c["amountOut"]) for c in converted] == [
        (batch.items["good"][0], batch.good, 495),
        (batch.items["signed"][0], batch.signer.address, 1_000),  # bean -> cart: no fee
    ]
    rejected = alliance.events(receipt, alliance.exchange, "ConversionRejected")
    assert [
        (r["requestId"], *decode_reason(alliance, r["reason"])) for r in rejected
    ] == batch.expected_reasons(alliance)
    assert [r["member"] for r in rejected] == [
        batch.good,
        batch.poor,
        batch.good,
        batch.frozen,
        batch.signer.address,
    ]
    assert balances(alliance, batch.good) == {"bean": 8_900, "sky": 544, "cart": 0}
    assert balances(alliance, batch.poor) == {"bean": 50, "sky": 0, "cart": 0}
    assert balances(alliance, batch.frozen) == {"bean": 10_000, "sky": 0, "cart": 0}
    assert balances(alliance, batch.signer.address) == {"bean": 9_500, "sky": 0, "cart": 1_000}


def test_batch_leaves_rejected_request_ids_unused_so_they_can_be_retried(alliance):
    batch = MixedBatch(alliance)
    convert_batch(alliance, batch.requests, batch.signatures)
    retried = ["poor", "disabled", "frozen", "forged"]
    assert [is_processed(alliance, batch.items[name][0]) for name in retried] == [False] * 4
    # Cure each cause: top up, enable the pair, unfreeze, and have the member sign.
    bean, sky, cart = (alliance.tokens[code].address for code in ("bean", "sky", "cart"))
    alliance.deposit("bean", batch.poor, 950)
    alliance.deposit("cart", batch.good, 1_000)
    alliance.transact(
        alliance.brand_party("sky", "admin"),
        alliance.exchange.functions.setPairPolicy(cart, sky, True, 100, 1, 0, 0),
    )
    set_frozen(alliance, "bean", batch.frozen, frozen=False)
    signatures = [b"", b"", b"", sign_conversion(alliance, batch.signer, batch.items["forged"])]

    receipt = convert_batch(alliance, [batch.items[name] for name in retried], signatures)

    assert alliance.events(receipt, alliance.exchange, "ConversionRejected") == []
    converted = alliance.events(receipt, alliance.exchange, "Converted")
    assert [c["requestId"] for c in converted] == [batch.items[name][0] for name in retried]
    assert [c["fromToken"] for c in converted] == [bean, cart, bean, bean]
    assert [is_processed(alliance, batch.items[name][0]) for name in retried] == [True] * 4


def test_batch_applies_a_request_id_duplicated_within_it_once(alliance):
    member = funded_member(alliance)
    request = alliance.conversion(member, "bean", "sky", 1_000)

    assert batch_applied_count(alliance, [request, request], []) == 1
    receipt = convert_batch(alliance, [request, request], [])

    assert len(alliance.events(receipt, alliance.exchange, "Converted")) == 1
    [rejected] = alliance.events(receipt, alliance.exchange, "ConversionRejected")
    assert (rejected["requestId"], rejected["member"]) == (request[0], member)
    assert decode_reason(alliance, rejected["reason"]) == (
        "ExchangeRequestAlreadyProcessed",
        (request[0],),
    )
    assert balances(alliance, member) == {"bean": 9_000, "sky": 495, "cart": 0}


@pytest.mark.parametrize(
    ("requests_count", "signatures_count"),
    [(0, 0), (BATCH_SIZE_MAX + 1, 0), (2, 1), (2, 3)],
    ids=["empty", "too-long", "too-few-signatures", "too-many-signatures"],
)
def test_batch_rejects_an_invalid_shape(alliance, requests_count, signatures_count):
    member = new_member().address
    requests = [alliance.conversion(member, "bean", "sky", 1_000) for _ in range(requests_count)]
    signatures = [b""] * signatures_count

    with reverts_with("ExchangeInvalidBatch", requests_count, signatures_count, BATCH_SIZE_MAX):
        convert_batch(alliance, requests, signatures)


def test_batch_item_entry_point_rejects_every_caller_but_the_exchange(alliance):
    member = funded_member(alliance)
    request = alliance.conversion(member, "bean", "sky", 1_000)

    with reverts_with("ExchangeOnlySelf", alliance.operator.address):
        alliance.transact(
            alliance.operator, alliance.exchange.functions.applyBatchItem(request, b"")
        )
    assert not is_processed(alliance, request[0])
