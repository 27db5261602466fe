// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IAllianceGovernance
/// @notice Events, errors and the read surface of the alliance's M-of-N governance: the
/// governor set and threshold, the alliance allow-list, the guardian, and the registry of
/// brand point tokens.
interface IAllianceGovernance {
    /// @notice One call inside a proposal.
    struct Call {
        address target;
        bytes data;
    }

    /// @notice A governor proposed a batch of calls; the proposer's approval is counted.
    event ProposalCreated(
        uint256 indexed proposalId, address indexed proposer, bytes32 callsHash, uint48 expiresAt, string description
    );
    /// @notice A governor approved a proposal.
    event ProposalApproved(uint256 indexed proposalId, address indexed governor, uint256 approvals);
    /// @notice A proposal reached the threshold and all its calls ran.
    event ProposalExecuted(uint256 indexed proposalId, address indexed executor);
    /// @notice The proposer withdrew a proposal before it ran.
    event ProposalCancelled(uint256 indexed proposalId);
    /// @notice An account joined the alliance allow-list.
    event AccountAllowed(address indexed account);
    /// @notice An account left the alliance allow-list; its roles on every alliance contract,
    /// its governor seat and its guardian powers were revoked.
    event AccountDisallowed(address indexed account);
    /// @notice The governor set changed.
    event GovernorAdded(address indexed governor);
    /// @notice The governor set changed.
    event GovernorRemoved(address indexed governor);
    /// @notice The number of approvals a proposal needs changed.
    event ThresholdChanged(uint256 previousThreshold, uint256 newThreshold);
    /// @notice An account gained or lost the guardian's emergency powers.
    event GuardianSet(address indexed guardian, bool enabled);
    /// @notice The exchange and settlement anchor this governance administers were set.
    event AllianceContractsSet(address exchange, address settlementAnchor);
    /// @notice A brand joined the alliance with its point token and opening rate.
    event BrandRegistered(address indexed token, uint96 rateValueUnits);
    /// @notice The guardian suspended one brand (its token is paused).
    event BrandSuspended(address indexed token, address indexed guardian);
    /// @notice The guardian paused every brand token.
    event AlliancePaused(address indexed guardian);

    /// @notice The caller is not a governor.
    error AllianceGovernanceNotGovernor(address account);
    /// @notice The caller is not a guardian.
    error AllianceGovernanceNotGuardian(address account);
    /// @notice This function only runs as part of an approved proposal.
    error AllianceGovernanceOnlySelf(address caller);
    /// @notice No proposal with this id exists.
    error AllianceGovernanceUnknownProposal(uint256 proposalId);
    /// @notice The governor already approved this proposal.
    error AllianceGovernanceAlreadyApproved(uint256 proposalId, address governor);
    /// @notice The proposal already ran or was cancelled.
    error AllianceGovernanceProposalClosed(uint256 proposalId);
    /// @notice The proposal's approval window has passed.
    error AllianceGovernanceProposalExpired(uint256 proposalId, uint48 expiresAt);
    /// @notice The proposal has fewer current-governor approvals than the threshold.
    error AllianceGovernanceNotEnoughApprovals(uint256 proposalId, uint256 approvals, uint256 threshold);
    /// @notice Only the proposer may cancel.
    error AllianceGovernanceNotProposer(uint256 proposalId, address caller);
    /// @notice A proposal must contain at least one call and at most the limit.
    error AllianceGovernanceInvalidCallCount(uint256 count, uint256 max);
    /// @notice The threshold must be at least two (dual control) and at most the governor count.
    error AllianceGovernanceInvalidThreshold(uint256 threshold, uint256 governors);
    /// @notice The account is already a governor.
    error AllianceGovernanceAlreadyGovernor(address account);
    /// @notice The account is not a governor.
    error AllianceGovernanceUnknownGovernor(address account);
    /// @notice The account is already on the allow-list.
    error AllianceGovernanceAlreadyAllowed(address account);
    /// @notice The account is not on the allow-list.
    error AllianceGovernanceNotAllowed(address account);
    /// @notice The brand token is already registered.
    error AllianceGovernanceBrandAlreadyRegistered(address token);
    /// @notice The token is not a registered brand.
    error AllianceGovernanceUnknownBrand(address token);
    /// @notice The exchange and anchor are not set yet.
    error AllianceGovernanceContractsNotSet();
    /// @notice The zero address cannot take this part.
    error AllianceGovernanceZeroAddress();

    /// @notice Whether `account` is on the alliance allow-list.
    function isAllowed(address account) external view returns (bool);

    /// @notice Whether `token` is a registered brand's point token.
    function isBrand(address token) external view returns (bool);
}

/// @title IAllianceAccessControlled
/// @notice Implemented by every alliance contract that grants roles, so that governance can
/// strip every role from an account it removes from the allow-list.
interface IAllianceAccessControlled {
    /// @notice Revoke every role `account` holds on this contract. Governance only.
    function revokeAllRoles(address account) external;
}
