"""The headless sign-in API: the pages' JavaScript uses it, and so can native apps and custom UIs.

Cookie-authenticated; every state-changing call must come from one of PASSGATE_ORIGINS.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from ..context import Actor, RequestContext
from ..core import errors
from ..core.errors import PassgateError
from ..graph.base import iso, json_body, usable_text
from ..passkeys import aaguids, challenges, registry
from ..signin import flow, sessions, taps
from ..store.tables import BrowserSession, Passkey, User
from .deps import Services, request_context, services

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


def set_agent_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        sessions.AGENT_COOKIE, token, httponly=True, samesite="lax",
        secure=services(request).settings.cookies_secure, path="/",
    )


def agent_binding(request: Request, response: Response) -> str:
    """The browser's agent cookie (set on first use) binds its challenges to it."""
    token, new = agent_token(request)
    if new:
        set_agent_cookie(request, response, token)
        request.state.new_agent = True
    return challenges.binding_of(token)


def set_session_cookie(request: Request, response: Response, signed: flow.SignedIn) -> None:
    response.set_cookie(
        sessions.COOKIE, signed.session_token, httponly=True, samesite="lax",
        secure=services(request).settings.cookies_secure, path="/",
        max_age=max(1, int((signed.expires_at - request.state.ctx_now).total_seconds())),
    )


def _text(body: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 512:
        raise PassgateError(errors.INVALID_REQUEST, f"'{key}' must be a non-empty string.")
    if not usable_text(value):
        raise PassgateError(errors.INVALID_REQUEST, f"'{key}' contains characters that cannot be stored.")
    return value


def _ctx(request: Request, ctx: RequestContext = Depends(request_context)) -> RequestContext:
    check_origin(request) if request.method != "GET" else None
    request.state.ctx_now = ctx.now
    return ctx


@router.post("/signin/identify")
async def identify(request: Request, ctx: RequestContext = Depends(_ctx)) -> dict[str, Any]:
    body = await json_body(request)
    upn = _text(body, "username")
    svc = services(request)
    with svc.db.transaction() as session:
        user, methods = flow.identify(session, ctx, upn or "")
        return {"username": user.user_principal_name, "displayName": user.display_name, "methods": methods}


@router.post("/signin/passkey/options")
async def passkey_options(request: Request, response: Response, ctx: RequestContext = Depends(_ctx)) -> Any:
    body = await json_body(request)
    upn = _text(body, "username", required=False)
    svc = services(request)
    binding = agent_binding(request, response)
    return flow.passkey_options(svc.db, ctx, svc.settings, binding, upn)


def agent_of(request: Request) -> str:
    """The binding of this browser's challenges; without the cookie, one that matches no challenge, so that
    the response is still parsed (a damaged one is named as such) and the refusal is logged."""
    token = request.cookies.get(sessions.AGENT_COOKIE)
    return challenges.binding_of(token) if token else ""


@router.post("/signin/passkey")
async def passkey_sign_in(request: Request, response: Response, ctx: RequestContext = Depends(_ctx)) -> Any:
    body = await json_body(request)
    svc = services(request)
    signed = flow.passkey_sign_in(svc.db, ctx, svc.settings, agent_of(request), body.get("credential"))
    set_session_cookie(request, response, signed)
    return {"userPrincipalName": signed.user.user_principal_name, "redirect": "/mysecurityinfo"}


@router.post("/signin/tap")
async def tap_sign_in(request: Request, response: Response, ctx: RequestContext = Depends(_ctx)) -> Any:
    body = await json_body(request)
    upn = _text(body, "username") or ""
    secret = _text(body, "temporaryAccessPass") or ""
    svc = services(request)
    signed = flow.tap_sign_in(svc.db, ctx, svc.settings, upn, secret)
    set_session_cookie(request, response, signed)
    return {"userPrincipalName": signed.user.user_principal_name, "redirect": "/mysecurityinfo"}


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
    return {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "displayName": user.display_name,
        "signedInWith": browser_session.method,
        "sessionExpiresDateTime": iso(browser_session.expires_at),
        "passkeys": [passkey_json(p) for p in passkeys],
        "temporaryAccessPass": tap_json,
        "rpId": svc.settings.rp_id,
    }


@router.post("/me/passkeys/options")
async def register_options(request: Request, response: Response, ctx: RequestContext = Depends(_ctx)) -> Any:
    if await request.body():  # it takes no input; a body, if any, must still be a JSON object
        await json_body(request)
    svc = services(request)
    _, user = signed_in(request, svc, ctx)
    binding = agent_binding(request, response)
    with svc.db.transaction(write=True) as session:
        return registry.creation_options(session, ctx, svc.settings, binding, user, self_service=True)


@router.post("/me/passkeys", status_code=201)
async def register(request: Request, ctx: RequestContext = Depends(_ctx)) -> Any:
    body = await json_body(request)
    svc = services(request)
    _, user = signed_in(request, svc, ctx)
    ctx = as_user_actor(ctx, user)
    name = body.get("displayName")
    with svc.db.transaction(write=True) as session:
        user = session.merge(user)
        passkey = registry.register(
            session, ctx, svc.settings, agent_of(request), user, body.get("credential"), name, self_service=True
        )
        return passkey_json(passkey)


@router.patch("/me/passkeys/{passkey_id}")
async def rename(passkey_id: str, request: Request, ctx: RequestContext = Depends(_ctx)) -> Any:
    body = await json_body(request)
    svc = services(request)
    _, user = signed_in(request, svc, ctx)
    ctx = as_user_actor(ctx, user)
    with svc.db.transaction(write=True) as session:
        user = session.merge(user)
        passkey = registry.rename(session, ctx, user, registry.get(session, user, passkey_id),
                                  body.get("displayName"))
        return passkey_json(passkey)


@router.delete("/me/passkeys/{passkey_id}", status_code=204)
def delete(passkey_id: str, request: Request, ctx: RequestContext = Depends(_ctx)) -> Response:
    svc = services(request)
    _, user = signed_in(request, svc, ctx)
    ctx = as_user_actor(ctx, user)
    with svc.db.transaction(write=True) as session:
        user = session.merge(user)
        registry.remove(session, ctx, user, registry.get(session, user, passkey_id), self_service=True)
    return Response(status_code=204)
