"""Members by public id, as last read, for the conversion hot path.

Members are never deleted and their brand links never removed, so what was read stays
true, except custody: a wallet member may move to self-custody and back. The chain enforces
custody anyway (a custodial conversion of a self-custody member reverts
`ExchangeSelfCustodied`, which the simulation reports as `signature_required`), and this
process forgets a member whose custody it changes (when the change is accepted and when
the chain settles it). Another replica learns of a change by reading the member again: a
self-custody member is kept at most `SELF_CUSTODY_TTL_S`, so a member handed back to the
operator is not refused `signature_required` for long. A brand not (yet) among the cached
links is looked up again, so a new link is seen at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from alliance.db.models import Custody, Member
from gateway.services.members import get_member

MEMBER_CACHE_SIZE_MAX = 100_000
"""Most members kept (least recently used go first)."""

SELF_CUSTODY_TTL_S = 5.0
"""How long a self-custody member is kept before being read again (custody changes made
through another replica reach this one within that time)."""


@dataclass(frozen=True)
class MemberSnapshot:
    """What a conversion needs of a member."""

    id: int
    public_id: str
    address: str
    custody: str
    brands: frozenset[str]
    loaded_at: float = field(default_factory=time.monotonic, compare=False)

    @classmethod
    def of(cls, member: Member) -> MemberSnapshot:
        brands = frozenset(link.brand_code for link in member.links)
        return cls(member.id, member.public_id, member.address, member.custody, brands)

    def is_fresh(self, now: float) -> bool:
        """Custodial members stay true until this process changes them; a self-custody
        member may be handed back to the operator through another replica."""
        return self.custody != Custody.SELF or now - self.loaded_at < SELF_CUSTODY_TTL_S


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
        if not member.is_fresh(time.monotonic()):
            return None  # `load` reads it again
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
