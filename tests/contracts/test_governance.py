"""AllianceGovernance: M-of-N proposals, the allow-list, the guardian and the brand registry.

Proves that a proposal runs only once enough current governors approve it and only with the
calls it was proposed with; that approvals, expiry, cancellation and governor removal behave
as dual control requires; that roles on every alliance contract go only to allow-listed
accounts and leave with them; and that the guardian can stop every brand or one brand
without a vote while restarting needs a proposal. Each test runs on the session's deployed
alliance (three governors, threshold two) inside an Anvil snapshot.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.types import TxReceipt

from alliance.deploy import role_id
from alliance.governance import GovernedCall
from tests.support.alliance import (
    DeployedAlliance,
    emitted_by,
    govern_once,
    new_member,
    reverts,
)

DAY_S = 86_400
DEFAULT_ADMIN_ROLE = b"\x00" * 32
NOTICE_PERIOD_DEPLOYED_S = 30 * DAY_S


def notice_period_calls(alliance: DeployedAlliance, period_s: int) -> list[tuple[str, str]]:
    """A one-call batch (target, calldata) that sets the exchange's notice period."""
    return [GovernedCall(alliance.exchange, "setNoticePeriod", (period_s,)).encoded()]


def propose(
    alliance: DeployedAlliance, governor: LocalAccount, calls: list[tuple[str, str]]
) -> tuple[int, TxReceipt]:
    """Propose `calls` as `governor`; return the new proposal id and the receipt."""
    governance = alliance.governance
    receipt = alliance.transact(governor, governance.functions.propose(calls, "test"))
    [created] = alliance.events(receipt, governance, "ProposalCreated")
    return created["proposalId"], receipt


def calls_hash(calls: list[tuple[str, str]]) -> bytes:
    """What the contract stores for a batch: keccak256(abi.encode(calls))."""
    decoded = [(target, bytes.fromhex(data[2:])) for target, data in calls]
    return keccak(encode(["(address,bytes)[]"], [decoded]))


def lower(account: Any) -> str:
    """An address as custom-error arguments decode it."""
    address = account if isinstance(account, str) else account.address
    return address.lower()


# ---------------------------------------------------------------- proposals


def test_proposal_runs_only_after_threshold_approvals(alliance):
    first, second, third = alliance.governors
    governance = alliance.governance
    calls = notice_period_calls(alliance, 2 * DAY_S)

    proposal_id, receipt = propose(alliance, first, calls)
    [created] = alliance.events(receipt, governance, "ProposalCreated")
    lifetime_s = alliance.call(governance.functions.PROPOSAL_LIFETIME())
    assert created == {
        "proposalId": proposal_id,
        "proposer": first.address,
        "callsHash": calls_hash(calls),
        "expiresAt": alliance.timestamp() + lifetime_s,
        "description": "test",
    }
    assert alliance.events(receipt, governance, "ProposalApproved") == [
        {"proposalId": proposal_id, "governor": first.address, "approvals": 1}
    ]
    with reverts("AllianceGovernanceNotEnoughApprovals", proposal_id, 1, 2):
        alliance.transact(first, governance.functions.execute(proposal_id, calls))

    receipt = alliance.transact(second, governance.functions.approve(proposal_id))
    assert alliance.events(receipt, governance, "ProposalApproved") == [
        {"proposalId": proposal_id, "governor": second.address, "approvals": 2}
    ]
    assert alliance.call(alliance.exchange.functions.noticePeriod()) == NOTICE_PERIOD_DEPLOYED_S

    receipt = alliance.transact(third, governance.functions.execute(proposal_id, calls))
    assert alliance.events(receipt, governance, "ProposalExecuted") == [
        {"proposalId": proposal_id, "executor": third.address}
    ]
    assert alliance.events(receipt, alliance.exchange, "NoticePeriodChanged") == [
        {"previousPeriod": NOTICE_PERIOD_DEPLOYED_S, "newPeriod": 2 * DAY_S}
    ]
    with reverts("AllianceGovernanceProposalClosed", proposal_id):
        alliance.transact(first, governance.functions.execute(proposal_id, calls))


def test_governor_cannot_approve_the_same_proposal_twice(alliance):
    first, second, _ = alliance.governors
    governance = alliance.governance
    proposal_id, _ = propose(alliance, first, notice_period_calls(alliance, 2 * DAY_S))
    with reverts("AllianceGovernanceAlreadyApproved", proposal_id, lower(first)):
        alliance.transact(first, governance.functions.approve(proposal_id))

    alliance.transact(second, governance.functions.approve(proposal_id))
    with reverts("AllianceGovernanceAlreadyApproved", proposal_id, lower(second)):
        alliance.transact(second, governance.functions.approve(proposal_id))


def test_execute_rejects_calls_other_than_the_proposed_ones(alliance):
    first, second, _ = alliance.governors
    governance = alliance.governance
    proposal_id, _ = propose(alliance, first, notice_period_calls(alliance, 2 * DAY_S))
    alliance.transact(second, governance.functions.approve(proposal_id))
    substituted = notice_period_calls(alliance, 3 * DAY_S)
    with reverts("AllianceGovernanceUnknownProposal", proposal_id):
        alliance.transact(first, governance.functions.execute(proposal_id, substituted))


def test_approving_an_unknown_proposal_is_rejected(alliance):
    governor = alliance.governors[0]
    with reverts("AllianceGovernanceUnknownProposal", 999):
        alliance.transact(governor, alliance.governance.functions.approve(999))


@pytest.mark.parametrize("count", [0, 65])
def test_proposal_needs_between_one_and_the_maximum_of_calls(alliance, count):
    governance = alliance.governance
    calls = notice_period_calls(alliance, 2 * DAY_S) * count
    calls_max = alliance.call(governance.functions.PROPOSAL_CALLS_MAX())
    with reverts("AllianceGovernanceInvalidCallCount", count, calls_max):
        alliance.transact(alliance.governors[0], governance.functions.propose(calls, "test"))


def test_proposal_expires_after_its_lifetime(alliance):
    first, second, third = alliance.governors
    governance = alliance.governance
    calls = notice_period_calls(alliance, 2 * DAY_S)
    proposal_id, receipt = propose(alliance, first, calls)
    [created] = alliance.events(receipt, governance, "ProposalCreated")
    alliance.transact(second, governance.functions.approve(proposal_id))

    alliance.advance_time(alliance.call(governance.functions.PROPOSAL_LIFETIME()) + 1)

    expired = ("AllianceGovernanceProposalExpired", proposal_id, created["expiresAt"])
    with reverts(*expired):
        alliance.transact(first, governance.functions.execute(proposal_id, calls))
    with reverts(*expired):
        alliance.transact(third, governance.functions.approve(proposal_id))


def test_only_the_proposer_can_cancel_and_a_cancelled_proposal_is_closed(alliance):
    first, second, _ = alliance.governors
    governance = alliance.governance
    calls = notice_period_calls(alliance, 2 * DAY_S)
    proposal_id, _ = propose(alliance, first, calls)
    with reverts("AllianceGovernanceNotProposer", proposal_id, lower(second)):
        alliance.transact(second, governance.functions.cancel(proposal_id))

    receipt = alliance.transact(first, governance.functions.cancel(proposal_id))
    cancelled = alliance.events(receipt, governance, "ProposalCancelled")
    assert cancelled == [{"proposalId": proposal_id}]
    with reverts("AllianceGovernanceProposalClosed", proposal_id):
        alliance.transact(second, governance.functions.approve(proposal_id))
    with reverts("AllianceGovernanceProposalClosed", proposal_id):
        alliance.transact(first, governance.functions.execute(proposal_id, calls))


def test_removing_a_governor_withdraws_its_pending_approval(alliance):
    first, second, third = alliance.governors
    governance = alliance.governance
    calls = notice_period_calls(alliance, 2 * DAY_S)
    pending_id, _ = propose(alliance, first, calls)
    alliance.transact(second, governance.functions.approve(pending_id))
    assert alliance.call(governance.functions.approvalCount(pending_id)) == 2

    receipt = govern_once(alliance, [GovernedCall(governance, "removeGovernor", (second.address,))])
    assert alliance.events(receipt, governance, "GovernorRemoved") == [{"governor": second.address}]

    assert alliance.call(governance.functions.approvalCount(pending_id)) == 1
    with reverts("AllianceGovernanceNotEnoughApprovals", pending_id, 1, 2):
        alliance.transact(first, governance.functions.execute(pending_id, calls))
    with reverts("AllianceGovernanceNotGovernor", lower(second)):
        alliance.transact(second, governance.functions.approve(pending_id))

    alliance.transact(third, governance.functions.approve(pending_id))
    receipt = alliance.transact(first, governance.functions.execute(pending_id, calls))
    assert alliance.events(receipt, governance, "ProposalExecuted") == [
        {"proposalId": pending_id, "executor": first.address}
    ]


# ---------------------------------------------------------------- governor set and threshold


@pytest.mark.parametrize("threshold", [0, 1, 4])
def test_threshold_outside_two_to_governor_count_is_rejected(alliance, threshold):
    call = GovernedCall(alliance.governance, "setThreshold", (threshold,))
    with reverts("AllianceGovernanceInvalidThreshold", threshold, 3):
        govern_once(alliance, [call])


def test_threshold_can_rise_to_the_governor_count(alliance):
    governance = alliance.governance
    receipt = govern_once(alliance, [GovernedCall(governance, "setThreshold", (3,))])
    assert alliance.events(receipt, governance, "ThresholdChanged") == [
        {"previousThreshold": 2, "newThreshold": 3}
    ]
    assert alliance.call(governance.functions.threshold()) == 3


def test_removing_a_governor_that_makes_the_threshold_unreachable_is_rejected(alliance):
    governance = alliance.governance
    govern_once(alliance, [GovernedCall(governance, "setThreshold", (3,))])
    removal = GovernedCall(governance, "removeGovernor", (alliance.governors[2].address,))
    with reverts("AllianceGovernanceInvalidThreshold", 3, 2):
        govern_once(alliance, [removal])


def test_adding_a_governor_allow_lists_it_and_a_duplicate_is_rejected(alliance):
    governance = alliance.governance
    newcomer = new_member().address
    receipt = govern_once(alliance, [GovernedCall(governance, "addGovernor", (newcomer,))])
    assert alliance.events(receipt, governance, "AccountAllowed") == [{"account": newcomer}]
    assert alliance.events(receipt, governance, "GovernorAdded") == [{"governor": newcomer}]
    assert alliance.call(governance.functions.isGovernor(newcomer))

    with reverts("AllianceGovernanceAlreadyGovernor", newcomer.lower()):
        govern_once(alliance, [GovernedCall(governance, "addGovernor", (newcomer,))])


def test_removing_an_unknown_governor_is_rejected(alliance):
    stranger = new_member().address
    with reverts("AllianceGovernanceUnknownGovernor", stranger.lower()):
        govern_once(alliance, [GovernedCall(alliance.governance, "removeGovernor", (stranger,))])


# ---------------------------------------------------------------- allow-list


ROLE_GRANTS = [
    pytest.param("token", "ISSUER_ROLE", "PointTokenAccountNotAllowed", id="token"),
    pytest.param("exchange", "OPERATOR_ROLE", "ExchangeAccountNotAllowed", id="exchange"),
    pytest.param("anchor", "SETTLER_ROLE", "SettlementAnchorAccountNotAllowed", id="anchor"),
]


@pytest.mark.parametrize(("contract_name", "role", "error"), ROLE_GRANTS)
def test_roles_go_only_to_allow_listed_accounts(alliance, contract_name, role, error):
    if contract_name == "token":
        contract = alliance.tokens["bean"]
    else:
        contract = getattr(alliance, contract_name)
    account = new_member().address
    grant = GovernedCall(contract, "grantRole", (role_id(role), account))
    with reverts(error, account.lower()):
        govern_once(alliance, [grant])

    allow = GovernedCall(alliance.governance, "allowAccount", (account,))
    receipt = govern_once(alliance, [allow, grant])
    assert alliance.events(receipt, alliance.governance, "AccountAllowed") == [{"account": account}]
    assert emitted_by(receipt, contract, "RoleGranted") == [
        {"role": role_id(role), "account": account, "sender": alliance.governance.address}
    ]


def test_allowing_an_allowed_account_is_rejected(alliance):
    operator = alliance.operator.address
    with reverts("AllianceGovernanceAlreadyAllowed", operator.lower()):
        govern_once(alliance, [GovernedCall(alliance.governance, "allowAccount", (operator,))])


def test_disallowing_an_account_revokes_its_roles_on_every_alliance_contract(alliance):
    governance = alliance.governance
    account = new_member().address
    holdings = [
        (alliance.exchange, "OPERATOR_ROLE"),
        (alliance.anchor, "SETTLER_ROLE"),
        (alliance.tokens["bean"], "ISSUER_ROLE"),
        (alliance.tokens["sky"], "APPROVER_ROLE"),
        (alliance.tokens["cart"], "FREEZER_ROLE"),
        (alliance.tokens["cart"], "BRAND_ADMIN_ROLE"),
    ]
    grants = [
        GovernedCall(contract, "grantRole", (role_id(role), account)) for contract, role in holdings
    ]
    govern_once(alliance, [GovernedCall(governance, "allowAccount", (account,)), *grants])

    receipt = govern_once(alliance, [GovernedCall(governance, "disallowAccount", (account,))])

    assert alliance.events(receipt, governance, "AccountDisallowed") == [{"account": account}]
    assert not alliance.call(governance.functions.isAllowed(account))
    for contract in {contract.address: contract for contract, _ in holdings}.values():
        revoked = [role for holder, role in holdings if holder is contract]
        assert emitted_by(receipt, contract, "RoleRevoked") == [
            {"role": role_id(role), "account": account, "sender": governance.address}
            for role in revoked
        ], contract.address
    for contract, role in holdings:
        assert not alliance.call(contract.functions.hasRole(role_id(role), account))
    with reverts("PointTokenAccountNotAllowed", account.lower()):
        govern_once(alliance, [grants[2]])


def test_disallowed_issuer_can_no_longer_deposit(alliance):
    issuer = alliance.brand_party("bean", "issuer")
    govern_once(alliance, [GovernedCall(alliance.governance, "disallowAccount", (issuer.address,))])
    with reverts("AccessControlUnauthorizedAccount", lower(issuer), role_id("ISSUER_ROLE")):
        alliance.deposit("bean", new_member().address, 10)


def test_disallowing_an_account_not_on_the_list_is_rejected(alliance):
    stranger = new_member().address
    with reverts("AllianceGovernanceNotAllowed", stranger.lower()):
        govern_once(alliance, [GovernedCall(alliance.governance, "disallowAccount", (stranger,))])


# ---------------------------------------------------------------- guardian


def test_guardian_pause_all_stops_deposits_at_every_brand(alliance):
    receipt = alliance.transact(alliance.guardian, alliance.governance.functions.pauseAll())
    assert alliance.events(receipt, alliance.governance, "AlliancePaused") == [
        {"guardian": alliance.guardian.address}
    ]
    member = new_member().address
    for code, token in alliance.tokens.items():
        assert emitted_by(receipt, token, "Paused") == [{"account": alliance.governance.address}]
        assert alliance.call(token.functions.paused()), code
        with reverts("EnforcedPause"):
            alliance.deposit(code, member, 10)


def test_guardian_suspension_stops_only_that_brand(alliance):
    member = new_member().address
    alliance.deposit("bean", member, 1_000)
    alliance.deposit("sky", member, 1_000)
    sky = alliance.tokens["sky"]

    suspend = alliance.governance.functions.suspendBrand(sky.address)
    receipt = alliance.transact(alliance.guardian, suspend)

    assert alliance.events(receipt, alliance.governance, "BrandSuspended") == [
        {"token": sky.address, "guardian": alliance.guardian.address}
    ]
    assert emitted_by(receipt, sky, "Paused") == [{"account": alliance.governance.address}]
    assert not alliance.call(alliance.tokens["bean"].functions.paused())
    with reverts("EnforcedPause"):
        alliance.convert(member, "bean", "sky", 100)
    with reverts("EnforcedPause"):
        alliance.convert(member, "sky", "bean", 100)
    with reverts("EnforcedPause"):
        alliance.deposit("sky", member, 10)
    receipt = alliance.convert(member, "bean", "cart", 100)
    assert len(alliance.events(receipt, alliance.exchange, "Converted")) == 1


def test_suspending_an_unregistered_token_is_rejected(alliance):
    stranger = new_member().address
    with reverts("AllianceGovernanceUnknownBrand", stranger.lower()):
        alliance.transact(alliance.guardian, alliance.governance.functions.suspendBrand(stranger))


def test_unpausing_needs_a_proposal_and_restores_every_brand(alliance):
    alliance.transact(alliance.guardian, alliance.governance.functions.pauseAll())
    bean = alliance.tokens["bean"]
    for caller in (alliance.guardian, alliance.governors[0]):
        with reverts("AccessControlUnauthorizedAccount", lower(caller), DEFAULT_ADMIN_ROLE):
            alliance.transact(caller, bean.functions.unpause())

    unpause = [GovernedCall(token, "unpause", ()) for token in alliance.tokens.values()]
    receipt = govern_once(alliance, unpause)

    for token in alliance.tokens.values():
        assert emitted_by(receipt, token, "Unpaused") == [{"account": alliance.governance.address}]
        assert not alliance.call(token.functions.paused())
    member = new_member().address
    alliance.deposit("bean", member, 1_000)
    receipt = alliance.convert(member, "bean", "sky", 1_000)
    assert len(alliance.events(receipt, alliance.exchange, "Converted")) == 1


# ---------------------------------------------------------------- brands and settings


def test_registering_a_registered_brand_is_rejected(alliance):
    bean = alliance.tokens["bean"].address
    register = GovernedCall(alliance.governance, "registerBrand", (bean, 10**16))
    with reverts("AllianceGovernanceBrandAlreadyRegistered", bean.lower()):
        govern_once(alliance, [register])


@pytest.mark.parametrize("period_s", [DAY_S, 365 * DAY_S])
def test_notice_period_accepts_its_bounds(alliance, period_s):
    call = GovernedCall(alliance.exchange, "setNoticePeriod", (period_s,))
    receipt = govern_once(alliance, [call])
    assert alliance.events(receipt, alliance.exchange, "NoticePeriodChanged") == [
        {"previousPeriod": NOTICE_PERIOD_DEPLOYED_S, "newPeriod": period_s}
    ]
    assert alliance.call(alliance.exchange.functions.noticePeriod()) == period_s


@pytest.mark.parametrize("period_s", [0, DAY_S - 1, 365 * DAY_S + 1])
def test_notice_period_outside_its_bounds_is_rejected(alliance, period_s):
    call = GovernedCall(alliance.exchange, "setNoticePeriod", (period_s,))
    with reverts("RateBookInvalidNoticePeriod", period_s, DAY_S, 365 * DAY_S):
        govern_once(alliance, [call])
