// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAllianceExchange} from "./IAllianceExchange.sol";

/// @title PairPolicies
/// @notice The receiving brand's control over what flows into it from each sending brand:
/// enabled, fee, per-conversion minimum and maximum, and a daily inflow cap. Limits are in
/// the receiving brand's points (amount out), since they bound its liability.
/// @dev Policy and today's usage share one slot, read and written once per conversion.
/// "Today" is the UTC day of the block timestamp.
abstract contract PairPolicies is IAllianceExchange {
    uint256 private constant DAY_S = 1 days;

    struct PairPolicy {
        bool enabled;
        uint16 feeBps;
        uint40 minAmountOut; // 0 means the implicit minimum of one point
        uint40 maxAmountOut; // 0 means no per-conversion maximum
        uint48 dailyCap; // 0 means no daily cap
        uint32 day;
        uint48 inflowToday;
    }

    mapping(address fromToken => mapping(address toToken => PairPolicy)) private _pairPolicies;

    /// @notice The policy for conversions from `fromToken` into `toToken`, with today's inflow.
    function pairPolicy(address fromToken, address toToken) external view returns (PairPolicyView memory) {
        PairPolicy memory policy = _pairPolicies[fromToken][toToken];
        uint48 inflowToday = policy.day == _today() ? policy.inflowToday : 0;
        return PairPolicyView(
            policy.enabled, policy.feeBps, policy.minAmountOut, policy.maxAmountOut, policy.dailyCap, inflowToday
        );
    }

    function _setPairPolicy(
        address fromToken,
        address toToken,
        bool enabled,
        uint16 feeBps,
        uint40 minAmountOut,
        uint40 maxAmountOut,
        uint48 dailyCap
    ) internal {
        if (feeBps > 10_000 || (maxAmountOut != 0 && minAmountOut > maxAmountOut)) {
            revert PairPolicyInvalid(feeBps, minAmountOut, maxAmountOut);
        }
        PairPolicy storage policy = _pairPolicies[fromToken][toToken];
        // Today's usage survives a policy change, so lowering the cap takes effect at once.
        _pairPolicies[fromToken][toToken] =
            PairPolicy(enabled, feeBps, minAmountOut, maxAmountOut, dailyCap, policy.day, policy.inflowToday);
        emit PairPolicySet(fromToken, toToken, enabled, feeBps, minAmountOut, maxAmountOut, dailyCap, msg.sender);
    }

    function _policyOf(address fromToken, address toToken) internal view returns (PairPolicy memory) {
        return _pairPolicies[fromToken][toToken];
    }

    /// @dev Loads the policy for a conversion and fails if the pair is disabled.
    function _loadPolicy(address fromToken, address toToken) internal view returns (PairPolicy memory policy) {
        policy = _pairPolicies[fromToken][toToken];
        if (!policy.enabled) revert ExchangePairDisabled(fromToken, toToken);
    }

    /// @dev Checks `amountOut` against the limits and records it in today's inflow.
    function _recordInflow(address fromToken, address toToken, PairPolicy memory policy, uint256 amountOut)
        internal
    {
        uint256 minimum = policy.minAmountOut == 0 ? 1 : policy.minAmountOut;
        if (amountOut < minimum) revert ExchangeBelowMinimum(amountOut, minimum);
        if (policy.maxAmountOut != 0 && amountOut > policy.maxAmountOut) {
            revert ExchangeAboveMaximum(amountOut, policy.maxAmountOut);
        }
        uint32 today = _today();
        uint256 inflowToday = policy.day == today ? policy.inflowToday : 0;
        uint256 inflowAfter = inflowToday + amountOut;
        if (policy.dailyCap != 0 && inflowAfter > policy.dailyCap) {
            revert ExchangeDailyCapExceeded(inflowToday, amountOut, policy.dailyCap);
        }
        // Without a cap the running total can exceed uint48; saturate instead of reverting,
        // since the figure only matters where a cap (itself a uint48) applies.
        policy.day = today;
        policy.inflowToday = inflowAfter > type(uint48).max ? type(uint48).max : uint48(inflowAfter);
        _pairPolicies[fromToken][toToken] = policy;
    }

    function _today() private view returns (uint32) {
        return uint32(block.timestamp / DAY_S);
    }
}
