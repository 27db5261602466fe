// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {BitMaps} from "@openzeppelin/contracts/utils/structs/BitMaps.sol";
import {IAllianceGovernance, IAllianceAccessControlled} from "../governance/IAllianceGovernance.sol";
import {IPointToken} from "../token/IPointToken.sol";
import {IAllianceExchange} from "./IAllianceExchange.sol";
import {ConversionMath} from "./ConversionMath.sol";
import {MemberStates} from "./MemberStates.sol";
import {PairPolicies} from "./PairPolicies.sol";
import {RateBook} from "./RateBook.sol";

/// @title AllianceExchange
/// @notice Converts one brand's points into another's atomically (burn, mint, one event) at
/// the rates in force, under the receiving brand's pair policy, and moves gifts between
/// members. A movement is authorised either by an operator acting as the member's custodian
/// or, for self-custody members, by the member's EIP-712 signature relayed by an operator.
///
/// Batch semantics: `convertBatch` applies each item in isolation. An item that fails is
/// skipped with a `ConversionRejected` event carrying its revert data; its request id stays
/// unused so it can be retried; the other items still apply. The call itself reverts only
/// for an invalid batch shape or an unauthorised caller.
contract AllianceExchange is RateBook, PairPolicies, MemberStates, AccessControl, EIP712, Nonces, IAllianceAccessControlled {
    using BitMaps for BitMaps.BitMap;

    /// @notice Submits conversions and gifts (the gateway's signing keys).
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    /// @notice The brand administrator role, checked on the brand's own token.
    bytes32 public constant BRAND_ADMIN_ROLE = keccak256("BRAND_ADMIN_ROLE");
    /// @notice The brand freezer role, checked on the brand's own token.
    bytes32 public constant FREEZER_ROLE = keccak256("FREEZER_ROLE");
    /// @notice Largest batch accepted, so a batch always fits in a block.
    uint256 public constant BATCH_SIZE_MAX = 256;
    /// @notice Largest amount in, so value arithmetic can never overflow.
    uint256 public constant AMOUNT_IN_MAX = type(uint128).max;

    bytes32 private constant CONVERSION_TYPEHASH = keccak256(
        "Conversion(uint256 requestId,address member,address fromToken,address toToken,uint256 amountIn,uint256 minAmountOut,uint256 deadline)"
    );
    bytes32 private constant GIFT_TYPEHASH =
        keccak256("Gift(uint256 requestId,address token,address from,address to,uint256 amount,uint256 deadline)");
    bytes32 private constant SELF_CUSTODY_TYPEHASH =
        keccak256("SelfCustody(address member,bool enabled,uint256 nonce,uint256 deadline)");

    IAllianceGovernance public immutable governance;
    BitMaps.BitMap private _processedRequests;

    modifier onlyBrandAdmin(address token) {
        _listedRate(token);
        if (!IAccessControl(token).hasRole(BRAND_ADMIN_ROLE, msg.sender)) revert ExchangeNotBrandAdmin(token, msg.sender);
        _;
    }

    modifier onlyBrandFreezer(address token) {
        _listedRate(token);
        if (!IAccessControl(token).hasRole(FREEZER_ROLE, msg.sender)) revert ExchangeNotBrandFreezer(token, msg.sender);
        _;
    }

    /// @param governance_ The alliance governance; holds the admin role.
    constructor(IAllianceGovernance governance_) EIP712("AllianceExchange", "1") {
        governance = governance_;
        _grantRole(DEFAULT_ADMIN_ROLE, address(governance_));
    }

    // ---------------------------------------------------------------- conversions

    /// @notice Convert as the member's custodian.
    /// @param request The conversion; its request id must be unused.
    /// @return amountOut Points minted to the member.
    function convert(ConversionRequest calldata request) external onlyRole(OPERATOR_ROLE) returns (uint256 amountOut) {
        return _convert(request, true);
    }

    /// @notice Convert on a self-custody member's EIP-712 signature, relayed by an operator.
    /// @param request The conversion the member signed.
    /// @param signature The member's signature over `request`.
    /// @return amountOut Points minted to the member.
    function convertWithSignature(ConversionRequest calldata request, bytes calldata signature)
        external
        onlyRole(OPERATOR_ROLE)
        returns (uint256 amountOut)
    {
        _requireSigned(request.member, _hashConversion(request), signature);
        return _convert(request, false);
    }

    /// @notice Convert many requests in one transaction; see the contract notes for semantics.
    /// @param requests The conversions.
    /// @param signatures Empty for an all-custodial batch, otherwise one per request (an empty
    /// entry means that item is custodial).
    /// @return applied How many items were applied.
    function convertBatch(ConversionRequest[] calldata requests, bytes[] calldata signatures)
        external
        onlyRole(OPERATOR_ROLE)
        returns (uint256 applied)
    {
        uint256 count = requests.length;
        bool signed = signatures.length != 0;
        if (count == 0 || count > BATCH_SIZE_MAX || (signed && signatures.length != count)) {
            revert ExchangeInvalidBatch(count, signatures.length, BATCH_SIZE_MAX);
        }
        for (uint256 i = 0; i < count; ++i) {
            bytes calldata signature = signed ? signatures[i] : msg.data[0:0];
            try this.applyBatchItem(requests[i], signature) {
                ++applied;
            } catch (bytes memory reason) {
                emit ConversionRejected(requests[i].requestId, requests[i].member, reason);
            }
        }
    }

    /// @notice One batch item, run as an external self-call so that its failure rolls back
    /// only that item. Callable by the exchange itself only.
    function applyBatchItem(ConversionRequest calldata request, bytes calldata signature) external {
        if (msg.sender != address(this)) revert ExchangeOnlySelf(msg.sender);
        bool custodial = signature.length == 0;
        if (!custodial) _requireSigned(request.member, _hashConversion(request), signature);
        _convert(request, custodial);
    }

    /// @notice Quote a conversion at the rates in force now (no limits applied).
    /// @return amountOut Points the member would receive.
    /// @return feePoints Points withheld as the fee.
    /// @return valueIn Value units (scaled by 1e18) that would leave the sending brand.
    function quote(address fromToken, address toToken, uint256 amountIn)
        external
        view
        returns (uint256 amountOut, uint256 feePoints, uint256 valueIn)
    {
        if (amountIn > AMOUNT_IN_MAX) revert ExchangeInvalidAmount(amountIn, AMOUNT_IN_MAX);
        if (fromToken == toToken) revert ExchangeSameBrand(fromToken);
        uint96 rateFrom = _rateInForce(_listedRate(fromToken));
        uint96 rateTo = _rateInForce(_listedRate(toToken));
        return ConversionMath.quote(amountIn, rateFrom, rateTo, _policyOf(fromToken, toToken).feeBps);
    }

    // ---------------------------------------------------------------- gifts

    /// @notice Gift points between two members of the same brand, if the brand allows it.
    /// @param request The gift; its request id must be unused.
    /// @param signature Empty when the operator acts as the sender's custodian; otherwise the
    /// sending member's EIP-712 signature over `request`.
    function gift(GiftRequest calldata request, bytes calldata signature) external onlyRole(OPERATOR_ROLE) {
        bool custodial = signature.length == 0;
        if (!custodial) {
            bytes32 structHash = keccak256(
                abi.encode(
                    GIFT_TYPEHASH,
                    request.requestId,
                    request.token,
                    request.from,
                    request.to,
                    request.amount,
                    request.deadline
                )
            );
            _requireSigned(request.from, structHash, signature);
        }
        if (block.timestamp > request.deadline) revert ExchangeDeadlinePassed(request.deadline, block.timestamp);
        if (request.amount == 0 || request.amount > AMOUNT_IN_MAX) {
            revert ExchangeInvalidAmount(request.amount, AMOUNT_IN_MAX);
        }
        _requireMovable(request.from, request.token, _listedRate(request.token).index, custodial);
        _useRequest(request.requestId);
        IPointToken(request.token).exchangeTransfer(request.from, request.to, request.amount);
        emit Gifted(request.requestId, request.token, request.from, request.to, request.amount);
    }

    // ---------------------------------------------------------------- members

    /// @notice Switch a member between custodial and self-custody on the member's own
    /// signature (replay-protected by a per-member nonce), relayed by an operator.
    /// @param member The member's address (the key they control).
    /// @param enabled True for self-custody, false to hand custody back to the operator.
    /// @param deadline The signature's expiry.
    /// @param signature The member's EIP-712 signature.
    function setSelfCustody(address member, bool enabled, uint256 deadline, bytes calldata signature)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (block.timestamp > deadline) revert ExchangeDeadlinePassed(deadline, block.timestamp);
        bytes32 structHash = keccak256(abi.encode(SELF_CUSTODY_TYPEHASH, member, enabled, _useNonce(member), deadline));
        _requireSigned(member, structHash, signature);
        _setSelfCustody(member, enabled);
    }

    /// @notice Request (first freezer) or approve (second, different freezer) freezing or
    /// unfreezing `member` at the brand `token`. Holders of the brand's freezer role only.
    /// @param token The brand's point token.
    /// @param member The member's account.
    /// @param frozen The requested state.
    function setFrozen(address token, address member, bool frozen) external onlyBrandFreezer(token) {
        _requestOrApplyFreeze(token, member, frozen);
    }

    /// @notice Withdraw a pending freeze or unfreeze request. Brand freezers only.
    function cancelFreezeRequest(address token, address member, bool frozen) external onlyBrandFreezer(token) {
        _cancelFreezeRequest(token, member, frozen);
    }

    /// @notice Whether the exchange has processed `requestId` (conversion or gift).
    function isRequestProcessed(uint256 requestId) external view returns (bool) {
        return _processedRequests.get(requestId);
    }

    // ---------------------------------------------------------------- brands, rates, policies

    /// @inheritdoc IAllianceExchange
    function registerBrand(address token, uint96 rateValueUnits) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _listBrand(token, rateValueUnits);
    }

    /// @notice Schedule a new rate for the caller's brand, effective at `effectiveAt`
    /// (no earlier than now plus the notice period). Brand admin only.
    function scheduleRate(address token, uint96 rateValueUnits, uint48 effectiveAt) external onlyBrandAdmin(token) {
        _scheduleRate(token, rateValueUnits, effectiveAt);
    }

    /// @notice Cancel the brand's scheduled rate before it takes effect. Brand admin only.
    function cancelScheduledRate(address token) external onlyBrandAdmin(token) {
        _cancelScheduledRate(token);
    }

    /// @notice Set the rate notice period. Governance only.
    function setNoticePeriod(uint48 period) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setNoticePeriod(period);
    }

    /// @notice Set the policy for conversions from `fromToken` into `toToken`. Admin of the
    /// receiving brand (`toToken`) only.
    function setPairPolicy(
        address fromToken,
        address toToken,
        bool enabled,
        uint16 feeBps,
        uint40 minAmountOut,
        uint40 maxAmountOut,
        uint48 dailyCap
    ) external onlyBrandAdmin(toToken) {
        _listedRate(fromToken);
        if (fromToken == toToken) revert ExchangeSameBrand(toToken);
        _setPairPolicy(fromToken, toToken, enabled, feeBps, minAmountOut, maxAmountOut, dailyCap);
    }

    /// @inheritdoc IAllianceAccessControlled
    function revokeAllRoles(address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _revokeRole(OPERATOR_ROLE, account);
        _revokeRole(DEFAULT_ADMIN_ROLE, account);
    }

    /// @notice The EIP-712 domain separator members sign under.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------- internals

    function _convert(ConversionRequest calldata request, bool custodial) private returns (uint256 amountOut) {
        if (block.timestamp > request.deadline) revert ExchangeDeadlinePassed(request.deadline, block.timestamp);
        if (request.amountIn == 0 || request.amountIn > AMOUNT_IN_MAX) {
            revert ExchangeInvalidAmount(request.amountIn, AMOUNT_IN_MAX);
        }
        if (request.fromToken == request.toToken) revert ExchangeSameBrand(request.fromToken);
        BrandRate memory from = _listedRate(request.fromToken);
        _requireMovable(request.member, request.fromToken, from.index, custodial);
        uint96 rateFrom = _rateInForce(from);
        uint96 rateTo = _rateInForce(_listedRate(request.toToken));
        PairPolicy memory policy = _loadPolicy(request.fromToken, request.toToken);
        uint256 feePoints;
        uint256 valueIn;
        (amountOut, feePoints, valueIn) = ConversionMath.quote(request.amountIn, rateFrom, rateTo, policy.feeBps);
        if (amountOut < request.minAmountOut) revert ExchangeInsufficientOutput(amountOut, request.minAmountOut);
        _recordInflow(request.fromToken, request.toToken, policy, amountOut);
        _useRequest(request.requestId);
        IPointToken(request.fromToken).exchangeBurn(request.member, request.amountIn);
        IPointToken(request.toToken).exchangeMint(request.member, amountOut);
        emit Converted(
            request.requestId,
            request.member,
            request.fromToken,
            request.toToken,
            request.amountIn,
            amountOut,
            feePoints,
            valueIn,
            rateFrom,
            rateTo,
            policy.feeBps
        );
    }

    function _hashConversion(ConversionRequest calldata request) private pure returns (bytes32) {
        return keccak256(abi.encode(CONVERSION_TYPEHASH, request));
    }

    function _useRequest(uint256 requestId) private {
        if (_processedRequests.get(requestId)) revert ExchangeRequestAlreadyProcessed(requestId);
        _processedRequests.set(requestId);
    }

    function _brandIndex(address token) internal view override returns (uint8) {
        return _listedRate(token).index;
    }

    function _isFreezer(address token, address account) internal view override returns (bool) {
        return IAccessControl(token).hasRole(FREEZER_ROLE, account);
    }

    function _requireSigned(address member, bytes32 structHash, bytes calldata signature) private view {
        (address signer,,) = ECDSA.tryRecover(_hashTypedDataV4(structHash), signature);
        if (signer != member || signer == address(0)) revert ExchangeInvalidSignature(member, signer);
    }

    /// @dev Roles only ever go to allow-listed accounts (see PointToken._grantRole).
    function _grantRole(bytes32 role, address account) internal override returns (bool) {
        if (!governance.isAllowed(account)) revert ExchangeAccountNotAllowed(account);
        return super._grantRole(role, account);
    }
}
