"""Browser sessions: an opaque cookie token, stored hashed, carrying how the user signed in."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..context import RequestContext
from ..core.values import Evidence, MethodMode, PasskeyEvidence
from ..store.prepared import Prepared
from ..store.tables import BrowserSession, Passkey, PasskeyView, User, UserView, new_id

COOKIE = "passgate_session"
AGENT_COOKIE = "passgate_agent"


# Built once: a session is started on every sign-in, without the ORM's unit of work.
_INSERT = Prepared(insert(BrowserSession.__table__))


# One round trip for both, built once: this runs on every authorize request and every signed-in page.
# The session's passkey comes along, so that evidence_of (Conditional Access at every authorize) finds it in the
# identity map without another round trip. The identity map holds objects weakly: _HELD keeps it there.
_CURRENT = (
    select(BrowserSession, User, Passkey).join(User, User.id == BrowserSession.user_id)
    .outerjoin(Passkey, Passkey.id == BrowserSession.passkey_id)
    .where(BrowserSession.token_hash == bindparam("digest"))
)


_HELD = "passgate.sessions.held"  # session.info: objects kept alive as long as the Session


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Started:
    token: str  # the cookie's value, shown once
    row: BrowserSession  # as stored (a detached copy: the insert bypasses the ORM)
    evidence: Evidence


def start(
    session: Session,
    ctx: RequestContext,
    user: UserView,
    method: str,
    amr: list[str],
    expires_at: datetime,
    passkey: PasskeyView | None = None,
    modes: Sequence[MethodMode] | None = None,
) -> Started:
    """A new session; `modes` are what the sign-in proved (a passkey proves fido2, a pass its kind). The caller
    gets it as stored, so that what it does next in the same transaction (answer an authorize request) need not
    read it back."""
    token = secrets.token_urlsafe(32)
    if modes is None:
        modes = [MethodMode.FIDO2] if method == "passkey" else [MethodMode.TAP_MULTI_USE]
    values = {
        "id": new_id(), "token_hash": token_hash(token), "user_id": user.id, "auth_time": ctx.now,
        "expires_at": expires_at, "method": method, "amr": amr, "passkey_id": passkey.id if passkey else None,
        "auth_methods": [m.value for m in modes], "ended_at": None,
    }
    _INSERT.run(session, values)
    return Started(token, BrowserSession(**values), evidence(modes, ctx.now, passkey))


def passkey_evidence(passkey: PasskeyView) -> PasskeyEvidence:
    """A stored passkey's verified facts, as strengths and Conditional Access compare them."""
    return PasskeyEvidence(aaguid=passkey.aaguid.lower(), attested=passkey.attestation_level == "attested",
                           device_bound=not passkey.backup_eligible)


def evidence(modes: Sequence[MethodMode], auth_time: datetime, passkey: PasskeyView | None = None) -> Evidence:
    """What a sign-in proved: its modes, when, and with which passkey."""
    return Evidence(methods=frozenset(modes), auth_time=auth_time,
                    passkey=passkey_evidence(passkey) if passkey is not None else None)


def evidence_of(session: Session, row: BrowserSession) -> Evidence:
    """What this session proved, for authentication strengths and Conditional Access."""
    passkey = session.get(Passkey, row.passkey_id) if row.passkey_id else None
    return evidence([MethodMode(m) for m in row.auth_methods or ()], row.auth_time, passkey)


def current(session: Session, token: str | None, now: datetime) -> tuple[BrowserSession, User] | None:
    """The live session for this cookie, or None when absent, ended, expired or its user disabled."""
    if not token:
        return None
    found = session.execute(_CURRENT, {"digest": token_hash(token)}).first()
    if found is None:
        return None
    row, user, passkey = found
    if passkey is not None:
        session.info.setdefault(_HELD, []).append(passkey)
    if row.ended_at is not None or row.expires_at <= now or not user.account_enabled:
        return None
    return row, user


def end(session: Session, token: str | None, now: datetime) -> BrowserSession | None:
    """End the live session of this cookie; returns it, or None when there was none to end."""
    if not token:
        return None
    row = session.scalar(select(BrowserSession).where(BrowserSession.token_hash == token_hash(token)))
    return end_row(session, row, now)


def end_row(session: Session, row: BrowserSession | None, now: datetime) -> BrowserSession | None:
    if row is None or row.ended_at is not None:
        return None
    # Conditional, so that of two racing sign-outs only one ends it (and tells the apps).
    done = session.execute(
        update(BrowserSession).where(BrowserSession.id == row.id, BrowserSession.ended_at.is_(None))
        .values(ended_at=now).execution_options(synchronize_session=False)
    )
    row.ended_at = now
    return row if done.rowcount == 1 else None  # type: ignore[attr-defined]
