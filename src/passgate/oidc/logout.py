"""Ending browser sessions and telling the apps: OpenID Connect Front-Channel Logout 1.0 and Back-Channel
Logout 1.0.

An app is told about a session when it received a code from it (every token it holds came from a code).
Front-channel: the signed-out page frames the app's `web.logoutUrl` with `iss` and `sid`. Back-channel: a
logout token (a JWT signed with the token signing keys, `typ` logout+jwt) is POSTed to the app's
`backchannelLogoutUri` after the sign-out's transaction has committed, with a short timeout, so that a slow
or broken app can neither hold up nor undo a sign-out.
"""

from __future__ import annotations

import logging
import secrets
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from joserfc import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings
from ..store.tables import App, AuthorizationCode, BrowserSession
from .keys import KeyRing

log = logging.getLogger("passgate.oidc.logout")

EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_SECONDS = 120  # a logout token is used at once; a short life limits what a captured one is worth
TIMEOUT_SECONDS = 2.0
MAX_PARALLEL = 8


@dataclass(frozen=True, slots=True)
class BackChannelCall:
    app_id: str
    uri: str
    logout_token: str = field(repr=False)  # never in a log line or a repr


@dataclass(slots=True)
class Notices:
    """What the apps of the ended sessions must be told."""

    front_channel: list[str] = field(default_factory=list)  # iframe URLs for the signed-out page
    back_channel: list[BackChannelCall] = field(default_factory=list)

    def frame_origins(self) -> list[str]:
        out: list[str] = []
        for url in self.front_channel:
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in out:
                out.append(origin)
        return out


def _apps_of(session: Session, session_ids: list[str]) -> list[tuple[App, str, str]]:
    """(app, sid, sub) for every app that got a code from one of these sessions."""
    rows = session.execute(
        select(AuthorizationCode.app_id, AuthorizationCode.session_id, AuthorizationCode.user_id)
        .where(AuthorizationCode.session_id.in_(session_ids)).distinct()
    ).all()
    out: list[tuple[App, str, str]] = []
    for app_pk, sid, sub in sorted(rows):
        app = session.get(App, app_pk)
        if app is not None:
            out.append((app, sid, sub))
    return out


def notices(session: Session, ring: KeyRing, settings: Settings, now: datetime,
            ended: list[BrowserSession]) -> Notices:
    out = Notices()
    if not ended:
        return out
    for app, sid, sub in _apps_of(session, [s.id for s in ended]):
        if app.logout_url:
            query = urlencode({"iss": settings.issuer, "sid": sid})
            out.front_channel.append(app.logout_url + ("&" if "?" in app.logout_url else "?") + query)
        if app.backchannel_logout_uri:
            out.back_channel.append(BackChannelCall(app.app_id, app.backchannel_logout_uri,
                                                    logout_token(ring, settings, now, app, sid, sub)))
    return out


def logout_token(ring: KeyRing, settings: Settings, now: datetime, app: App, sid: str, sub: str) -> str:
    iat = int(now.timestamp())
    claims = {"iss": settings.issuer, "aud": app.app_id, "iat": iat, "exp": iat + TOKEN_SECONDS,
              "jti": secrets.token_urlsafe(16), "sid": sid, "sub": sub, "events": {EVENT: {}}}
    return jwt.encode({"alg": "ES256", "kid": ring.signing["ES256"], "typ": "logout+jwt"}, claims,
                      ring.published)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the logout token to an address nobody registered.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _post(call: BackChannelCall) -> None:
    # The URI was checked at registration (clients.check_redirect_uri): http(s) only reaches here.
    if urlsplit(call.uri).scheme not in ("http", "https"):
        log.warning("back-channel logout to app %s skipped: %s is not http(s)", call.app_id, call.uri)
        return
    body = urlencode({"logout_token": call.logout_token}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-cache"}
    request = urllib.request.Request(call.uri, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:  # refused, timed out, unreachable, bad URL
        log.warning("back-channel logout to app %s at %s failed: %s", call.app_id, call.uri, type(exc).__name__)
        return
    if status != 200:
        log.warning("back-channel logout to app %s at %s answered HTTP %s", call.app_id, call.uri, status)


def deliver(calls: list[BackChannelCall]) -> None:
    """POST every logout token, in parallel; failures are logged (without the token) and never raised."""
    if not calls:
        return
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(calls))) as pool:
        list(pool.map(_post, calls))
