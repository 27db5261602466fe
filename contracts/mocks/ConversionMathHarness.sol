// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConversionMath} from "../exchange/ConversionMath.sol";

/// @title ConversionMathHarness
/// @notice Test-only: exposes the conversion library so property tests can compare the
/// contract's arithmetic with the Python reference. Never deployed by scripts.
contract ConversionMathHarness {
    /// @notice See ConversionMath.quote.
    function quote(uint256 amountIn, uint256 rateFrom, uint256 rateTo, uint256 feeBps)
        external
        pure
        returns (uint256 amountOut, uint256 feePoints, uint256 valueIn)
    {
        return ConversionMath.quote(amountIn, rateFrom, rateTo, feeBps);
    }
}
