"""The OAuth2 client-credentials token endpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form

from gateway import errors
from gateway.api.deps import Context
from gateway.auth import authenticate_client, issue_token
from gateway.schemas import TokenPublic

router = APIRouter(prefix="/v1/oauth", tags=["auth"])


@router.post("/token", response_model=TokenPublic)
def token(
    context: Context,
    grant_type: Annotated[str, Form(max_length=64)],
    client_id: Annotated[str, Form(max_length=64)],
    client_secret: Annotated[str, Form(max_length=256)],
) -> TokenPublic:
    """Exchange client credentials for a short-lived bearer token."""
    if grant_type != "client_credentials":
        raise errors.Unauthorized("only grant_type=client_credentials is supported")
    with context.sessions() as session:
        client = authenticate_client(session, client_id, client_secret)
    ttl_s = context.settings.token_ttl_s
    return TokenPublic(
        access_token=issue_token(context.secrets.token_key, client, ttl_s),
        expires_in=ttl_s,
        scope=client.kind,
    )
