"""The permission matrix: who may call each state-changing function of the alliance contracts.

`GUARDED` has one row per non-view external function of AllianceGovernance, PointToken (the
`bean` token stands for every brand), AllianceExchange and SettlementAnchor: how to build
valid-looking arguments, which parties may call it, and the custom error (with arguments)
everyone else gets. Every row is tried from every party in `CALLERS` outside its allowed
set, so adding a function means adding one row. A completeness test compares the table with
each contract's ABI, so a new function without a row fails the suite; another checks that
each allowed party really gets past the permission check.

Calls from accounts without ether work because the chain's gas price is zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from alliance.deploy import role_id
from alliance.errors import ContractReverted
from alliance.governance import GovernedCall
from tests.support.alliance import (
    DEADLINE_FAR,
    DeployedAlliance,
    new_member,
    next_request_id,
    reverts,
)

DAY_S = 86_400
DEFAULT_ADMIN_ROLE = b"\x00" * 32
MEMBER = "0x" + "11" * 20
OTHER_MEMBER = "0x" + "22" * 20
BRAND_REF = b"\x0b" * 32
SIGNATURE_JUNK = b"\x01" * 65
PERIOD_ID = 20261122

CALLERS = (
    "stranger",
    "deployer",
    "operator",
    "guardian",
    "settler",
    "bean.admin",
    "bean.issuer",
    "bean.approver",
    "bean.freezer_a",
    "bean.freezer_b",
    "bean.governor",
    "sky.admin",
    "sky.issuer",
    "sky.freezer_a",
    "sky.governor",
)
"""Every party a row is tried from: a fresh account outside the alliance, each alliance
service key, every role holder of the brand under test (`bean`), another brand's holders,
and governors acting alone (`cart.governor` is left out: two governors suffice)."""

GOVERNORS = frozenset({"bean.governor", "sky.governor"})

Arguments = Callable[[DeployedAlliance], tuple[Any, ...]]
Rejection = Callable[[DeployedAlliance, str], tuple[str, tuple[Any, ...]]]


@dataclass(frozen=True)
class Guarded:
    """One guarded function: where it lives, how to call it, who may, what others get."""

    contract: str
    """`governance`, `exchange`, `anchor` or `token` (the `bean` brand's token)."""
    function: str
    arguments: Arguments
    """Builds the arguments; may prepare state first (anchor a period, open a proposal)."""
    allowed: frozenset[str]
    """Parties from `CALLERS` that pass the permission check."""
    rejection: Rejection
    """(error name, arguments) for a rejected caller's lower-case address."""

    @property
    def name(self) -> str:
        return f"{self.contract}.{self.function}"


# ---------------------------------------------------------------- rejections


def missing_role(role: str) -> Rejection:
    """OpenZeppelin AccessControl's `onlyRole(role)`."""
    role_bytes = DEFAULT_ADMIN_ROLE if role == "DEFAULT_ADMIN_ROLE" else role_id(role)
    return lambda alliance, caller: ("AccessControlUnauthorizedAccount", (caller, role_bytes))


def caller_error(error: str) -> Rejection:
    """A custom error whose only argument is the caller."""
    return lambda alliance, caller: (error, (caller,))


def bean_and_caller_error(error: str) -> Rejection:
    """A custom error naming the brand (`bean`) and the caller."""
    return lambda alliance, caller: (error, (alliance.tokens["bean"].address.lower(), caller))


def bad_confirmation(alliance: DeployedAlliance, caller: str) -> tuple[str, tuple[Any, ...]]:
    """`renounceRole` for someone else's account."""
    return ("AccessControlBadConfirmation", ())


def not_proposer(alliance: DeployedAlliance, caller: str) -> tuple[str, tuple[Any, ...]]:
    """`cancel` of the latest proposal: non-governors are refused as such, other governors
    as not the proposer."""
    governor = Web3.to_checksum_address(caller)
    if not alliance.call(alliance.governance.functions.isGovernor(governor)):
        return ("AllianceGovernanceNotGovernor", (caller,))
    proposal_id = alliance.call(alliance.governance.functions.proposalCount())
    return ("AllianceGovernanceNotProposer", (proposal_id, caller))


# ---------------------------------------------------------------- arguments


def party_address(alliance: DeployedAlliance, party: str) -> str:
    return party_account(alliance, party).address


def party_account(alliance: DeployedAlliance, party: str) -> LocalAccount:
    """The signing account of a `CALLERS` entry (`stranger` is fresh on every call)."""
    if party == "stranger":
        return new_member()
    if "." in party:
        code, role = party.split(".")
        return alliance.brand_party(code, role)
    return alliance.parties.alliance[party]


def token(code: str) -> Callable[[DeployedAlliance], str]:
    return lambda alliance: alliance.tokens[code].address


def notice_period_call(alliance: DeployedAlliance) -> tuple[str, str]:
    """A harmless proposal call (target, calldata)."""
    return GovernedCall(alliance.exchange, "setNoticePeriod", (2 * DAY_S,)).encoded()


def open_proposal(alliance: DeployedAlliance) -> tuple[Any, ...]:
    """Open a proposal by `bean.governor` and return `(proposalId,)`."""
    governance = alliance.governance
    proposer = alliance.brand_party("bean", "governor")
    alliance.transact(proposer, governance.functions.propose([notice_period_call(alliance)], "p"))
    return (alliance.call(governance.functions.proposalCount()),)


def anchored_period(alliance: DeployedAlliance) -> tuple[Any, ...]:
    """Anchor `PERIOD_ID` as the settler and return `(periodId, bean token)`."""
    closing_block = alliance.client.w3.eth.block_number - 1
    anchor = alliance.anchor.functions.anchor(PERIOD_ID, closing_block, b"\x01" * 32, b"\x02" * 32)
    alliance.transact(alliance.settler, anchor)
    return (PERIOD_ID, alliance.tokens["bean"].address)


def bean_to_sky(alliance: DeployedAlliance) -> tuple[Any, ...]:
    return alliance.conversion(MEMBER, "bean", "sky", 100)


def bean_gift(alliance: DeployedAlliance) -> tuple[Any, ...]:
    bean = alliance.tokens["bean"].address
    return (next_request_id(), bean, MEMBER, OTHER_MEMBER, 1, DEADLINE_FAR)


def constant(*values: Any) -> Arguments:
    return lambda alliance: values


def built(*parts: Any) -> Arguments:
    """Arguments where callables are resolved against the alliance and values kept as-is."""
    return lambda alliance: tuple(part(alliance) if callable(part) else part for part in parts)


def party(name: str) -> Callable[[DeployedAlliance], str]:
    return lambda alliance: party_address(alliance, name)


def fresh_request_id(alliance: DeployedAlliance) -> int:
    return next_request_id()


NOBODY: frozenset[str] = frozenset()
"""Only the governance contract (through a proposal) or another contract may call."""

ISSUER, APPROVER, ADMIN = "bean.issuer", "bean.approver", "bean.admin"
FREEZERS = frozenset({"bean.freezer_a", "bean.freezer_b"})
GOVERNANCE_ONLY = caller_error("AllianceGovernanceOnlySelf")
ADMIN_ONLY = missing_role("DEFAULT_ADMIN_ROLE")

# One row per line group keeps the table scannable; the formatter would explode it.
# fmt: off
GUARDED: tuple[Guarded, ...] = (
    # ------------------------------------------------------------ AllianceGovernance
    Guarded("governance", "propose", lambda a: ([notice_period_call(a)], "p"), GOVERNORS,
            caller_error("AllianceGovernanceNotGovernor")),
    Guarded("governance", "approve", constant(1), GOVERNORS,
            caller_error("AllianceGovernanceNotGovernor")),
    Guarded("governance", "execute", lambda a: (1, [notice_period_call(a)]), GOVERNORS,
            caller_error("AllianceGovernanceNotGovernor")),
    Guarded("governance", "cancel", open_proposal, frozenset({"bean.governor"}), not_proposer),
    Guarded("governance", "allowAccount", constant(MEMBER), NOBODY, GOVERNANCE_ONLY),
    Guarded("governance", "disallowAccount", built(party("operator")), NOBODY, GOVERNANCE_ONLY),
    Guarded("governance", "addGovernor", constant(MEMBER), NOBODY, GOVERNANCE_ONLY),
    Guarded("governance", "removeGovernor", built(party("sky.governor")), NOBODY, GOVERNANCE_ONLY),
    Guarded("governance", "setThreshold", constant(3), NOBODY, GOVERNANCE_ONLY),
    Guarded("governance", "setGuardian", constant(MEMBER, True), NOBODY, GOVERNANCE_ONLY),
    Guarded("governance", "setAllianceContracts", constant(MEMBER, OTHER_MEMBER), NOBODY,
            GOVERNANCE_ONLY),
    Guarded("governance", "registerBrand", constant(MEMBER, 10**16), NOBODY, GOVERNANCE_ONLY),
    Guarded("governance", "pauseAll", constant(), frozenset({"guardian"}),
            caller_error("AllianceGovernanceNotGuardian")),
    Guarded("governance", "suspendBrand", built(token("bean")), frozenset({"guardian"}),
            caller_error("AllianceGovernanceNotGuardian")),
    # ------------------------------------------------------------ PointToken (bean)
    Guarded("token", "mint", built(MEMBER, 10, fresh_request_id, 1, BRAND_REF),
            frozenset({ISSUER}), missing_role("ISSUER_ROLE")),
    Guarded("token", "burn", built(MEMBER, 10, fresh_request_id, 2, BRAND_REF),
            frozenset({ISSUER}), missing_role("ISSUER_ROLE")),
    Guarded("token", "requestApproval", built(fresh_request_id, MEMBER, 10, 1, 4, BRAND_REF),
            frozenset({ISSUER}), missing_role("ISSUER_ROLE")),
    Guarded("token", "approveRequest", built(fresh_request_id), frozenset({APPROVER}),
            missing_role("APPROVER_ROLE")),
    Guarded("token", "cancelApprovalRequest", built(fresh_request_id),
            frozenset({ISSUER, APPROVER}), missing_role("APPROVER_ROLE")),
    Guarded("token", "exchangeBurn", constant(MEMBER, 1), NOBODY,
            caller_error("PointTokenNotExchange")),
    Guarded("token", "exchangeMint", constant(MEMBER, 1), NOBODY,
            caller_error("PointTokenNotExchange")),
    Guarded("token", "exchangeTransfer", constant(MEMBER, OTHER_MEMBER, 1), NOBODY,
            caller_error("PointTokenNotExchange")),
    Guarded("token", "setGiftingEnabled", constant(False), frozenset({ADMIN}),
            missing_role("BRAND_ADMIN_ROLE")),
    Guarded("token", "setExchange", constant(MEMBER), NOBODY, ADMIN_ONLY),
    Guarded("token", "pause", constant(), NOBODY, missing_role("GUARDIAN_ROLE")),
    Guarded("token", "unpause", constant(), NOBODY, ADMIN_ONLY),
    Guarded("token", "revokeAllRoles", built(party(ISSUER)), NOBODY, ADMIN_ONLY),
    Guarded("token", "grantRole", constant(role_id("ISSUER_ROLE"), MEMBER), NOBODY, ADMIN_ONLY),
    Guarded("token", "revokeRole", built(role_id("ISSUER_ROLE"), party(ISSUER)), NOBODY,
            ADMIN_ONLY),
    Guarded("token", "renounceRole", built(role_id("ISSUER_ROLE"), party(ISSUER)),
            frozenset({ISSUER}), bad_confirmation),
    # ------------------------------------------------------------ AllianceExchange
    Guarded("exchange", "convert", lambda a: (bean_to_sky(a),), frozenset({"operator"}),
            missing_role("OPERATOR_ROLE")),
    Guarded("exchange", "convertWithSignature", lambda a: (bean_to_sky(a), SIGNATURE_JUNK),
            frozenset({"operator"}), missing_role("OPERATOR_ROLE")),
    Guarded("exchange", "convertBatch", lambda a: ([bean_to_sky(a)], []),
            frozenset({"operator"}), missing_role("OPERATOR_ROLE")),
    Guarded("exchange", "applyBatchItem", lambda a: (bean_to_sky(a), b""), NOBODY,
            caller_error("ExchangeOnlySelf")),
    Guarded("exchange", "gift", lambda a: (bean_gift(a), b""), frozenset({"operator"}),
            missing_role("OPERATOR_ROLE")),
    Guarded("exchange", "setSelfCustody", constant(MEMBER, True, DEADLINE_FAR, SIGNATURE_JUNK),
            frozenset({"operator"}), missing_role("OPERATOR_ROLE")),
    Guarded("exchange", "setFrozen", built(token("bean"), MEMBER, True), FREEZERS,
            bean_and_caller_error("ExchangeNotBrandFreezer")),
    Guarded("exchange", "cancelFreezeRequest", built(token("bean"), MEMBER, True), FREEZERS,
            bean_and_caller_error("ExchangeNotBrandFreezer")),
    Guarded("exchange", "scheduleRate", built(token("bean"), 10**16, DEADLINE_FAR),
            frozenset({ADMIN}), bean_and_caller_error("ExchangeNotBrandAdmin")),
    Guarded("exchange", "cancelScheduledRate", built(token("bean")), frozenset({ADMIN}),
            bean_and_caller_error("ExchangeNotBrandAdmin")),
    Guarded("exchange", "setPairPolicy", built(token("sky"), token("bean"), True, 0, 1, 0, 0),
            frozenset({ADMIN}), bean_and_caller_error("ExchangeNotBrandAdmin")),
    Guarded("exchange", "registerBrand", constant(MEMBER, 10**16), NOBODY, ADMIN_ONLY),
    Guarded("exchange", "setNoticePeriod", constant(2 * DAY_S), NOBODY, ADMIN_ONLY),
    Guarded("exchange", "revokeAllRoles", built(party("operator")), NOBODY, ADMIN_ONLY),
    Guarded("exchange", "grantRole", constant(role_id("OPERATOR_ROLE"), MEMBER), NOBODY,
            ADMIN_ONLY),
    Guarded("exchange", "revokeRole", built(role_id("OPERATOR_ROLE"), party("operator")),
            NOBODY, ADMIN_ONLY),
    Guarded("exchange", "renounceRole", built(role_id("OPERATOR_ROLE"), party("operator")),
            frozenset({"operator"}), bad_confirmation),
    # ------------------------------------------------------------ SettlementAnchor
    Guarded("anchor", "anchor", constant(PERIOD_ID, 1, b"\x01" * 32, b"\x02" * 32),
            frozenset({"settler"}), missing_role("SETTLER_ROLE")),
    Guarded("anchor", "acknowledge", anchored_period, frozenset({ADMIN}),
            bean_and_caller_error("SettlementAnchorNotBrandAdmin")),
    Guarded("anchor", "revokeAllRoles", built(party("settler")), NOBODY, ADMIN_ONLY),
    Guarded("anchor", "grantRole", constant(role_id("SETTLER_ROLE"), MEMBER), NOBODY,
            ADMIN_ONLY),
    Guarded("anchor", "revokeRole", built(role_id("SETTLER_ROLE"), party("settler")), NOBODY,
            ADMIN_ONLY),
    Guarded("anchor", "renounceRole", built(role_id("SETTLER_ROLE"), party("settler")),
            frozenset({"settler"}), bad_confirmation),
)
# fmt: on


def contract_of(alliance: DeployedAlliance, name: str) -> Any:
    if name == "token":
        return alliance.tokens["bean"]
    return getattr(alliance, name)


def function_call(alliance: DeployedAlliance, row: Guarded) -> Any:
    """The row's function bound to freshly built arguments (state prepared if needed)."""
    function = getattr(contract_of(alliance, row.contract).functions, row.function)
    return function(*row.arguments(alliance))


REJECTED = [
    pytest.param(row, caller, id=f"{row.name}-by-{caller}")
    for row in GUARDED
    for caller in CALLERS
    if caller not in row.allowed
]
PERMITTED = [
    pytest.param(row, caller, id=f"{row.name}-by-{caller}")
    for row in GUARDED
    for caller in sorted(row.allowed)
]


@pytest.mark.parametrize(("row", "caller"), REJECTED)
def test_unauthorised_caller_is_rejected_with_the_guard_error(alliance, row: Guarded, caller):
    call = function_call(alliance, row)
    account = party_account(alliance, caller)
    error_name, arguments = row.rejection(alliance, account.address.lower())
    with reverts(error_name, *arguments) as caught:
        alliance.transact(account, call)
    assert tuple(caught.value.arguments) == arguments


@pytest.mark.parametrize(("row", "caller"), PERMITTED)
def test_permitted_caller_passes_the_permission_check(alliance, row: Guarded, caller):
    """The allowed set is not wider than the contract's: its members either succeed or fail
    on something other than the guard (the arguments are only valid-looking)."""
    call = function_call(alliance, row)
    account = party_account(alliance, caller)
    guard_error, _ = row.rejection(alliance, account.address.lower())
    try:
        alliance.transact(account, call)
    except ContractReverted as reverted:
        assert reverted.error_name != guard_error, reverted


def test_functions_no_party_may_call_are_left_to_governance_and_exchange(alliance):
    """Rows allowed to nobody rely on governance (or the exchange) being the only holder of
    the admin and guardian roles."""
    governance = alliance.governance.address
    for contract in (alliance.exchange, alliance.anchor, *alliance.tokens.values()):
        assert alliance.call(contract.functions.hasRole(DEFAULT_ADMIN_ROLE, governance))
    for point_token in alliance.tokens.values():
        assert alliance.call(point_token.functions.hasRole(role_id("GUARDIAN_ROLE"), governance))
        assert alliance.call(point_token.functions.exchange()) == alliance.exchange.address


@pytest.mark.parametrize("contract", ["governance", "token", "exchange", "anchor"])
def test_permission_table_covers_every_state_changing_function(deployed, contract):
    abi = contract_of(deployed, contract).abi
    state_changing = {
        entry["name"]
        for entry in abi
        if entry["type"] == "function" and entry["stateMutability"] in ("nonpayable", "payable")
    }
    tabled = {row.function for row in GUARDED if row.contract == contract}
    assert not state_changing - tabled, f"{contract}: add permission rows for these functions"
    assert not tabled - state_changing, f"{contract}: rows for functions that no longer exist"
