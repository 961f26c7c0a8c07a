"""Issuing, reading and checking Temporary Access Passes (hashed at rest with argon2id)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import RequestContext
from ..core import tap as tap_rules
from ..core.values import TapState, UsabilityReason
from ..logs.writer import modified, record_audit
from ..methods_policy import tap_policy_of
from ..store.tables import TemporaryAccessPass, User

_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class IssuedPass:
    row: TemporaryAccessPass
    secret: str  # shown once, never stored


def state_of(row: TemporaryAccessPass) -> TapState:
    return TapState(
        start=row.start_at, lifetime_minutes=row.lifetime_minutes,
        is_usable_once=row.is_usable_once, used_at=row.used_at,
    )


def expiry(row: TemporaryAccessPass) -> datetime:
    return tap_rules.expires_at(state_of(row))


def usability(session: Session, row: TemporaryAccessPass, now: datetime) -> UsabilityReason:
    return tap_rules.usability(state_of(row), tap_policy_of(session), now)


def pass_of(session: Session, user: User) -> TemporaryAccessPass | None:
    return session.scalar(select(TemporaryAccessPass).where(TemporaryAccessPass.user_id == user.id))


def issue(
    session: Session,
    ctx: RequestContext,
    user: User,
    start: datetime | None = None,
    lifetime_minutes: int | None = None,
    is_usable_once: bool | None = None,
) -> IssuedPass:
    request = tap_rules.resolve_request(tap_policy_of(session), ctx.now, start, lifetime_minutes, is_usable_once)
    secret = "".join(secrets.choice(tap_rules.ALPHABET) for _ in range(request.length))
    old = pass_of(session, user)
    if old is not None:
        session.delete(old)
        session.flush()
    row = TemporaryAccessPass(
        user_id=user.id,
        pass_hash=_hasher.hash(secret),
        created_at=ctx.now,
        start_at=request.start,
        lifetime_minutes=request.lifetime_minutes,
        is_usable_once=request.is_usable_once,
    )
    session.add(row)
    session.flush()
    record_audit(
        session, ctx, "Admin registered security info", category="UserManagement", operation="Add",
        target_type="User", target_id=user.id, target_name=user.display_name,
        target_upn=user.user_principal_name, service="Authentication Methods",
        changes=[
            modified("TemporaryAccessPass.lifetimeInMinutes", None, request.lifetime_minutes),
            modified("TemporaryAccessPass.isUsableOnce", None, request.is_usable_once),
            modified("TemporaryAccessPass.startDateTime", None, request.start.isoformat()),
        ],
        details={"methodId": row.id, "replacedMethodId": old.id if old else None},
    )
    return IssuedPass(row=row, secret=secret)


def delete(session: Session, ctx: RequestContext, user: User, row: TemporaryAccessPass) -> None:
    record_audit(
        session, ctx, "Admin deleted security info", category="UserManagement", operation="Delete",
        target_type="User", target_id=user.id, target_name=user.display_name,
        target_upn=user.user_principal_name, service="Authentication Methods",
        details={"methodId": row.id, "method": "TemporaryAccessPass"},
    )
    session.delete(row)


def matches(row: TemporaryAccessPass, offered: str) -> bool:
    try:
        return _hasher.verify(row.pass_hash, offered)
    except (VerificationError, InvalidHashError):
        return False
