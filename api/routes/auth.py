"""Sign-in by OTP, token refresh with rotation, and sign-out (`/v1/auth`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api import audit
from api.context import RequestContext, RequestContextDep
from api.db import scoped_session
from api.deps import EnginesDep, SettingsDep
from api.problems import problem_responses
from api.schemas.formats import IndianMobile
from api.security.deps import CurrentPrincipal
from api.security.otp import (
    CODE_TTL,
    RESEND_COOLDOWN,
    OtpRefused,
    check_code,
    issue_challenge,
)
from api.security.otp_delivery import OtpSender
from api.security.sessions import (
    REASON_LOGOUT,
    Issued,
    SessionRefused,
    find_or_create_user,
    may_sign_in,
    revoke_family,
    rotate,
    start_session,
)
from api.security.tokens import ACCESS_TOKEN_TTL, Principal, issue_access_token
from warehouse.operational.models import UserSession
from warehouse.settings import Settings

router = APIRouter(prefix="/v1/auth", tags=["auth"])


class OtpRequest(BaseModel):
    phone: IndianMobile


class OtpRequested(BaseModel):
    expires_in: int = Field(description="seconds the code stays valid")
    resend_after: int = Field(description="seconds before another code may be requested")


class OtpVerify(BaseModel):
    phone: IndianMobile
    code: str = Field(pattern=r"^[0-9]{6}$", examples=["123456"])


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=16, max_length=128)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_in: int = Field(description="seconds the access token stays valid")
    role: str
    user_id: str


async def get_otp_sender(request: Request) -> OtpSender:
    return request.app.state.otp_sender


OtpSenderDep = Annotated[OtpSender, Depends(get_otp_sender)]


def _pair(settings: Settings, issued: Issued) -> TokenPair:
    return TokenPair(
        access_token=issue_access_token(settings, issued.principal),
        refresh_token=issued.refresh_token,
        expires_in=int(ACCESS_TOKEN_TTL.total_seconds()),
        role=issued.principal.role.value,
        user_id=str(issued.principal.user_id),
    )


def _refused(exc: OtpRefused) -> HTTPException:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return HTTPException(exc.status, exc.detail, headers=headers)


def _secret(settings: Settings) -> bytes:
    return settings.jwt_secret.get_secret_value().encode()


@router.post(
    "/otp/request",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a sign-in code to a phone",
    responses=problem_responses(422, 429),
)
def request_otp(
    body: OtpRequest,
    settings: SettingsDep,
    engines: EnginesDep,
    sender: OtpSenderDep,
    context: RequestContextDep,
) -> OtpRequested:
    """Sends a 6-digit code valid for 5 minutes. Limits (429 with `Retry-After`): per phone and
    client address, 30 s before a second code, then twice as long before each next one (up to
    15 minutes; an hour without codes starts over); 20 codes an hour per client address. A
    stranger asking codes for a phone thus never stops its owner asking from elsewhere. The
    answer is the same whether or not the phone has an account, so it reveals nothing."""
    try:
        with scoped_session(engines.operational, None) as session:
            _, code = issue_challenge(session, _secret(settings), body.phone, context.ip_address)
            sender.send(body.phone, code)  # a failed send rolls the challenge back
    except OtpRefused as exc:
        raise _refused(exc) from exc
    return OtpRequested(
        expires_in=int(CODE_TTL.total_seconds()),
        resend_after=int(RESEND_COOLDOWN.total_seconds()),
    )


@router.post(
    "/otp/verify",
    summary="Exchange a sign-in code for tokens",
    responses=problem_responses(401, 403, 422, 429),
)
def verify_otp(
    body: OtpVerify, settings: SettingsDep, engines: EnginesDep, context: RequestContextDep
) -> TokenPair:
    """A right code gives an access token (15 minutes) and a refresh token (30 days). Five wrong
    codes end the challenge (429). First sign-in of an unknown phone creates a policyholder."""
    refused: OtpRefused | None = None
    issued: Issued | None = None
    with scoped_session(engines.operational, None) as session:
        try:
            check_code(session, _secret(settings), body.phone, body.code)
        except OtpRefused as exc:
            refused = exc  # commit the counted attempt, then refuse
        else:
            user = find_or_create_user(session, body.phone)
            if not may_sign_in(user):
                raise HTTPException(status.HTTP_403_FORBIDDEN, "this account is not active")
            user.last_login_at = user.phone_verified_at = datetime.now(UTC)
            issued = start_session(
                session, user, ip=context.ip_address, user_agent=context.user_agent
            )
            _audit_session(session, context, issued.principal, "login", issued.session)
    if refused is not None:
        raise _refused(refused)
    assert issued is not None
    return _pair(settings, issued)


@router.post(
    "/refresh",
    summary="Rotate a refresh token",
    responses=problem_responses(401, 422),
)
def refresh(
    body: RefreshRequest, settings: SettingsDep, engines: EnginesDep, context: RequestContextDep
) -> TokenPair:
    """Gives a new access token and a new refresh token; the old refresh token stops working.
    Presenting an already rotated refresh token revokes every session of that sign-in (401)."""
    refused: SessionRefused | None = None
    issued: Issued | None = None
    with scoped_session(engines.operational, None) as session:
        try:
            issued = rotate(
                session, body.refresh_token, ip=context.ip_address, user_agent=context.user_agent
            )
        except SessionRefused as exc:
            refused = exc  # commit the family revocation, then refuse
    if refused is not None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(refused))
    assert issued is not None
    return _pair(settings, issued)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign out: end this sign-in's sessions",
    responses=problem_responses(401),
)
def logout(
    principal: CurrentPrincipal, engines: EnginesDep, context: RequestContextDep
) -> Response:
    """Revokes the refresh tokens of this sign-in. The access token expires by itself within
    15 minutes; clients drop it at once."""
    with scoped_session(engines.operational, principal) as session:
        row = session.get(UserSession, principal.session_id)
        if row is not None and row.user_id == principal.user_id:
            revoke_family(session, row.token_family_id, REASON_LOGOUT)
            _audit_session(session, context, principal, "logout", row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _audit_session(
    session: Session, context: RequestContext, principal: Principal, action: str, row: UserSession
) -> None:
    audit.record(
        session,
        context,
        principal=principal,
        action=action,
        entity_type="user_session",
        entity_id=str(row.id),
        provider_id=None,
        new={"token_family_id": row.token_family_id, "expires_at": row.expires_at},
    )
