// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAllianceExchange} from "./IAllianceExchange.sol";

/// @title MemberStates
/// @notice One storage word per member holds everything the exchange must know about them
/// before moving their points: bit 0 says the member is self-custodied (only their own
/// signature authorises a movement), bit 1 + i says they are frozen at the brand listed i-th.
/// A conversion therefore reads a single slot for both checks.
/// @dev Freezes are per brand and need two different holders of that brand's freezer role:
/// the first call requests, the second (same arguments, another freezer) applies. A freeze
/// stops the member's outflows from that brand (conversion out, gift out, withdrawal);
/// inflows still land and stay frozen.
abstract contract MemberStates is IAllianceExchange {
    uint256 private constant SELF_CUSTODY_BIT = 1;

    mapping(address member => uint256) private _memberStates;
    mapping(address token => mapping(address member => mapping(bool frozen => address))) private _freezeRequests;

    /// @notice Whether `member` is frozen at the brand `token`.
    function isFrozen(address token, address member) public view returns (bool) {
        return _memberStates[member] & _frozenBit(_brandIndex(token)) != 0;
    }

    /// @notice Whether `member` authorises movements by signature only.
    function isSelfCustodied(address member) public view returns (bool) {
        return _memberStates[member] & SELF_CUSTODY_BIT != 0;
    }

    /// @notice The pending freeze (or unfreeze) requester for a member at a brand, if any.
    function freezeRequestedBy(address token, address member, bool frozen) external view returns (address) {
        return _freezeRequests[token][member][frozen];
    }

    /// @dev The brand's freeze bit; the listing contract supplies the brand's index.
    function _brandIndex(address token) internal view virtual returns (uint8);

    /// @dev Whether `account` holds the brand's freezer role now.
    function _isFreezer(address token, address account) internal view virtual returns (bool);

    /// @dev Fails if the member is frozen at `token` (listed at `index`) or, for a custodial
    /// movement, self-custodied.
    function _requireMovable(address member, address token, uint8 index, bool custodial) internal view {
        uint256 state = _memberStates[member];
        if (custodial && state & SELF_CUSTODY_BIT != 0) revert ExchangeSelfCustodied(member);
        if (state & _frozenBit(index) != 0) revert ExchangeAccountFrozen(token, member);
    }

    function _setSelfCustody(address member, bool enabled) internal {
        uint256 state = _memberStates[member];
        _memberStates[member] = enabled ? state | SELF_CUSTODY_BIT : state & ~SELF_CUSTODY_BIT;
        emit SelfCustodySet(member, enabled);
    }

    function _requestOrApplyFreeze(address token, address member, bool frozen) internal {
        if (isFrozen(token, member) == frozen) revert ExchangeFreezeUnchanged(token, member, frozen);
        address requestedBy = _freezeRequests[token][member][frozen];
        // A request whose author has since lost the freezer role no longer counts, so one
        // person can never complete a freeze alone.
        if (requestedBy != address(0) && !_isFreezer(token, requestedBy)) requestedBy = address(0);
        if (requestedBy == address(0)) {
            _freezeRequests[token][member][frozen] = msg.sender;
            emit FreezeRequested(token, member, frozen, msg.sender);
            return;
        }
        if (requestedBy == msg.sender) revert ExchangeSelfApproval(msg.sender);
        delete _freezeRequests[token][member][frozen];
        uint256 bit = _frozenBit(_brandIndex(token));
        uint256 state = _memberStates[member];
        _memberStates[member] = frozen ? state | bit : state & ~bit;
        emit FreezeChanged(token, member, frozen, requestedBy, msg.sender);
    }

    function _cancelFreezeRequest(address token, address member, bool frozen) internal {
        if (_freezeRequests[token][member][frozen] == address(0)) {
            revert ExchangeNoFreezeRequest(token, member, frozen);
        }
        delete _freezeRequests[token][member][frozen];
        emit FreezeRequestCancelled(token, member, frozen, msg.sender);
    }

    function _frozenBit(uint8 index) private pure returns (uint256) {
        return 2 << index;
    }
}
