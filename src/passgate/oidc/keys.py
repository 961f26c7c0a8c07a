"""Token signing keys (joserfc), kept in the database so that every process signs and verifies alike.

ES256 signs by default (cheap); an RS256 key is published too because OIDC discovery requires it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwk
from joserfc.jwk import KeySet
from sqlalchemy import select
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


@dataclass(frozen=True, slots=True)
class KeyRing:
    published: KeySet  # private keys of everything published (verification and signing)
    signing: dict[str, str]  # alg -> kid of the key that signs now
    loaded_at: float

    def public_jwks(self) -> dict[str, Any]:
        return dict(self.published.as_dict(private=False))


class KeyCache:
    """Keys read from the database at most every `ttl` seconds per process."""

    def __init__(self, db: Database, ttl: float = 30.0) -> None:
        self.db = db
        self.ttl = ttl
        self._ring: KeyRing | None = None

    def ring(self, ctx: RequestContext) -> KeyRing:
        ring = self._ring
        if ring is None or time.monotonic() - ring.loaded_at > self.ttl:
            ring = self._ring = self._load(ctx)
        return ring

    def invalidate(self) -> None:
        self._ring = None

    def _load(self, ctx: RequestContext) -> KeyRing:
        with self.db.transaction() as session:
            rows = list(session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))))
            if not rows:
                ensure_keys(session, ctx)
                session.flush()
                rows = list(session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))))
        keys = [jwk.import_key(r.private_jwk) for r in rows]
        signing: dict[str, str] = {}
        for alg in ALGORITHMS:
            ready = [r for r in rows if r.alg == alg and r.activates_at <= ctx.now]
            if ready:
                signing[alg] = max(ready, key=lambda r: r.activates_at).kid
        return KeyRing(KeySet(keys), signing, time.monotonic())
