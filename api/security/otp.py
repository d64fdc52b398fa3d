"""One-time-password sign-in: issuing a challenge and checking a code, with their limits.

Limits, and why they are counted from `otp_challenges` rows rather than kept in memory: the
rows are durable and shared by every API process, so a restart or a second worker never resets
them.

- Per phone *and client address*, each new code waits longer: RESEND_COOLDOWN after the first
  of the hour, then twice as long after each further one (30 s, 1 min, 2 min, ... up to
  MAX_BACKOFF). Counted per address because a per-phone budget let anyone lock a phone out of
  sign-in by spending it; now a stranger only slows down their own requests, while the owner's
  address keeps its own budget, and a flood of one phone needs many addresses, each bounded.
- Per client address MAX_CODES_PER_IP an hour (one client probing many numbers).
- Per code, MAX_ATTEMPTS wrong guesses end it: with a million codes, five guesses succeed once
  in 200,000 tries. Only the phone's newest code is checked, so requesting codes never widens
  the odds of a guess; whoever asked for it, it went to the phone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warehouse.operational.models import OtpChallenge

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=5)
MAX_ATTEMPTS = 5
RESEND_COOLDOWN = timedelta(seconds=30)
MAX_BACKOFF = timedelta(minutes=15)
LIMIT_WINDOW = timedelta(hours=1)
MAX_CODES_PER_IP = 20


class OtpRefused(Exception):
    """The request breaks a limit or the code is wrong; `status` and `retry_after` for HTTP."""

    def __init__(self, status: int, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


def code_hash(secret: bytes, challenge_id: uuid.UUID, code: str) -> str:
    """HMAC of the code, bound to its challenge (equal codes of two challenges hash apart)."""
    return hmac.new(secret, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds() + 0.999))


def resend_wait(codes_sent: int) -> timedelta:
    """How long after the latest code the next may be sent, when `codes_sent` codes went to the
    phone from the same address within the window: doubling from RESEND_COOLDOWN."""
    if codes_sent <= 0:
        return timedelta(0)
    return min(RESEND_COOLDOWN * 2 ** min(codes_sent - 1, 16), MAX_BACKOFF)


def _check_limits(session: Session, phone: str, ip: str | None, now: datetime) -> None:
    since = now - LIMIT_WINDOW
    count, latest = session.execute(
        select(func.count(), func.max(OtpChallenge.created_at)).where(
            OtpChallenge.phone == phone,
            OtpChallenge.ip_address.is_not_distinct_from(ip),
            OtpChallenge.created_at > since,
        )
    ).one()
    if latest is not None and now - latest < resend_wait(count):
        raise OtpRefused(
            429,
            "a code was sent to this phone from here recently; wait before asking for another",
            _seconds_until(latest + resend_wait(count), now),
        )
    if ip is not None:
        from_ip, first = session.execute(
            select(func.count(), func.min(OtpChallenge.created_at)).where(
                OtpChallenge.ip_address == ip, OtpChallenge.created_at > since
            )
        ).one()
        if from_ip >= MAX_CODES_PER_IP:
            raise OtpRefused(
                429,
                f"at most {MAX_CODES_PER_IP} codes an hour from one address",
                _seconds_until(first + LIMIT_WINDOW, now),
            )


def issue_challenge(
    session: Session, secret: bytes, phone: str, ip: str | None, *, now: datetime | None = None
) -> tuple[OtpChallenge, str]:
    """A new challenge for `phone` and its code (to send, never to store). Serialised per phone
    with an advisory lock, so two simultaneous requests cannot both pass the cool-down."""
    now = now or datetime.now(UTC)
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"otp:{phone}"))))
    _check_limits(session, phone, ip, now)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    challenge = OtpChallenge(
        id=uuid.uuid4(), phone=phone, expires_at=now + CODE_TTL, ip_address=ip, created_at=now
    )
    challenge.code_hash = code_hash(secret, challenge.id, code)
    session.add(challenge)
    session.flush()
    return challenge, code


@dataclass(frozen=True)
class Verified:
    phone: str


def check_code(
    session: Session, secret: bytes, phone: str, code: str, *, now: datetime | None = None
) -> Verified:
    """Consume the phone's live challenge if `code` matches; count a wrong guess otherwise.

    A wrong guess raises OtpRefused *after* the attempt is flushed: the caller must commit the
    transaction before answering, or the limit would never bite.
    """
    now = now or datetime.now(UTC)
    challenge = session.scalars(
        select(OtpChallenge)
        .where(OtpChallenge.phone == phone, OtpChallenge.consumed_at.is_(None))
        .order_by(OtpChallenge.created_at.desc())
        .limit(1)
        .with_for_update()
    ).first()
    if challenge is None:
        raise OtpRefused(401, "no code is pending for this phone; request one")
    if challenge.expires_at <= now:
        raise OtpRefused(401, "the code has expired; request a new one")
    if challenge.attempts >= MAX_ATTEMPTS:
        raise OtpRefused(429, "too many wrong codes; request a new one")
    if not hmac.compare_digest(challenge.code_hash, code_hash(secret, challenge.id, code)):
        challenge.attempts += 1
        session.flush()
        left = MAX_ATTEMPTS - challenge.attempts
        if left == 0:
            raise OtpRefused(429, "too many wrong codes; request a new one")
        raise OtpRefused(401, f"the code is not right; {left} attempts left")
    challenge.consumed_at = now
    session.flush()
    return Verified(phone=phone)
