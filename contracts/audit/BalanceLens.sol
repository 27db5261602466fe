// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title BalanceLens
/// @notice Reads many ERC-20 balances in one `eth_call`, without being deployed: the audit
/// tool sends this contract's creation code with its constructor arguments as the call's
/// data and no `to`, and the constructor returns the balances instead of runtime code.
/// @dev Never deployed by scripts. One call replaces thousands of `balanceOf` calls, each
/// of which a node would otherwise parse, schedule and answer separately.
contract BalanceLens {
    /// @notice `tokens` and `accounts` must pair up one to one.
    error BalanceLensLengthMismatch(uint256 tokens, uint256 accounts);

    /// @param tokens The token of each holding to read.
    /// @param accounts The account of each holding (same length as `tokens`).
    constructor(address[] memory tokens, address[] memory accounts) {
        uint256 count = tokens.length;
        if (accounts.length != count) revert BalanceLensLengthMismatch(count, accounts.length);
        uint256[] memory balances = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            balances[i] = IERC20(tokens[i]).balanceOf(accounts[i]);
        }
        bytes memory encoded = abi.encode(balances);
        // Return the encoded array as the call's result (in place of runtime code).
        assembly {
            return(add(encoded, 32), mload(encoded))
        }
    }
}
