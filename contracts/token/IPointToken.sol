// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IPointToken
/// @notice Events, errors and the alliance-facing surface of a brand's point token.
/// Every issuer mint and burn carries a request id the token refuses to see twice and a
/// reason code; conversion and gift movements are made by the exchange, which records the
/// request id in its own event in the same transaction.
interface IPointToken {
    /// @notice Why points were created or destroyed. Stable codes: auditors key on them.
    enum Reason {
        None, // 0: never valid; guards against a defaulted argument
        Deposit, // 1: brand-internal points moved onto the ledger
        Withdrawal, // 2: points moved back into the brand's own programme
        Conversion, // 3: burned or minted by the exchange (see AllianceExchange.Converted)
        Expiry, // 4: expired under the brand's policy
        Correction // 5: fix after a dispute or error; needs two approvers
    }

    /// @notice What earned the member the deposited points ("every mint says why").
    enum Source {
        None, // 0: used by burns, and for conversions
        Spend, // 1: earned by spending with the brand
        Campaign, // 2: a marketing campaign
        Referral, // 3: a referral reward
        Compensation // 4: compensation after an outage or dispute; needs two approvers
    }

    /// @notice Points were minted by the brand's issuer.
    /// @param brandRef Hash of the brand's own transaction id (never the raw id: no personal data).
    event PointsMinted(
        uint256 indexed requestId, address indexed account, uint256 amount, Reason reason, Source source, bytes32 brandRef
    );
    /// @notice Points were burned by the brand's issuer.
    event PointsBurned(
        uint256 indexed requestId, address indexed account, uint256 amount, Reason reason, bytes32 brandRef
    );
    /// @notice An issuer proposed a mint or burn that needs a second approver.
    event ApprovalRequested(
        uint256 indexed requestId,
        address indexed account,
        int256 amountDelta,
        Reason reason,
        Source source,
        bytes32 brandRef,
        address proposer
    );
    /// @notice A pending approval request was withdrawn; its request id stays used.
    event ApprovalCancelled(uint256 indexed requestId, address cancelledBy);
    /// @notice The brand turned member-to-member gifting on or off.
    event GiftingChanged(bool enabled);
    /// @notice The exchange allowed to move this token's points changed (contract migration).
    event ExchangeChanged(address previousExchange, address newExchange);

    /// @notice The request id was already processed by this token.
    error PointTokenRequestAlreadyProcessed(uint256 requestId);
    /// @notice Plain ERC-20 transfers and allowances are disabled; points move through the
    /// issuer or the exchange only.
    error PointTokenTransfersDisabled();
    /// @notice The brand does not allow member-to-member gifting.
    error PointTokenGiftingDisabled();
    /// @notice The account is frozen.
    error PointTokenAccountFrozen(address account);
    /// @notice Only the alliance exchange may call this.
    error PointTokenNotExchange(address caller);
    /// @notice The reason (or source) is not valid for this entry point.
    error PointTokenInvalidReason(Reason reason, Source source);
    /// @notice Compensation and correction need two approvers: use requestApproval.
    error PointTokenApprovalRequired(Reason reason, Source source);
    /// @notice No pending approval request with this id.
    error PointTokenUnknownApprovalRequest(uint256 requestId);
    /// @notice The second approver must differ from the first.
    error PointTokenSelfApproval(address account);
    /// @notice Roles may only be granted to allow-listed accounts.
    error PointTokenAccountNotAllowed(address account);
    /// @notice The exchange must be a non-zero, allow-listed alliance contract.
    error PointTokenInvalidExchange(address exchange);
    /// @notice Amounts must be positive.
    error PointTokenZeroAmount();

    /// @notice Burn `amount` from `account` for a conversion. Exchange only.
    function exchangeBurn(address account, uint256 amount) external;
    /// @notice Mint `amount` to `account` for a conversion. Exchange only.
    function exchangeMint(address account, uint256 amount) external;
    /// @notice Move `amount` between members as a gift (if the brand allows). Exchange only.
    function exchangeTransfer(address from, address to, uint256 amount) external;
    /// @notice Pause this token (brand suspension). Guardian role only.
    function pause() external;
    /// @notice Whether the token is paused.
    function paused() external view returns (bool);
    /// @notice Whether the token has processed `requestId`.
    function isRequestProcessed(uint256 requestId) external view returns (bool);
}

/// @title IMemberFreezes
/// @notice Where a brand token asks whether one of its members is frozen.
interface IMemberFreezes {
    /// @notice Whether `member` is frozen at the brand `token`.
    function isFrozen(address token, address member) external view returns (bool);
}
