// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IAllianceExchange
/// @notice Types, events and errors of the alliance exchange, its rate book and its pair
/// policies. Events carry everything settlement and auditors need to re-derive each
/// conversion from the chain alone: both rates in force, the fee rate, the value moved.
interface IAllianceExchange {
    /// @notice A member's request to convert points of one brand into another's.
    struct ConversionRequest {
        uint256 requestId;
        address member;
        address fromToken;
        address toToken;
        uint256 amountIn;
        uint256 minAmountOut;
        uint256 deadline;
    }

    /// @notice A member's request to gift points of one brand to another member.
    struct GiftRequest {
        uint256 requestId;
        address token;
        address from;
        address to;
        uint256 amount;
        uint256 deadline;
    }

    /// @notice One version in a brand's rate history.
    struct RateVersion {
        uint96 rateValueUnits;
        uint48 effectiveAt;
        uint48 scheduledAt;
    }

    /// @notice A receiving brand's policy for conversions from one sending brand, with today's usage.
    struct PairPolicyView {
        bool enabled;
        uint16 feeBps;
        uint40 minAmountOut;
        uint40 maxAmountOut;
        uint48 dailyCap;
        uint48 inflowToday;
    }

    /// @notice A brand was listed with its opening rate, effective immediately (version 0).
    event BrandListed(address indexed token, uint96 rateValueUnits);
    /// @notice A brand scheduled a new rate, effective after the notice period.
    event RateScheduled(
        address indexed token, uint256 indexed version, uint96 rateValueUnits, uint48 effectiveAt, address scheduledBy
    );
    /// @notice A brand cancelled its scheduled rate before it took effect.
    event RateCancelled(address indexed token, uint256 indexed version, uint96 rateValueUnits, uint48 effectiveAt);
    /// @notice Governance changed the rate notice period.
    event NoticePeriodChanged(uint48 previousPeriod, uint48 newPeriod);
    /// @notice The receiving brand `toToken` set its policy for conversions from `fromToken`.
    event PairPolicySet(
        address indexed fromToken,
        address indexed toToken,
        bool enabled,
        uint16 feeBps,
        uint40 minAmountOut,
        uint40 maxAmountOut,
        uint48 dailyCap,
        address setBy
    );
    /// @notice Points converted: `amountIn` of `fromToken` burned, `amountOut` of `toToken` minted.
    /// @param valueIn Value units (scaled by 1e18) that left the sending brand: amountIn * rateFrom.
    event Converted(
        uint256 indexed requestId,
        address indexed member,
        address indexed fromToken,
        address toToken,
        uint256 amountIn,
        uint256 amountOut,
        uint256 feePoints,
        uint256 valueIn,
        uint96 rateFrom,
        uint96 rateTo,
        uint16 feeBps
    );
    /// @notice A batch item failed and was skipped; nothing of it was applied and its request
    /// id stays unused. `reason` is the revert data (a custom error of this or a token contract).
    event ConversionRejected(uint256 indexed requestId, address indexed member, bytes reason);
    /// @notice Points gifted between members of the same brand.
    event Gifted(uint256 indexed requestId, address indexed token, address indexed from, address to, uint256 amount);
    /// @notice A brand freezer asked to freeze (or unfreeze) a member at that brand.
    event FreezeRequested(address indexed token, address indexed member, bool frozen, address requestedBy);
    /// @notice A member's frozen state at a brand changed after two different freezers agreed.
    event FreezeChanged(
        address indexed token, address indexed member, bool frozen, address requestedBy, address approvedBy
    );
    /// @notice A brand freezer withdrew a pending freeze (or unfreeze) request.
    event FreezeRequestCancelled(address indexed token, address indexed member, bool frozen, address cancelledBy);
    /// @notice A member switched between custodial (operator-authorised) and self-custody
    /// (signature-authorised) accounts.
    event SelfCustodySet(address indexed member, bool enabled);

    /// @notice The token is not a listed brand.
    error ExchangeUnknownBrand(address token);
    /// @notice The token is already listed.
    error ExchangeBrandAlreadyListed(address token);
    /// @notice The request id was already processed.
    error ExchangeRequestAlreadyProcessed(uint256 requestId);
    /// @notice The request's deadline has passed.
    error ExchangeDeadlinePassed(uint256 deadline, uint256 timestamp);
    /// @notice Amount in must be positive and at most `max`.
    error ExchangeInvalidAmount(uint256 amount, uint256 max);
    /// @notice A conversion needs two different brands.
    error ExchangeSameBrand(address token);
    /// @notice The receiving brand does not accept conversions from the sending brand.
    error ExchangePairDisabled(address fromToken, address toToken);
    /// @notice Amount out is below the pair's minimum (at least one point).
    error ExchangeBelowMinimum(uint256 amountOut, uint256 minAmountOut);
    /// @notice Amount out is above the pair's per-conversion maximum.
    error ExchangeAboveMaximum(uint256 amountOut, uint256 maxAmountOut);
    /// @notice The pair's daily inflow cap would be exceeded.
    error ExchangeDailyCapExceeded(uint256 inflowToday, uint256 amountOut, uint256 dailyCap);
    /// @notice Amount out is below the member's minimum (the rate moved against them).
    error ExchangeInsufficientOutput(uint256 amountOut, uint256 minAmountOut);
    /// @notice The member is self-custodied: only their signature authorises a movement.
    error ExchangeSelfCustodied(address member);
    /// @notice The signature does not come from the member.
    error ExchangeInvalidSignature(address member, address signer);
    /// @notice The batch is empty, too long, or its signatures do not line up with its requests.
    error ExchangeInvalidBatch(uint256 requests, uint256 signatures, uint256 max);
    /// @notice Only the exchange itself may call this (batch item isolation).
    error ExchangeOnlySelf(address caller);
    /// @notice The member is frozen at this brand: no conversion or gift out of it.
    error ExchangeAccountFrozen(address token, address member);
    /// @notice The member is already in the requested frozen state at this brand.
    error ExchangeFreezeUnchanged(address token, address member, bool frozen);
    /// @notice There is no pending freeze request to cancel.
    error ExchangeNoFreezeRequest(address token, address member, bool frozen);
    /// @notice A second approval must come from a different account than the first.
    error ExchangeSelfApproval(address account);
    /// @notice The caller does not hold the brand's freezer role.
    error ExchangeNotBrandFreezer(address token, address account);
    /// @notice The exchange lists at most `max` brands (one freeze bit each per member).
    error ExchangeTooManyBrands(uint256 max);
    /// @notice The caller is not the brand's administrator.
    error ExchangeNotBrandAdmin(address token, address account);
    /// @notice Roles may only be granted to allow-listed accounts.
    error ExchangeAccountNotAllowed(address account);
    /// @notice The rate must be positive and fit the rate type.
    error RateBookInvalidRate(uint256 rateValueUnits);
    /// @notice A new rate must respect the notice period.
    error RateBookEffectiveTooSoon(uint48 effectiveAt, uint48 earliest);
    /// @notice The brand already has a rate waiting to take effect; cancel it first.
    error RateBookAlreadyScheduled(address token, uint96 rateValueUnits, uint48 effectiveAt);
    /// @notice There is no scheduled rate to cancel (or it already took effect).
    error RateBookNothingScheduled(address token);
    /// @notice The notice period is outside governance's allowed bounds.
    error RateBookInvalidNoticePeriod(uint48 period, uint48 min, uint48 max);
    /// @notice The asked-for time is before the brand was listed.
    error RateBookNoRateAt(address token, uint48 timestamp);
    /// @notice Pair policy values are inconsistent (fee above 100%, minimum above maximum).
    error PairPolicyInvalid(uint16 feeBps, uint40 minAmountOut, uint40 maxAmountOut);

    /// @notice List a brand's token with its opening rate. Governance only.
    function registerBrand(address token, uint96 rateValueUnits) external;
}
