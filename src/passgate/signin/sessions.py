"""Browser sessions: an opaque cookie token, stored hashed, carrying how the user signed in."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..context import RequestContext
from ..store.tables import BrowserSession, User

COOKIE = "passgate_session"
AGENT_COOKIE = "passgate_agent"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    session: Session,
    ctx: RequestContext,
    user: User,
    method: str,
    amr: list[str],
    expires_at: datetime,
    passkey_id: str | None = None,
) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        BrowserSession(
            token_hash=token_hash(token), user_id=user.id, auth_time=ctx.now, expires_at=expires_at,
            method=method, amr=amr, passkey_id=passkey_id,
        )
    )
    return token


def current(session: Session, token: str | None, now: datetime) -> tuple[BrowserSession, User] | None:
    """The live session for this cookie, or None when absent, ended, expired or its user disabled."""
    if not token:
        return None
    # One round trip for both: this runs on every authorize request and every signed-in page.
    found = session.execute(
        select(BrowserSession, User).join(User, User.id == BrowserSession.user_id)
        .where(BrowserSession.token_hash == token_hash(token))
    ).first()
    if found is None:
        return None
    row, user = found
    if row.ended_at is not None or row.expires_at <= now or not user.account_enabled:
        return None
    return row, user


def end(session: Session, token: str | None, now: datetime) -> None:
    if token:
        session.execute(
            update(BrowserSession).where(BrowserSession.token_hash == token_hash(token)).values(ended_at=now)
        )
