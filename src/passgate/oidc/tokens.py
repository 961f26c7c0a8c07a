"""Access tokens: JWTs (RFC 9068 shape) signed with joserfc, verified against the published keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from ..config import Settings
from ..core import errors
from ..core.errors import PassgateError
from ..store.tables import App
from .keys import KeyRing


def graph_audience(settings: Settings) -> str:
    return f"{settings.issuer}/graph"


def app_access_token(ring: KeyRing, settings: Settings, app: App, now: datetime, lifetime: int) -> str:
    iat = int(now.timestamp())
    claims = {
        "iss": settings.issuer,
        "aud": graph_audience(settings),
        "sub": app.app_id,
        "client_id": app.app_id,
        "appid": app.app_id,
        "app_displayname": app.display_name,
        "roles": list(app.permissions),
        "iat": iat,
        "nbf": iat,
        "exp": iat + lifetime,
        "jti": str(uuid.uuid4()),
    }
    kid = ring.signing["ES256"]
    return jwt.encode({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, claims, ring.published)


def _decode_app_token(ring: KeyRing, settings: Settings, token: str, now: datetime, leeway: int) -> dict[str, Any]:
    decoded = jwt.decode(token, ring.published, algorithms=["ES256", "RS256"])
    JWTClaimsRegistry(
        now=int(now.timestamp()),
        leeway=leeway,
        iss={"essential": True, "value": settings.issuer},
        aud={"essential": True, "value": graph_audience(settings)},
        exp={"essential": True},
    ).validate(decoded.claims)
    return dict(decoded.claims)


def verify_access_token(ring: KeyRing, settings: Settings, token: str, now: datetime) -> dict[str, Any]:
    try:
        return _decode_app_token(ring, settings, token, now, leeway=30)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise PassgateError(errors.INVALID_TOKEN, f"({type(exc).__name__})") from None


def app_token_claims(ring: KeyRing, settings: Settings, token: str, now: datetime) -> dict[str, Any] | None:
    """The claims of an unexpired app (client credentials) token issued here, or None. No leeway: introspection
    says whether the token is active now."""
    try:
        claims = _decode_app_token(ring, settings, token, now, leeway=0)
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    return claims if isinstance(claims.get("client_id"), str) else None
