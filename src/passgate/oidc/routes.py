"""OAuth 2.0 / OpenID Connect endpoints: discovery, keys, authorize, token, userinfo, revocation,
introspection and RP-initiated logout."""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit

from authlib.oidc.discovery import OpenIDProviderMetadata
from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..config import Settings
from ..context import RequestContext
from ..core import errors
from ..core.errors import PassgateError
from ..logs.writer import SignInAttempt, record_sign_in
from ..passkeys import challenges
from ..signin import access as signin_access
from ..signin import sessions
from ..signin.flow import SignedIn
from ..store import registrations
from ..store.tables import App, BrowserSession, OAuthGrant, RefreshToken, User
from ..web.deps import Services, context_of, form_items, request_context, services
from ..web.hot import HotRoutes
from . import authorize as authz
from . import clients, grants, keys, logout, server, tokens

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def provider_metadata(settings: Settings) -> OpenIDProviderMetadata:
    base = settings.issuer
    metadata = OpenIDProviderMetadata({
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth2/authorize",
        "token_endpoint": f"{base}/oauth2/token",
        "userinfo_endpoint": f"{base}/oauth2/userinfo",
        "jwks_uri": f"{base}/oauth2/jwks",
        "end_session_endpoint": f"{base}/oauth2/logout",
        "revocation_endpoint": f"{base}/oauth2/revoke",
        "introspection_endpoint": f"{base}/oauth2/introspect",
        "scopes_supported": list(grants.SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": list(authz.RESPONSE_MODES),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        # RS256 is listed (and its key published) because OIDC discovery requires it; ES256 signs.
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
                             "azp", "at_hash", "name", "preferred_username", "email"],
        "acr_values_supported": list(grants.ACR_ORDER),
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        # Apps that got a code from a session are told when it ends: web.logoutUrl is framed on the signed-out
        # page with iss and sid; backchannelLogoutUri receives a logout token carrying sid.
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    })
    metadata.validate()
    return metadata


@router.get("/.well-known/openid-configuration")
def discovery(request: Request) -> JSONResponse:
    return JSONResponse(dict(provider_metadata(services(request).settings)))


@router.get("/.well-known/jwks.json")
@router.get("/oauth2/jwks")
async def jwks(request: Request) -> JSONResponse:
    # On the event loop, as the token endpoint reads the same cached key ring: a thread-pool hand-off cost more
    # CPU than the answer. A new key is published JWKS_MAX_AGE * 2 before it signs (keys.rotate), so caching this
    # much is safe.
    return JSONResponse(services(request).keys.ring(context_of(request)).public_jwks(),
                        headers={"Cache-Control": f"public, max-age={keys.JWKS_MAX_AGE}"})


@router.post("/oauth2/token")
async def token(request: Request) -> Response:
    ctx = context_of(request)  # not a dependency: FastAPI's solving of one cost more than the function
    svc = services(request)
    parsed = await server.parse(request, svc.settings.issuer)
    # On the event loop, like every other handler: a thread-pool hand-off cost CPU and, behind the GIL's switch
    # interval, the worst latency of a sign-in's five requests.
    return server.token_response(svc.db, ctx, svc.settings, svc.keys, parsed)


async def _params(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    # The pairs request.query_params holds, without building it: Starlette parses the query string just so.
    for key, value in parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True):
        out[key].append(value)
    if request.method == "POST":
        for key, item in await form_items(request):
            out[key].append(item)
    return dict(out)


def _one(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


# -- authorize --------------------------------------------------------------------------------
def _log_refusal(session: Session, ctx: RequestContext, cookie: str | None, query: dict[str, list[str]],
                 error: PassgateError, oauth_error: str | None) -> None:
    """A refused authorize request in the sign-in log: the code, the app when known, the browser's user."""
    client_id = _one(query, "client_id")
    app = registrations.by_client_id(session, client_id[:64]) if client_id else None
    found = sessions.current(session, cookie, ctx.now)
    details: dict[str, Any] = {"protocol": "oidc"}
    if oauth_error:
        details["oauthError"] = oauth_error
    record_sign_in(session, ctx, SignInAttempt(
        method="", user=found[1] if found else None, app_id=app.app_id if app else None,
        app_display_name=app.display_name if app else None, details=details,
    ), error)


AUTHORIZE_PATH = "/oauth2/authorize"


@dataclass(frozen=True, slots=True)
class Authorization:
    """What an authorize request came to: a code or an OAuth error for the app, a sign-in to go to, or a
    refusal shown on Passgate's own error page (before the redirect URI is known to be the app's)."""

    req: authz.Request | None
    outcome: authz.Outcome | None = None
    refused: PassgateError | None = None
    oauth_error: authz.AuthorizeError | None = None

    def for_app(self) -> dict[str, str] | None:
        """The values to deliver at the app's redirect URI, or None when the answer is not for the app."""
        if self.oauth_error is not None and self.req is not None:
            return {"error": self.oauth_error.error, "error_description": self.oauth_error.description}
        if self.refused is None and self.outcome is not None and self.outcome.code is not None:
            return {"code": self.outcome.code}
        return None


class _RolledBack(Exception):
    """Leaves a refused authorize request's transaction with nothing of it kept."""


def _authorize_in(session: Session, svc: Services, ctx: RequestContext, query: dict[str, list[str]],
                  cookie: str | None, agent: str, path: str, signed: SignedIn | None = None) -> Authorization:
    """One authorize request in `session`'s transaction: the app, the browser's session (`cookie`, or the sign-in
    `signed` that has just started it), the code. A refusal is returned, not logged; what it read stays readable
    for its log entry."""
    req: authz.Request | None = None
    try:
        req = authz.check_client(session, query)
        authz.check_params(req, query)
        return Authorization(req, authz.decide(session, svc.settings, ctx, req, cookie, path,
                                               challenges.binding_of(agent), signed))
    except authz.AuthorizeError as exc:
        return Authorization(req, refused=PassgateError(exc.code, exc.description), oauth_error=exc)
    except PassgateError as exc:
        return Authorization(req, refused=exc)


def _log_refused(session: Session, ctx: RequestContext, cookie: str | None, query: dict[str, list[str]],
                 done: Authorization) -> None:
    exc = done.refused
    assert exc is not None
    if isinstance(exc, signin_access.Refused):
        record_sign_in(session, ctx, exc.attempt, exc)  # with the policies that ended it
    else:
        _log_refusal(session, ctx, cookie, query, exc, done.oauth_error.error if done.oauth_error else None)


def run_authorize(svc: Services, ctx: RequestContext, query: dict[str, list[str]], cookie: str | None, agent: str,
                  path: str, log_client_refusal: bool = True) -> Authorization:
    """One authorize request in a transaction of its own. `agent` is the browser's agent cookie, which pending
    authorizations are bound to."""
    try:
        with svc.db.transaction(write=True, ceremony=True) as session:
            done = _authorize_in(session, svc, ctx, query, cookie, agent, path)
            if done.refused is None:
                return done
            session.expunge_all()  # what was read stays readable after the rollback
            raise _RolledBack
    except _RolledBack:
        pass
    # A refusal leaves nothing behind (no code, no pending authorization): its transaction was rolled back,
    # and only its log entry is written, alone. No savepoint is needed on the way to a code.
    if done.req is not None or log_client_refusal:  # a bad client or redirect URI: maybe the caller's to log
        with svc.db.transaction(write=True) as session:
            _log_refused(session, ctx, cookie, query, done)
    return done


@router.get(AUTHORIZE_PATH, include_in_schema=False)
@router.post(AUTHORIZE_PATH, include_in_schema=False)
async def authorize(request: Request) -> Response:
    from ..web.api import agent_token, set_agent_cookie
    from ..web.pages import error_page

    ctx = context_of(request)  # not a dependency, as in token()
    svc = services(request)
    agent, new_agent = agent_token(request)
    done = run_authorize(svc, ctx, await _params(request), request.cookies.get(sessions.COOKIE), agent,
                         request.scope["path"])  # request.url.path, without building the URL
    values = done.for_app()
    if values is not None and done.req is not None:
        return authz.deliver(done.req, svc.settings, values)
    if done.refused is not None:
        # Before the redirect URI is known to be the app's, nothing may be sent to it: a page explains.
        return error_page(request, done.refused.code, done.refused.message, ctx.correlation_id)
    assert done.outcome is not None and done.outcome.sign_in_url is not None
    response = RedirectResponse(done.outcome.sign_in_url, status_code=303, headers=NO_STORE)
    if new_agent:
        set_agent_cookie(request, response, agent)  # the pending authorization is bound to it
    return response


# Served ahead of FastAPI's stack (web/hot.py): a sign-in's authorize and token requests, and the keys its ID
# token is checked with.
HOT_ROUTES: HotRoutes = {("GET", AUTHORIZE_PATH): authorize, ("POST", AUTHORIZE_PATH): authorize,
                         ("POST", "/oauth2/token"): token,
                         ("GET", "/oauth2/jwks"): jwks, ("GET", "/.well-known/jwks.json"): jwks}


def authorize_request_in(next_path: str | None) -> dict[str, list[str]] | None:
    """The authorize request that a sign-in page's way back (`next_path`) is, when Passgate can answer it at the
    end of the sign-in itself: answered by redirect, and not prompt=none (a page is never opened for one).
    None: the browser follows `next_path` itself (not an authorize request, or an answer by form_post)."""
    if not next_path or not next_path.startswith(AUTHORIZE_PATH + "?") or len(next_path) > 8192:
        return None
    query = parse_qs(urlsplit(next_path).query, keep_blank_values=True)
    if (query.get("response_mode") or ["query"]) != ["query"] or "none" in (query.get("prompt") or []):
        return None
    return query


def destination_after_sign_in(session: Session, svc: Services, ctx: RequestContext, query: dict[str, list[str]],
                              signed: SignedIn, agent: str) -> str | None:
    """Where a browser that is signing in goes next, when its sign-in page was opened for the authorize request
    `query`: that request is answered in the sign-in's own transaction, with the new session, saving the browser a
    round trip and the server a transaction. The answer is the app's redirect URI with the code (or an OAuth
    error), or the sign-in or Security info page Conditional Access sends it to. None: the browser follows its
    way back itself (a request that Passgate's error page must explain).

    A refusal is logged here and keeps the sign-in. What the refused request wrote stays: only the claim of its
    pending authorization can come before a refusal, and a marker serves one answer, a refusal included."""
    done = _authorize_in(session, svc, ctx, query, signed.session_token, agent, AUTHORIZE_PATH, signed)
    if done.refused is not None and done.req is not None:
        _log_refused(session, ctx, signed.session_token, query, done)
    values = done.for_app()
    if values is not None and done.req is not None:
        return authz.location(done.req, svc.settings, values)
    if done.outcome is not None and done.outcome.sign_in_url is not None:
        return done.outcome.sign_in_url
    return None


# -- userinfo ---------------------------------------------------------------------------------
def _bearer_error(description: str) -> JSONResponse:
    return JSONResponse(
        {"error": "invalid_token", "error_description": description}, status_code=401,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"', **NO_STORE},
    )


def _live_user_token(session: Session, request: Request, ctx: RequestContext, token: str
                     ) -> tuple[dict[str, Any], OAuthGrant] | None:
    svc = services(request)
    claims = grants.verify_user_token(svc.keys.ring(ctx), svc.settings, token, ctx.now)
    if claims is None:
        return None
    family = grants.live_family(session, grants.family_of_token(claims), ctx.now)
    if family is None:
        return None
    return claims, family


@router.get("/oauth2/userinfo")
@router.post("/oauth2/userinfo")
async def userinfo(request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    svc = services(request)
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return _bearer_error("Send the access token as 'Authorization: Bearer <token>'.")
    with svc.db.transaction() as session:
        found = _live_user_token(session, request, ctx, value.strip())
        if found is None:
            return _bearer_error("The access token is expired, revoked or not valid.")
        _claims, family = found
        user = session.get(User, family.user_id)
        if user is None or not user.account_enabled:
            return _bearer_error("The account is not enabled.")
        return JSONResponse(grants.user_claims(user, family.scope), headers=NO_STORE)


# -- client authentication for revocation and introspection ----------------------------------
def _client(session: Session, ctx: RequestContext, request: Request, form: dict[str, list[str]],
            secret_required: bool) -> App | None:
    client_id = _one(form, "client_id")
    secret = _one(form, "client_secret")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, secret = unquote(user), unquote(password)
    if not client_id:
        return None
    if secret:
        try:
            return clients.authenticate(session, ctx, client_id, secret)
        except PassgateError:
            return None
    app = registrations.by_client_id(session, client_id)
    if app is None or secret_required or not clients.may_skip_secret(app):
        return None
    return app


def _invalid_client() -> JSONResponse:
    return JSONResponse({"error": "invalid_client", "error_description": "Client authentication failed."},
                        status_code=401, headers={"WWW-Authenticate": "Basic", **NO_STORE})


def _family_of_any(session: Session, request: Request, ctx: RequestContext, token: str) -> OAuthGrant | None:
    row = grants.find_refresh(session, token)
    if row is not None:
        return session.get(OAuthGrant, row.grant_id)
    svc = services(request)
    claims = grants.verify_user_token(svc.keys.ring(ctx), svc.settings, token, ctx.now)
    return session.get(OAuthGrant, grants.family_of_token(claims)) if claims else None


@router.post("/oauth2/revoke")
async def revoke(request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    """RFC 7009. Revoking a refresh or access token ends its whole family (the sign-in it came from)."""
    svc = services(request)
    form = await _params(request)
    svc.keys.ring(ctx)  # loaded before the write lock is taken
    with svc.db.transaction(write=True) as session:
        app = _client(session, ctx, request, form, secret_required=False)
        if app is None:
            return _invalid_client()
        token = (form.get("token") or [""])[0]
        if not token:
            return JSONResponse({"error": "invalid_request", "error_description": "Missing 'token'."},
                                status_code=400, headers=NO_STORE)
        family = _family_of_any(session, request, ctx, token)
        if family is not None and family.app_id == app.id:
            grants.revoke_family(session, family.id, ctx.now, "revoked")
    return Response(status_code=200, headers=NO_STORE)


APP_TOKEN_READERS = "Application.ReadWrite.All"  # may introspect any app's token (it manages every app)


def _app_token_info(session: Session, request: Request, ctx: RequestContext, caller: App, token: str
                    ) -> dict[str, Any] | None:
    """An app (client credentials) token, as RFC 7662 describes it: active while unexpired and while the app
    it was issued to still exists. Like Entra, removing a secret does not recall tokens already issued."""
    svc = services(request)
    claims = tokens.app_token_claims(svc.keys.ring(ctx), svc.settings, token, ctx.now)
    if claims is None:
        return None
    if claims["client_id"] != caller.app_id and APP_TOKEN_READERS not in (caller.permissions or []):
        return None
    owner = registrations.by_client_id(session, claims["client_id"])
    if owner is None:
        return None
    keep = ("client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "roles")
    return {"active": True, "token_type": "Bearer", **{k: claims[k] for k in keep if k in claims},
            "username": owner.display_name}


@router.post("/oauth2/introspect")
async def introspect(request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    """RFC 7662. A user's token introspects for the app it was issued to; an app (client credentials) token for
    that app and for apps allowed to manage every app (Application.ReadWrite.All). Callers authenticate with
    their secret."""
    svc = services(request)
    form = await _params(request)
    with svc.db.transaction() as session:
        app = _client(session, ctx, request, form, secret_required=True)
        if app is None:
            return _invalid_client()
        token = (form.get("token") or [""])[0]
        inactive = JSONResponse({"active": False}, headers=NO_STORE)
        refresh = grants.find_refresh(session, token) if token else None
        if refresh is not None:
            family = grants.live_family(session, refresh.grant_id, ctx.now)
            if family is None or family.app_id != app.id or refresh.used_at is not None \
                    or refresh.expires_at <= ctx.now:
                return inactive
            return JSONResponse(_refresh_info(session, app, family, refresh), headers=NO_STORE)
        found = _live_user_token(session, request, ctx, token) if token else None
        if found is None:
            app_info = _app_token_info(session, request, ctx, app, token) if token else None
            return JSONResponse(app_info, headers=NO_STORE) if app_info else inactive
        if found[0].get("client_id") != app.app_id:
            return inactive
        claims = found[0]
        keep = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "auth_time", "acr", "amr",
                "sid")
        info = {"active": True, "token_type": "Bearer", **{k: claims[k] for k in keep if k in claims}}
        user = session.get(User, claims["sub"])
        if user is not None:
            info["username"] = user.user_principal_name
        return JSONResponse(info, headers=NO_STORE)


def _refresh_info(session: Session, app: App, family: OAuthGrant, row: RefreshToken) -> dict[str, Any]:
    user = session.get(User, family.user_id)
    return {"active": True, "token_type": "refresh_token", "client_id": app.app_id, "sub": family.user_id,
            "scope": family.scope, "exp": int(row.expires_at.timestamp()), "iat": int(row.created_at.timestamp()),
            "auth_time": int(family.auth_time.timestamp()), "acr": family.acr, "amr": list(family.amr),
            "sid": family.session_id, "username": user.user_principal_name if user else None}


# -- RP-initiated logout ----------------------------------------------------------------------
_CARRIED = ("client_id", "post_logout_redirect_uri", "state", "ui_locales")


@router.get("/oauth2/logout", include_in_schema=False)
@router.post("/oauth2/logout", include_in_schema=False)
async def end_session(request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    """OpenID Connect RP-Initiated Logout 1.0: ends the browser session (for every app), tells the apps
    (front- and back-channel), then returns to the app's registered post-logout URI, found from client_id or
    from the id_token_hint alone. Without a valid id_token_hint anyone could link a browser here, so the user
    confirms on a page first; the confirmation is a form POST that must come from Passgate's own pages."""
    from ..web.api import from_own_pages
    from ..web.pages import content_security_policy, error_page, render

    svc = services(request)
    form = await _params(request)

    def one(name: str) -> str | None:
        return _one(form, name)

    ring = svc.keys.ring(ctx)  # loaded before the write lock is taken
    hint = one("id_token_hint")
    claims = grants.decode_id_token_hint(ring, svc.settings, hint) if hint else None
    if hint and claims is None:
        return error_page(request, errors.INVALID_REQUEST, "The id_token_hint is not an ID token from here.",
                          ctx.correlation_id)
    client_id = one("client_id") or (str(claims["aud"]) if claims and isinstance(claims.get("aud"), str) else None)
    if claims and one("client_id") and claims.get("aud") != one("client_id"):
        return error_page(request, errors.INVALID_REQUEST, "client_id does not match the id_token_hint.",
                          ctx.correlation_id)
    target = one("post_logout_redirect_uri")
    cookie = request.cookies.get(sessions.COOKIE)
    confirmed = claims is not None or (request.method == "POST" and one("confirm") == "yes"
                                       and from_own_pages(request))
    if not confirmed:
        with svc.db.transaction() as session:
            app = registrations.by_client_id(session, client_id) if client_id else None
            allowed = clients.logout_uris(app) if app is not None else []
            app_name = app.display_name if app is not None else None
        if target and target not in allowed:
            return error_page(request, errors.LOGOUT_REQUEST_REFUSED, errors.LOGOUT_REQUEST_REFUSED.message,
                              ctx.correlation_id)
        carry = [(name, value) for name in _CARRIED if (value := one(name))]
        # The confirmation may end at the app: its post-logout URI is the one other place the form may lead.
        csp = content_security_policy(form_action=[_origin(target)] if target else None)
        return render(request, "signout.html", {"title": "Sign out", "done": False, "carry": carry,
                                                "app_name": app_name}, csp=csp)
    with svc.db.transaction(write=True) as session:
        current = sessions.current(session, cookie, ctx.now)
        ended = [s for s in [sessions.end(session, cookie, ctx.now)] if s is not None]
        if claims and claims.get("sid") and (current is None or current[1].id == claims.get("sub")):
            hinted = session.get(BrowserSession, str(claims["sid"]))
            if hinted is not None and hinted.user_id == claims.get("sub"):
                ended += [s for s in [sessions.end_row(session, hinted, ctx.now)] if s is not None]
        told = logout.notices(session, ring, svc.settings, ctx.now, ended)
        app = registrations.by_client_id(session, client_id) if client_id else None
        allowed = clients.logout_uris(app) if app is not None else []
    bad_target = bool(target) and target not in allowed
    state = one("state")
    continue_url = None
    if target and not bad_target:
        continue_url = target + (("&" if "?" in target else "?") + urlencode({"state": state}) if state else "")
    response: Response
    if told.front_channel or bad_target:
        # The apps are told in frames whatever happens next; the page then continues to the app, if it may.
        response = render(request, "signout.html", {
            "title": "Signed out", "done": True, "front_channel": told.front_channel, "continue_url": continue_url,
            "error": errors.LOGOUT_REDIRECT_NOT_REGISTERED if bad_target else None,
            "request_id": ctx.correlation_id,
        }, status=errors.LOGOUT_REDIRECT_NOT_REGISTERED.status if bad_target else 200,
            csp=content_security_policy(frame_src=told.frame_origins()))
    else:
        response = RedirectResponse(continue_url or "/", status_code=302 if continue_url else 303, headers=NO_STORE)
    # Back-channel calls go after the commit and after the answer, so no app can hold up the sign-out.
    response.background = BackgroundTask(logout.deliver, told.back_channel)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"
