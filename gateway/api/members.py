"""Members: register, link at another brand, read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from gateway.api.deps import Caller, Context, IdempotencyKeyHeader
from gateway.api.idempotent import operation_post, response_post
from gateway.api.presenters import member_public
from gateway.auth import Principal
from gateway.context import GatewayContext
from gateway.schemas import (
    POINTS_MAX,
    CustodyMessagePublic,
    CustodyUpdate,
    LinkCodePublic,
    MemberCreate,
    MemberLinkCreate,
    MemberPublic,
    OperationPublic,
)
from gateway.services import custody, idempotency, members

router = APIRouter(prefix="/v1/members", tags=["members"])


@router.post("", status_code=201, response_model=MemberPublic)
def register_member(
    body: MemberCreate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Register a member under the calling brand: custodial, or with `wallet` in
    self-custody at the member's own address (see docs/api.md, "Self-custody")."""
    brand = caller.require_brand()
    wallet = body.wallet
    if wallet is None:

        def create(session):
            member = members.register(session, context.secrets, brand, body.brand_member_id)
            return 201, member_public(member, body.brand_member_id).model_dump(mode="json")

        return response_post(context, request, caller, key, body.model_dump(), create)

    if not _replays(context, request, caller, key, body.model_dump()):
        custody.verify(context.ledger, custody.CustodyRequest.of_wallet(wallet))

    def create_with_wallet(session):
        member, operation = custody.register_with_wallet(
            session, context, brand, body.brand_member_id, wallet
        )
        public = member_public(member, body.brand_member_id)
        public.custody_operation_id = operation.id
        return 201, public.model_dump(mode="json")

    response = response_post(context, request, caller, key, body.model_dump(), create_with_wallet)
    if context.pipeline is not None:
        context.pipeline.wake("operator")
    return response


def _replays(
    context: GatewayContext, request: Request, caller: Principal, key: str | None, body: Any
) -> bool:
    """Whether `key` was used before for this request (a replay is answered as the first
    time, even after its signature's nonce was used; another body is a conflict)."""
    checked = idempotency.check_key(key)
    hashed = idempotency.request_hash(request.method, request.url.path, body)
    with context.sessions() as session:
        return idempotency.find(session, caller.client_id, checked, hashed) is not None


@router.post(
    "/{member_id}/custody",
    status_code=201,
    response_model=OperationPublic,
    responses={202: {"model": OperationPublic, "description": "Accepted, not yet final."}},
)
async def change_custody(
    member_id: str,
    body: CustodyUpdate,
    request: Request,
    context: Context,
    caller: Caller,
    key: IdempotencyKeyHeader = None,
) -> Response:
    """Switch a wallet member's custody with the member's `SelfCustody` signature (an
    operation of kind `custody`; 201 once confirmed, 202 while pending)."""
    brand = caller.require_brand()

    def prepare() -> None:
        change = custody.request_of(context, brand, member_id, body)
        custody.verify(context.ledger, change)

    return await operation_post(
        context,
        request,
        caller,
        key,
        {"member_id": member_id, **body.model_dump()},
        lambda session: custody.change_custody(
            session, brand, member_id, body, context.member_cache.forget
        ),
        wait_s=context.settings.sync_wait_s,
        prepare=prepare,
    )


@router.get("/custody-message", response_model=CustodyMessagePublic)
def custody_message(
    context: Context,
    caller: Caller,
    address: Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{40}$")],
    enabled: bool = True,
    deadline: Annotated[int | None, Query(ge=0, le=POINTS_MAX)] = None,
) -> CustodyMessagePublic:
    """The EIP-712 `SelfCustody` message a wallet signs, with its current nonce."""
    return CustodyMessagePublic(
        **custody.custody_message(context.ledger, address, enabled, deadline)
    )


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
