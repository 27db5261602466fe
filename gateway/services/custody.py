"""Self-custody: members who prove control of their own wallet with an EIP-712 signature.

A member registers with their wallet address, or switches a wallet member's custody, by
signing the exchange's `SelfCustody(member, enabled, nonce, deadline)` message; the operator
relays it on chain (`setSelfCustody`) as an operation of kind `custody`. Everything a
request can get wrong is checked before anything is recorded: the signature (recovered
off chain), the deadline, the wallet's nonce (read from the chain when it answers).

The gateway applies the stricter custody at once (`enabled: true` makes the member `self`
as soon as it is accepted) and the looser one only once the chain confirms it; a failed
change leaves the member as the chain has them (`CustodyHook`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alliance.db.models import Custody, Member, Operation, OperationKind, OperationStatus
from alliance.typed_data import SELF_CUSTODY, exchange_domain_at, typed_document
from gateway import errors
from gateway.context import GatewayContext
from gateway.ledger import Ledger
from gateway.schemas import CustodyUpdate, WalletProof
from gateway.services import members
from gateway.services.operations import create_operation

MESSAGE_TTL_S = 900
"""The deadline `custody_message` proposes when the client names none (15 minutes)."""

SIGNATURE_V_VALUES = (27, 28)
"""The `v` values the exchange's ECDSA recovery (OpenZeppelin `tryRecover`) accepts."""

PENDING = (OperationStatus.ACCEPTED, OperationStatus.SUBMITTED)


@dataclass(frozen=True)
class CustodyRequest:
    """A signed custody change, as the member's wallet signed it."""

    address: str
    enabled: bool
    nonce: int
    deadline: int
    signature: str

    @classmethod
    def of_wallet(cls, wallet: WalletProof) -> CustodyRequest:
        address = to_checksum_address(wallet.address)
        return cls(address, True, wallet.nonce, wallet.deadline, wallet.signature)

    @classmethod
    def of_update(cls, address: str, body: CustodyUpdate) -> CustodyRequest:
        return cls(address, body.enabled, body.nonce, body.deadline, body.signature)

    def params(self) -> dict[str, Any]:
        """What the `custody` operation records (and the submitter sends)."""
        return {
            "member_address": self.address,
            "enabled": self.enabled,
            "nonce": self.nonce,
            "deadline": self.deadline,
            "signature": self.signature,
        }


def typed_data(
    ledger: Ledger, address: str, enabled: bool, nonce: int, deadline: int
) -> dict[str, Any]:
    """The complete EIP-712 document (`eth_signTypedData_v4`) for a custody change."""
    message = {"member": address, "enabled": enabled, "nonce": nonce, "deadline": deadline}
    return typed_document("SelfCustody", SELF_CUSTODY, exchange_domain(ledger), message)


def exchange_domain(ledger: Ledger) -> dict[str, Any]:
    """The EIP-712 domain every member signature to the exchange is made under."""
    return exchange_domain_at(ledger.deployment.manifest.chain_id, ledger.exchange.address)


def custody_message(
    ledger: Ledger, address: str, enabled: bool, deadline: int | None
) -> dict[str, Any]:
    """What `address` signs to set its custody to `enabled`, with its current nonce."""
    address = to_checksum_address(address)
    nonce = ledger.read(ledger.exchange.functions.nonces(address))
    deadline = deadline if deadline is not None else int(time.time()) + MESSAGE_TTL_S
    return {
        "address": address,
        "enabled": enabled,
        "nonce": nonce,
        "deadline": deadline,
        "typed_data": typed_data(ledger, address, enabled, nonce, deadline),
    }


def signer_of(document: dict[str, Any], signature_hex: str) -> str | None:
    """The address that signed the EIP-712 `document`, as the exchange would recover it;
    None for a signature it would refuse (a `v` other than 27 or 28, not a signature)."""
    signature = bytes.fromhex(signature_hex[2:])
    if signature[64] not in SIGNATURE_V_VALUES:
        return None
    try:
        signer: str = Account.recover_message(
            encode_typed_data(full_message=document), signature=signature
        )
    except Exception:  # eth_keys' BadSignature, ValueError: not a signature at all
        return None
    return signer


def verify(ledger: Ledger, request: CustodyRequest) -> None:
    """Refuse a signature that is not the wallet's, has expired, or carries a nonce the
    chain would not accept (when the chain answers; otherwise the chain decides later)."""
    document = typed_data(ledger, request.address, request.enabled, request.nonce, request.deadline)
    if signer_of(document, request.signature) != request.address:
        raise errors.InvalidSignature("the signature is not the wallet's for these fields")
    if request.deadline < time.time():
        raise errors.SignatureExpired(f"the signature expired at {request.deadline}")
    try:
        nonce = ledger.read(ledger.exchange.functions.nonces(request.address))
    except errors.ChainUnavailable:
        return
    if nonce != request.nonce:
        raise errors.InvalidNonce(f"the wallet's next nonce is {nonce}, not {request.nonce}")


def register_with_wallet(
    session: Session,
    context: GatewayContext,
    brand_code: str,
    brand_member_id: str,
    wallet: WalletProof,
) -> tuple[Member, Operation]:
    """A new member at their own wallet address, `self` at once, and the `custody`
    operation that sets it on chain (the signature was verified by `verify`)."""
    request = CustodyRequest.of_wallet(wallet)
    secrets_ = context.secrets
    if members.find_by_brand_id(session, secrets_, brand_code, brand_member_id) is not None:
        raise errors.MemberExists("this brand member id is already registered")
    if session.scalars(select(Member.id).where(Member.address == request.address)).first():
        raise errors.AddressTaken("this wallet address already belongs to a member")
    public_id = members.MEMBER_ID_PREFIX + secrets.token_hex(12)
    member = Member(public_id=public_id, address=request.address, custody=Custody.SELF, wallet=True)
    session.add(member)
    session.add(members.new_link(secrets_, member, brand_code, brand_member_id))
    try:
        session.flush()
    except IntegrityError:
        raise errors.AddressTaken("this wallet address or member id is already taken") from None
    operation = create_operation(
        session,
        kind=OperationKind.CUSTODY,
        brand_code=brand_code,
        member=member,
        params=request.params(),
    )
    return member, operation


def request_of(
    context: GatewayContext, brand_code: str, member_id: str, body: CustodyUpdate
) -> CustodyRequest:
    """The custody change asked for `member_id` (read outside the write transaction)."""
    with context.sessions() as session:
        member = members.get_member(session, member_id, brand_code)
        if not member.wallet:
            raise errors.WalletRequired(
                "this member's address is derived by the gateway: only a member registered "
                "with their own wallet can change custody"
            )
        return CustodyRequest.of_update(member.address, body)


def change_custody(
    session: Session,
    brand_code: str,
    member_id: str,
    body: CustodyUpdate,
    forget: Callable[[str], None],
) -> Operation:
    """Record a wallet member's custody change (its signature verified by `verify`);
    `forget` drops the member from the member cache once this commits."""
    member = members.get_member(session, member_id, brand_code)
    # Locked, so two changes of one member never both pass the checks below (PostgreSQL;
    # SQLite's one writer already serialises them).
    session.refresh(member, with_for_update=True)
    if not member.wallet:
        raise errors.WalletRequired("only a member registered with a wallet can change custody")
    pending = session.scalars(
        select(Operation.id)
        .where(Operation.member_id == member.id)
        .where(Operation.kind == OperationKind.CUSTODY)
        .where(Operation.status.in_(PENDING))
    ).first()
    if pending is not None:
        raise errors.CustodyChangePending(
            f"custody change {pending} is still on its way", extra={"operation_id": pending}
        )
    wanted = Custody.SELF if body.enabled else Custody.CUSTODIAL
    if member.custody == wanted:
        raise errors.CustodyUnchanged(f"the member is already {wanted}")
    if body.enabled:
        member.custody = Custody.SELF  # the stricter state holds from now on
        public_id = member.public_id
        event.listen(session, "after_commit", lambda _: forget(public_id), once=True)
    return create_operation(
        session,
        kind=OperationKind.CUSTODY,
        brand_code=brand_code,
        member=member,
        params=CustodyRequest.of_update(member.address, body).params(),
    )


class CustodyHook:
    """The pipeline's `on_final` hook for `custody` operations, run inside the transaction
    that settles one: the member's custody follows the chain, a custody error reads as
    such, and this process's member cache forgets the member once that commits."""

    def __init__(self, forget: Callable[[str], None]) -> None:
        self._forget = forget

    def __call__(self, session: Session, operation: Operation) -> None:
        if operation.kind != OperationKind.CUSTODY or operation.member_id is None:
            return
        member = session.get_one(Member, operation.member_id)
        enabled = bool(operation.params["enabled"])
        if operation.status == OperationStatus.CONFIRMED:
            member.custody = Custody.SELF if enabled else Custody.CUSTODIAL
            operation.result = {**(operation.result or {}), "enabled": enabled}
        elif enabled:
            member.custody = Custody.CUSTODIAL  # the chain never made the member `self`
        if _expired(operation):
            operation.error_code = errors.SignatureExpired.code
        public_id = member.public_id
        event.listen(session, "after_commit", lambda _: self._forget(public_id), once=True)


def _expired(operation: Operation) -> bool:
    """Whether a failed custody change failed because its signature expired: refused before
    signing as `ExchangeDeadlinePassed` (`quote_expired` for a conversion), or reverted in
    a block (`chain_rejected`, a receipt names no reason) once its deadline had passed;
    either way the member must sign again."""
    if operation.status != OperationStatus.FAILED:
        return False
    refused = operation.error_code in (errors.QuoteExpired.code, errors.ChainRejected.code)
    return refused and int(operation.params["deadline"]) <= time.time()
