"""PointToken: issuer deposits and burns, two-approver compensation and correction, gifting,
freezes and the disabled ERC-20 surface.

Proves that every mint and burn carries a request id the token accepts once and a reason
code valid for its entry point, and says so in its events; that compensation and
correction need a second, different approver; that plain transfers and allowances are off;
that gifts move only where the brand allows them; and that a frozen member cannot withdraw
while expiry still applies. Runs on the session's deployed alliance in an Anvil snapshot.
"""

from __future__ import annotations

import pytest

from alliance.deploy import role_id
from alliance.governance import GovernedCall
from tests.support.alliance import (
    DEADLINE_FAR,
    DeployedAlliance,
    emitted_by,
    govern_once,
    new_member,
    next_request_id,
    reverts,
)

ZERO_ADDRESS = "0x" + "00" * 20
BRAND_REF = b"\x0b" * 32

# Reason codes (IPointToken.Reason).
NONE, DEPOSIT, WITHDRAWAL, CONVERSION, EXPIRY, CORRECTION = range(6)
# Source codes (IPointToken.Source).
SOURCE_NONE, SPEND, CAMPAIGN, REFERRAL, COMPENSATION = range(5)


def mint(alliance: DeployedAlliance, member: str, amount: int, request_id: int, source: int):
    issuer = alliance.brand_party("bean", "issuer")
    function = alliance.tokens["bean"].functions.mint(member, amount, request_id, source, BRAND_REF)
    return alliance.transact(issuer, function)


def burn(alliance: DeployedAlliance, member: str, amount: int, request_id: int, reason: int):
    issuer = alliance.brand_party("bean", "issuer")
    function = alliance.tokens["bean"].functions.burn(member, amount, request_id, reason, BRAND_REF)
    return alliance.transact(issuer, function)


def request_approval(
    alliance: DeployedAlliance,
    member: str,
    amount_delta: int,
    reason: int,
    source: int,
    request_id: int | None = None,
):
    """Propose a compensation or correction on `bean` as its issuer."""
    request_id = next_request_id() if request_id is None else request_id
    function = alliance.tokens["bean"].functions.requestApproval(
        request_id, member, amount_delta, reason, source, BRAND_REF
    )
    return request_id, alliance.transact(alliance.brand_party("bean", "issuer"), function)


def approve_request(alliance: DeployedAlliance, request_id: int, approver_role: str = "approver"):
    approver = alliance.brand_party("bean", approver_role)
    return alliance.transact(approver, alliance.tokens["bean"].functions.approveRequest(request_id))


def supply(alliance: DeployedAlliance) -> int:
    return int(alliance.call(alliance.tokens["bean"].functions.totalSupply()))


def gift_request(alliance: DeployedAlliance, code: str, sender: str, receiver: str, amount: int):
    token = alliance.tokens[code].address
    return (next_request_id(), token, sender, receiver, amount, DEADLINE_FAR)


# ---------------------------------------------------------------- deposits


@pytest.mark.parametrize("source", [SPEND, CAMPAIGN, REFERRAL])
def test_deposit_mints_and_says_why(alliance, source):
    member, request_id = new_member().address, next_request_id()
    receipt = mint(alliance, member, 250, request_id, source)
    bean = alliance.tokens["bean"]
    assert emitted_by(receipt, bean, "PointsMinted") == [
        {
            "requestId": request_id,
            "account": member,
            "amount": 250,
            "reason": DEPOSIT,
            "source": source,
            "brandRef": BRAND_REF,
        }
    ]
    assert emitted_by(receipt, bean, "Transfer") == [
        {"from": ZERO_ADDRESS, "to": member, "value": 250}
    ]
    assert alliance.balance("bean", member) == 250
    assert alliance.call(bean.functions.isRequestProcessed(request_id))


def test_deposit_rejects_a_replayed_request_id_and_changes_nothing(alliance):
    member, request_id = new_member().address, next_request_id()
    mint(alliance, member, 250, request_id, SPEND)
    supply_before = supply(alliance)
    with reverts("PointTokenRequestAlreadyProcessed", request_id):
        mint(alliance, member, 250, request_id, SPEND)
    with reverts("PointTokenRequestAlreadyProcessed", request_id):
        burn(alliance, member, 50, request_id, WITHDRAWAL)
    assert alliance.balance("bean", member) == 250
    assert supply(alliance) == supply_before


def test_deposit_rejects_a_request_id_pending_approval(alliance):
    """A request id is used once whichever path sees it first: a pending compensation
    holds its id, or approving it later would fail and leave it stuck."""
    member = new_member().address
    request_id, _ = request_approval(alliance, member, 100, DEPOSIT, COMPENSATION)
    with reverts("PointTokenRequestAlreadyProcessed", request_id):
        mint(alliance, member, 250, request_id, SPEND)


def test_deposit_without_a_source_is_rejected(alliance):
    with reverts("PointTokenInvalidReason", DEPOSIT, SOURCE_NONE):
        mint(alliance, new_member().address, 10, next_request_id(), SOURCE_NONE)


def test_compensation_deposit_needs_a_second_approver(alliance):
    with reverts("PointTokenApprovalRequired", DEPOSIT, COMPENSATION):
        mint(alliance, new_member().address, 10, next_request_id(), COMPENSATION)


def test_deposit_of_zero_points_is_rejected(alliance):
    with reverts("PointTokenZeroAmount"):
        mint(alliance, new_member().address, 0, next_request_id(), SPEND)


def test_deposit_to_the_zero_address_is_rejected(alliance):
    with reverts("ERC20InvalidReceiver", ZERO_ADDRESS):
        mint(alliance, ZERO_ADDRESS, 10, next_request_id(), SPEND)


def test_points_have_no_decimals(alliance):
    assert alliance.call(alliance.tokens["bean"].functions.decimals()) == 0


# ---------------------------------------------------------------- two-approver changes


def test_compensation_is_minted_after_a_second_approver_agrees(alliance):
    member = new_member().address
    bean = alliance.tokens["bean"]
    issuer = alliance.brand_party("bean", "issuer")
    request_id, receipt = request_approval(alliance, member, 300, DEPOSIT, COMPENSATION)
    assert emitted_by(receipt, bean, "ApprovalRequested") == [
        {
            "requestId": request_id,
            "account": member,
            "amountDelta": 300,
            "reason": DEPOSIT,
            "source": COMPENSATION,
            "brandRef": BRAND_REF,
            "proposer": issuer.address,
        }
    ]
    assert alliance.balance("bean", member) == 0

    receipt = approve_request(alliance, request_id)

    assert emitted_by(receipt, bean, "PointsMinted") == [
        {
            "requestId": request_id,
            "account": member,
            "amount": 300,
            "reason": DEPOSIT,
            "source": COMPENSATION,
            "brandRef": BRAND_REF,
        }
    ]
    assert alliance.balance("bean", member) == 300
    assert alliance.call(bean.functions.isRequestProcessed(request_id))
    assert alliance.call(bean.functions.pendingApproval(request_id))[1] == ZERO_ADDRESS
    with reverts("PointTokenUnknownApprovalRequest", request_id):
        approve_request(alliance, request_id)


def test_correction_burns_after_a_second_approver_agrees(alliance):
    member = new_member().address
    bean = alliance.tokens["bean"]
    alliance.deposit("bean", member, 100)
    request_id, receipt = request_approval(alliance, member, -30, CORRECTION, SOURCE_NONE)
    [requested] = emitted_by(receipt, bean, "ApprovalRequested")
    assert (requested["amountDelta"], requested["reason"]) == (-30, CORRECTION)

    receipt = approve_request(alliance, request_id)

    assert emitted_by(receipt, bean, "PointsBurned") == [
        {
            "requestId": request_id,
            "account": member,
            "amount": 30,
            "reason": CORRECTION,
            "brandRef": BRAND_REF,
        }
    ]
    assert emitted_by(receipt, bean, "Transfer") == [
        {"from": member, "to": ZERO_ADDRESS, "value": 30}
    ]
    assert alliance.balance("bean", member) == 70


def test_correction_mints_after_a_second_approver_agrees(alliance):
    member = new_member().address
    request_id, _ = request_approval(alliance, member, 20, CORRECTION, SOURCE_NONE)
    receipt = approve_request(alliance, request_id)
    assert emitted_by(receipt, alliance.tokens["bean"], "PointsMinted") == [
        {
            "requestId": request_id,
            "account": member,
            "amount": 20,
            "reason": CORRECTION,
            "source": SOURCE_NONE,
            "brandRef": BRAND_REF,
        }
    ]
    assert alliance.balance("bean", member) == 20


def test_proposer_cannot_approve_its_own_request(alliance):
    bean = alliance.tokens["bean"]
    issuer = alliance.brand_party("bean", "issuer")
    grant = GovernedCall(bean, "grantRole", (role_id("APPROVER_ROLE"), issuer.address))
    govern_once(alliance, [grant])
    request_id, _ = request_approval(alliance, new_member().address, 50, DEPOSIT, COMPENSATION)
    with reverts("PointTokenSelfApproval", issuer.address.lower()):
        approve_request(alliance, request_id, approver_role="issuer")


def test_approving_an_unknown_request_is_rejected(alliance):
    request_id = next_request_id()
    with reverts("PointTokenUnknownApprovalRequest", request_id):
        approve_request(alliance, request_id)


@pytest.mark.parametrize(
    ("amount_delta", "reason", "source"),
    [
        pytest.param(10, DEPOSIT, SPEND, id="deposit-spend"),
        pytest.param(-10, DEPOSIT, COMPENSATION, id="negative-compensation"),
        pytest.param(10, CORRECTION, SPEND, id="correction-with-source"),
        pytest.param(-10, WITHDRAWAL, SOURCE_NONE, id="withdrawal"),
        pytest.param(10, CONVERSION, SOURCE_NONE, id="conversion"),
    ],
)
def test_approval_request_only_takes_compensation_or_correction(
    alliance, amount_delta, reason, source
):
    with reverts("PointTokenInvalidReason", reason, source):
        request_approval(alliance, new_member().address, amount_delta, reason, source)


def test_approval_request_of_zero_points_is_rejected(alliance):
    with reverts("PointTokenZeroAmount"):
        request_approval(alliance, new_member().address, 0, CORRECTION, SOURCE_NONE)


def test_approval_request_rejects_a_used_or_pending_request_id(alliance):
    member = new_member().address
    used_id = next_request_id()
    alliance.deposit("bean", member, 10, request_id=used_id)
    with reverts("PointTokenRequestAlreadyProcessed", used_id):
        request_approval(alliance, member, 10, CORRECTION, SOURCE_NONE, request_id=used_id)
    pending_id, _ = request_approval(alliance, member, 10, CORRECTION, SOURCE_NONE)
    with reverts("PointTokenRequestAlreadyProcessed", pending_id):
        request_approval(alliance, member, 10, CORRECTION, SOURCE_NONE, request_id=pending_id)


# ---------------------------------------------------------------- burns


@pytest.mark.parametrize("reason", [WITHDRAWAL, EXPIRY])
def test_withdrawal_and_expiry_burn_with_their_reason(alliance, reason):
    member, request_id = new_member().address, next_request_id()
    alliance.deposit("bean", member, 100)
    supply_before = supply(alliance)
    receipt = burn(alliance, member, 40, request_id, reason)
    bean = alliance.tokens["bean"]
    assert emitted_by(receipt, bean, "PointsBurned") == [
        {
            "requestId": request_id,
            "account": member,
            "amount": 40,
            "reason": reason,
            "brandRef": BRAND_REF,
        }
    ]
    assert emitted_by(receipt, bean, "Transfer") == [
        {"from": member, "to": ZERO_ADDRESS, "value": 40}
    ]
    assert alliance.balance("bean", member) == 60
    assert supply(alliance) == supply_before - 40


@pytest.mark.parametrize("reason", [NONE, DEPOSIT, CONVERSION])
def test_burn_rejects_reasons_other_than_withdrawal_and_expiry(alliance, reason):
    with reverts("PointTokenInvalidReason", reason, SOURCE_NONE):
        burn(alliance, new_member().address, 10, next_request_id(), reason)


def test_correction_burn_needs_a_second_approver(alliance):
    with reverts("PointTokenApprovalRequired", CORRECTION, SOURCE_NONE):
        burn(alliance, new_member().address, 10, next_request_id(), CORRECTION)


def test_burn_of_zero_points_is_rejected(alliance):
    member = new_member().address
    alliance.deposit("bean", member, 10)
    with reverts("PointTokenZeroAmount"):
        burn(alliance, member, 0, next_request_id(), WITHDRAWAL)


def test_burn_beyond_the_balance_is_rejected(alliance):
    member = new_member().address
    alliance.deposit("bean", member, 10)
    with reverts("ERC20InsufficientBalance", member.lower(), 10, 11):
        burn(alliance, member, 11, next_request_id(), WITHDRAWAL)


def test_frozen_member_cannot_withdraw_but_points_still_expire(alliance):
    member, request_id = new_member().address, next_request_id()
    bean = alliance.tokens["bean"]
    freezer_a = alliance.brand_party("bean", "freezer_a")
    freezer_b = alliance.brand_party("bean", "freezer_b")
    freeze = alliance.exchange.functions.setFrozen(bean.address, member, True)
    alliance.deposit("bean", member, 100)
    receipt = alliance.transact(freezer_a, freeze)
    assert alliance.events(receipt, alliance.exchange, "FreezeRequested") == [
        {"token": bean.address, "member": member, "frozen": True, "requestedBy": freezer_a.address}
    ]
    receipt = alliance.transact(freezer_b, freeze)
    assert alliance.events(receipt, alliance.exchange, "FreezeChanged") == [
        {
            "token": bean.address,
            "member": member,
            "frozen": True,
            "requestedBy": freezer_a.address,
            "approvedBy": freezer_b.address,
        }
    ]

    with reverts("PointTokenAccountFrozen", member.lower()):
        burn(alliance, member, 10, next_request_id(), WITHDRAWAL)
    receipt = burn(alliance, member, 10, request_id, EXPIRY)
    [burned] = emitted_by(receipt, bean, "PointsBurned")
    assert (burned["requestId"], burned["reason"], burned["amount"]) == (request_id, EXPIRY, 10)
    assert alliance.balance("bean", member) == 90


# ---------------------------------------------------------------- ERC-20 surface and exchange


@pytest.mark.parametrize(
    ("function", "arguments"),
    [
        ("transfer", lambda other: (other, 1)),
        ("transferFrom", lambda other: (other, other, 1)),
        ("approve", lambda other: (other, 1)),
    ],
)
def test_plain_erc20_transfers_and_allowances_are_disabled(alliance, function, arguments):
    holder = new_member()
    alliance.deposit("bean", holder.address, 10)
    call = getattr(alliance.tokens["bean"].functions, function)(*arguments(new_member().address))
    with reverts("PointTokenTransfersDisabled"):
        alliance.transact(holder, call)
    assert alliance.balance("bean", holder.address) == 10


@pytest.mark.parametrize(
    ("function", "arguments"),
    [
        ("exchangeBurn", lambda member: (member, 1)),
        ("exchangeMint", lambda member: (member, 1)),
        ("exchangeTransfer", lambda member: (member, member, 1)),
    ],
)
@pytest.mark.parametrize("role", ["issuer", "admin"])
def test_exchange_movements_reject_every_other_caller(alliance, function, arguments, role):
    caller = alliance.brand_party("bean", role)
    call = getattr(alliance.tokens["bean"].functions, function)(*arguments(new_member().address))
    with reverts("PointTokenNotExchange", caller.address.lower()):
        alliance.transact(caller, call)


def test_gift_moves_points_where_the_brand_allows_gifting(alliance):
    sender, receiver = new_member().address, new_member().address
    bean = alliance.tokens["bean"]
    alliance.deposit("bean", sender, 100)
    request = gift_request(alliance, "bean", sender, receiver, 30)

    receipt = alliance.transact(alliance.operator, alliance.exchange.functions.gift(request, b""))

    assert alliance.events(receipt, alliance.exchange, "Gifted") == [
        {
            "requestId": request[0],
            "token": bean.address,
            "from": sender,
            "to": receiver,
            "amount": 30,
        }
    ]
    assert emitted_by(receipt, bean, "Transfer") == [{"from": sender, "to": receiver, "value": 30}]
    assert (alliance.balance("bean", sender), alliance.balance("bean", receiver)) == (70, 30)


def test_gift_is_rejected_where_the_brand_disables_gifting(alliance):
    sender = new_member().address
    alliance.deposit("sky", sender, 100)
    assert not alliance.call(alliance.tokens["sky"].functions.giftingEnabled())
    request = gift_request(alliance, "sky", sender, new_member().address, 30)
    with reverts("PointTokenGiftingDisabled"):
        alliance.transact(alliance.operator, alliance.exchange.functions.gift(request, b""))
    assert alliance.balance("sky", sender) == 100


def test_brand_admin_turns_gifting_off(alliance):
    bean = alliance.tokens["bean"]
    admin = alliance.brand_party("bean", "admin")
    receipt = alliance.transact(admin, bean.functions.setGiftingEnabled(False))
    assert emitted_by(receipt, bean, "GiftingChanged") == [{"enabled": False}]
    sender = new_member().address
    alliance.deposit("bean", sender, 100)
    request = gift_request(alliance, "bean", sender, new_member().address, 30)
    with reverts("PointTokenGiftingDisabled"):
        alliance.transact(alliance.operator, alliance.exchange.functions.gift(request, b""))


def test_governance_points_the_token_at_a_new_exchange(alliance):
    bean = alliance.tokens["bean"]
    successor = new_member()
    receipt = govern_once(
        alliance,
        [
            GovernedCall(alliance.governance, "allowAccount", (successor.address,)),
            GovernedCall(bean, "setExchange", (successor.address,)),
        ],
    )
    assert emitted_by(receipt, bean, "ExchangeChanged") == [
        {"previousExchange": alliance.exchange.address, "newExchange": successor.address}
    ]
    assert alliance.call(bean.functions.exchange()) == successor.address

    member = new_member().address
    alliance.deposit("bean", member, 100)
    with reverts("PointTokenNotExchange", alliance.exchange.address.lower()):
        alliance.convert(member, "bean", "sky", 100)
    alliance.transact(successor, bean.functions.exchangeMint(member, 5))
    assert alliance.balance("bean", member) == 105


def test_the_exchange_can_only_be_an_allow_listed_account(alliance):
    bean = alliance.tokens["bean"]
    outsider = new_member().address
    with reverts("PointTokenInvalidExchange", outsider.lower()):
        alliance.govern([GovernedCall(bean, "setExchange", (outsider,))])
    assert alliance.call(bean.functions.exchange()) == alliance.exchange.address
