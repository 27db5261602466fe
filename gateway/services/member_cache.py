"""Members by public id, as last read, for the conversion hot path.

Members are never deleted and their brand links never removed, so what was read stays
true, except custody: a member may move to self-custody. The chain enforces custody anyway
(a custodial conversion of a self-custody member reverts `ExchangeSelfCustodied`, which the
simulation reports as `signature_required`), and this process forgets a member whose
custody it changes. A brand not (yet) among the cached links is looked up again, so a new
link is seen at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.orm import Session

from alliance.db.models import Member
from gateway.services.members import get_member

MEMBER_CACHE_SIZE_MAX = 100_000
"""Most members kept (least recently used go first)."""


@dataclass(frozen=True)
class MemberSnapshot:
    """What a conversion needs of a member."""

    id: int
    public_id: str
    address: str
    custody: str
    brands: frozenset[str]

    @classmethod
    def of(cls, member: Member) -> MemberSnapshot:
        brands = frozenset(link.brand_code for link in member.links)
        return cls(member.id, member.public_id, member.address, member.custody, brands)


class MemberCache:
    """A bounded, thread-safe map from public id to `MemberSnapshot`."""

    def __init__(self, size_max: int = MEMBER_CACHE_SIZE_MAX) -> None:
        self._size_max = size_max
        self._lock = threading.Lock()
        self._members: OrderedDict[str, MemberSnapshot] = OrderedDict()

    def get(self, public_id: str, brand_code: str | None) -> MemberSnapshot | None:
        """The cached member if `brand_code` (None: any caller) is among its brands."""
        with self._lock:
            member = self._members.get(public_id)
            if member is not None:
                self._members.move_to_end(public_id)
        if member is None or (brand_code is not None and brand_code not in member.brands):
            return None
        return member

    def load(self, session: Session, public_id: str, brand_code: str | None) -> MemberSnapshot:
        """Read the member (`not_found` as `get_member` decides) and remember it."""
        member = MemberSnapshot.of(get_member(session, public_id, brand_code))
        with self._lock:
            self._members[public_id] = member
            self._members.move_to_end(public_id)
            while len(self._members) > self._size_max:
                self._members.popitem(last=False)
        return member

    def forget(self, public_id: str) -> None:
        """Drop a member whose custody changed."""
        with self._lock:
            self._members.pop(public_id, None)
