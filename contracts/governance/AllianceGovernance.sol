// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IAllianceGovernance, IAllianceAccessControlled} from "./IAllianceGovernance.sol";
import {IAllianceExchange} from "../exchange/IAllianceExchange.sol";
import {IPointToken} from "../token/IPointToken.sol";

/// @title AllianceGovernance
/// @notice M-of-N dual control over the alliance. Brand governors propose batches of calls;
/// once enough current governors approve, any governor executes them with this contract as
/// the caller. This contract holds the admin role on the exchange, the settlement anchor and
/// every brand token, so adding a brand, granting or revoking a role, changing the notice
/// period or unpausing all go through a proposal. It also keeps the alliance allow-list
/// (exported to Besu node permissioning files) and the guardian, who may pause every brand
/// or suspend one without a vote.
/// @dev Approvals are re-counted against the current governor set at execution, so removing
/// a governor also removes the weight of their pending approvals.
contract AllianceGovernance is IAllianceGovernance {
    using EnumerableSet for EnumerableSet.AddressSet;

    /// @notice How long a proposal stays open for approvals.
    uint48 public constant PROPOSAL_LIFETIME = 14 days;
    /// @notice Upper bound on the calls in one proposal, so execution fits in a block.
    uint256 public constant PROPOSAL_CALLS_MAX = 64;
    /// @notice Upper bound on governors, so approval counting stays cheap.
    uint256 public constant GOVERNORS_MAX = 32;

    struct Proposal {
        address proposer;
        uint48 expiresAt;
        bool closed;
        bytes32 callsHash;
    }

    EnumerableSet.AddressSet private _governors;
    EnumerableSet.AddressSet private _guardians;
    EnumerableSet.AddressSet private _allowed;
    EnumerableSet.AddressSet private _brands;
    uint256 public threshold;
    uint256 public proposalCount;
    IAllianceExchange public exchange;
    address public settlementAnchor;
    mapping(uint256 proposalId => Proposal) private _proposals;
    // An approval records the governor's seat generation; removing and re-adding a governor
    // starts a new generation, so approvals from an earlier seat no longer count.
    mapping(uint256 proposalId => mapping(address governor => uint256 generation)) private _approvals;
    mapping(address governor => uint256) private _seatGeneration;

    modifier onlyGovernor() {
        if (!_governors.contains(msg.sender)) revert AllianceGovernanceNotGovernor(msg.sender);
        _;
    }

    modifier onlySelf() {
        if (msg.sender != address(this)) revert AllianceGovernanceOnlySelf(msg.sender);
        _;
    }

    /// @param governors_ The initial brand governors; each is also allow-listed.
    /// @param threshold_ Approvals a proposal needs; at least two.
    /// @param guardian The initial guardian; also allow-listed.
    constructor(address[] memory governors_, uint256 threshold_, address guardian) {
        if (governors_.length > GOVERNORS_MAX) {
            revert AllianceGovernanceInvalidThreshold(threshold_, governors_.length);
        }
        _allow(address(this));
        for (uint256 i = 0; i < governors_.length; ++i) {
            _addGovernor(governors_[i]);
        }
        _setThreshold(threshold_);
        _setGuardian(guardian, true);
    }

    // ---------------------------------------------------------------- proposals

    /// @notice Propose a batch of calls that run atomically once approved; counts as the
    /// proposer's approval.
    /// @param calls The calls, each run with this contract as `msg.sender`.
    /// @param description Human-readable reason, kept in the event for auditors.
    /// @return proposalId The id to approve and execute.
    function propose(Call[] calldata calls, string calldata description)
        external
        onlyGovernor
        returns (uint256 proposalId)
    {
        if (calls.length == 0 || calls.length > PROPOSAL_CALLS_MAX) {
            revert AllianceGovernanceInvalidCallCount(calls.length, PROPOSAL_CALLS_MAX);
        }
        proposalId = ++proposalCount;
        uint48 expiresAt = uint48(block.timestamp) + PROPOSAL_LIFETIME;
        bytes32 callsHash = keccak256(abi.encode(calls));
        _proposals[proposalId] = Proposal(msg.sender, expiresAt, false, callsHash);
        emit ProposalCreated(proposalId, msg.sender, callsHash, expiresAt, description);
        _approve(proposalId);
    }

    /// @notice Approve an open proposal.
    /// @param proposalId The proposal to approve.
    function approve(uint256 proposalId) external onlyGovernor {
        _requireOpen(proposalId);
        _approve(proposalId);
    }

    /// @notice Run an approved proposal's calls. The caller passes the same calls it was
    /// proposed with (only their hash is stored). Any revert undoes the whole batch.
    /// @param proposalId The proposal to execute.
    /// @param calls The proposal's calls, exactly as proposed.
    function execute(uint256 proposalId, Call[] calldata calls) external onlyGovernor {
        Proposal storage proposal = _requireOpen(proposalId);
        if (keccak256(abi.encode(calls)) != proposal.callsHash) {
            revert AllianceGovernanceUnknownProposal(proposalId);
        }
        uint256 approvals = approvalCount(proposalId);
        if (approvals < threshold) {
            revert AllianceGovernanceNotEnoughApprovals(proposalId, approvals, threshold);
        }
        proposal.closed = true;
        for (uint256 i = 0; i < calls.length; ++i) {
            Address.functionCall(calls[i].target, calls[i].data);
        }
        emit ProposalExecuted(proposalId, msg.sender);
    }

    /// @notice Withdraw an open proposal. Proposer only.
    /// @param proposalId The proposal to cancel.
    function cancel(uint256 proposalId) external onlyGovernor {
        Proposal storage proposal = _requireOpen(proposalId);
        if (proposal.proposer != msg.sender) revert AllianceGovernanceNotProposer(proposalId, msg.sender);
        proposal.closed = true;
        emit ProposalCancelled(proposalId);
    }

    /// @notice Approvals on `proposalId` from accounts that are governors now.
    function approvalCount(uint256 proposalId) public view returns (uint256 approvals) {
        uint256 count = _governors.length();
        for (uint256 i = 0; i < count; ++i) {
            address governor = _governors.at(i);
            if (_approvals[proposalId][governor] == _seatGeneration[governor]) ++approvals;
        }
    }

    /// @notice Whether `governor` approved `proposalId`.
    function hasApproved(uint256 proposalId, address governor) external view returns (bool) {
        return _governors.contains(governor) && _approvals[proposalId][governor] == _seatGeneration[governor];
    }

    /// @notice A proposal's stored fields.
    function proposalOf(uint256 proposalId) external view returns (Proposal memory) {
        return _proposals[proposalId];
    }

    // ---------------------------------------------------------------- governed changes (self only)

    /// @notice Add an account to the alliance allow-list. Proposal only.
    function allowAccount(address account) external onlySelf {
        if (!_allow(account)) revert AllianceGovernanceAlreadyAllowed(account);
    }

    /// @notice Remove an account from the allow-list and revoke every role it holds on the
    /// exchange, the anchor and every brand token. Proposal only.
    function disallowAccount(address account) external onlySelf {
        if (!_allowed.remove(account)) revert AllianceGovernanceNotAllowed(account);
        if (_governors.contains(account)) _removeGovernor(account);
        if (_guardians.contains(account)) _setGuardian(account, false);
        if (address(exchange) != address(0)) {
            IAllianceAccessControlled(address(exchange)).revokeAllRoles(account);
            IAllianceAccessControlled(settlementAnchor).revokeAllRoles(account);
        }
        uint256 count = _brands.length();
        for (uint256 i = 0; i < count; ++i) {
            IAllianceAccessControlled(_brands.at(i)).revokeAllRoles(account);
        }
        emit AccountDisallowed(account);
    }

    /// @notice Add a governor (also allow-listed). Proposal only.
    function addGovernor(address account) external onlySelf {
        if (_governors.length() >= GOVERNORS_MAX) {
            revert AllianceGovernanceInvalidThreshold(threshold, _governors.length() + 1);
        }
        _addGovernor(account);
    }

    /// @notice Remove a governor; the threshold must still be reachable. Proposal only.
    function removeGovernor(address account) external onlySelf {
        _removeGovernor(account);
    }

    /// @notice Change the approvals a proposal needs. Proposal only.
    function setThreshold(uint256 newThreshold) external onlySelf {
        _setThreshold(newThreshold);
    }

    /// @notice Grant or withdraw guardian powers. Proposal only.
    function setGuardian(address guardian, bool enabled) external onlySelf {
        _setGuardian(guardian, enabled);
    }

    /// @notice Set the exchange and settlement anchor this governance administers (once, or
    /// again to migrate to a new contract version). Proposal only.
    function setAllianceContracts(address exchange_, address settlementAnchor_) external onlySelf {
        if (exchange_ == address(0) || settlementAnchor_ == address(0)) revert AllianceGovernanceZeroAddress();
        exchange = IAllianceExchange(exchange_);
        settlementAnchor = settlementAnchor_;
        _allow(exchange_);
        _allow(settlementAnchor_);
        emit AllianceContractsSet(exchange_, settlementAnchor_);
    }

    /// @notice Admit a brand: record its token and list it on the exchange with its opening
    /// rate (effective at once: nobody holds the new brand's points yet). Proposal only.
    /// @param token The brand's point token, administered by this contract.
    /// @param rateValueUnits Alliance value units per point, scaled by 1e18.
    function registerBrand(address token, uint96 rateValueUnits) external onlySelf {
        if (address(exchange) == address(0)) revert AllianceGovernanceContractsNotSet();
        if (!_brands.add(token)) revert AllianceGovernanceBrandAlreadyRegistered(token);
        _allow(token);
        exchange.registerBrand(token, rateValueUnits);
        emit BrandRegistered(token, rateValueUnits);
    }

    // ---------------------------------------------------------------- guardian

    /// @notice Emergency stop: pause every brand token, which halts every deposit,
    /// withdrawal, conversion and gift. Unpausing needs a proposal. Guardian only.
    function pauseAll() external {
        _requireGuardian();
        uint256 count = _brands.length();
        for (uint256 i = 0; i < count; ++i) {
            IPointToken token = IPointToken(_brands.at(i));
            if (!token.paused()) token.pause();
        }
        emit AlliancePaused(msg.sender);
    }

    /// @notice Suspend one brand (pause its token) without stopping the others. Guardian only.
    /// @param token The brand's point token.
    function suspendBrand(address token) external {
        _requireGuardian();
        if (!_brands.contains(token)) revert AllianceGovernanceUnknownBrand(token);
        IPointToken(token).pause();
        emit BrandSuspended(token, msg.sender);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IAllianceGovernance
    function isAllowed(address account) external view returns (bool) {
        return _allowed.contains(account);
    }

    /// @notice Every allow-listed account, for node permissioning exports.
    function allowedAccounts() external view returns (address[] memory) {
        return _allowed.values();
    }

    /// @notice The current governors.
    function governors() external view returns (address[] memory) {
        return _governors.values();
    }

    /// @notice Whether `account` is a governor.
    function isGovernor(address account) external view returns (bool) {
        return _governors.contains(account);
    }

    /// @notice Whether `account` is a guardian.
    function isGuardian(address account) external view returns (bool) {
        return _guardians.contains(account);
    }

    /// @notice Every registered brand token.
    function brands() external view returns (address[] memory) {
        return _brands.values();
    }

    /// @inheritdoc IAllianceGovernance
    function isBrand(address token) external view returns (bool) {
        return _brands.contains(token);
    }

    // ---------------------------------------------------------------- internals

    function _approve(uint256 proposalId) private {
        uint256 generation = _seatGeneration[msg.sender];
        if (_approvals[proposalId][msg.sender] == generation) {
            revert AllianceGovernanceAlreadyApproved(proposalId, msg.sender);
        }
        _approvals[proposalId][msg.sender] = generation;
        emit ProposalApproved(proposalId, msg.sender, approvalCount(proposalId));
    }

    function _requireOpen(uint256 proposalId) private view returns (Proposal storage proposal) {
        proposal = _proposals[proposalId];
        if (proposal.proposer == address(0)) revert AllianceGovernanceUnknownProposal(proposalId);
        if (proposal.closed) revert AllianceGovernanceProposalClosed(proposalId);
        if (block.timestamp > proposal.expiresAt) {
            revert AllianceGovernanceProposalExpired(proposalId, proposal.expiresAt);
        }
    }

    function _requireGuardian() private view {
        if (!_guardians.contains(msg.sender)) revert AllianceGovernanceNotGuardian(msg.sender);
    }

    function _allow(address account) private returns (bool added) {
        if (account == address(0)) revert AllianceGovernanceZeroAddress();
        added = _allowed.add(account);
        if (added) emit AccountAllowed(account);
    }

    function _addGovernor(address account) private {
        if (!_governors.add(account)) revert AllianceGovernanceAlreadyGovernor(account);
        ++_seatGeneration[account]; // generations start at 1, so 0 never reads as an approval
        _allow(account);
        emit GovernorAdded(account);
    }

    function _removeGovernor(address account) private {
        if (!_governors.remove(account)) revert AllianceGovernanceUnknownGovernor(account);
        if (threshold > _governors.length()) {
            revert AllianceGovernanceInvalidThreshold(threshold, _governors.length());
        }
        emit GovernorRemoved(account);
    }

    function _setThreshold(uint256 newThreshold) private {
        // Dual control: a single governor may never act alone.
        if (newThreshold < 2 || newThreshold > _governors.length()) {
            revert AllianceGovernanceInvalidThreshold(newThreshold, _governors.length());
        }
        uint256 previous = threshold;
        threshold = newThreshold;
        emit ThresholdChanged(previous, newThreshold);
    }

    function _setGuardian(address guardian, bool enabled) private {
        if (enabled) {
            _guardians.add(guardian);
            _allow(guardian);
        } else {
            _guardians.remove(guardian);
        }
        emit GuardianSet(guardian, enabled);
    }
}
