// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {BitMaps} from "@openzeppelin/contracts/utils/structs/BitMaps.sol";
import {IPointToken, IMemberFreezes} from "./IPointToken.sol";
import {IAllianceGovernance, IAllianceAccessControlled} from "../governance/IAllianceGovernance.sol";

/// @title PointToken
/// @notice One brand's loyalty points as an ERC-20 with zero decimals (integer points).
/// Only the brand's issuers mint and burn, each time with a unique request id and a reason
/// code; only the alliance exchange moves points for conversions and gifts. Plain transfers
/// and allowances are disabled: members never hold keys in the custodial model, and every
/// movement must be explainable from events. Member freezes are kept by the exchange (one
/// storage word per member covers every brand); a frozen member cannot withdraw here.
contract PointToken is ERC20, AccessControl, Pausable, IPointToken, IAllianceAccessControlled {
    using BitMaps for BitMaps.BitMap;

    /// @notice Mints deposits and burns withdrawals and expiries; proposes corrections.
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");
    /// @notice Second approver for compensation and correction requests.
    bytes32 public constant APPROVER_ROLE = keccak256("APPROVER_ROLE");
    /// @notice Freezes and unfreezes this brand's members on the exchange, two freezers per change.
    bytes32 public constant FREEZER_ROLE = keccak256("FREEZER_ROLE");
    /// @notice The brand's own administrator: gifting, rates, pair policies, acknowledgements.
    bytes32 public constant BRAND_ADMIN_ROLE = keccak256("BRAND_ADMIN_ROLE");
    /// @notice May pause (suspend) the token; unpausing needs the admin (governance).
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    struct PendingApproval {
        address account;
        address proposer;
        int256 amountDelta;
        Reason reason;
        Source source;
        bytes32 brandRef;
    }

    // Declared right after Pausable's `_paused` so the exchange check, the pause check and
    // the gifting flag share one storage slot: the conversion path reads it once per token.
    address private _exchange;
    bool private _giftingEnabled;

    IAllianceGovernance public immutable governance;
    BitMaps.BitMap private _processedRequests;
    mapping(uint256 requestId => PendingApproval) private _pendingApprovals;

    modifier onlyExchange() {
        if (msg.sender != _exchange) revert PointTokenNotExchange(msg.sender);
        _;
    }

    /// @param name_ ERC-20 name, e.g. "Coffee Club Points".
    /// @param symbol_ ERC-20 symbol, e.g. "COFFEE".
    /// @param governance_ The alliance governance; holds the admin role.
    /// @param exchange_ The alliance exchange allowed to move points.
    /// @param brandAdmin The brand's administrator account (must be allow-listed).
    constructor(
        string memory name_,
        string memory symbol_,
        IAllianceGovernance governance_,
        address exchange_,
        address brandAdmin
    ) ERC20(name_, symbol_) {
        governance = governance_;
        _exchange = exchange_;
        _grantRole(DEFAULT_ADMIN_ROLE, address(governance_));
        _grantRole(GUARDIAN_ROLE, address(governance_));
        _grantRole(BRAND_ADMIN_ROLE, brandAdmin);
        // Every other role is granted and revoked by governance (M-of-N dual control).
    }

    // ---------------------------------------------------------------- issuer

    /// @notice Mint points to a member's account against a brand transaction.
    /// @param account The member's alliance account.
    /// @param amount Points to mint.
    /// @param requestId Unique id; a second use reverts.
    /// @param source Why the member earned them; compensation needs two approvers.
    /// @param brandRef Hash of the brand's own transaction id.
    function mint(address account, uint256 amount, uint256 requestId, Source source, bytes32 brandRef)
        external
        onlyRole(ISSUER_ROLE)
    {
        if (source == Source.None) revert PointTokenInvalidReason(Reason.Deposit, source);
        if (source == Source.Compensation) revert PointTokenApprovalRequired(Reason.Deposit, source);
        _useRequest(requestId);
        _mintPoints(account, amount, requestId, Reason.Deposit, source, brandRef);
    }

    /// @notice Burn a member's points for a withdrawal to the brand's programme or an expiry.
    /// @param account The member's alliance account.
    /// @param amount Points to burn.
    /// @param requestId Unique id; a second use reverts.
    /// @param reason Withdrawal or Expiry (corrections need two approvers).
    /// @param brandRef Hash of the brand's own transaction id.
    function burn(address account, uint256 amount, uint256 requestId, Reason reason, bytes32 brandRef)
        external
        onlyRole(ISSUER_ROLE)
    {
        if (reason == Reason.Correction) revert PointTokenApprovalRequired(reason, Source.None);
        if (reason != Reason.Withdrawal && reason != Reason.Expiry) revert PointTokenInvalidReason(reason, Source.None);
        // A frozen member cannot withdraw; expiry is the brand's policy and still applies.
        if (reason == Reason.Withdrawal && IMemberFreezes(_exchange).isFrozen(address(this), account)) {
            revert PointTokenAccountFrozen(account);
        }
        _useRequest(requestId);
        _burnPoints(account, amount, requestId, reason, brandRef);
    }

    /// @notice First step of a compensation or correction: an issuer proposes it.
    /// @param amountDelta Positive to mint, negative to burn (burns are corrections only).
    /// @param reason Deposit (with source Compensation) or Correction.
    function requestApproval(
        uint256 requestId,
        address account,
        int256 amountDelta,
        Reason reason,
        Source source,
        bytes32 brandRef
    ) external onlyRole(ISSUER_ROLE) {
        bool compensation = reason == Reason.Deposit && source == Source.Compensation && amountDelta > 0;
        bool correction = reason == Reason.Correction && source == Source.None;
        if (!compensation && !correction) revert PointTokenInvalidReason(reason, source);
        if (amountDelta == 0) revert PointTokenZeroAmount();
        // The request id is used from now on, so no plain mint or burn can take it while the
        // request waits for its second approver.
        _useRequest(requestId);
        _pendingApprovals[requestId] = PendingApproval(account, msg.sender, amountDelta, reason, source, brandRef);
        emit ApprovalRequested(requestId, account, amountDelta, reason, source, brandRef, msg.sender);
    }

    /// @notice Second step: a different approver executes the pending request.
    /// @param requestId The pending request's id.
    function approveRequest(uint256 requestId) external onlyRole(APPROVER_ROLE) {
        PendingApproval memory pending = _pendingApprovals[requestId];
        if (pending.proposer == address(0)) revert PointTokenUnknownApprovalRequest(requestId);
        if (pending.proposer == msg.sender) revert PointTokenSelfApproval(msg.sender);
        delete _pendingApprovals[requestId];
        if (pending.amountDelta > 0) {
            _mintPoints(
                pending.account, uint256(pending.amountDelta), requestId, pending.reason, pending.source, pending.brandRef
            );
        } else {
            _burnPoints(pending.account, uint256(-pending.amountDelta), requestId, pending.reason, pending.brandRef);
        }
    }

    /// @notice Withdraw a pending compensation or correction request. Its request id stays
    /// used (it was published with the request). Issuers and approvers only.
    /// @param requestId The pending request's id.
    function cancelApprovalRequest(uint256 requestId) external {
        if (!hasRole(ISSUER_ROLE, msg.sender) && !hasRole(APPROVER_ROLE, msg.sender)) {
            revert AccessControlUnauthorizedAccount(msg.sender, APPROVER_ROLE);
        }
        if (_pendingApprovals[requestId].proposer == address(0)) revert PointTokenUnknownApprovalRequest(requestId);
        delete _pendingApprovals[requestId];
        emit ApprovalCancelled(requestId, msg.sender);
    }

    // ---------------------------------------------------------------- exchange

    /// @inheritdoc IPointToken
    function exchangeBurn(address account, uint256 amount) external onlyExchange {
        _burn(account, amount);
    }

    /// @inheritdoc IPointToken
    function exchangeMint(address account, uint256 amount) external onlyExchange {
        _mint(account, amount);
    }

    /// @inheritdoc IPointToken
    function exchangeTransfer(address from, address to, uint256 amount) external onlyExchange {
        if (!_giftingEnabled) revert PointTokenGiftingDisabled();
        _transfer(from, to, amount);
    }

    // ---------------------------------------------------------------- brand and governance settings

    /// @notice Allow or forbid member-to-member gifting of this brand's points. Brand admin only.
    function setGiftingEnabled(bool enabled) external onlyRole(BRAND_ADMIN_ROLE) {
        _giftingEnabled = enabled;
        emit GiftingChanged(enabled);
    }

    /// @notice Point the token at a new exchange (contract migration). Governance only.
    function setExchange(address newExchange) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (newExchange == address(0) || !governance.isAllowed(newExchange)) revert PointTokenInvalidExchange(newExchange);
        address previous = _exchange;
        _exchange = newExchange;
        emit ExchangeChanged(previous, newExchange);
    }

    /// @inheritdoc IPointToken
    function pause() external onlyRole(GUARDIAN_ROLE) {
        _pause();
    }

    /// @notice Lift a pause or suspension. Governance (M-of-N) only.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    /// @inheritdoc IAllianceAccessControlled
    function revokeAllRoles(address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _revokeRole(ISSUER_ROLE, account);
        _revokeRole(APPROVER_ROLE, account);
        _revokeRole(FREEZER_ROLE, account);
        _revokeRole(BRAND_ADMIN_ROLE, account);
        _revokeRole(GUARDIAN_ROLE, account);
        _revokeRole(DEFAULT_ADMIN_ROLE, account);
    }

    // ---------------------------------------------------------------- views

    /// @notice Points are whole numbers.
    function decimals() public pure override returns (uint8) {
        return 0;
    }

    /// @notice The exchange allowed to move points.
    function exchange() external view returns (address) {
        return _exchange;
    }

    /// @notice Whether members may gift these points to each other.
    function giftingEnabled() external view returns (bool) {
        return _giftingEnabled;
    }

    /// @inheritdoc IPointToken
    function isRequestProcessed(uint256 requestId) external view returns (bool) {
        return _processedRequests.get(requestId);
    }

    /// @notice A pending compensation or correction request.
    function pendingApproval(uint256 requestId) external view returns (PendingApproval memory) {
        return _pendingApprovals[requestId];
    }

    /// @inheritdoc IPointToken
    function paused() public view override(IPointToken, Pausable) returns (bool) {
        return super.paused();
    }

    // ---------------------------------------------------------------- disabled ERC-20 surface

    /// @notice Disabled: points move through the issuer or the exchange only.
    function transfer(address, uint256) public pure override returns (bool) {
        revert PointTokenTransfersDisabled();
    }

    /// @notice Disabled: points move through the issuer or the exchange only.
    function transferFrom(address, address, uint256) public pure override returns (bool) {
        revert PointTokenTransfersDisabled();
    }

    /// @notice Disabled: there are no allowances.
    function approve(address, uint256) public pure override returns (bool) {
        revert PointTokenTransfersDisabled();
    }

    // ---------------------------------------------------------------- internals

    function _useRequest(uint256 requestId) private {
        if (_processedRequests.get(requestId)) revert PointTokenRequestAlreadyProcessed(requestId);
        _processedRequests.set(requestId);
    }

    function _mintPoints(
        address account,
        uint256 amount,
        uint256 requestId,
        Reason reason,
        Source source,
        bytes32 brandRef
    ) private {
        if (amount == 0) revert PointTokenZeroAmount();
        _mint(account, amount);
        emit PointsMinted(requestId, account, amount, reason, source, brandRef);
    }

    function _burnPoints(address account, uint256 amount, uint256 requestId, Reason reason, bytes32 brandRef)
        private
    {
        if (amount == 0) revert PointTokenZeroAmount();
        _burn(account, amount);
        emit PointsBurned(requestId, account, amount, reason, brandRef);
    }

    /// @dev Every balance change passes here: a paused (suspended) brand moves no points.
    function _update(address from, address to, uint256 value) internal override whenNotPaused {
        super._update(from, to, value);
    }

    /// @dev Roles only ever go to allow-listed accounts, so holding a role implies being on
    /// the allow-list and the hot paths need no extra cross-contract check.
    function _grantRole(bytes32 role, address account) internal override returns (bool) {
        if (!governance.isAllowed(account)) revert PointTokenAccountNotAllowed(account);
        return super._grantRole(role, account);
    }
}
