"""The authorization endpoint: check the app, then use the browser's sign-in session or send it to sign in.

Order matters. Until the client and its redirect URI are known to be right, nothing is sent to the
redirect URI (an error page explains what to tell the app's owner). After that, every refusal is an
OAuth error redirect. Sign-in itself is the shared sign-in page: the browser comes back here through
`?next=` and the session it got is judged like any other (prompt, max_age, acr_values).

The way back carries `passgate_fresh=<random id>` of a `PendingAuthorization` stored here, bound to the
browser's agent cookie and the app: only a sign-in made after it was stored satisfies prompt=login and
max_age, once. A marker that was forged, belongs to another browser or app, is stale, or was already used
proves nothing.
"""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from ..config import Settings
from ..context import RequestContext
from ..core import errors
from ..core.access import Outcome as AccessOutcome
from ..core.errors import ErrorCode, PassgateError
from ..logs.writer import PREVIOUSLY_SATISFIED, SignInAttempt, record_sign_in
from ..signin import access, flow, sessions
from ..store import registrations
from ..store.prepared import Prepared
from ..store.tables import App, BrowserSession, PendingAuthorization, User, UserView
from . import clients, grants

FRESH = "passgate_fresh"  # on our own way back from the sign-in page: the id of a PendingAuthorization
FRESH_SECONDS = 30 * 60
FRESH_ID = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
RESPONSE_MODES = ("query", "form_post")


class AuthorizeError(Exception):
    """An OAuth error for the app, delivered at its (already validated) redirect URI."""

    def __init__(self, error: str, description: str, code: ErrorCode = errors.AUTHORIZE_PARAMETER_INVALID) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.code = code  # for the sign-in log and the catalogue


@dataclass(slots=True)
class Request:
    app: App
    redirect_uri: str
    state: str | None
    response_mode: str = "query"
    params: dict[str, str] = field(default_factory=dict)


def _single(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name) or []
    if len(values) > 1:
        code = errors.PKCE_REQUIRED if name.startswith("code_challenge") else errors.AUTHORIZE_PARAMETER_INVALID
        raise AuthorizeError("invalid_request", f"'{name}' was sent more than once.", code)
    return values[0] if values else None


def check_client(session: Session, query: dict[str, list[str]]) -> Request:
    """Client and redirect URI: failures here are PassgateErrors shown on a page, never redirects."""
    for name in ("client_id", "redirect_uri"):
        if len(query.get(name) or []) != 1:
            raise PassgateError(errors.AUTHORIZE_REQUEST_INVALID, f"'{name}' is missing or repeated.")
    client_id, redirect_uri = query["client_id"][0], query["redirect_uri"][0]
    app = registrations.by_client_id(session, client_id)
    if app is None:
        raise PassgateError(errors.APP_NOT_FOUND, f"client_id {client_id[:64]!r}.")
    if redirect_uri not in clients.redirect_uris(app):
        raise PassgateError(errors.REDIRECT_URI_MISMATCH, f"redirect_uri {redirect_uri[:256]!r}.")
    states = query.get("state") or []
    state = states[0] if states else None
    mode = (query.get("response_mode") or ["query"])[0]
    return Request(app, redirect_uri, state, mode if mode in RESPONSE_MODES else "query")


def check_params(req: Request, query: dict[str, list[str]]) -> None:
    """Everything else in the request; refusals go back to the app."""
    p = req.params
    for name in ("response_type", "scope", "nonce", "code_challenge", "code_challenge_method", "prompt",
                 "max_age", "acr_values", "login_hint", "response_mode", "state", FRESH):
        value = _single(query, name)
        if value is not None:
            p[name] = value
    if p.get("response_mode", "query") not in RESPONSE_MODES:
        raise AuthorizeError("invalid_request", "response_mode must be query or form_post.")
    if p.get("response_type") != "code":
        raise AuthorizeError("unsupported_response_type", "Only response_type=code is supported.",
                             errors.UNSUPPORTED_RESPONSE_TYPE)
    scopes = (p.get("scope") or "").split()
    unknown = [s for s in scopes if s not in grants.SCOPES]
    if unknown or "openid" not in scopes:
        raise AuthorizeError("invalid_scope", f"scope must include openid and only {' '.join(grants.SCOPES)}.",
                             errors.INVALID_SCOPE)
    if not p.get("nonce"):
        raise AuthorizeError("invalid_request", "A nonce is required.")
    if not p.get("code_challenge"):
        raise AuthorizeError("invalid_request", "PKCE is required: send code_challenge with method S256.",
                             errors.PKCE_REQUIRED)
    if p.get("code_challenge_method") != "S256":
        raise AuthorizeError("invalid_request", "code_challenge_method must be S256.", errors.PKCE_REQUIRED)
    if not CHALLENGE.match(p["code_challenge"]):
        raise AuthorizeError("invalid_request", "code_challenge is not a valid S256 challenge.", errors.PKCE_REQUIRED)
    prompts = set((p.get("prompt") or "").split())
    if prompts - {"none", "login", "consent", "select_account"}:
        raise AuthorizeError("invalid_request", "prompt may be none, login, consent or select_account.")
    if "none" in prompts and len(prompts) > 1:
        raise AuthorizeError("invalid_request", "prompt=none cannot be combined with other values.")
    if "max_age" in p and (not p["max_age"].isdigit() or len(p["max_age"]) > 10):
        raise AuthorizeError("invalid_request", "max_age must be a whole number of seconds.")
    if FRESH in p and not FRESH_ID.match(p[FRESH]):
        p.pop(FRESH)


@dataclass(frozen=True, slots=True)
class Outcome:
    code: str | None = None
    sign_in_url: str | None = None
    user: UserView | None = None
    browser: BrowserSession | None = None


# Built once, as Core statements on the table (no ORM unit of work): every authorize request runs them.
_PENDING = PendingAuthorization.__table__
_CLAIM_PENDING = Prepared(
    update(_PENDING)
    .where(_PENDING.c.id_hash == bindparam("marker_hash"), _PENDING.c.used_at.is_(None),
           _PENDING.c.expires_at > bindparam("now"), _PENDING.c.app_id == bindparam("for_app"),
           # Equality in SQL on a digest of the agent cookie: timing could tell at most the digest.
           _PENDING.c.binding == bindparam("browser"), _PENDING.c.created_at < bindparam("auth_time"))
    .values(used_at=bindparam("now"))
)
_SWEEP_PENDING = Prepared(delete(_PENDING).where(_PENDING.c.expires_at <= bindparam("now")))
_INSERT_PENDING = Prepared(insert(_PENDING))
# Expired pending authorizations are swept by about one new one in this many (as passkeys/challenges.py does
# for challenges): a sweep at every sign-in was a DELETE on the hot path, and a stale row is harmless (it is
# only looked up by its own marker, and its expiry is checked then).
SWEEP_EVERY = 64


def _claim_fresh(session: Session, value: str | None, binding: str, app: App, browser: BrowserSession,
                 now: datetime) -> bool:
    """Claim the unused, unexpired pending authorization this browser was given for this app, if the browser's
    session began after it was stored; one conditional UPDATE, so that it serves once even to racing requests."""
    if not value:
        return False
    return _CLAIM_PENDING.run(session, {"marker_hash": grants.digest(value), "now": now, "for_app": app.id,
                                        "browser": binding, "auth_time": browser.auth_time}) == 1


def decide(session: Session, settings: Settings, ctx: RequestContext, req: Request, cookie: str | None,
           path: str, binding: str, signed: flow.SignedIn | None = None) -> Outcome:
    """Issue a code from the browser's session, or say where the browser must sign in first. `binding`
    identifies the browser (its agent cookie) that a sign-in marker must belong to. `signed`: the sign-in that
    has just started the browser's session in this transaction, instead of the session of `cookie`."""
    now = ctx.now
    p = req.params
    prompts = set((p.get("prompt") or "").split())
    wanted = grants.requested_level(p.get("acr_values"))
    found = (signed.started.row, signed.user) if signed is not None else sessions.current(session, cookie, now)
    browser: BrowserSession | None = found[0] if found else None
    user: UserView | None = found[1] if found else None
    # Just signed in for this very request: a ceremony after the marker was stored, in this browser, used once.
    fresh = browser is not None and _claim_fresh(session, p.get(FRESH), binding, req.app, browser, now)

    def must_sign_in() -> str | None:
        if browser is None or user is None:
            return "login_required"
        if fresh:
            return None  # just signed in for this very request
        if prompts & {"login", "select_account"}:
            return "login_required"
        if "max_age" in p and (now - browser.auth_time).total_seconds() >= int(p["max_age"]):
            return "login_required"
        hint = (p.get("login_hint") or "").strip().lower()
        if hint and hint != user.user_principal_name:
            return "login_required"
        if wanted and grants.acr_level(grants.acr_of(browser)) < grants.acr_level(wanted):
            return "interaction_required"
        return None

    # A level the user cannot reach at all ends here, whatever the session: stepping up would not help.
    target = user
    if target is None and p.get("login_hint"):
        target = session.scalar(select(User).where(User.user_principal_name == p["login_hint"].strip().lower()))
    if wanted and grants.acr_level(wanted) > grants.acr_level(grants.ACR_TAP) and target is not None and not \
            grants.user_can_reach(session, target.id, wanted):
        raise AuthorizeError("unmet_authentication_requirements",
                             f"acr_values asks for {wanted}, and this account has no method that gives it.",
                             errors.AUTHENTICATION_STRENGTH_UNREACHABLE)
    reason = must_sign_in()
    if reason is None and browser is not None and user is not None:
        if wanted and grants.acr_level(grants.acr_of(browser)) < grants.acr_level(wanted):
            raise AuthorizeError("unmet_authentication_requirements",
                                 f"The sign-in gave {grants.acr_of(browser)}; the app asked for {wanted}.",
                                 errors.AUTHENTICATION_STRENGTH_UNREACHABLE)
        # The sign-in log shows each app a session signed in to, with what the session was.
        attempt = SignInAttempt(
            method=flow.label_of(browser), user=user,
            app_id=req.app.app_id, app_display_name=req.app.display_name,
            method_detail=PREVIOUSLY_SATISFIED if not fresh else None,
            details={"sessionId": browser.id, "acr": grants.acr_of(browser), "amr": list(browser.amr),
                     "protocol": "oidc"},
            authentication_details=flow.steps_of(browser, now, reused=not fresh),
        )
        # Conditional Access for this app on every code, SSO reuse included: a policy enabled since the
        # session began applies at the next app sign-in.
        target = access.app_target(req.app)
        evidence = signed.started.evidence if signed is not None else sessions.evidence_of(session, browser)
        decision = access.decide(session, ctx, user.id, evidence, target)
        access.note(attempt, decision, target)
        refused = access.refusal(decision, target)
        if refused is not None:
            # As in Entra: the user sees Passgate's error page; the app receives nothing.
            raise access.Refused(refused, attempt)
        interrupted = access.interruption(decision, target)
        if interrupted is None:
            code = grants.issue_code(session, settings, now, req.app, browser, req.redirect_uri, p["scope"],
                                     p["nonce"], p["code_challenge"], p["code_challenge_method"])
            record_sign_in(session, ctx, attempt)
            return Outcome(code=code, user=user, browser=browser)
        if not fresh:  # a ceremony just made for this request logged its interrupt already
            record_sign_in(session, ctx, attempt, interrupted)
        if "none" in prompts:
            raise AuthorizeError("interaction_required", interrupted.message, interrupted.code)
        if decision.outcome is AccessOutcome.REGISTRATION_REQUIRED:
            back = {k: v for k, v in p.items() if k != FRESH}
            back.update(client_id=req.app.app_id, redirect_uri=req.redirect_uri)
            return Outcome(sign_in_url="/mysecurityinfo?" + urlencode({"continue": f"{path}?{urlencode(back)}"}))
        # Step-up or sign-in frequency: a new ceremony in the same sign-in, for the same account.
        marker = remember_pending(session, now, req.app, binding)
        return Outcome(sign_in_url=sign_in_url(req, marker, path, user.user_principal_name))
    if "none" in prompts:
        raise AuthorizeError(reason or "login_required", "No sign-in session satisfies this request.",
                             errors.LOGIN_REQUIRED)
    # A step-up keeps the account: the sign-in page starts from the signed-in user's name.
    hint = p.get("login_hint") or (user.user_principal_name if reason == "interaction_required" and user else None)
    marker = remember_pending(session, now, req.app, binding)
    return Outcome(sign_in_url=sign_in_url(req, marker, path, hint))


def remember_pending(session: Session, now: datetime, app: App, binding: str) -> str:
    """Store a pending authorization for this browser and app; returns the marker the way back carries."""
    # Expired ones go now and then, so the table stays about the size of the sign-ins under way.
    if secrets.randbelow(SWEEP_EVERY) == 0:
        _SWEEP_PENDING.run(session, {"now": now})
    marker = secrets.token_urlsafe(32)
    _INSERT_PENDING.run(session, {"id_hash": grants.digest(marker), "binding": binding, "app_id": app.id,
                                  "created_at": now, "expires_at": now + timedelta(seconds=FRESH_SECONDS),
                                      "used_at": None})
    return marker


def sign_in_url(req: Request, marker: str, path: str, username: str | None) -> str:
    """The sign-in page, coming back to this same request, marked so that the new sign-in satisfies it."""
    # prompt and max_age stay: only a sign-in made after the marker was stored satisfies them.
    back = {k: v for k, v in req.params.items() if k != FRESH}
    back["client_id"] = req.app.app_id
    back["redirect_uri"] = req.redirect_uri
    back[FRESH] = marker
    query = {"next": f"{path}?{urlencode(back)}"}
    if username:
        query["username"] = username  # the sign-in page fills the username in
    return "/signin?" + urlencode(query)


def deliver(req: Request, settings: Settings, values: dict[str, str]) -> Response:
    """The answer at the app's redirect URI, as a redirect (query) or an auto-submitted form (form_post)."""
    out = _answer(req, settings, values)
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if req.response_mode == "form_post":
        nonce = secrets.token_urlsafe(16)
        inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in out.items())
        page = (f'<!doctype html><html><head><meta charset="utf-8"><title>Signing in…</title></head>'
                f'<body><form method="post" action="{html.escape(req.redirect_uri)}">{inputs}'
                f'<noscript><button type="submit">Continue</button></noscript></form>'
                f'<script nonce="{nonce}">document.forms[0].submit()</script></body></html>')
        headers["Content-Security-Policy"] = f"default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors 'none'"
        return Response(page, media_type="text/html", headers=headers)
    return RedirectResponse(_at_redirect_uri(req, out), status_code=302, headers=headers)


def location(req: Request, settings: Settings, values: dict[str, str]) -> str:
    """The app's redirect URI with the answer in its query (response_mode=query)."""
    return _at_redirect_uri(req, _answer(req, settings, values))


def _answer(req: Request, settings: Settings, values: dict[str, str]) -> dict[str, str]:
    out = dict(values)
    if req.state is not None:
        out["state"] = req.state
    out["iss"] = settings.issuer  # RFC 9207
    return out


def _at_redirect_uri(req: Request, out: dict[str, str]) -> str:
    parts = urlsplit(req.redirect_uri)
    query = "&".join(x for x in (parts.query, urlencode(out)) if x)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
