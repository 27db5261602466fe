// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ISettlementAnchor} from "./ISettlementAnchor.sol";
import {IAllianceGovernance, IAllianceAccessControlled} from "../governance/IAllianceGovernance.sol";

/// @title SettlementAnchor
/// @notice Where the nightly settlement writes each period's result: a Merkle root of every
/// balance at the period's closing block and a hash of the brands' statements. Each brand
/// acknowledges the period on chain once it has checked its statement. An anchor is written
/// once and never changed; re-running settlement must reproduce it.
contract SettlementAnchor is AccessControl, ISettlementAnchor, IAllianceAccessControlled {
    /// @notice Writes anchors (the settlement service's key).
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    /// @notice The brand administrator role, checked on the brand's own token.
    bytes32 public constant BRAND_ADMIN_ROLE = keccak256("BRAND_ADMIN_ROLE");

    IAllianceGovernance public immutable governance;
    /// @notice The closing block of the most recently anchored period.
    uint64 public lastClosingBlock;
    mapping(uint256 periodId => Anchor) private _anchors;
    mapping(uint256 periodId => mapping(address token => bool)) private _acknowledged;

    /// @param governance_ The alliance governance; holds the admin role.
    constructor(IAllianceGovernance governance_) {
        governance = governance_;
        _grantRole(DEFAULT_ADMIN_ROLE, address(governance_));
    }

    /// @notice Anchor a settlement period. Settler only; once per period.
    /// @param periodId The period, as the local calendar date yyyymmdd (e.g. 20261122).
    /// @param closingBlock The last block of the period; a past block after the previous period's.
    /// @param balancesRoot Merkle root over (account, token, balance) at `closingBlock`.
    /// @param statementsHash Hash of the period's published statements.
    function anchor(uint256 periodId, uint64 closingBlock, bytes32 balancesRoot, bytes32 statementsHash)
        external
        onlyRole(SETTLER_ROLE)
    {
        Anchor storage existing = _anchors[periodId];
        if (existing.anchoredAt != 0) {
            revert SettlementAnchorAlreadyAnchored(periodId, existing.balancesRoot, existing.statementsHash);
        }
        if (balancesRoot == bytes32(0) || statementsHash == bytes32(0)) revert SettlementAnchorEmptyAnchor();
        if (closingBlock >= block.number || closingBlock <= lastClosingBlock) {
            revert SettlementAnchorInvalidClosingBlock(closingBlock, lastClosingBlock, block.number);
        }
        lastClosingBlock = closingBlock;
        _anchors[periodId] = Anchor(closingBlock, uint48(block.timestamp), balancesRoot, statementsHash);
        emit PeriodAnchored(periodId, closingBlock, balancesRoot, statementsHash, msg.sender);
    }

    /// @notice Acknowledge an anchored period on behalf of a brand. Brand admin only.
    /// @param periodId The anchored period.
    /// @param token The acknowledging brand's point token.
    function acknowledge(uint256 periodId, address token) external {
        if (_anchors[periodId].anchoredAt == 0) revert SettlementAnchorUnknownPeriod(periodId);
        if (!governance.isBrand(token) || !IAccessControl(token).hasRole(BRAND_ADMIN_ROLE, msg.sender)) {
            revert SettlementAnchorNotBrandAdmin(token, msg.sender);
        }
        if (_acknowledged[periodId][token]) revert SettlementAnchorAlreadyAcknowledged(periodId, token);
        _acknowledged[periodId][token] = true;
        emit PeriodAcknowledged(periodId, token, msg.sender);
    }

    /// @notice The anchor of `periodId` (all zero when not anchored).
    function anchorOf(uint256 periodId) external view returns (Anchor memory) {
        return _anchors[periodId];
    }

    /// @notice Whether the brand `token` acknowledged `periodId`.
    function isAcknowledged(uint256 periodId, address token) external view returns (bool) {
        return _acknowledged[periodId][token];
    }

    /// @inheritdoc IAllianceAccessControlled
    function revokeAllRoles(address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _revokeRole(SETTLER_ROLE, account);
        _revokeRole(DEFAULT_ADMIN_ROLE, account);
    }

    /// @dev Roles only ever go to allow-listed accounts (see PointToken._grantRole).
    function _grantRole(bytes32 role, address account) internal override returns (bool) {
        if (!governance.isAllowed(account)) revert SettlementAnchorAccountNotAllowed(account);
        return super._grantRole(role, account);
    }
}
