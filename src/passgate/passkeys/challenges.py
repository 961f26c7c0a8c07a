"""Server-side challenges: single use, expiring, bound to the browser (or API caller) that asked."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from webauthn.helpers import generate_challenge

from ..context import RequestContext
from ..core import errors
from ..core.errors import PassgateError
from ..store.tables import Challenge

# Expired rows are swept by about one issue in this many: a sweep on every issue was a DELETE per
# sign-in on the hot path, and stale rows are harmless (a challenge is looked up by its own value,
# and its expiry is checked when it is used).
SWEEP_EVERY = 64


def binding_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    session: Session, ctx: RequestContext, binding: str, purpose: str, seconds: int, user_id: str | None = None,
    value: bytes | None = None,
) -> bytes:
    """A new single-use value for `purpose`; `value` when the caller needs its own (a TOTP seed being set up)."""
    # Expired rows are swept now and then; a challenge is only ever looked up by its own value.
    if secrets.randbelow(SWEEP_EVERY) == 0:
        session.execute(delete(Challenge).where(Challenge.expires_at < ctx.now - timedelta(hours=1)))
    value = value or generate_challenge()
    session.add(
        Challenge(
            challenge=value,
            binding=binding,
            purpose=purpose,
            user_id=user_id,
            expires_at=ctx.now + timedelta(seconds=seconds),
        )
    )
    return value


def consume(session: Session, ctx: RequestContext, binding: str, purpose: str, value: bytes) -> Challenge:
    """Mark the challenge used (atomically, so two racing requests cannot both pass) and return it."""
    row = session.get(Challenge, value)
    if row is None or row.binding != binding or row.purpose != purpose:
        raise PassgateError(errors.CHALLENGE_NOT_FOUND)
    if row.used_at is not None:
        raise PassgateError(errors.CHALLENGE_ALREADY_USED)
    if row.expires_at <= ctx.now:
        raise PassgateError(errors.CHALLENGE_EXPIRED)
    claimed = session.execute(
        update(Challenge)
        .where(Challenge.challenge == value, Challenge.used_at.is_(None))
        .values(used_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise PassgateError(errors.CHALLENGE_ALREADY_USED)
    # The UPDATE above already stored it; set as committed so that the flush does not write it again.
    set_committed_value(row, "used_at", ctx.now)
    return row
