"""The headless sign-in API: the pages' JavaScript uses it, and so can native apps and custom UIs.

Cookie-authenticated; every state-changing call must come from one of PASSGATE_ORIGINS.

A call that finishes a sign-in may carry `next`, the page's way back (a path on this server). Its answer's
`redirect` says where the browser goes: when `next` is an authorize request, that request is answered at
once with the new session (the app's redirect URI with the code, in one round trip fewer); otherwise `next`
itself, or Security info.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from ..context import Actor, RequestContext
from ..core import errors
from ..core.errors import PassgateError
from ..graph.base import iso, json_body, usable_text
from ..oidc.routes import authorize_request_in, destination_after_sign_in
from ..passkeys import aaguids, challenges, registry
from ..signin import access as signin_access
from ..signin import flow, oath, passwords, sessions, taps
from ..store.tables import BrowserSession, Passkey, SoftwareOathMethod, User
from .deps import Services, context_of, services
from .hot import HotRoutes, json_endpoint

router = APIRouter(prefix="/api")


def from_own_pages(request: Request) -> bool:
    """Whether a state-changing request comes from one of PASSGATE_ORIGINS (or from no browser at all)."""
    origin = request.headers.get("origin")
    if origin is not None:
        return origin in services(request).settings.origins
    return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")


def check_origin(request: Request) -> None:
    if not from_own_pages(request):
        raise PassgateError(errors.FORBIDDEN_ORIGIN)


def agent_token(request: Request) -> tuple[str, bool]:
    """The browser's agent cookie value, or a new one (True) that the response must set."""
    token = request.cookies.get(sessions.AGENT_COOKIE)
    if not token or len(token) > 128:
        return secrets.token_urlsafe(32), True
    return token, False


_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-_")


def _set_token_cookie(response: Response, name: str, token: str, secure: bool, max_age: int | None = None) -> None:
    """Passgate's own cookies: HttpOnly, SameSite=Lax, for the whole site. The same header Starlette's
    `set_cookie` writes, built directly for a token of URL-safe characters (nothing to quote): through
    `http.cookies` it cost about 20 µs per cookie, two per sign-in."""
    if not token or not _TOKEN_CHARS.issuperset(token):
        response.set_cookie(name, token, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/")
        return
    age = f"; Max-Age={max_age}" if max_age is not None else ""
    header = f"{name}={token}; HttpOnly{age}; Path=/; SameSite=lax{'; Secure' if secure else ''}"
    response.raw_headers.append((b"set-cookie", header.encode("latin-1")))


def set_agent_cookie(request: Request, response: Response, token: str) -> None:
    _set_token_cookie(response, sessions.AGENT_COOKIE, token, services(request).settings.cookies_secure)


def agent_binding(request: Request, response: Response) -> str:
    """The browser's agent cookie (set on first use) binds its challenges to it."""
    token, new = agent_token(request)
    if new:
        set_agent_cookie(request, response, token)
        request.state.new_agent = True
    return challenges.binding_of(token)


def set_session_cookie(request: Request, response: Response, signed: flow.SignedIn) -> None:
    _set_token_cookie(response, sessions.COOKIE, signed.session_token, services(request).settings.cookies_secure,
                      max_age=max(1, int((signed.expires_at - request.state.ctx_now).total_seconds())))


def _text(body: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 512:
        raise PassgateError(errors.INVALID_REQUEST, f"'{key}' must be a non-empty string.")
    if not usable_text(value):
        raise PassgateError(errors.INVALID_REQUEST, f"'{key}' contains characters that cannot be stored.")
    return value


def _secret(body: dict[str, Any], key: str) -> str:
    """A password as typed: spaces are part of it, so it is not stripped."""
    value = body.get(key)
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise PassgateError(errors.INVALID_REQUEST, f"'{key}' must be a non-empty string.")
    if not usable_text(value):
        raise PassgateError(errors.INVALID_REQUEST, f"'{key}' contains characters that cannot be stored.")
    return value


def _marker(body: dict[str, Any]) -> str | None:
    """The pending authorization the sign-in page was opened for (`passgate_fresh` of its `next`), if any:
    Conditional Access then runs for that app. Only a locator: the record is bound to this browser."""
    value = body.get("authorization")
    return value if isinstance(value, str) and 0 < len(value) <= 128 else None


def _next(body: dict[str, Any]) -> str | None:
    """Where the sign-in page goes once signed in (its `next`): a path on this server, never elsewhere."""
    value = body.get("next")
    if not isinstance(value, str) or not value.startswith("/") or value.startswith(("//", "/\\")) \
            or len(value) > 8192:
        return None
    return value


class _WayBack:
    """The sign-in page's way back (`next`). When it is an authorize request, that request is answered in the
    sign-in's own transaction (`then`), so the browser goes straight to the app with its code."""

    __slots__ = ("agent", "back", "ctx", "query", "svc", "where")

    def __init__(self, request: Request, ctx: RequestContext, body: dict[str, Any]) -> None:
        self.back = _next(body)
        self.agent = request.cookies.get(sessions.AGENT_COOKIE)
        self.query = authorize_request_in(self.back) if self.agent else None
        self.svc = services(request)
        self.ctx = ctx
        self.where: str | None = None

    @property
    def then(self) -> flow.Then | None:
        return self._answer if self.query is not None else None

    def _answer(self, session: Session, signed: flow.SignedIn) -> None:
        assert self.query is not None and self.agent is not None
        self.where = destination_after_sign_in(session, self.svc, self.ctx, self.query, signed, self.agent)

    def answer(self, request: Request, response: Response, signed: flow.SignedIn) -> dict[str, Any]:
        """The answer to a finished sign-in: the session cookie, and where the browser goes."""
        set_session_cookie(request, response, signed)
        return {"userPrincipalName": signed.user.user_principal_name,
                "redirect": self.where or self.back or "/mysecurityinfo"}


async def _ctx(request: Request) -> RequestContext:
    # context_of is called, not declared as a dependency: FastAPI's solving of a nested one cost more per
    # request than the function.
    ctx = context_of(request)
    check_origin(request) if request.method != "GET" else None
    request.state.ctx_now = ctx.now
    return ctx


@router.post("/signin/identify")
async def identify(request: Request, ctx: RequestContext = Depends(_ctx)) -> dict[str, Any]:
    body = await json_body(request)
    upn = _text(body, "username")
    svc = services(request)
    with svc.db.transaction() as session:
        user, methods, step_up = flow.identify(session, ctx, upn or "", request.cookies.get(sessions.COOKIE),
                                               _marker(body), agent_of(request))
        answer = {"username": user.user_principal_name, "displayName": user.display_name, "methods": methods}
        if step_up is not None:
            answer["stepUp"] = step_up  # why only these methods are offered
        return answer


@router.post("/signin/passkey/options")
async def passkey_options(request: Request, response: Response, ctx: RequestContext = Depends(_ctx)) -> Any:
    body = await json_body(request)
    upn = _text(body, "username", required=False)
    svc = services(request)
    binding = agent_binding(request, response)
    return flow.passkey_options(svc.db, ctx, svc.settings, binding, upn, request.cookies.get(sessions.COOKIE),
                                _marker(body))


def agent_of(request: Request) -> str:
    """The binding of this browser's challenges; without the cookie, one that matches no challenge, so that
    the response is still parsed (a damaged one is named as such) and the refusal is logged."""
    token = request.cookies.get(sessions.AGENT_COOKIE)
    return challenges.binding_of(token) if token else ""


@router.post("/signin/passkey")
async def passkey_sign_in(request: Request, response: Response, ctx: RequestContext = Depends(_ctx)) -> Any:
    body = await json_body(request)
    svc = services(request)
    way = _WayBack(request, ctx, body)
    signed = flow.passkey_sign_in(svc.db, ctx, svc.settings, agent_of(request), body.get("credential"),
                                  _marker(body), way.then)
    return way.answer(request, response, signed)


# Served ahead of FastAPI's stack (web/hot.py), as FastAPI serves them: a sign-in's two passkey requests.
HOT_ROUTES: HotRoutes = {("POST", "/api/signin/passkey/options"): json_endpoint(passkey_options, _ctx),
                         ("POST", "/api/signin/passkey"): json_endpoint(passkey_sign_in, _ctx)}


@router.post("/signin/tap")
async def tap_sign_in(request: Request, response: Response, ctx: RequestContext = Depends(_ctx)) -> Any:
    body = await json_body(request)
    upn = _text(body, "username") or ""
    secret = _text(body, "temporaryAccessPass") or ""
    svc = services(request)
    way = _WayBack(request, ctx, body)
    signed = flow.tap_sign_in(svc.db, ctx, svc.settings, upn, secret, agent_of(request), _marker(body), way.then)
    return way.answer(request, response, signed)


def _signed_in_answer(request: Request, response: Response, way: _WayBack,
                      result: flow.SignedIn | flow.SecondStepRequired) -> Any:
    if isinstance(result, flow.SecondStepRequired):
        return {"userPrincipalName": result.user.user_principal_name, "secondFactor": result.method,
                "pending": result.pending, "pendingExpiresDateTime": iso(result.expires_at)}
    return way.answer(request, response, result)


@router.post("/signin/password")
async def password_sign_in(request: Request, response: Response, ctx: RequestContext = Depends(_ctx)) -> Any:
    """A right password gives a session, or (with an authenticator app) `secondFactor` and a `pending` token
    for /api/signin/code, usable only from this browser."""
    body = await json_body(request)
    upn = _text(body, "username") or ""
    password = _secret(body, "password")
    svc = services(request)
    way = _WayBack(request, ctx, body)
    result = flow.password_sign_in(svc.db, ctx, svc.settings, agent_binding(request, response), upn, password,
                                   _marker(body), way.then)
    return _signed_in_answer(request, response, way, result)


@router.post("/signin/code")
async def code_sign_in(request: Request, response: Response, ctx: RequestContext = Depends(_ctx)) -> Any:
    body = await json_body(request)
    pending = _text(body, "pending") or ""
    code = _text(body, "code") or ""
    svc = services(request)
    way = _WayBack(request, ctx, body)
    return _signed_in_answer(request, response, way, flow.code_sign_in(
        svc.db, ctx, svc.settings, agent_of(request), pending, code, _marker(body), way.then))


@router.post("/signout")
async def sign_out(request: Request, ctx: RequestContext = Depends(_ctx)) -> Response:
    """Ends this browser's session. Apps with a back-channel logout URI are told after the commit; a custom UI
    frames `frontChannelLogoutUris` as the signed-out page does."""
    from ..oidc import logout

    svc = services(request)
    ring = svc.keys.ring(ctx)  # loaded before the write lock is taken
    with svc.db.transaction(write=True) as session:
        ended = sessions.end(session, request.cookies.get(sessions.COOKIE), ctx.now)
        told = logout.notices(session, ring, svc.settings, ctx.now, [ended] if ended else [])
    response = JSONResponse({"signedOut": True, "frontChannelLogoutUris": told.front_channel},
                            headers={"Cache-Control": "no-store"},
                            background=BackgroundTask(logout.deliver, told.back_channel))
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


# -- the signed-in user's own security info --------------------------------------------------
def signed_in(request: Request, svc: Services, ctx: RequestContext) -> tuple[BrowserSession, User]:
    with svc.db.transaction() as session:
        found = sessions.current(session, request.cookies.get(sessions.COOKIE), ctx.now)
    if found is None:
        raise PassgateError(errors.SESSION_REQUIRED)
    return found


def as_user_actor(ctx: RequestContext, user: User) -> RequestContext:
    actor = Actor(kind="user", id=user.id, display_name=user.display_name,
                  user_principal_name=user.user_principal_name)
    return RequestContext(now=ctx.now, ip_address=ctx.ip_address, user_agent=ctx.user_agent,
                          correlation_id=ctx.correlation_id, actor=actor)


@contextmanager
def acting_as_user(request: Request, ctx: RequestContext) -> Iterator[tuple[Session, RequestContext, User]]:
    """A write transaction on behalf of the signed-in user, whose audit records then name them."""
    svc = services(request)
    _, user = signed_in(request, svc, ctx)
    with svc.db.transaction(write=True) as session:
        yield session, as_user_actor(ctx, user), session.merge(user)


def passkey_json(p: Passkey) -> dict[str, Any]:
    return {
        "id": p.id,
        "displayName": p.display_name,
        "credentialId": _b64(p.credential_id),
        "aaGuid": p.aaguid,
        "model": p.model or aaguids.model_name(p.aaguid),
        "passkeyType": p.passkey_type,
        "backedUp": p.backup_state,
        "attestationFormat": p.attestation_format,
        "attestationLevel": p.attestation_level,
        "attestationTrustAnchor": p.attestation_trust_anchor,
        "isUsable": p.unusable_code is None,
        "unusableCode": p.unusable_code,
        "unusableReason": p.unusable_reason,
        "createdDateTime": iso(p.created_at),
        "lastUsedDateTime": iso(p.last_used_at),
    }


def _b64(raw: bytes) -> str:
    from webauthn.helpers import bytes_to_base64url

    return bytes_to_base64url(raw)


@router.get("/me")
def me(request: Request, ctx: RequestContext = Depends(_ctx)) -> dict[str, Any]:
    svc = services(request)
    browser_session, user = signed_in(request, svc, ctx)
    with svc.db.transaction() as session:
        passkeys = registry.of_user(session, user.id)
        tap = taps.pass_of(session, user)
        tap_json = None
        if tap is not None:
            tap_json = {
                "id": tap.id, "isUsableOnce": tap.is_usable_once, "lifetimeInMinutes": tap.lifetime_minutes,
                "startDateTime": iso(tap.start_at),
                "methodUsabilityReason": taps.usability(session, tap, ctx.now).value,
            }
        legacy = legacy_methods_json(session, user)
    return {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "displayName": user.display_name,
        "signedInWith": browser_session.method,
        "authMethods": list(browser_session.auth_methods or []),
        "sessionExpiresDateTime": iso(browser_session.expires_at),
        "passkeys": [passkey_json(p) for p in passkeys],
        "temporaryAccessPass": tap_json,
        **legacy,
        "rpId": svc.settings.rp_id,
    }


def oath_json(row: SoftwareOathMethod) -> dict[str, Any]:
    return {"id": row.id, "displayName": row.display_name, "createdDateTime": iso(row.created_at),
            "lastUsedDateTime": iso(row.last_used_at)}


def legacy_methods_json(session: Any, user: User) -> dict[str, Any]:
    """The user's password and authenticator apps, and whether the policy lets them set them up."""
    row = passwords.password_of(session, user)
    return {
        "password": {"id": passwords.METHOD_ID, "lastSetDateTime": iso(row.created_at)} if row else None,
        "softwareOathMethods": [oath_json(m) for m in oath.methods_of(session, user.id)],
        "passwordAllowed": passwords.allowed_for(session, user),
        "softwareOathAllowed": oath.allowed_for(session, user),
    }


def may_register_security_info(svc: Services, ctx: RequestContext, browser: BrowserSession, user: User) -> None:
    """Conditional Access for the user action "register security info" (a Temporary Access Pass counts as
    strong authentication here); a refusal or interrupt is logged, committed, then raised."""
    with svc.db.transaction(write=True) as session:
        verdict = signin_access.gate(session, ctx, browser, user, signin_access.REGISTER_SECURITY_INFO,
                                     flow.label_of(browser))
    error = verdict.refused or verdict.interrupted
    if error is not None:
        raise error


@router.post("/me/passkeys/options")
async def register_options(request: Request, response: Response, ctx: RequestContext = Depends(_ctx)) -> Any:
    if await request.body():  # it takes no input; a body, if any, must still be a JSON object
        await json_body(request)
    svc = services(request)
    browser_session, user = signed_in(request, svc, ctx)
    may_register_security_info(svc, ctx, browser_session, user)
    binding = agent_binding(request, response)
    with svc.db.transaction(write=True) as session:
        return registry.creation_options(session, ctx, svc.settings, binding, user, self_service=True)


@router.post("/me/passkeys", status_code=201)
async def register(request: Request, ctx: RequestContext = Depends(_ctx)) -> Any:
    body = await json_body(request)
    name = body.get("displayName")
    with acting_as_user(request, ctx) as (session, ctx, user):
        passkey = registry.register(
            session, ctx, services(request).settings, agent_of(request), user, body.get("credential"), name,
            self_service=True,
        )
        return passkey_json(passkey)


@router.patch("/me/passkeys/{passkey_id}")
async def rename(passkey_id: str, request: Request, ctx: RequestContext = Depends(_ctx)) -> Any:
    body = await json_body(request)
    with acting_as_user(request, ctx) as (session, ctx, user):
        passkey = registry.rename(session, ctx, user, registry.get(session, user, passkey_id),
                                  body.get("displayName"))
        return passkey_json(passkey)


@router.delete("/me/passkeys/{passkey_id}", status_code=204)
def delete(passkey_id: str, request: Request, ctx: RequestContext = Depends(_ctx)) -> Response:
    with acting_as_user(request, ctx) as (session, ctx, user):
        registry.remove(session, ctx, user, registry.get(session, user, passkey_id), self_service=True)
    return Response(status_code=204)


# -- password and authenticator apps -----------------------------------------------------------
FRESH_SIGN_IN_MINUTES = 10


@router.post("/me/password", status_code=204)
async def set_password(request: Request, ctx: RequestContext = Depends(_ctx)) -> Response:
    """Set or change the password: the current one must be given, unless the sign-in is fresh (10 minutes)."""
    body = await json_body(request)
    new = _secret(body, "newPassword")
    current = _secret(body, "currentPassword") if body.get("currentPassword") not in (None, "") else None
    svc = services(request)
    browser_session, user = signed_in(request, svc, ctx)
    may_register_security_info(svc, ctx, browser_session, user)
    ctx = as_user_actor(ctx, user)
    with svc.db.transaction() as session:
        passwords.require_allowed(session, user)
        has_password = passwords.password_of(session, user) is not None
    fresh = (ctx.now - browser_session.auth_time).total_seconds() <= FRESH_SIGN_IN_MINUTES * 60
    if current is not None and has_password:
        flow.confirm_password(svc.db, ctx, svc.settings, user.id, current)
    elif not fresh:
        raise PassgateError(errors.CURRENT_PASSWORD_REQUIRED)
    with svc.db.transaction(write=True) as session:
        user = session.merge(user)
        passwords.set_password(session, ctx, user, new, self_service=True)
    return Response(status_code=204)


@router.post("/me/softwareoath/options")
async def oath_options(request: Request, response: Response, ctx: RequestContext = Depends(_ctx)) -> Any:
    """A new TOTP seed for this browser to show as a QR code (and as text); saved only when confirmed."""
    if await request.body():
        await json_body(request)
    svc = services(request)
    browser_session, user = signed_in(request, svc, ctx)
    may_register_security_info(svc, ctx, browser_session, user)
    binding = agent_binding(request, response)
    with svc.db.transaction(write=True) as session:
        user = session.merge(user)
        enrolment = oath.start_enrolment(session, ctx, svc.settings, binding, user)
    return {"secret": enrolment.secret, "uri": enrolment.uri, "qrCode": enrolment.qr_svg,
            "expiresInSeconds": svc.settings.challenge_seconds}


@router.post("/me/softwareoath", status_code=201)
async def oath_register(request: Request, ctx: RequestContext = Depends(_ctx)) -> Any:
    body = await json_body(request)
    secret = _text(body, "secret") or ""
    code = _text(body, "code") or ""
    name = _text(body, "displayName", required=False)
    with acting_as_user(request, ctx) as (session, ctx, user):
        row = oath.confirm_enrolment(session, ctx, agent_of(request), user, secret, code, name)
        return oath_json(row)


@router.delete("/me/softwareoath/{method_id}", status_code=204)
def oath_delete(method_id: str, request: Request, ctx: RequestContext = Depends(_ctx)) -> Response:
    with acting_as_user(request, ctx) as (session, ctx, user):
        oath.require_allowed(session, user)
        oath.delete(session, ctx, user, oath.get(session, user, method_id), self_service=True)
    return Response(status_code=204)
