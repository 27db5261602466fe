// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ISettlementAnchor
/// @notice Events and errors of the settlement anchor.
interface ISettlementAnchor {
    /// @notice One anchored settlement period.
    struct Anchor {
        uint64 closingBlock;
        uint48 anchoredAt;
        bytes32 balancesRoot;
        bytes32 statementsHash;
    }

    /// @notice The settlement service anchored a period: a Merkle root over
    /// (account, brand token, balance) at `closingBlock` and a hash of the period's statements.
    event PeriodAnchored(
        uint256 indexed periodId, uint64 closingBlock, bytes32 balancesRoot, bytes32 statementsHash, address settler
    );
    /// @notice A brand acknowledged an anchored period's statements.
    event PeriodAcknowledged(uint256 indexed periodId, address indexed token, address acknowledgedBy);

    /// @notice The period is already anchored; a re-run must produce the same anchor.
    error SettlementAnchorAlreadyAnchored(uint256 periodId, bytes32 balancesRoot, bytes32 statementsHash);
    /// @notice The period has no anchor yet.
    error SettlementAnchorUnknownPeriod(uint256 periodId);
    /// @notice The closing block must be a past block, later than the previous period's.
    error SettlementAnchorInvalidClosingBlock(uint64 closingBlock, uint64 previousClosingBlock, uint256 currentBlock);
    /// @notice The root and statements hash must be non-zero.
    error SettlementAnchorEmptyAnchor();
    /// @notice The brand already acknowledged this period.
    error SettlementAnchorAlreadyAcknowledged(uint256 periodId, address token);
    /// @notice The caller is not the brand's administrator.
    error SettlementAnchorNotBrandAdmin(address token, address account);
    /// @notice Roles may only be granted to allow-listed accounts.
    error SettlementAnchorAccountNotAllowed(address account);
}
