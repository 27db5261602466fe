"""Who may move a member's points: the operator as custodian, or the member's own EIP-712
signature once they choose self-custody; two freezers stop outflows from one brand.

Proves, against the real contracts on Anvil: a member switches custody by a signature the
operator relays (replay-proof by nonce); custodial movements of a self-custodied member are
refused while their signed conversions and gifts apply, and signatures by another key or over
other terms are refused with the recovered signer; a freeze or unfreeze is only requested by
the first freezer and applied by a second, different one, and stops conversions and gifts out
of that brand only, inflows still landing; gifts move points and emit `Gifted` where the
brand allows gifting.
"""

from __future__ import annotations

from alliance.money import AMOUNT_IN_MAX
from tests.support.alliance import DEADLINE_FAR, new_member, next_request_id
from tests.support.exchange import (
    CONVERSION_TYPES,
    SELF_CUSTODY_TYPES,
    ZERO_ADDRESS,
    balances,
    conversion_message,
    convert_signed,
    emitted,
    funded_member,
    funded_self_custody_member,
    gift,
    gift_request,
    recovered_signer,
    reverts_with,
    self_custody_message,
    set_frozen,
    set_self_custody,
    sign_conversion,
    sign_gift,
    sign_self_custody,
)

# ---------------------------------------------------------------------- self-custody


def test_member_switches_to_self_custody_by_a_signature_the_operator_relays(alliance):
    member = new_member()

    receipt = set_self_custody(alliance, member)

    assert alliance.events(receipt, alliance.exchange, "SelfCustodySet") == [
        {"member": member.address, "enabled": True}
    ]
    assert alliance.call(alliance.exchange.functions.isSelfCustodied(member.address))
    assert alliance.call(alliance.exchange.functions.nonces(member.address)) == 1


def test_custodial_conversion_rejects_a_self_custodied_member(alliance):
    member = funded_self_custody_member(alliance)

    with reverts_with("ExchangeSelfCustodied", member.address):
        alliance.convert(member.address, "bean", "sky", 1_000)


def test_signed_conversion_moves_a_self_custodied_members_points(alliance):
    member = funded_self_custody_member(alliance)
    request = alliance.conversion(member.address, "bean", "sky", 1_000)

    receipt = convert_signed(alliance, request, sign_conversion(alliance, member, request))

    [converted] = alliance.events(receipt, alliance.exchange, "Converted")
    assert (converted["requestId"], converted["member"], converted["amountOut"]) == (
        request[0],
        member.address,
        495,
    )
    assert balances(alliance, member.address) == {"bean": 9_000, "sky": 495, "cart": 0}


def test_signed_conversion_rejects_a_signature_by_another_key(alliance):
    member = funded_self_custody_member(alliance)
    impostor = new_member()
    request = alliance.conversion(member.address, "bean", "sky", 1_000)

    with reverts_with("ExchangeInvalidSignature", member.address, impostor.address):
        convert_signed(alliance, request, sign_conversion(alliance, impostor, request))


def test_signed_conversion_rejects_terms_the_member_did_not_sign(alliance):
    member = funded_self_custody_member(alliance)
    signed = alliance.conversion(member.address, "bean", "sky", 1_000)
    signature = sign_conversion(alliance, member, signed)
    altered = (*signed[:4], 5_000, *signed[5:])
    # The exchange recovers some unrelated address from the altered terms.
    signer = recovered_signer(alliance, CONVERSION_TYPES, conversion_message(altered), signature)
    assert signer != member.address

    with reverts_with("ExchangeInvalidSignature", member.address, signer):
        convert_signed(alliance, altered, signature)


def test_signed_conversion_rejects_a_malformed_signature(alliance):
    member = funded_self_custody_member(alliance)
    request = alliance.conversion(member.address, "bean", "sky", 1_000)

    for malformed in (b"", b"\x01" * 64, b"\x00" * 65):
        with reverts_with("ExchangeInvalidSignature", member.address, ZERO_ADDRESS):
            convert_signed(alliance, request, malformed)


def test_signed_conversion_cannot_be_replayed(alliance):
    member = funded_self_custody_member(alliance)
    request = alliance.conversion(member.address, "bean", "sky", 1_000)
    signature = sign_conversion(alliance, member, request)
    convert_signed(alliance, request, signature)

    with reverts_with("ExchangeRequestAlreadyProcessed", request[0]):
        convert_signed(alliance, request, signature)
    assert balances(alliance, member.address) == {"bean": 9_000, "sky": 495, "cart": 0}


def test_self_custody_signature_cannot_be_replayed(alliance):
    member = new_member()
    signature = sign_self_custody(alliance, member, member.address, True, 0, DEADLINE_FAR)
    set_custody = alliance.exchange.functions.setSelfCustody(
        member.address, True, DEADLINE_FAR, signature
    )
    alliance.transact(alliance.operator, set_custody)
    # The replay is checked against the next nonce, so it recovers to an unrelated address.
    replay_message = self_custody_message(member.address, True, 1, DEADLINE_FAR)
    signer = recovered_signer(alliance, SELF_CUSTODY_TYPES, replay_message, signature)

    with reverts_with("ExchangeInvalidSignature", member.address, signer):
        alliance.transact(alliance.operator, set_custody)
    assert alliance.call(alliance.exchange.functions.nonces(member.address)) == 1


def test_self_custody_switch_rejects_a_passed_deadline(alliance):
    member = new_member()
    now = alliance.timestamp()

    with reverts_with("ExchangeDeadlinePassed", now - 1, now):
        set_self_custody(alliance, member, deadline=now - 1)


def test_member_hands_custody_back_to_the_operator_by_signature(alliance):
    member = funded_self_custody_member(alliance)

    receipt = set_self_custody(alliance, member, enabled=False)

    assert alliance.events(receipt, alliance.exchange, "SelfCustodySet") == [
        {"member": member.address, "enabled": False}
    ]
    receipt = alliance.convert(member.address, "bean", "sky", 1_000)
    assert len(alliance.events(receipt, alliance.exchange, "Converted")) == 1


# ---------------------------------------------------------------------- freezes


def test_first_freezer_only_requests_a_freeze_and_points_stay_movable(alliance):
    member = funded_member(alliance)
    bean = alliance.tokens["bean"].address
    freezer_a = alliance.brand_party("bean", "freezer_a").address

    receipt = alliance.transact(
        alliance.brand_party("bean", "freezer_a"),
        alliance.exchange.functions.setFrozen(bean, member, True),
    )

    assert alliance.events(receipt, alliance.exchange, "FreezeRequested") == [
        {"token": bean, "member": member, "frozen": True, "requestedBy": freezer_a}
    ]
    assert alliance.events(receipt, alliance.exchange, "FreezeChanged") == []
    assert (
        alliance.call(alliance.exchange.functions.freezeRequestedBy(bean, member, True))
        == freezer_a
    )
    assert not alliance.call(alliance.exchange.functions.isFrozen(bean, member))
    alliance.convert(member, "bean", "sky", 1_000)


def test_second_freezer_applies_the_freeze_and_outflows_from_that_brand_stop(alliance):
    member = funded_member(alliance)
    bean = alliance.tokens["bean"].address
    freezer_a, freezer_b = (
        alliance.brand_party("bean", role) for role in ("freezer_a", "freezer_b")
    )

    receipt = set_frozen(alliance, "bean", member)

    assert alliance.events(receipt, alliance.exchange, "FreezeChanged") == [
        {
            "token": bean,
            "member": member,
            "frozen": True,
            "requestedBy": freezer_a.address,
            "approvedBy": freezer_b.address,
        }
    ]
    assert alliance.call(alliance.exchange.functions.isFrozen(bean, member))
    assert (
        alliance.call(alliance.exchange.functions.freezeRequestedBy(bean, member, True))
        == ZERO_ADDRESS
    )
    with reverts_with("ExchangeAccountFrozen", bean, member):
        alliance.convert(member, "bean", "sky", 1_000)
    with reverts_with("ExchangeAccountFrozen", bean, member):
        gift(
            alliance,
            gift_request(alliance, "bean", member, new_member().address, 10, next_request_id()),
        )


def test_frozen_member_still_converts_out_of_other_brands_and_receives_inflows(alliance):
    member = funded_member(alliance)
    alliance.deposit("sky", member, 1_000)
    set_frozen(alliance, "bean", member)

    alliance.convert(member, "sky", "cart", 500)  # out of an unfrozen brand
    alliance.convert(member, "sky", "bean", 500)  # into the frozen brand

    # 500 SKY = 10 units = 2,000 CART (1% fee: 20); 500 SKY = 1,000 BEAN (fee 10).
    assert balances(alliance, member) == {"bean": 10_990, "sky": 0, "cart": 1_980}
    assert not alliance.call(
        alliance.exchange.functions.isFrozen(alliance.tokens["sky"].address, member)
    )


def test_freeze_stops_a_self_custodied_members_signed_conversion_too(alliance):
    member = funded_self_custody_member(alliance)
    set_frozen(alliance, "bean", member.address)
    request = alliance.conversion(member.address, "bean", "sky", 1_000)

    with reverts_with("ExchangeAccountFrozen", alliance.tokens["bean"].address, member.address):
        convert_signed(alliance, request, sign_conversion(alliance, member, request))


def test_same_freezer_cannot_approve_its_own_freeze_request(alliance):
    member = funded_member(alliance)
    freezer_a = alliance.brand_party("bean", "freezer_a")
    set_frozen_call = alliance.exchange.functions.setFrozen(
        alliance.tokens["bean"].address, member, True
    )
    alliance.transact(freezer_a, set_frozen_call)

    with reverts_with("ExchangeSelfApproval", freezer_a.address):
        alliance.transact(freezer_a, set_frozen_call)
    assert not alliance.call(
        alliance.exchange.functions.isFrozen(alliance.tokens["bean"].address, member)
    )


def test_unfreeze_needs_two_different_freezers(alliance):
    member = funded_member(alliance)
    bean = alliance.tokens["bean"].address
    freezer_a, freezer_b = (
        alliance.brand_party("bean", role) for role in ("freezer_a", "freezer_b")
    )
    set_frozen(alliance, "bean", member)
    unfreeze = alliance.exchange.functions.setFrozen(bean, member, False)

    requested = alliance.transact(freezer_b, unfreeze)
    assert alliance.events(requested, alliance.exchange, "FreezeRequested") == [
        {"token": bean, "member": member, "frozen": False, "requestedBy": freezer_b.address}
    ]
    with reverts_with("ExchangeAccountFrozen", bean, member):
        alliance.convert(member, "bean", "sky", 1_000)
    with reverts_with("ExchangeSelfApproval", freezer_b.address):
        alliance.transact(freezer_b, unfreeze)

    applied = alliance.transact(freezer_a, unfreeze)

    assert alliance.events(applied, alliance.exchange, "FreezeChanged") == [
        {
            "token": bean,
            "member": member,
            "frozen": False,
            "requestedBy": freezer_b.address,
            "approvedBy": freezer_a.address,
        }
    ]
    alliance.convert(member, "bean", "sky", 1_000)


# ---------------------------------------------------------------------- gifts


def test_custodial_gift_moves_points_and_emits_gifted(alliance):
    sender, recipient = funded_member(alliance, amount=300), new_member().address
    request = gift_request(alliance, "bean", sender, recipient, 120, next_request_id())

    receipt = gift(alliance, request)

    assert alliance.events(receipt, alliance.exchange, "Gifted") == [
        {
            "requestId": request[0],
            "token": alliance.tokens["bean"].address,
            "from": sender,
            "to": recipient,
            "amount": 120,
        }
    ]
    assert emitted(alliance, receipt, alliance.tokens["bean"], "Transfer") == [
        {"from": sender, "to": recipient, "value": 120}
    ]
    assert (alliance.balance("bean", sender), alliance.balance("bean", recipient)) == (180, 120)
    with reverts_with("ExchangeRequestAlreadyProcessed", request[0]):
        gift(alliance, request)


def test_gift_rejects_a_brand_with_gifting_off(alliance):
    sender = funded_member(alliance, "sky", 300)

    with reverts_with("PointTokenGiftingDisabled"):
        gift(
            alliance,
            gift_request(alliance, "sky", sender, new_member().address, 120, next_request_id()),
        )


def test_signed_gift_moves_a_self_custodied_members_points(alliance):
    sender, recipient = funded_self_custody_member(alliance, amount=300), new_member().address
    request = gift_request(alliance, "bean", sender.address, recipient, 120, next_request_id())
    with reverts_with("ExchangeSelfCustodied", sender.address):
        gift(alliance, request)

    receipt = gift(alliance, request, sign_gift(alliance, sender, request))

    assert alliance.events(receipt, alliance.exchange, "Gifted") == [
        {
            "requestId": request[0],
            "token": alliance.tokens["bean"].address,
            "from": sender.address,
            "to": recipient,
            "amount": 120,
        }
    ]
    assert (alliance.balance("bean", sender.address), alliance.balance("bean", recipient)) == (
        180,
        120,
    )


def test_signed_gift_rejects_a_signature_by_another_key(alliance):
    sender, impostor = funded_self_custody_member(alliance, amount=300), new_member()
    request = gift_request(
        alliance, "bean", sender.address, impostor.address, 120, next_request_id()
    )

    with reverts_with("ExchangeInvalidSignature", sender.address, impostor.address):
        gift(alliance, request, sign_gift(alliance, impostor, request))


def test_gift_rejects_a_passed_deadline_and_an_invalid_amount(alliance):
    sender, recipient = funded_member(alliance, amount=300), new_member().address
    now = alliance.timestamp()
    late = gift_request(alliance, "bean", sender, recipient, 10, next_request_id(), now - 1)
    with reverts_with("ExchangeDeadlinePassed", now - 1, now):
        gift(alliance, late)

    for amount in (0, AMOUNT_IN_MAX + 1):
        request = gift_request(alliance, "bean", sender, recipient, amount, next_request_id())
        with reverts_with("ExchangeInvalidAmount", amount, AMOUNT_IN_MAX):
            gift(alliance, request)


def test_gift_and_conversion_share_one_request_id_space(alliance):
    member = funded_member(alliance)
    request_id = next_request_id()
    alliance.convert(member, "bean", "sky", 1_000, request_id=request_id)

    with reverts_with("ExchangeRequestAlreadyProcessed", request_id):
        gift(alliance, gift_request(alliance, "bean", member, new_member().address, 10, request_id))
