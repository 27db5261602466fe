// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title BalanceLens
/// @notice Reads many ERC-20 balances in one `eth_call`, without being deployed: the audit
/// tool sends this contract's creation code with its constructor arguments as the call's
/// data and no `to`, and the constructor returns the balances instead of runtime code.
/// @dev Never deployed by scripts. One call replaces hundreds of `balanceOf` calls, each
/// of which a node would otherwise parse, schedule and answer separately. The returned
/// balances count as contract code (EIP-170: at most 24,576 bytes, so ~760 balances), and
/// creation code plus arguments as initcode (EIP-3860: 49,152 bytes), so holdings are
/// packed in 21 bytes each (a one-byte token index, then the account) instead of the 64
/// bytes two ABI address arrays would take.
contract BalanceLens {
    /// @notice Bytes per packed holding: token index (1) + account (20).
    uint256 private constant HOLDING_BYTES = 21;

    /// @notice `packed` is not a whole number of holdings, or names a token index not given.
    error BalanceLensMalformedHoldings(uint256 packedLength, uint256 tokenCount);

    /// @param tokens The tokens the holdings refer to by index.
    /// @param packed The holdings: for each, one byte of token index then 20 bytes of account.
    constructor(address[] memory tokens, bytes memory packed) {
        if (packed.length % HOLDING_BYTES != 0) {
            revert BalanceLensMalformedHoldings(packed.length, tokens.length);
        }
        uint256 count = packed.length / HOLDING_BYTES;
        uint256[] memory balances = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            uint256 word;
            // Read 32 bytes at the holding's offset; only its first 21 bytes are used (the
            // last holding's read runs past `packed` into memory we never interpret).
            assembly {
                word := mload(add(add(packed, 32), mul(i, HOLDING_BYTES)))
            }
            uint256 tokenIndex = word >> 248;
            if (tokenIndex >= tokens.length) revert BalanceLensMalformedHoldings(packed.length, tokens.length);
            address account = address(uint160(word >> 88));
            balances[i] = IERC20(tokens[tokenIndex]).balanceOf(account);
        }
        bytes memory encoded = abi.encode(balances);
        // Return the encoded array as the call's result (in place of runtime code).
        assembly {
            return(add(encoded, 32), mload(encoded))
        }
    }
}
