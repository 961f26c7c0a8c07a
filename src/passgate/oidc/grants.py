"""What a user sign-in gives an app: authorization codes, token families, refresh tokens, ID and access tokens.

Codes and refresh tokens are 256-bit random values stored as SHA-256 digests and used once. Everything
issued from one code belongs to one family (`OAuthGrant`); a used code or refresh token that comes back
revokes the whole family. The `acr`, `amr` and `auth_time` of every token are those of the browser session
that the code was issued from, and nothing from a Temporary Access Pass sign-in outlives that session.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..config import Settings
from ..core.values import MethodMode
from ..signin import flow
from ..store.tables import App, AuthorizationCode, BrowserSession, OAuthGrant, Passkey, RefreshToken, User
from .keys import KeyRing

# Authentication context classes, weakest first. "phr"/"phrh" are from OpenID Connect EAP ACR Values 1.0;
# a password alone is weakest, a pass is strong enough to set up security info, password + TOTP is MFA.
ACR_PWD = "urn:passgate:acr:pwd"
ACR_TAP = "urn:passgate:acr:tap"
ACR_MFA = "urn:passgate:acr:mfa"
ACR_PHR = "phr"
ACR_PHRH = "phrh"
ACR_ORDER = (ACR_PWD, ACR_TAP, ACR_MFA, ACR_PHR, ACR_PHRH)
SCOPES = ("openid", "profile", "email", "offline_access")
MAX_GRANT_DAYS = 90


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def acr_of(session: BrowserSession) -> str:
    if session.method == flow.TAP:
        return ACR_TAP
    if session.method == flow.PASSWORD:
        return ACR_MFA if MethodMode.SOFTWARE_OATH.value in (session.auth_methods or ()) else ACR_PWD
    return ACR_PHRH if "hwk" in (session.amr or []) else ACR_PHR


def acr_level(acr: str) -> int:
    return ACR_ORDER.index(acr) if acr in ACR_ORDER else -1


def requested_level(acr_values: str | None) -> str | None:
    """The weakest known class among `acr_values` (any of them satisfies the app), or None."""
    known = [v for v in (acr_values or "").split() if v in ACR_ORDER]
    return min(known, key=acr_level) if known else None


def user_can_reach(session: Session, user_id: str, acr: str) -> bool:
    """Whether the user holds a usable passkey (or, up to MFA, a password and an authenticator app) that would
    give at least `acr`."""
    if acr_level(acr) <= acr_level(ACR_MFA):
        user = session.get(User, user_id)
        if user is not None and flow.password_and_code_available(session, user):
            return True
    if acr_level(acr) <= acr_level(ACR_PHR):
        return session.scalar(
            select(Passkey.id).where(Passkey.user_id == user_id, Passkey.unusable_code.is_(None)).limit(1)
        ) is not None
    return session.scalar(
        select(Passkey.id).where(
            Passkey.user_id == user_id, Passkey.unusable_code.is_(None), Passkey.attestation_level == "attested",
            Passkey.backup_eligible.is_(False),
        ).limit(1)
    ) is not None


# -- authorization codes ----------------------------------------------------------------------
_INSERT_CODE = insert(AuthorizationCode.__table__)  # Core: no ORM unit of work for a row only inserted here


def issue_code(session: Session, settings: Settings, now: datetime, app: App, browser: BrowserSession,
               redirect_uri: str, scope: str, nonce: str, challenge: str, method: str) -> str:
    code = secrets.token_urlsafe(32)
    session.execute(_INSERT_CODE, {
        "code_hash": digest(code), "app_id": app.id, "user_id": browser.user_id, "session_id": browser.id,
        "redirect_uri": redirect_uri, "scope": scope, "nonce": nonce, "code_challenge": challenge,
        "code_challenge_method": method, "auth_time": browser.auth_time, "acr": acr_of(browser),
        "amr": list(browser.amr), "created_at": now,
        "expires_at": now + timedelta(seconds=settings.authorization_code_seconds), "used_at": None, "grant_id": None,
    })
    return code


def find_code(session: Session, code: str) -> AuthorizationCode | None:
    return session.get(AuthorizationCode, digest(code))


def claim_code(session: Session, row: AuthorizationCode, now: datetime) -> bool:
    """Mark the code used; False when another request used it first."""
    done = session.execute(
        update(AuthorizationCode).where(AuthorizationCode.code_hash == row.code_hash,
                                        AuthorizationCode.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False)
    )
    # Stored by the UPDATE (or by the request that won); marked committed so that no second UPDATE follows.
    set_committed_value(row, "used_at", now)
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


# -- families and refresh tokens ---------------------------------------------------------------
def revoke_family(session: Session, grant_id: str | None, now: datetime, reason: str) -> None:
    if grant_id:
        session.execute(
            update(OAuthGrant).where(OAuthGrant.id == grant_id, OAuthGrant.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason).execution_options(synchronize_session=False)
        )


def family_from_code(session: Session, code: AuthorizationCode, now: datetime) -> OAuthGrant:
    browser = session.get(BrowserSession, code.session_id)
    end = now + timedelta(days=MAX_GRANT_DAYS)
    if code.acr == ACR_TAP and browser is not None:
        end = min(end, browser.expires_at)  # a pass's session bounds every token made from it
    grant = OAuthGrant(
        id=str(uuid.uuid4()), app_id=code.app_id, user_id=code.user_id, session_id=code.session_id,
        scope=code.scope, auth_time=code.auth_time, acr=code.acr, amr=list(code.amr), created_at=now,
        expires_at=end,
    )
    session.add(grant)
    code.grant_id = grant.id
    return grant


def family_ended(session: Session, grant: OAuthGrant, now: datetime) -> str | None:
    """Why nothing of this family may be used any more, or None while it lives."""
    if grant.revoked_at is not None:
        return grant.revoked_reason or "revoked"
    if grant.expires_at <= now:
        return "expired"
    browser = session.get(BrowserSession, grant.session_id)
    if browser is None or browser.ended_at is not None:
        return "signedOut"  # signing out ends what every app got from that session
    return None


def live_family(session: Session, grant_id: str, now: datetime) -> OAuthGrant | None:
    grant = session.get(OAuthGrant, grant_id)
    if grant is None or family_ended(session, grant, now) is not None:
        return None
    return grant


def find_refresh(session: Session, token: str) -> RefreshToken | None:
    return session.get(RefreshToken, digest(token))


def claim_refresh(session: Session, row: RefreshToken, now: datetime) -> bool:
    done = session.execute(
        update(RefreshToken).where(RefreshToken.token_hash == row.token_hash, RefreshToken.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False)
    )
    # Stored by the UPDATE (or by the request that won); marked committed so that no second UPDATE follows.
    set_committed_value(row, "used_at", now)
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


# -- tokens -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Issued:
    body: dict[str, Any]


def _at_hash(access_token: str) -> str:
    half = hashlib.sha256(access_token.encode()).digest()[:16]
    return base64.urlsafe_b64encode(half).rstrip(b"=").decode()


def user_claims(user: User, scope: str) -> dict[str, Any]:
    scopes = scope.split()
    claims: dict[str, Any] = {"sub": user.id}
    if "profile" in scopes:
        claims["name"] = user.display_name
        claims["preferred_username"] = user.user_principal_name
    if "email" in scopes and user.mail:
        claims["email"] = user.mail
    return claims


def issue_tokens(session: Session, ring: KeyRing, settings: Settings, now: datetime, app: App, user: User,
                 grant: OAuthGrant, nonce: str | None) -> dict[str, Any]:
    """An access token (RFC 9068 JWT), a refresh token when offline_access was granted, an ID token for openid."""
    iat = int(now.timestamp())
    exp = min(iat + settings.access_token_minutes * 60, int(grant.expires_at.timestamp()))
    kid = ring.signing["ES256"]
    common = {"iss": settings.issuer, "sub": user.id, "iat": iat, "exp": exp,
              "auth_time": int(grant.auth_time.timestamp()), "acr": grant.acr, "amr": list(grant.amr),
              "sid": grant.session_id}
    access = jwt.encode(
        {"alg": "ES256", "kid": kid, "typ": "at+jwt"},
        {**common, "aud": app.app_id, "client_id": app.app_id, "scope": grant.scope, "nbf": iat,
         # The family id leads the token id, so that revoking the family revokes its access tokens too.
         "jti": f"{grant.id}.{secrets.token_urlsafe(12)}"},
        ring.published,
    )
    body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": exp - iat,
                            "scope": grant.scope}
    scopes = grant.scope.split()
    if "offline_access" in scopes:
        refresh = secrets.token_urlsafe(32)
        refresh_end = min(now + timedelta(minutes=settings.refresh_token_minutes), grant.expires_at)
        session.add(RefreshToken(token_hash=digest(refresh), grant_id=grant.id, created_at=now,
                                 expires_at=refresh_end))
        body["refresh_token"] = refresh
    if "openid" in scopes:
        # `aud` is a single string: RP-initiated logout with only id_token_hint must find the app from it.
        claims = {**common, **user_claims(user, grant.scope), "aud": app.app_id, "azp": app.app_id,
                  "at_hash": _at_hash(access)}
        if nonce:
            claims["nonce"] = nonce
        body["id_token"] = jwt.encode({"alg": "ES256", "kid": kid, "typ": "JWT"}, claims, ring.published)
    return body


def verify_user_token(ring: KeyRing, settings: Settings, token: str, now: datetime) -> dict[str, Any] | None:
    """The claims of a live user access token issued here, or None."""
    try:
        decoded = jwt.decode(token, ring.published, algorithms=["ES256", "RS256"])
        if decoded.header.get("typ") != "at+jwt":
            return None
        JWTClaimsRegistry(
            now=int(now.timestamp()), leeway=0,
            iss={"essential": True, "value": settings.issuer}, exp={"essential": True},
            sub={"essential": True}, jti={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    claims = dict(decoded.claims)
    if "." not in str(claims["jti"]) or "sid" not in claims:
        return None  # an app (client credentials) token, not a user's
    return claims


def family_of_token(claims: dict[str, Any]) -> str:
    return str(claims["jti"]).split(".", 1)[0]


def decode_id_token_hint(ring: KeyRing, settings: Settings, token: str) -> dict[str, Any] | None:
    """An ID token this server issued (expired is fine for a logout hint), or None."""
    try:
        decoded = jwt.decode(token, ring.published, algorithms=["ES256", "RS256"])
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    claims = dict(decoded.claims)
    if claims.get("iss") != settings.issuer or decoded.header.get("typ") == "at+jwt":
        return None
    return claims
