"""A policy's premium payments (`GET /v1/policies/{id}/premium-payments`), read-only: dues are
created by the insurer's systems and paid through payment channels, not through this API."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel
from sqlalchemy import bindparam, select

from api.db import compile_query, scoped_rows
from api.deps import EnginesDep
from api.problems import problem_responses
from api.resources.catalogue import POLICIES
from api.resources.crud import json_response, read_visible
from api.schemas.resources import PremiumPaymentRead
from api.security.deps import roles
from api.security.tokens import Principal
from warehouse.operational.models import PremiumPayment

# The payments of a policy the caller may read (`read_visible` first; row-level security too).
_INSTALMENTS = compile_query(
    select(PremiumPayment.__table__)
    .where(PremiumPayment.policy_id == bindparam("policy_id"))
    .order_by(PremiumPayment.due_date)
)

router = APIRouter(prefix="/v1/policies", tags=["policies"])


class PremiumPayments(BaseModel):
    items: list[PremiumPaymentRead]


@router.get(
    "/{policy_id}/premium-payments",
    summary="A policy's premium instalments",
    response_model=PremiumPayments,
    responses=problem_responses(401, 403, 404, 422),
)
async def premium_payments(
    policy_id: uuid.UUID,
    principal: Annotated[Principal, Depends(roles(*POLICIES.readers))],
    engines: EnginesDep,
) -> Response:
    """Every instalment of the policy in due-date order (a policy has at most a few hundred)."""
    await read_visible(engines.operational_reads, POLICIES, principal, policy_id)
    sql, params = _INSTALMENTS.statement(policy_id=policy_id)
    rows = await scoped_rows(engines.operational_reads, principal, sql, params)
    items = [PremiumPaymentRead.model_validate(r).model_dump(mode="json") for r in rows]
    return json_response({"items": items})
