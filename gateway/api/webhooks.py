"""Webhook subscriptions of the calling brand: create, list, delete."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from alliance.db.models import WebhookSubscription
from alliance.db.session import unit_of_work
from gateway.api.deps import Caller, Context, IdempotencyKeyHeader
from gateway.api.idempotent import response_post
from gateway.schemas import WebhookCreate, WebhookPublic
from gateway.services import webhooks

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


def webhook_public(subscription: WebhookSubscription, secret: str | None = None) -> WebhookPublic:
    return WebhookPublic(
        id=subscription.public_id,
        url=subscription.url,
        active=subscription.active,
        secret=secret,
    )


@router.post("", status_code=201, response_model=WebhookPublic)
def create_webhook(
    body: WebhookCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Subscribe a URL to the brand's operation events. The signing secret is in this
    response only: a replay of the same Idempotency-Key answers without it."""
    brand = caller.require_brand()
    created: dict[str, str] = {}

    def create(session: Session) -> tuple[int, dict[str, Any]]:
        subscription, secret = webhooks.create_subscription(
            session,
            context.secrets,
            brand,
            body.url,
            subscriptions_max=context.settings.webhook_subscriptions_max,
            https_only=context.settings.environment == "production",
        )
        created.update(id=subscription.public_id, secret=secret)
        # The stored (replayable) response leaves the secret out: it exists only encrypted.
        return 201, webhook_public(subscription).model_dump(mode="json")

    response = response_post(context, request, caller, key, body.model_dump(), create)
    shown: dict[str, Any] = json.loads(bytes(response.body))
    if response.status_code != 201 or shown.get("id") != created.get("id"):
        return response  # a replay, or a concurrent request with this key won the race
    return JSONResponse({**shown, "secret": created["secret"]}, status_code=201)


@router.get("", response_model=list[WebhookPublic])
def list_webhooks(context: Context, caller: Caller) -> list[WebhookPublic]:
    """The brand's active subscriptions (secrets are never shown again)."""
    brand = caller.require_brand()
    with context.sessions() as session:
        found = webhooks.list_subscriptions(session, brand, context.settings.page_size_max)
        return [webhook_public(subscription) for subscription in found]


@router.delete("/{webhook_id}", status_code=204, response_class=Response)
def delete_webhook(webhook_id: str, context: Context, caller: Caller) -> Response:
    """Stop deliveries to this subscription (pending ones are cancelled)."""
    brand = caller.require_brand()
    with unit_of_work(context.sessions) as session:
        webhooks.delete_subscription(session, brand, webhook_id)
    return Response(status_code=204)
