"""The webhook outbox queues the right events and the worker delivers them at least once.

Runs against a real SQLite database in a temporary directory (schema from the models) and
an in-process HTTP transport (`httpx.MockTransport`) standing in for the receivers; no
chain. Proves who is notified of what, that payloads carry no brand member ids, that the
worker signs, retries with back-off, gives up after `webhook_attempts_max`, and that a
deleted subscription's pending deliveries are cancelled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from alliance.db.base import Base, utc_now
from alliance.db.models import (
    DeliveryStatus,
    Member,
    Operation,
    OperationKind,
    OperationStatus,
    WebhookDelivery,
)
from alliance.db.session import make_engine, make_session_factory, unit_of_work
from gateway.crypto import GatewaySecrets
from gateway.services import members
from gateway.services import webhooks as subscriptions
from gateway.settings import GatewaySettings
from gateway.webhooks import WebhookWorker, enqueue_operation_events, verify_signature

SECRETS = GatewaySecrets.from_master(b"\x07" * 32)
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'alliance.db'}")
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


def subscribe(sessions: sessionmaker[Session], brand: str, url: str) -> tuple[str, str]:
    with unit_of_work(sessions) as session:
        subscription, secret = subscriptions.create_subscription(
            session, SECRETS, brand, url, subscriptions_max=10, https_only=False
        )
        return subscription.public_id, secret


def register(sessions: sessionmaker[Session], brand: str, brand_member_id: str) -> Member:
    with unit_of_work(sessions) as session:
        return members.register(session, SECRETS, brand, brand_member_id)


def settle(
    sessions: sessionmaker[Session],
    member: Member,
    *,
    kind: str = OperationKind.CONVERSION,
    status: str = OperationStatus.CONFIRMED,
) -> int:
    """An operation of bean that becomes final, with the outbox hook in its transaction."""
    with unit_of_work(sessions) as session:
        operation = Operation(
            kind=kind,
            status=OperationStatus.SUBMITTED,
            brand_code="bean",
            member_id=member.id,
            params={"from_brand": "bean", "to_brand": "sky", "amount_in": 100},
        )
        session.add(operation)
        session.flush()
        operation.status = status
        operation.result = {"amount_out": "49"} if status == OperationStatus.CONFIRMED else None
        enqueue_operation_events(session, operation)
        return operation.id


def deliveries(sessions: sessionmaker[Session]) -> list[WebhookDelivery]:
    with sessions() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def make_due(sessions: sessionmaker[Session]) -> None:
    """Skip the back-off: every pending delivery is due now."""
    with unit_of_work(sessions) as session:
        session.execute(
            update(WebhookDelivery).values(next_attempt_at=utc_now() - timedelta(seconds=1))
        )


def worker(sessions: sessionmaker[Session], handler: Handler, **overrides: Any) -> WebhookWorker:
    settings = GatewaySettings(**{"webhook_attempts_max": 3, **overrides})
    return WebhookWorker(sessions, SECRETS, settings, transport=httpx.MockTransport(handler))


def test_a_final_operation_queues_one_event_per_active_subscription_of_its_brand(
    sessions: sessionmaker[Session],
) -> None:
    subscribe(sessions, "bean", "http://bean.example/a")
    subscribe(sessions, "bean", "http://bean.example/b")
    subscribe(sessions, "cart", "http://cart.example/")
    alice = register(sessions, "bean", "alice@example.com")
    settle(sessions, alice, kind=OperationKind.DEPOSIT)
    queued = deliveries(sessions)
    assert [d.payload["brand"] for d in queued] == ["bean", "bean"]
    assert {d.event_type for d in queued} == {"operation.confirmed"}
    assert len({d.event_id for d in queued}) == 2


def test_a_confirmed_conversion_also_tells_the_receiving_brand_without_an_unknown_member(
    sessions: sessionmaker[Session],
) -> None:
    subscribe(sessions, "bean", "http://bean.example/")
    subscribe(sessions, "sky", "http://sky.example/")
    alice = register(sessions, "bean", "alice@example.com")
    settle(sessions, alice)
    bean, sky = deliveries(sessions)
    assert bean.payload["data"]["member_id"] == alice.public_id
    assert sky.payload["brand"] == "sky"
    assert sky.payload["data"]["member_id"] is None  # alice is not linked at sky
    assert sky.payload["data"]["id"] == bean.payload["data"]["id"]
    for delivery in (bean, sky):
        assert "alice@example.com" not in json.dumps(delivery.payload)
        assert delivery.payload["data"]["status"] == "confirmed"


def test_a_failed_conversion_tells_only_the_sending_brand(
    sessions: sessionmaker[Session],
) -> None:
    subscribe(sessions, "bean", "http://bean.example/")
    subscribe(sessions, "sky", "http://sky.example/")
    alice = register(sessions, "bean", "alice")
    settle(sessions, alice, status=OperationStatus.FAILED)
    assert [(d.payload["brand"], d.event_type) for d in deliveries(sessions)] == [
        ("bean", "operation.failed")
    ]


def test_the_worker_signs_retries_with_backoff_and_then_delivers(
    sessions: sessionmaker[Session],
) -> None:
    _, secret = subscribe(sessions, "bean", "http://bean.example/hook")
    settle(sessions, register(sessions, "bean", "alice"), kind=OperationKind.DEPOSIT)
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(503 if len(received) <= 2 else 204)

    delivering = worker(sessions, receiver)
    try:
        assert delivering.step() == 1
        (delivery,) = deliveries(sessions)
        assert (delivery.status, delivery.attempts, delivery.last_error) == (
            "pending",
            1,
            "HTTP 503",
        )
        assert delivery.next_attempt_at > utc_now()  # backing off: not due yet
        assert delivering.step() == 0
        make_due(sessions)
        assert delivering.step() == 1
        make_due(sessions)
        assert delivering.step() == 1
    finally:
        delivering.stop()
    (delivery,) = deliveries(sessions)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 3, None)
    assert len(received) == 3
    assert {r.headers["Alliance-Event-Id"] for r in received} == {delivery.event_id}
    for request in received:
        assert request.headers["Alliance-Event-Type"] == "operation.confirmed"
        assert verify_signature(
            secret, request.headers["Alliance-Signature"], request.content, now=time.time()
        )
        assert json.loads(request.content)["id"] == delivery.event_id


def test_the_worker_marks_a_delivery_dead_after_the_last_attempt(
    sessions: sessionmaker[Session],
) -> None:
    subscribe(sessions, "bean", "http://bean.example/hook")
    settle(sessions, register(sessions, "bean", "alice"), kind=OperationKind.DEPOSIT)

    def refusing(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    delivering = worker(sessions, refusing, webhook_attempts_max=2)
    try:
        delivering.step()
        make_due(sessions)
        delivering.step()
        make_due(sessions)
        assert delivering.step() == 0
    finally:
        delivering.stop()
    (delivery,) = deliveries(sessions)
    assert (delivery.status, delivery.attempts) == ("dead", 2)
    assert delivery.last_error == "ConnectError: connection refused"


def test_deleting_a_subscription_cancels_its_pending_deliveries(
    sessions: sessionmaker[Session],
) -> None:
    public_id, _ = subscribe(sessions, "bean", "http://bean.example/hook")
    settle(sessions, register(sessions, "bean", "alice"), kind=OperationKind.DEPOSIT)
    with unit_of_work(sessions) as session:
        subscriptions.delete_subscription(session, "bean", public_id)
    (delivery,) = deliveries(sessions)
    assert delivery.status == DeliveryStatus.CANCELLED
    with sessions() as session:
        assert subscriptions.list_subscriptions(session, "bean", 10) == []


def test_another_brand_cannot_delete_a_subscription(sessions: sessionmaker[Session]) -> None:
    from gateway.errors import NotFound

    public_id, _ = subscribe(sessions, "bean", "http://bean.example/hook")
    with pytest.raises(NotFound), unit_of_work(sessions) as session:
        subscriptions.delete_subscription(session, "sky", public_id)


def test_secrets_are_stored_encrypted(sessions: sessionmaker[Session]) -> None:
    _, secret = subscribe(sessions, "bean", "http://bean.example/hook")
    with sessions() as session:
        (subscription,) = subscriptions.list_subscriptions(session, "bean", 10)
    assert secret.encode() not in subscription.secret_ciphertext
    assert subscriptions.subscription_secret(SECRETS, subscription) == secret
