"""Webhook events: the outbox hook that queues them and the worker that delivers them.

**Outbox.** `enqueue_operation_events` runs inside the database transaction that makes an
operation final (the pipeline's `on_final` hook), so an event exists exactly when its
operation's final state does: a crash either keeps both or neither.

**Who hears what.** Every active subscription of the operation's brand gets
`operation.confirmed` or `operation.failed`. A confirmed conversion also goes to the
receiving brand (`to_brand`), whose points it created; that copy carries the member's
public id only if the member is linked at the receiving brand. No payload ever carries a
brand member id: the data is the public operation view (`presenters.operation_public`).

**Delivery.** The worker claims due rows (`pending`, `next_attempt_at <= now`) and pushes
their `next_attempt_at` a lease ahead in one short transaction, then POSTs them outside
any transaction, then records the outcomes. Claiming uses `FOR UPDATE SKIP LOCKED` on
PostgreSQL (replicas take disjoint rows); SQLite's single writer serialises claims. A crash
between the POST and the record re-delivers after the lease: at least once, same event id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.base import utc_now
from alliance.db.models import (
    DeliveryStatus,
    Member,
    Operation,
    OperationKind,
    OperationStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from alliance.db.session import unit_of_work
from gateway.api.presenters import operation_public
from gateway.crypto import GatewaySecrets
from gateway.services.webhooks import subscription_secret
from gateway.settings import GatewaySettings

logger = logging.getLogger("gateway.webhooks")

EVENT_TYPES = {
    OperationStatus.CONFIRMED: "operation.confirmed",
    OperationStatus.FAILED: "operation.failed",
}
JITTER_FRACTION = 0.2
"""Each retry delay is its nominal value times a random factor in [0.8, 1.2]."""
LEASE_MARGIN_S = 10.0
"""Added to the worst-case attempt time when a claim pushes `next_attempt_at` ahead."""
ERROR_CHARS_MAX = 500
WAKE_KEY = "webhooks.wake_registered"


# ---------------------------------------------------------------------------- pure pieces


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed (compact, sorted: the same on every attempt)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, header: str, body: bytes, *, now: float, tolerance_s: float = 300
) -> bool:
    """What a receiver checks: a `v1` HMAC matches and `t` is within `tolerance_s` of now."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature_header(secret, timestamp, body).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))


def backoff_s(attempt: int, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Delay after failed attempt number `attempt` (1-based): `initial_s * 2**(attempt-1)`
    with ±20 % jitter (so failed receivers are not hit in lockstep), never above `max_s`."""
    assert attempt >= 1, attempt
    nominal = initial_s * 2.0 ** min(attempt - 1, 62)
    jitter = 1 + JITTER_FRACTION * (2 * rng.random() - 1)
    return min(max_s, nominal * jitter)


# ---------------------------------------------------------------------------- outbox


def enqueue_operation_events(session: Session, operation: Operation) -> int:
    """Queue one delivery per interested active subscription; returns how many."""
    event_type = EVENT_TYPES[OperationStatus(operation.status)]
    receiver = _receiving_brand(operation)
    brands = [operation.brand_code] + ([receiver] if receiver is not None else [])
    if not any(_active_subscriptions(session, code) for code in brands):
        return 0  # nobody listens: skip building views (a batch settles hundreds at once)
    session.flush()  # so the view shows this transaction's `updated_at`
    view = operation_public(session, operation).model_dump(mode="json")
    audiences = [(operation.brand_code, view)]
    if receiver is not None:
        audiences.append((receiver, _receiver_view(session, operation, view, receiver)))
    return sum(
        enqueue_brand_event(session, brand_code, event_type, data) for brand_code, data in audiences
    )


def enqueue_brand_event(
    session: Session, brand_code: str, event_type: str, data: dict[str, Any]
) -> int:
    """Queue an event (an operation's, a fraud alert, points about to expire)
    for every active subscription of `brand_code`, inside the caller's transaction (the
    same outbox). Returns how many deliveries were queued."""
    now = utc_now()
    queued = 0
    for subscription in _active_subscriptions(session, brand_code):
        event_id = str(uuid.uuid4())
        payload = {
            "id": event_id,
            "type": event_type,
            "brand": brand_code,
            "created_at": now.isoformat(),
            "data": data,
        }
        session.add(
            WebhookDelivery(
                event_id=event_id,
                subscription_id=subscription.id,
                event_type=event_type,
                payload=payload,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
            )
        )
        queued += 1
    return queued


def _receiving_brand(operation: Operation) -> str | None:
    """The other brand a confirmed conversion created points at, if any."""
    if operation.kind != OperationKind.CONVERSION:
        return None
    if operation.status != OperationStatus.CONFIRMED:
        return None
    to_brand = operation.params.get("to_brand")
    return to_brand if to_brand and to_brand != operation.brand_code else None


def _receiver_view(
    session: Session, operation: Operation, view: dict[str, Any], receiver: str
) -> dict[str, Any]:
    """The view for the receiving brand: the member's id only if it knows the member."""
    member = session.get(Member, operation.member_id) if operation.member_id else None
    known = member is not None and any(link.brand_code == receiver for link in member.links)
    return {**view, "member_id": view["member_id"] if known else None}


SUBSCRIPTIONS_CACHE_KEY = "webhooks.active_subscriptions"


def _active_subscriptions(session: Session, brand_code: str) -> list[WebhookSubscription]:
    """A brand's active subscriptions, read once per transaction (settling a batch asks for
    the same brands hundreds of times)."""
    cache: dict[str, list[WebhookSubscription]] = session.info.setdefault(
        SUBSCRIPTIONS_CACHE_KEY, {}
    )
    if brand_code not in cache:
        cache[brand_code] = list(
            session.scalars(
                select(WebhookSubscription)
                .where(WebhookSubscription.brand_code == brand_code)
                .where(WebhookSubscription.active.is_(True))
                .order_by(WebhookSubscription.id)
            )
        )
    return cache[brand_code]


# ---------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds until `next_attempt_at` (its lease) passes."""

    delivery_id: int
    attempt: int
    event_id: str
    event_type: str
    subscription_id: str
    url: str
    secret: str
    body: bytes


def claim_due(
    session: Session, secrets_: GatewaySecrets, now: datetime, limit: int, lease_s: float
) -> list[Claim]:
    """Take up to `limit` due deliveries: count the attempt and lease them for `lease_s`."""
    rows = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING)
        .where(WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claims = []
    for delivery in rows:
        subscription = session.get_one(WebhookSubscription, delivery.subscription_id)
        if not subscription.active:
            delivery.status = DeliveryStatus.CANCELLED
            continue
        delivery.attempts += 1
        delivery.next_attempt_at = now + timedelta(seconds=lease_s)
        claims.append(
            Claim(
                delivery_id=delivery.id,
                attempt=delivery.attempts,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                subscription_id=subscription.public_id,
                url=subscription.url,
                secret=subscription_secret(secrets_, subscription),
                body=encode_body(delivery.payload),
            )
        )
    return claims


def record_attempt(
    session: Session,
    claim: Claim,
    error: str | None,
    now: datetime,
    settings: GatewaySettings,
    rng: random.Random,
) -> str | None:
    """Record how the attempt went; returns the delivery's new status (None if stale)."""
    delivery = session.get(WebhookDelivery, claim.delivery_id)
    if (
        delivery is None
        or delivery.status != DeliveryStatus.PENDING
        or delivery.attempts != claim.attempt
    ):
        return None  # cancelled meanwhile, or re-claimed after our lease lapsed
    delivery.last_error = error
    if error is None:
        delivery.status = DeliveryStatus.DELIVERED
    elif delivery.attempts >= settings.webhook_attempts_max:
        delivery.status = DeliveryStatus.DEAD
    else:
        delay_s = backoff_s(
            delivery.attempts,
            settings.webhook_backoff_initial_s,
            settings.webhook_backoff_max_s,
            rng,
        )
        delivery.next_attempt_at = now + timedelta(seconds=delay_s)
    return delivery.status


# ---------------------------------------------------------------------------- worker


class WebhookWorker(threading.Thread):
    """Delivers due webhook events until stopped. Several workers (replicas) may run."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        secrets_: GatewaySecrets,
        settings: GatewaySettings,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(name="webhook-worker", daemon=True)
        self.sessions = sessions
        self.secrets = secrets_
        self.settings = settings
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self.rng = random.Random()
        batch = settings.webhook_batch_size_max
        self.client = httpx.Client(
            timeout=settings.webhook_timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=batch, max_keepalive_connections=batch),
            headers={"User-Agent": "alliance-webhooks/1"},
            transport=transport,
        )
        self.pool = ThreadPoolExecutor(max_workers=batch, thread_name_prefix="webhook-post")
        # An attempt's connect, write and read phases each get the timeout.
        self.lease_s = 3 * settings.webhook_timeout_s + LEASE_MARGIN_S

    def on_final(self, session: Session, operation: Operation) -> None:
        """The pipeline's `on_final` hook: queue the events, and wake the worker once the
        settling transaction commits (not before: the rows are not visible until then)."""
        if enqueue_operation_events(session, operation) and not session.info.get(WAKE_KEY):
            session.info[WAKE_KEY] = True
            event.listen(session, "after_commit", self._wake_after_commit, once=True)

    def _wake_after_commit(self, session: Session) -> None:
        session.info.pop(WAKE_KEY, None)
        self.wakeup.set()

    def stop(self, timeout_s: float = 10) -> None:
        """Finish the attempts in flight, then stop (unsent claims re-deliver after lease)."""
        self.stopping.set()
        self.wakeup.set()
        if self.is_alive():
            self.join(timeout_s)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                handled = self.step()
            except Exception:
                logger.exception("webhook delivery pass failed")
                handled = 0
            if handled < self.settings.webhook_batch_size_max:
                self.wakeup.wait(self.settings.webhook_poll_s)
                self.wakeup.clear()

    def step(self) -> int:
        """One pass: claim due deliveries, POST them concurrently, record the outcomes."""
        with unit_of_work(self.sessions) as session:
            claims = claim_due(
                session,
                self.secrets,
                utc_now(),
                self.settings.webhook_batch_size_max,
                self.lease_s,
            )
        if not claims:
            return 0
        outcomes = list(self.pool.map(self.attempt, claims))
        with unit_of_work(self.sessions) as session:
            for claim, error in zip(claims, outcomes, strict=True):
                status = record_attempt(session, claim, error, utc_now(), self.settings, self.rng)
                self._log(claim, error, status)
        return len(claims)

    def attempt(self, claim: Claim) -> str | None:
        """POST one event; None on a 2xx answer, else what went wrong. The response body
        is never read (a receiver cannot make us download anything)."""
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "Alliance-Event-Id": claim.event_id,
            "Alliance-Event-Type": claim.event_type,
            "Alliance-Signature": signature_header(claim.secret, timestamp, claim.body),
        }
        try:
            with self.client.stream("POST", claim.url, content=claim.body, headers=headers) as r:
                status = r.status_code
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"[:ERROR_CHARS_MAX]
        return None if 200 <= status < 300 else f"HTTP {status}"

    @staticmethod
    def _log(claim: Claim, error: str | None, status: str | None) -> None:
        if status == DeliveryStatus.DEAD:
            logger.warning(
                "webhook event %s to %s is dead after %d attempts: %s",
                claim.event_id,
                claim.subscription_id,
                claim.attempt,
                error,
            )
        elif error is not None:
            logger.info(
                "webhook event %s to %s failed (attempt %d): %s",
                claim.event_id,
                claim.subscription_id,
                claim.attempt,
                error,
            )
