"""Webhook subscriptions: create (with a generated secret, stored encrypted), list, delete.

A subscription belongs to one brand and is visible to that brand only. Its signing secret
is generated here, returned once to the caller and kept AES-GCM encrypted (the delivery
worker decrypts it to sign). Deleting a subscription deactivates it and cancels its pending
deliveries; the rows stay, since deliveries refer to them.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from alliance.db.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from gateway import errors
from gateway.crypto import GatewaySecrets

SUBSCRIPTION_ID_PREFIX = "whk_"
SECRET_PREFIX = "whsec_"


def secret_context(subscription_public_id: str) -> str:
    """Associated data binding an encrypted secret to its subscription."""
    return f"webhook-secret:{subscription_public_id}"


def create_subscription(
    session: Session,
    secrets_: GatewaySecrets,
    brand_code: str,
    url: str,
    *,
    subscriptions_max: int,
    https_only: bool,
) -> tuple[WebhookSubscription, str]:
    """A new active subscription of `brand_code` to `url`, and its secret (shown once)."""
    if https_only and not url.startswith("https://"):
        raise errors.WebhookUrlRefused("webhook URLs must use https")
    active = session.scalar(
        select(func.count())
        .select_from(WebhookSubscription)
        .where(WebhookSubscription.brand_code == brand_code)
        .where(WebhookSubscription.active.is_(True))
    )
    if (active or 0) >= subscriptions_max:
        raise errors.WebhookLimitReached(
            f"{brand_code} already has {active} webhooks (at most {subscriptions_max})"
        )
    public_id = SUBSCRIPTION_ID_PREFIX + secrets.token_hex(12)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    subscription = WebhookSubscription(
        public_id=public_id,
        brand_code=brand_code,
        url=url,
        secret_ciphertext=secrets_.encrypt(secret, secret_context(public_id)),
        active=True,
    )
    session.add(subscription)
    session.flush()
    return subscription, secret


def list_subscriptions(session: Session, brand_code: str, limit: int) -> list[WebhookSubscription]:
    """The brand's active subscriptions, oldest first."""
    return list(
        session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.brand_code == brand_code)
            .where(WebhookSubscription.active.is_(True))
            .order_by(WebhookSubscription.id)
            .limit(limit)
        )
    )


def delete_subscription(session: Session, brand_code: str, public_id: str) -> None:
    """Deactivate the brand's subscription and cancel its pending deliveries (404 if the
    brand has no such active subscription: another brand's ids are not disclosed)."""
    subscription = session.scalars(
        select(WebhookSubscription)
        .where(WebhookSubscription.public_id == public_id)
        .where(WebhookSubscription.brand_code == brand_code)
        .where(WebhookSubscription.active.is_(True))
    ).first()
    if subscription is None:
        raise errors.NotFound(f"no webhook {public_id}")
    subscription.active = False
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == subscription.id)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.CANCELLED, last_error="subscription deleted")
    )


def subscription_secret(secrets_: GatewaySecrets, subscription: WebhookSubscription) -> str:
    """The subscription's signing secret, decrypted."""
    return secrets_.decrypt(subscription.secret_ciphertext, secret_context(subscription.public_id))
