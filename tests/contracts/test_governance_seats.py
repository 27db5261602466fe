"""Governance seats and allow-list removal: what leaving the alliance takes away.

Proves that removing an account from the allow-list also removes its governor seat and
guardian powers, that a re-added governor's earlier approvals do not count again, that
only governors may cancel, and that an issuer can withdraw a pending approval request
without freeing its request id.
"""

from alliance.governance import GovernedCall
from tests.support.alliance import next_request_id, reverts


def test_disallowing_a_governor_takes_its_seat(alliance):
    governance = alliance.governance
    leaving = alliance.governors[2]
    alliance.govern([GovernedCall(governance, "disallowAccount", (leaving.address,))])
    assert not alliance.call(governance.functions.isGovernor(leaving.address))
    with reverts("AllianceGovernanceNotGovernor", leaving.address.lower()):
        alliance.transact(leaving, governance.functions.propose([], "x"))


def test_disallowing_the_guardian_takes_its_emergency_powers(alliance):
    governance = alliance.governance
    alliance.govern([GovernedCall(governance, "disallowAccount", (alliance.guardian.address,))])
    assert not alliance.call(governance.functions.isGuardian(alliance.guardian.address))
    with reverts("AllianceGovernanceNotGuardian", alliance.guardian.address.lower()):
        alliance.transact(alliance.guardian, governance.functions.pauseAll())


def test_a_re_added_governors_old_approval_does_not_count_again(alliance):
    governance = alliance.governance
    first, second, third = alliance.governors
    call = [(governance.address, governance.encode_abi("setThreshold", args=[3]))]
    alliance.transact(third, governance.functions.propose(call, "raise threshold"))
    proposal_id = alliance.call(governance.functions.proposalCount())
    alliance.govern(
        [
            GovernedCall(governance, "removeGovernor", (third.address,)),
            GovernedCall(governance, "addGovernor", (third.address,)),
        ]
    )
    assert alliance.call(governance.functions.approvalCount(proposal_id)) == 0
    assert not alliance.call(governance.functions.hasApproved(proposal_id, third.address))
    with reverts("AllianceGovernanceNotEnoughApprovals", proposal_id, 0, 2):
        alliance.transact(first, governance.functions.execute(proposal_id, call))
    alliance.transact(third, governance.functions.approve(proposal_id))
    alliance.transact(second, governance.functions.approve(proposal_id))
    alliance.transact(first, governance.functions.execute(proposal_id, call))
    assert alliance.call(governance.functions.threshold()) == 3


def test_a_pending_approval_request_can_be_withdrawn_but_its_id_stays_used(alliance):
    bean = alliance.tokens["bean"]
    member = alliance.brand_party("bean", "admin").address
    request_id = next_request_id()
    issuer = alliance.brand_party("bean", "issuer")
    alliance.transact(
        issuer, bean.functions.requestApproval(request_id, member, 50, 5, 0, b"\x01" * 32)
    )
    receipt = alliance.transact(issuer, bean.functions.cancelApprovalRequest(request_id))
    [cancelled] = alliance.events(receipt, bean, "ApprovalCancelled")
    assert cancelled == {"requestId": request_id, "cancelledBy": issuer.address}
    with reverts("PointTokenUnknownApprovalRequest", request_id):
        alliance.transact(
            alliance.brand_party("bean", "approver"), bean.functions.approveRequest(request_id)
        )
    with reverts("PointTokenRequestAlreadyProcessed", request_id):
        alliance.deposit("bean", member, 50, request_id=request_id)
    assert alliance.balance("bean", member) == 0


def test_withdrawing_a_freeze_request_is_recorded(alliance):
    exchange = alliance.exchange
    token = alliance.tokens["bean"].address
    member = alliance.brand_party("sky", "admin").address
    alliance.transact(
        alliance.brand_party("bean", "freezer_a"), exchange.functions.setFrozen(token, member, True)
    )
    freezer_b = alliance.brand_party("bean", "freezer_b")
    receipt = alliance.transact(
        freezer_b, exchange.functions.cancelFreezeRequest(token, member, True)
    )
    [cancelled] = alliance.events(receipt, exchange, "FreezeRequestCancelled")
    assert cancelled == {
        "token": token,
        "member": member,
        "frozen": True,
        "cancelledBy": freezer_b.address,
    }
    assert not alliance.call(exchange.functions.isFrozen(token, member))


def test_a_freeze_request_by_a_former_freezer_does_not_count(alliance):
    exchange = alliance.exchange
    bean = alliance.tokens["bean"]
    member = alliance.brand_party("sky", "admin").address
    freezer_a = alliance.brand_party("bean", "freezer_a")
    freezer_b = alliance.brand_party("bean", "freezer_b")
    alliance.transact(freezer_a, exchange.functions.setFrozen(bean.address, member, True))
    alliance.govern(
        [
            GovernedCall(
                bean,
                "revokeRole",
                (alliance.call(bean.functions.FREEZER_ROLE()), freezer_a.address),
            )
        ]
    )
    receipt = alliance.transact(freezer_b, exchange.functions.setFrozen(bean.address, member, True))
    assert alliance.events(receipt, exchange, "FreezeChanged") == []
    [requested] = alliance.events(receipt, exchange, "FreezeRequested")
    assert requested["requestedBy"] == freezer_b.address
    assert not alliance.call(exchange.functions.isFrozen(bean.address, member))
