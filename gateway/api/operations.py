"""Reading operations."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.deps import Caller, Context
from gateway.api.presenters import operation_public
from gateway.schemas import OperationPublic
from gateway.services.operations import get_operation

router = APIRouter(prefix="/v1/operations", tags=["operations"])


@router.get("/{operation_id}", response_model=OperationPublic)
def read_operation(operation_id: int, context: Context, caller: Caller) -> OperationPublic:
    """An operation's status and, when final, its result or error."""
    with context.sessions() as session:
        return operation_public(
            session, get_operation(session, operation_id, caller.visible_brand())
        )
