// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title ConversionMath
/// @notice Pure conversion arithmetic. Rates are alliance value units per point scaled by
/// `RATE_SCALE`; amounts are whole points. Every division rounds against the member, so a
/// conversion can never create value:
///   valueIn   = amountIn * rateFrom                       (exact)
///   gross     = floor(valueIn / rateTo)                   (points of the receiving brand)
///   fee       = ceil(gross * feeBps / 10_000)
///   amountOut = gross - fee
/// hence (amountOut + fee) * rateTo <= valueIn, and the dust valueIn - gross * rateTo < rateTo.
library ConversionMath {
    /// @notice Fixed-point scale of rates: 1e18 = one alliance value unit per point.
    uint256 internal constant RATE_SCALE = 1e18;
    /// @notice Basis points in one whole.
    uint256 internal constant BPS = 10_000;

    /// @notice Quote a conversion.
    /// @param amountIn Points of the sending brand; at most 2**128 - 1 (the caller checks).
    /// @param rateFrom Value units per sending-brand point (scaled).
    /// @param rateTo Value units per receiving-brand point (scaled), non-zero.
    /// @param feeBps The pair's fee in basis points, at most 10_000.
    /// @return amountOut Points the member receives.
    /// @return feePoints Receiving-brand points withheld as the fee.
    /// @return valueIn Value units (scaled) that left the sending brand.
    function quote(uint256 amountIn, uint256 rateFrom, uint256 rateTo, uint256 feeBps)
        internal
        pure
        returns (uint256 amountOut, uint256 feePoints, uint256 valueIn)
    {
        valueIn = amountIn * rateFrom;
        uint256 gross = valueIn / rateTo;
        feePoints = Math.mulDiv(gross, feeBps, BPS, Math.Rounding.Ceil);
        amountOut = gross - feePoints;
    }
}
