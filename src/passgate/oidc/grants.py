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
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..config import Settings
from ..core.values import MethodMode
from ..signin import flow
from ..store import config_cache
from ..store.prepared import Prepared
from ..store.tables import (
    USER_REF_COLUMNS,
    App,
    AuthorizationCode,
    BrowserSession,
    OAuthGrant,
    Passkey,
    RefreshToken,
    User,
    UserRef,
    UserView,
    user_ref_at,
)
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
# The tables the hot paths use as Core statements, built once below: no ORM unit of work for rows that are only
# inserted, claimed or revoked here.
_CODES = AuthorizationCode.__table__
_GRANTS = OAuthGrant.__table__
_REFRESH = RefreshToken.__table__


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
_INSERT_CODE = Prepared(insert(_CODES))


def issue_code(session: Session, settings: Settings, now: datetime, app: App, browser: BrowserSession,
               redirect_uri: str, scope: str, nonce: str, challenge: str, method: str) -> str:
    code = secrets.token_urlsafe(32)
    _INSERT_CODE.run(session, {
        "code_hash": digest(code), "app_id": app.id, "user_id": browser.user_id, "session_id": browser.id,
        "redirect_uri": redirect_uri, "scope": scope, "nonce": nonce, "code_challenge": challenge,
        "code_challenge_method": method, "auth_time": browser.auth_time, "acr": acr_of(browser),
        "amr": list(browser.amr), "created_at": now,
        "expires_at": now + timedelta(seconds=settings.authorization_code_seconds), "used_at": None, "grant_id": None,
    })
    return code


@dataclass(frozen=True, slots=True)
class StoredCode:
    """An authorization code as the exchange reads it, as a plain row: each field is the column of its name."""

    code_hash: str
    app_id: str
    user_id: str
    session_id: str
    redirect_uri: str
    scope: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    auth_time: datetime
    acr: str
    amr: list[Any]
    expires_at: datetime
    used_at: datetime | None
    grant_id: str | None


_CODE_FIELDS = len(fields(StoredCode))
_USERS = User.__table__
_BROWSERS = BrowserSession.__table__
# A code with its user and the end of the browser session it came from: all the exchange reads, in one round trip,
# as rows rather than ORM entities (see UserRef).
_CODE_USER_BROWSER = Prepared(
    select(*(_CODES.c[f.name] for f in fields(StoredCode)), *USER_REF_COLUMNS,
           _BROWSERS.c.expires_at.label("browser_end"), config_cache.VERSION)
    .select_from(_CODES.outerjoin(_USERS, _USERS.c.id == _CODES.c.user_id)
                 .outerjoin(_BROWSERS, _BROWSERS.c.id == _CODES.c.session_id))
    .where(_CODES.c.code_hash == bindparam("code_hash"))
)


@dataclass(frozen=True, slots=True)
class FoundCode:
    row: StoredCode
    user: UserRef | None  # None when the account was deleted
    browser_end: datetime | None  # when the browser session it came from expires; None when that is gone


def find_code(session: Session, code: str) -> FoundCode | None:
    """The code with its user and browser session. The configuration version comes with it: the code exchange reads
    the code first (store/config_cache.py)."""
    found = _CODE_USER_BROWSER.first(session, {"code_hash": digest(code)})
    if found is None:
        return None
    config_cache.seen(session, found.config_version)
    return FoundCode(StoredCode(*found[:_CODE_FIELDS]), user_ref_at(found, _CODE_FIELDS), found.browser_end)


# The claim and the family it is exchanged for, in one statement: a code comes back only to revoke that family.
_CLAIM_CODE = Prepared(
    update(_CODES).where(_CODES.c.code_hash == bindparam("claimed_hash"), _CODES.c.used_at.is_(None))
    .values(used_at=bindparam("now"), grant_id=bindparam("family"))
)


def claim_code(session: Session, row: StoredCode, now: datetime, grant_id: str) -> bool:
    """Mark the code used, for the family `grant_id`; False when another request used it first."""
    return _CLAIM_CODE.run(session, {"claimed_hash": row.code_hash, "now": now, "family": grant_id}) == 1


# -- families and refresh tokens ---------------------------------------------------------------
_REVOKE = Prepared(
    update(_GRANTS).where(_GRANTS.c.id == bindparam("family"), _GRANTS.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"), revoked_reason=bindparam("reason"))
)


def revoke_family(session: Session, grant_id: str | None, now: datetime, reason: str) -> None:
    if grant_id:
        _REVOKE.run(session, {"family": grant_id, "now": now, "reason": reason})


@dataclass(frozen=True, slots=True)
class Family:
    """A token family about to be stored (store_family), as the code exchange knows it: what `issue_tokens`
    reads of a family, without building an ORM entity (its instrumented constructor cost more CPU than the
    rest of this module's work on it)."""

    id: str
    app_id: str
    user_id: str
    session_id: str
    scope: str
    auth_time: datetime
    acr: str
    amr: list[Any]
    created_at: datetime
    expires_at: datetime


def family_from_code(code: StoredCode, browser_end: datetime | None, now: datetime) -> Family:
    """The token family a code is exchanged for (not yet stored: see store_family)."""
    end = now + timedelta(days=MAX_GRANT_DAYS)
    if code.acr == ACR_TAP and browser_end is not None:
        end = min(end, browser_end)  # a pass's session bounds every token made from it
    return Family(
        id=str(uuid.uuid4()), app_id=code.app_id, user_id=code.user_id, session_id=code.session_id,
        scope=code.scope, auth_time=code.auth_time, acr=code.acr, amr=list(code.amr), created_at=now,
        expires_at=end,
    )


_INSERT_GRANT = Prepared(insert(_GRANTS))


def store_family(session: Session, grant: Family) -> None:
    """Insert a new family."""
    _INSERT_GRANT.run(session, {
        "id": grant.id, "app_id": grant.app_id, "user_id": grant.user_id, "session_id": grant.session_id,
        "scope": grant.scope, "auth_time": grant.auth_time, "acr": grant.acr, "amr": grant.amr,
        "created_at": grant.created_at, "expires_at": grant.expires_at, "revoked_at": None, "revoked_reason": None,
    })


def family_ended(session: Session, grant: OAuthGrant, now: datetime, signed_in: bool | None = None) -> str | None:
    """Why nothing of this family may be used any more, or None while it lives. `signed_in` says whether its
    browser session is live, when the caller has read that already."""
    if grant.revoked_at is not None:
        return grant.revoked_reason or "revoked"
    if grant.expires_at <= now:
        return "expired"
    if signed_in is None:
        browser = session.get(BrowserSession, grant.session_id)
        signed_in = browser is not None and browser.ended_at is None
    if not signed_in:
        return "signedOut"  # signing out ends what every app got from that session
    return None


def live_family(session: Session, grant_id: str, now: datetime) -> OAuthGrant | None:
    grant = session.get(OAuthGrant, grant_id)
    if grant is None or family_ended(session, grant, now) is not None:
        return None
    return grant


def find_refresh(session: Session, token: str) -> RefreshToken | None:
    return session.get(RefreshToken, digest(token))


_CLAIM_REFRESH = Prepared(
    update(_REFRESH)
    .where(_REFRESH.c.token_hash == bindparam("claimed_hash"), _REFRESH.c.used_at.is_(None),
           # Only for the app its family was issued to: another app's attempt leaves it unused.
           select(_GRANTS.c.app_id).where(_GRANTS.c.id == _REFRESH.c.grant_id).scalar_subquery()
           == bindparam("for_app"))
    .values(used_at=bindparam("now"))
    .returning(_REFRESH.c.grant_id, _REFRESH.c.expires_at)
)


def claim_refresh(session: Session, token: str, app_id: str, now: datetime) -> tuple[str, datetime] | None:
    """Mark the refresh token used if it is unused and of a family of this app (`App.id`), in one round trip:
    (its family id, its expiry), or None when it is unknown, another app's, or used already (see find_refresh)."""
    found = _CLAIM_REFRESH.first(session, {"claimed_hash": digest(token), "for_app": app_id, "now": now})
    return (found[0], found[1]) if found is not None else None


# A family with its user and whether its browser session still lives, in one round trip.
_FAMILY_USER_BROWSER = (
    select(OAuthGrant, User, BrowserSession.id, BrowserSession.ended_at)
    .outerjoin(User, User.id == OAuthGrant.user_id)
    .outerjoin(BrowserSession, BrowserSession.id == OAuthGrant.session_id)
    .where(OAuthGrant.id == bindparam("family_id"))
)


def family_with_user(session: Session, grant_id: str) -> tuple[OAuthGrant, User | None, bool] | None:
    """The family, its user (None when deleted) and whether its browser session is live (not ended, not gone)."""
    found = session.execute(_FAMILY_USER_BROWSER, {"family_id": grant_id}).first()
    if found is None:
        return None
    grant, user, browser_id, ended_at = found
    return grant, user, browser_id is not None and ended_at is None


_INSERT_REFRESH = Prepared(insert(_REFRESH))


# -- tokens -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Issued:
    body: dict[str, Any]


def _at_hash(access_token: str) -> str:
    half = hashlib.sha256(access_token.encode()).digest()[:16]
    return base64.urlsafe_b64encode(half).rstrip(b"=").decode()


def user_claims(user: UserView, scope: str) -> dict[str, Any]:
    scopes = scope.split()
    claims: dict[str, Any] = {"sub": user.id}
    if "profile" in scopes:
        claims["name"] = user.display_name
        claims["preferred_username"] = user.user_principal_name
    if "email" in scopes and user.mail:
        claims["email"] = user.mail
    return claims


def issue_tokens(session: Session, ring: KeyRing, settings: Settings, now: datetime, app: App, user: UserView,
                 grant: OAuthGrant | Family, nonce: str | None) -> dict[str, Any]:
    """An access token (RFC 9068 JWT), a refresh token when offline_access was granted, an ID token for openid."""
    iat = int(now.timestamp())
    exp = min(iat + settings.access_token_minutes * 60, int(grant.expires_at.timestamp()))
    kid = ring.signing["ES256"]
    key = ring.published.get_by_kid(kid)  # the key itself: joserfc would otherwise look it up per token
    common = {"iss": settings.issuer, "sub": user.id, "iat": iat, "exp": exp,
              "auth_time": int(grant.auth_time.timestamp()), "acr": grant.acr, "amr": list(grant.amr),
              "sid": grant.session_id}
    access = jwt.encode(
        {"alg": "ES256", "kid": kid, "typ": "at+jwt"},
        {**common, "aud": app.app_id, "client_id": app.app_id, "scope": grant.scope, "nbf": iat,
         # The family id leads the token id, so that revoking the family revokes its access tokens too.
         "jti": f"{grant.id}.{secrets.token_urlsafe(12)}"},
        key,
    )
    body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": exp - iat,
                            "scope": grant.scope}
    scopes = grant.scope.split()
    if "offline_access" in scopes:
        refresh = secrets.token_urlsafe(32)
        refresh_end = min(now + timedelta(minutes=settings.refresh_token_minutes), grant.expires_at)
        _INSERT_REFRESH.run(session, {"token_hash": digest(refresh), "grant_id": grant.id, "created_at": now,
                                      "expires_at": refresh_end, "used_at": None})
        body["refresh_token"] = refresh
    if "openid" in scopes:
        # `aud` is a single string: RP-initiated logout with only id_token_hint must find the app from it.
        claims = {**common, **user_claims(user, grant.scope), "aud": app.app_id, "azp": app.app_id,
                  "at_hash": _at_hash(access)}
        if nonce:
            claims["nonce"] = nonce
        body["id_token"] = jwt.encode({"alg": "ES256", "kid": kid, "typ": "JWT"}, claims, key)
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
