"""Members: register, link at another brand, read."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.api.deps import Caller, Context, IdempotencyKeyHeader
from gateway.api.idempotent import response_post
from gateway.api.presenters import member_public
from gateway.schemas import LinkCodePublic, MemberCreate, MemberLinkCreate, MemberPublic
from gateway.services import members

router = APIRouter(prefix="/v1/members", tags=["members"])


@router.post("", status_code=201, response_model=MemberPublic)
def register_member(
    body: MemberCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Register a member under the calling brand (custodial account)."""
    brand = caller.require_brand()

    def create(session):
        member = members.register(session, context.secrets, brand, body.brand_member_id)
        return 201, member_public(member, body.brand_member_id).model_dump(mode="json")

    return response_post(context, request, caller, key, body.model_dump(), create)


@router.post("/link", status_code=200, response_model=MemberPublic)
def link_member(
    body: MemberLinkCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Link an existing member at the calling brand with another brand's one-time link code."""
    brand = caller.require_brand()

    def create(session):
        member = members.link_with_code(
            session, context.secrets, brand, body.brand_member_id, body.link_code
        )
        return 200, member_public(member, body.brand_member_id).model_dump(mode="json")

    return response_post(context, request, caller, key, body.model_dump(), create)


@router.post("/{member_id}/link-codes", status_code=201, response_model=LinkCodePublic)
def issue_link_code(
    member_id: str,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """A one-time code by which the calling brand consents to link this member elsewhere."""
    brand = caller.require_brand()

    def create(session):
        member = members.get_member(session, member_id, brand)
        code, ttl_s = members.issue_link_code(
            session, context.secrets, member, brand, context.settings.link_code_ttl_s
        )
        return 201, LinkCodePublic(link_code=code, expires_in=ttl_s).model_dump(mode="json")

    return response_post(context, request, caller, key, {"member_id": member_id}, create)


@router.get("/{member_id}", response_model=MemberPublic)
def read_member(member_id: str, context: Context, caller: Caller) -> MemberPublic:
    """A member the caller may see (brands: their own members only)."""
    brand = caller.visible_brand()
    with context.sessions() as session:
        member = members.get_member(session, member_id, brand)
        own_id = members.brand_member_id(context.secrets, member, brand) if brand else None
        return member_public(member, own_id)
