"""HTML pages (Jinja2): sign-in and Security info. The pages' JavaScript drives the headless API in web/api.py."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from ..context import RequestContext
from ..core import errors
from ..core.access import Outcome as AccessOutcome
from ..core.errors import ErrorCode
from ..core.values import UsabilityReason
from ..passkeys import registry
from ..signin import access, flow, oath, passwords, sessions, taps
from ..store.tables import BrowserSession, User
from .api import passkey_json
from .deps import context_of, services

HERE = Path(__file__).parent
STATIC = HERE / "static"

router = APIRouter()
router.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
templates = Jinja2Templates(directory=str(HERE / "templates"))



# An origin as a CSP source; anything else (a registered URI is an admin's text) could widen the policy.
_SOURCE = re.compile(r"https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


def content_security_policy(frame_src: list[str] | None = None, form_action: list[str] | None = None) -> str:
    """Pages load only their own script and style sheet and nothing may frame them. Only the signed-out page
    frames other origins (the apps' front-channel logout URIs), and only the sign-out confirmation posts a
    form that may end at an app (its registered post-logout redirect URI)."""
    frame_src = [o for o in frame_src or [] if _SOURCE.fullmatch(o)]
    frames = f"frame-src {' '.join(frame_src)}; " if frame_src else ""
    forms = " ".join(["'self'", *(o for o in form_action or [] if _SOURCE.fullmatch(o))])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"object-src 'none'; base-uri 'none'; {frames}form-action {forms}; frame-ancestors 'none'"
    )


SECURITY_HEADERS = {
    "Content-Security-Policy": content_security_policy(),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

TAP_STATES = {
    UsabilityReason.ENABLED_BY_POLICY: "Usable",
    UsabilityReason.DISABLED_BY_POLICY: "Not usable: turned off by the authentication methods policy",
    UsabilityReason.EXPIRED: "Expired",
    UsabilityReason.NOT_YET_VALID: "Not valid yet",
    UsabilityReason.ONE_TIME_USED: "Used (it was valid for one sign-in)",
}
PASSKEY_TYPES = {"deviceBound": "Device-bound", "synced": "Synced"}
SIGNED_IN_WITH = {
    flow.TAP_LABEL: "Temporary Access Pass", flow.PASSWORD_LABEL: "Password",
    flow.OATH_LABEL: "Password and authenticator app code",
}


def _asset_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.glob("*")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


ASSET_VERSION = _asset_version()
ERROR_ACTIONS = {c.name: {"number": c.number, "action": c.action} for c in errors.catalogue()}


def render(request: Request, name: str, context: dict[str, Any], status: int = 200, csp: str | None = None
           ) -> Response:
    base = {"asset_version": ASSET_VERSION, "error_actions": ERROR_ACTIONS}
    response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    if csp is not None:
        response.headers["Content-Security-Policy"] = csp
    return response


def error_page(request: Request, code: ErrorCode, message: str, request_id: str, status: int | None = None) -> Response:
    return render(
        request, "error.html", {"code": code, "message": message, "request_id": request_id},
        status or code.status,
    )


def _when(value: datetime | None) -> dict[str, str] | None:
    """A time for display: ISO for the <time> element (the script shows it in local time), UTC text as fallback."""
    if value is None:
        return None
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return {"iso": utc.isoformat().replace("+00:00", "Z"), "text": utc.strftime("%Y-%m-%d %H:%M UTC")}


def security_info_view(
    session: Session, ctx: RequestContext, browser_session: BrowserSession, user: User
) -> dict[str, Any]:
    """What the Security info page shows, from the same facts GET /api/me returns."""
    passkeys = []
    signed_in_with = SIGNED_IN_WITH.get(flow.label_of(browser_session), "Passkey")
    for p in registry.of_user(session, user.id):
        facts = passkey_json(p)
        facts["typeLabel"] = PASSKEY_TYPES.get(p.passkey_type, p.passkey_type)
        facts["created"] = _when(p.created_at)
        facts["lastUsed"] = _when(p.last_used_at)
        facts["attested"] = p.attestation_level != "notAttested"
        passkeys.append(facts)
        if p.id == browser_session.passkey_id:
            signed_in_with = f"Passkey “{p.display_name}”"
    tap = None
    row = taps.pass_of(session, user)
    if row is not None:
        reason = taps.usability(session, row, ctx.now)
        tap = {
            "usable": reason is UsabilityReason.ENABLED_BY_POLICY,
            "state": TAP_STATES.get(reason, str(reason)),
            "isUsableOnce": row.is_usable_once,
            "start": _when(row.start_at),
            "end": _when(taps.expiry(row)),
        }
    password = passwords.password_of(session, user)
    apps = [{"id": m.id, "displayName": m.display_name, "created": _when(m.created_at),
             "lastUsed": _when(m.last_used_at)} for m in oath.methods_of(session, user.id)]
    names = {p["displayName"] for p in passkeys}
    number = len(passkeys) + 1
    while f"Passkey {number}" in names:
        number += 1
    return {
        "defaultName": f"Passkey {number}",
        "user": {"displayName": user.display_name, "userPrincipalName": user.user_principal_name},
        "signedInWith": signed_in_with,
        "signedInAt": _when(browser_session.auth_time),
        "sessionEnds": _when(browser_session.expires_at),
        "passkeys": passkeys,
        "tap": tap,
        "password": {"lastSet": _when(password.created_at)} if password is not None else None,
        "oathMethods": apps,
        "passwordAllowed": passwords.allowed_for(session, user),
        "oathAllowed": oath.allowed_for(session, user),
    }


@router.get("/", include_in_schema=False)
@router.get("/signin", include_in_schema=False)
def sign_in_page(request: Request) -> Response:
    return render(request, "signin.html", {"title": "Sign in"})


@router.get("/mysecurityinfo", include_in_schema=False)
def security_info_page(request: Request) -> Response:
    """Security info is the sign-in portal: Conditional Access for the portal decides whether it opens. With
    `continue` (an authorize request that needs a method registered first) it says what to add, and links back."""
    svc = services(request)
    ctx = context_of(request)
    here = "/mysecurityinfo"
    with svc.db.transaction(write=True) as session:
        found = sessions.current(session, request.cookies.get(sessions.COOKIE), ctx.now)
        if found is None:
            return RedirectResponse("/?next=/mysecurityinfo", status_code=303, headers={"Cache-Control": "no-store"})
        browser, user = found
        verdict = access.gate(session, ctx, browser, user, access.PORTAL, flow.label_of(browser))
        if verdict.refused is not None:
            return error_page(request, verdict.refused.code, verdict.refused.message, ctx.correlation_id)
        outcome = verdict.decision.outcome
        if outcome in (AccessOutcome.STEP_UP, AccessOutcome.REAUTHENTICATE):
            query = urlencode({"next": here, "username": user.user_principal_name})
            return RedirectResponse(f"/signin?{query}", status_code=303, headers={"Cache-Control": "no-store"})
        view = security_info_view(session, ctx, browser, user)
        banner = access.registration_banner(verdict.decision, access.PORTAL) \
            if outcome is AccessOutcome.REGISTRATION_REQUIRED else None
        back = access.continue_target(session, request.query_params.get("continue"))
        if back is not None:
            wanted = access.decide(session, ctx, user.id, sessions.evidence_of(session, browser), back[1])
            if wanted.outcome is AccessOutcome.REGISTRATION_REQUIRED:
                banner = access.registration_banner(wanted, back[1])
            view["continue"] = {"url": back[0], "app": back[1].display_name}
        view["requirement"] = banner
    view["rpId"] = svc.settings.rp_id
    return render(request, "securityinfo.html", {"title": "Security info", **view})
