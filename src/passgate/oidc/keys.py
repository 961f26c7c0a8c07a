"""Token signing keys (joserfc), kept in the database so that every process signs and verifies alike.

ES256 signs by default (cheap); an RS256 key is published too because OIDC discovery requires it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from joserfc import jwk
from joserfc.jwk import KeySet
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..context import RequestContext
from ..store.db import Database
from ..store.tables import SigningKey

ALGORITHMS = ("ES256", "RS256")


def _generate(alg: str) -> jwk.Key:
    params: dict[str, Any] = {"alg": alg, "use": "sig"}
    if alg == "ES256":
        return jwk.generate_key("EC", "P-256", parameters=params, auto_kid=True)  # type: ignore[arg-type]
    return jwk.generate_key("RSA", 2048, parameters=params, auto_kid=True)  # type: ignore[arg-type]


def ensure_keys(session: Session, ctx: RequestContext) -> None:
    """Create one active key per algorithm when there is none (first start)."""
    for alg in ALGORITHMS:
        exists = session.scalar(
            select(SigningKey.kid).where(SigningKey.alg == alg, SigningKey.retired_at.is_(None)).limit(1)
        )
        if exists is None:
            key = _generate(alg)
            session.add(
                SigningKey(
                    kid=str(key.kid), alg=alg, private_jwk=dict(key.as_dict(private=True)),
                    created_at=ctx.now, activates_at=ctx.now,
                )
            )


JWKS_MAX_AGE = 300  # seconds relying parties may cache the JWKS (Cache-Control on /oauth2/jwks)
CACHE_SECONDS = 30.0  # how long each Passgate process keeps the keys it read
DEFAULT_ACTIVATE_IN = 2 * JWKS_MAX_AGE


def _published(now: Any) -> Any:
    return or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > now)


def rotate(session: Session, ctx: RequestContext, activate_in: int, token_seconds: int) -> list[SigningKey]:
    """Publish a new key per algorithm now; it signs from `activate_in` seconds on, once every cache of the
    JWKS has seen it. The keys it replaces stay published until the last token they signed has expired."""
    activates = ctx.now + timedelta(seconds=activate_in)
    retire_at = activates + timedelta(seconds=token_seconds + int(CACHE_SECONDS) + 60)
    added = []
    for alg in ALGORITHMS:
        current = list(session.scalars(select(SigningKey).where(SigningKey.alg == alg, _published(ctx.now))))
        for old in current:
            if old.retired_at is None or old.retired_at > retire_at:
                old.retired_at = retire_at
        key = _generate(alg)
        row = SigningKey(kid=str(key.kid), alg=alg, private_jwk=dict(key.as_dict(private=True)),
                         created_at=ctx.now, activates_at=activates)
        session.add(row)
        added.append(row)
    return added


@dataclass(frozen=True, slots=True)
class KeyRing:
    published: KeySet  # private keys of everything published (verification and signing)
    signing: dict[str, str]  # alg -> kid of the key that signs now
    loaded_at: float

    def public_jwks(self) -> dict[str, Any]:
        return dict(self.published.as_dict(private=False))


class KeyCache:
    """Keys read from the database at most every `ttl` seconds per process."""

    def __init__(self, db: Database, ttl: float = CACHE_SECONDS) -> None:
        self.db = db
        self.ttl = ttl
        self._ring: KeyRing | None = None
        # Importing a private RSA key costs tens of milliseconds (its consistency checks), and a key's
        # material never changes under its kid: keys are imported once per process, not at every re-read.
        self._imported: dict[str, jwk.Key] = {}
        self._reloading = threading.Lock()

    def ring(self, ctx: RequestContext) -> KeyRing:
        ring = self._ring
        if ring is not None and time.monotonic() - ring.loaded_at <= self.ttl:
            return ring
        # One thread re-reads; the others keep the ring they have meanwhile (a stampede of concurrent
        # requests all re-reading at the same expiry was 9 % of a worker's CPU under load).
        if not self._reloading.acquire(blocking=ring is None):
            assert ring is not None
            return ring
        try:
            current = self._ring
            if current is None or time.monotonic() - current.loaded_at > self.ttl:
                current = self._ring = self._load(ctx)
            return current
        finally:
            self._reloading.release()

    def invalidate(self) -> None:
        self._ring = None

    def _load(self, ctx: RequestContext) -> KeyRing:
        with self.db.transaction() as session:
            rows = list(session.scalars(select(SigningKey).where(_published(ctx.now))))
            if not rows:
                ensure_keys(session, ctx)
                session.flush()
                rows = list(session.scalars(select(SigningKey).where(_published(ctx.now))))
        keys = [self._imported.get(r.kid) or jwk.import_key(r.private_jwk) for r in rows]
        self._imported = {r.kid: key for r, key in zip(rows, keys, strict=True)}
        signing: dict[str, str] = {}
        for alg in ALGORITHMS:
            ready = [r for r in rows if r.alg == alg and r.activates_at <= ctx.now]
            if ready:
                signing[alg] = max(ready, key=lambda r: r.activates_at).kid
        # Re-read soon after a published key starts signing, so that every process switches together.
        upcoming = [(r.activates_at - ctx.now).total_seconds() for r in rows if r.activates_at > ctx.now]
        loaded = time.monotonic()
        if upcoming:
            loaded -= max(0.0, self.ttl - min(upcoming))
        return KeyRing(KeySet(keys), signing, loaded)
