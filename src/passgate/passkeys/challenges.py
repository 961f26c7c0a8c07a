"""Server-side challenges: single use, expiring, bound to the browser (or API caller) that asked."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session
from webauthn.helpers import generate_challenge

from ..context import RequestContext
from ..core import errors
from ..core.errors import PassgateError
from ..store import config_cache
from ..store.prepared import Prepared
from ..store.tables import Challenge

# Expired rows are swept by about one issue in this many: a sweep on every issue was a DELETE per
# sign-in on the hot path, and stale rows are harmless (a challenge is looked up by its own value,
# and its expiry is checked when it is used).
SWEEP_EVERY = 64


_TABLE = Challenge.__table__
_INSERT = Prepared(insert(_TABLE))
# The claim is one round trip: it matches only a live challenge of this browser and purpose, so a refused
# claim changes nothing; the row is read again only to say why it was refused.
_CLAIM = Prepared(
    update(_TABLE)
    .where(_TABLE.c.challenge == bindparam("value"), _TABLE.c.used_at.is_(None),
           _TABLE.c.binding == bindparam("bound_to"), _TABLE.c.purpose == bindparam("wanted"),
           _TABLE.c.expires_at > bindparam("now"))
    .values(used_at=bindparam("now"))
    # A sign-in's first statement: the configuration version comes with it (store/config_cache.py).
    .returning(_TABLE.c.challenge, _TABLE.c.user_id, config_cache.VERSION)
)
_FIND = Prepared(select(_TABLE.c.binding, _TABLE.c.purpose, _TABLE.c.used_at, _TABLE.c.expires_at).where(
    _TABLE.c.challenge == bindparam("value")))


@dataclass(frozen=True, slots=True)
class Claimed:
    """A challenge just used: its value and the account it was issued for (None: any)."""

    challenge: bytes
    user_id: str | None


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
    _INSERT.run(session, {
        "challenge": value, "binding": binding, "purpose": purpose, "user_id": user_id,
        "expires_at": ctx.now + timedelta(seconds=seconds), "used_at": None,
    })
    return value


def consume(session: Session, ctx: RequestContext, binding: str, purpose: str, value: bytes) -> Claimed:
    """Mark the challenge used (atomically, so two racing requests cannot both pass) and return it."""
    claimed = _CLAIM.first(session, {"value": value, "bound_to": binding, "wanted": purpose, "now": ctx.now})
    if claimed is not None:
        config_cache.seen(session, claimed.config_version)
        return Claimed(claimed.challenge, claimed.user_id)
    row = _FIND.first(session, {"value": value})
    if row is None or row.binding != binding or row.purpose != purpose:
        raise PassgateError(errors.CHALLENGE_NOT_FOUND)
    if row.used_at is not None:
        raise PassgateError(errors.CHALLENGE_ALREADY_USED)
    if row.expires_at <= ctx.now:
        raise PassgateError(errors.CHALLENGE_EXPIRED)
    raise PassgateError(errors.CHALLENGE_ALREADY_USED)  # live when read again: a racing request claimed it
