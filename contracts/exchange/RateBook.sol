// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAllianceExchange} from "./IAllianceExchange.sol";

/// @title RateBook
/// @notice Each brand's value in alliance units per point, with announced changes: a new
/// rate is scheduled and takes effect only after the notice period, can be cancelled before
/// then, and every version stays in an on-chain history that answers "which rate applied at
/// time T" (auditors map a block to its timestamp).
/// @dev The conversion path reads one packed slot per brand. A scheduled rate becomes the
/// rate in force lazily, by comparing its effective time with the block's timestamp, so no
/// transaction is needed at the moment it takes effect.
abstract contract RateBook is IAllianceExchange {
    /// @notice Shortest notice governance may set.
    uint48 public constant NOTICE_PERIOD_MIN = 1 days;
    /// @notice Longest notice governance may set.
    uint48 public constant NOTICE_PERIOD_MAX = 365 days;
    /// @notice Notice period at deployment: the publication period retail regulators expect.
    uint48 public constant NOTICE_PERIOD_DEFAULT = 30 days;

    /// @notice At most this many brands: each takes one freeze bit in a member's state word.
    uint256 public constant BRANDS_MAX = 255;

    struct BrandRate {
        uint96 current;
        uint96 next; // 0 = nothing scheduled
        uint48 nextEffectiveAt;
        bool listed;
        uint8 index; // listing order, the brand's bit in member state words
    }

    mapping(address token => BrandRate) internal _brandRates;
    mapping(address token => RateVersion[]) private _rateHistory;
    uint48 public noticePeriod = NOTICE_PERIOD_DEFAULT;
    /// @notice Brands listed so far.
    uint256 public brandCount;

    /// @notice The rate in force now for `token`, in value units per point (scaled by 1e18).
    function currentRate(address token) external view returns (uint96) {
        return _rateInForce(_listedRate(token));
    }

    /// @notice The rate waiting to take effect, if any (`rateValueUnits` 0 when none).
    function scheduledRate(address token) external view returns (uint96 rateValueUnits, uint48 effectiveAt) {
        BrandRate memory rate = _listedRate(token);
        if (rate.next == 0 || block.timestamp >= rate.nextEffectiveAt) return (0, 0);
        return (rate.next, rate.nextEffectiveAt);
    }

    /// @notice The rate that applied at `timestamp` and its version number in the history.
    function rateAt(address token, uint48 timestamp) external view returns (uint96 rateValueUnits, uint256 version) {
        RateVersion[] storage history = _rateHistory[token];
        // Binary search for the last version effective at or before `timestamp`.
        uint256 low = 0;
        uint256 high = history.length;
        while (low < high) {
            uint256 mid = (low + high) / 2;
            if (history[mid].effectiveAt > timestamp) high = mid;
            else low = mid + 1;
        }
        if (low == 0) revert RateBookNoRateAt(token, timestamp);
        return (history[low - 1].rateValueUnits, low - 1);
    }

    /// @notice Every rate version of `token`, oldest first (cancelled versions are removed).
    function rateHistory(address token) external view returns (RateVersion[] memory) {
        return _rateHistory[token];
    }

    function _listBrand(address token, uint96 rateValueUnits) internal {
        if (_brandRates[token].listed) revert ExchangeBrandAlreadyListed(token);
        if (rateValueUnits == 0) revert RateBookInvalidRate(rateValueUnits);
        if (brandCount == BRANDS_MAX) revert ExchangeTooManyBrands(BRANDS_MAX);
        _brandRates[token] = BrandRate(rateValueUnits, 0, 0, true, uint8(brandCount++));
        _rateHistory[token].push(RateVersion(rateValueUnits, uint48(block.timestamp), uint48(block.timestamp)));
        emit BrandListed(token, rateValueUnits);
    }

    function _scheduleRate(address token, uint96 rateValueUnits, uint48 effectiveAt) internal {
        BrandRate memory rate = _listedRate(token);
        if (rateValueUnits == 0) revert RateBookInvalidRate(rateValueUnits);
        uint48 earliest = uint48(block.timestamp) + noticePeriod;
        if (effectiveAt < earliest) revert RateBookEffectiveTooSoon(effectiveAt, earliest);
        if (rate.next != 0) {
            if (block.timestamp < rate.nextEffectiveAt) {
                revert RateBookAlreadyScheduled(token, rate.next, rate.nextEffectiveAt);
            }
            rate.current = rate.next; // the earlier schedule has taken effect: fold it in
        }
        rate.next = rateValueUnits;
        rate.nextEffectiveAt = effectiveAt;
        _brandRates[token] = rate;
        _rateHistory[token].push(RateVersion(rateValueUnits, effectiveAt, uint48(block.timestamp)));
        emit RateScheduled(token, _rateHistory[token].length - 1, rateValueUnits, effectiveAt, msg.sender);
    }

    function _cancelScheduledRate(address token) internal {
        BrandRate memory rate = _listedRate(token);
        if (rate.next == 0 || block.timestamp >= rate.nextEffectiveAt) revert RateBookNothingScheduled(token);
        RateVersion[] storage history = _rateHistory[token];
        uint256 version = history.length - 1;
        history.pop();
        _brandRates[token] = BrandRate(rate.current, 0, 0, true, rate.index);
        emit RateCancelled(token, version, rate.next, rate.nextEffectiveAt);
    }

    function _setNoticePeriod(uint48 period) internal {
        if (period < NOTICE_PERIOD_MIN || period > NOTICE_PERIOD_MAX) {
            revert RateBookInvalidNoticePeriod(period, NOTICE_PERIOD_MIN, NOTICE_PERIOD_MAX);
        }
        emit NoticePeriodChanged(noticePeriod, period);
        noticePeriod = period;
    }

    function _listedRate(address token) internal view returns (BrandRate memory rate) {
        rate = _brandRates[token];
        if (!rate.listed) revert ExchangeUnknownBrand(token);
    }

    function _rateInForce(BrandRate memory rate) internal view returns (uint96) {
        if (rate.next != 0 && block.timestamp >= rate.nextEffectiveAt) return rate.next;
        return rate.current;
    }
}
