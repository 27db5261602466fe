"""Members: registration under a brand, consent-based linking at another brand, lookups.

Brand member ids never reach the chain or the logs: they are stored AES-GCM encrypted and
found by keyed hash. Custodial keys are derived from the master secret per member."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alliance.db.base import utc_now
from alliance.db.models import Custody, LinkCode, Member, MemberLink
from gateway import errors
from gateway.crypto import GatewaySecrets

MEMBER_ID_PREFIX = "mbr_"


def new_link(
    secrets_: GatewaySecrets, member: Member, brand_code: str, brand_member_id: str
) -> MemberLink:
    """The member's link at `brand_code` (the brand member id hashed and encrypted)."""
    return MemberLink(
        member=member,
        brand_code=brand_code,
        ref_hash=secrets_.keyed_hash(brand_code, brand_member_id),
        ref_ciphertext=secrets_.encrypt(brand_member_id, context=f"member-link:{brand_code}"),
    )


def register(
    session: Session, secrets_: GatewaySecrets, brand_code: str, brand_member_id: str
) -> Member:
    """A new custodial member known to `brand_code` as `brand_member_id`."""
    if find_by_brand_id(session, secrets_, brand_code, brand_member_id) is not None:
        raise errors.MemberExists("this brand member id is already registered")
    public_id = MEMBER_ID_PREFIX + secrets.token_hex(12)
    address = secrets_.member_account(public_id).address
    member = Member(public_id=public_id, address=address, custody=Custody.CUSTODIAL)
    session.add(member)
    session.add(new_link(secrets_, member, brand_code, brand_member_id))
    try:
        session.flush()
    except IntegrityError:
        raise errors.MemberExists("this brand member id is already registered") from None
    return member


def find_by_brand_id(
    session: Session, secrets_: GatewaySecrets, brand_code: str, brand_member_id: str
) -> Member | None:
    link = session.scalars(
        select(MemberLink)
        .where(MemberLink.brand_code == brand_code)
        .where(MemberLink.ref_hash == secrets_.keyed_hash(brand_code, brand_member_id))
    ).first()
    return link.member if link is not None else None


def get_member(session: Session, public_id: str, brand_code: str | None) -> Member:
    """The member, if `brand_code` knows them (None: operators and auditors see all)."""
    member = session.scalars(select(Member).where(Member.public_id == public_id)).first()
    if member is None:
        raise errors.NotFound(f"no member {public_id}")
    if brand_code is not None and brand_code not in linked_brands(member):
        raise errors.NotFound(f"no member {public_id}")
    return member


def linked_brands(member: Member) -> list[str]:
    return sorted(link.brand_code for link in member.links)


def brand_member_id(secrets_: GatewaySecrets, member: Member, brand_code: str) -> str:
    """The brand's own id for `member` (decrypted; only ever shown to that brand)."""
    for link in member.links:
        if link.brand_code == brand_code:
            return secrets_.decrypt(link.ref_ciphertext, context=f"member-link:{brand_code}")
    raise errors.NotFound("member not linked at this brand")


def issue_link_code(
    session: Session, secrets_: GatewaySecrets, member: Member, brand_code: str, ttl_s: int
) -> tuple[str, int]:
    """A one-time code by which `brand_code` consents to link `member` elsewhere."""
    code = secrets.token_urlsafe(18)
    session.add(
        LinkCode(
            code_hash=secrets_.keyed_hash("link-code", code),
            member_id=member.id,
            issued_by_brand=brand_code,
            expires_at=utc_now() + timedelta(seconds=ttl_s),
        )
    )
    session.flush()
    return code, ttl_s


def link_with_code(
    session: Session, secrets_: GatewaySecrets, brand_code: str, brand_member_id: str, code: str
) -> Member:
    """Link the member behind `code` at `brand_code` as `brand_member_id` (code used once)."""
    link_code = session.get(LinkCode, secrets_.keyed_hash("link-code", code), with_for_update=True)
    if link_code is None or link_code.used_at is not None or link_code.expires_at < utc_now():
        raise errors.LinkCodeInvalid("the link code is unknown, used or expired")
    member = session.get_one(Member, link_code.member_id)
    if brand_code in linked_brands(member):
        raise errors.MemberExists("the member is already linked at this brand")
    if find_by_brand_id(session, secrets_, brand_code, brand_member_id) is not None:
        raise errors.MemberExists("this brand member id is already registered")
    link_code.used_at = utc_now()
    session.add(new_link(secrets_, member, brand_code, brand_member_id))
    session.flush()
    return member
