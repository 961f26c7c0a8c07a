"""Passwords: set by an administrator or by the user, checked at sign-in (argon2id at rest, as passes are)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from ..context import RequestContext
from ..core import errors
from ..core import legacy_methods as rules
from ..core.errors import PassgateError
from ..logs.writer import modified, record_audit
from ..methods_policy import password_policy_of
from ..passkeys import enforcement
from ..store.tables import Password, User

# Graph gives every user's password method this id.
METHOD_ID = "28c10230-6103-485e-b985-444c60001490"
GENERATED_LENGTH = 16
_GENERATED_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

_hasher = PasswordHasher()
# Checked when the account has no password, so that the answer takes as long as for a wrong one.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def password_of(session: Session, user: User) -> Password | None:
    return session.get(Password, user.id)


def allowed_for(session: Session, user: User) -> bool:
    """Whether the methods policy's Password configuration includes the user."""
    return password_policy_of(session).allows(enforcement.member(session, user.id))


def require_allowed(session: Session, user: User) -> None:
    if not allowed_for(session, user):
        raise PassgateError(errors.PASSWORD_NOT_ENABLED_FOR_USER)


def usable(session: Session, user: User) -> bool:
    return password_of(session, user) is not None and allowed_for(session, user)


def matches(row: Password | None, offered: str) -> bool:
    try:
        return _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, offered) and row is not None
    except (VerificationError, InvalidHashError):
        return False


def generate() -> str:
    """A password for Graph's resetPassword without `newPassword`: shown once, in that answer."""
    while True:
        candidate = "".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(GENERATED_LENGTH))
        if rules.password_problem(candidate, "") is None:
            return candidate


def set_password(session: Session, ctx: RequestContext, user: User, new: str, *, self_service: bool) -> Password:
    """Check the rules and the policy, store the hash, and audit the change (never the password)."""
    require_allowed(session, user)
    rules.check_new_password(new, user.user_principal_name)
    row = password_of(session, user)
    old_time = row.created_at.isoformat() if row is not None else None
    if row is None:
        row = Password(user_id=user.id, password_hash=_hasher.hash(new), created_at=ctx.now)
        session.add(row)
    else:
        row.password_hash = _hasher.hash(new)
        row.created_at = ctx.now
    who = "User" if self_service else "Admin"
    record_audit(
        session, ctx, f"{who} {'registered' if old_time is None else 'updated'} security info",
        category="UserManagement", operation="Add" if old_time is None else "Update",
        target_type="User", target_id=user.id, target_name=user.display_name,
        target_upn=user.user_principal_name, service="Authentication Methods",
        changes=[modified("Password.lastSetDateTime", old_time, ctx.now.isoformat())],
        details={"methodId": METHOD_ID, "method": "Password"},
    )
    return row
