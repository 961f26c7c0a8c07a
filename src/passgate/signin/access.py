"""Conditional Access in live sign-ins: what a decision of the one engine (conditional_access.evaluate over
core/access.py) makes a sign-in do, and what its log entry says.

The engine runs where a sign-in meets an app, after the first factor: when a ceremony ends (for the app
the sign-in is for, or the sign-in portal), at /oauth2/authorize for every code (SSO reuse included, so a
policy enabled since applies at the next app sign-in), on Security info (the portal), and before security
info is registered (the user action). Every door asks the same engine with the request's facts and the
session's evidence; the requirement a step-up must meet is never read from the URL: it is re-evaluated
from the stored pending authorization (which app) and the browser's session (what it proved).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .. import conditional_access as ca
from ..context import RequestContext
from ..core import access, errors
from ..core.access import Decision, Outcome
from ..core.errors import PassgateError
from ..core.values import Evidence, MethodMode
from ..logs.writer import MULTI_FACTOR, PREVIOUSLY_SATISFIED, SINGLE_FACTOR, SignInAttempt, record_sign_in
from ..passkeys import aaguids, registry
from ..store import registrations
from ..store.prepared import Prepared
from ..store.tables import App, BrowserSession, PasskeyView, PendingAuthorization, User, UserView
from . import sessions

# The sign-in page's words for the methods a step-up may offer.
PASSKEY = "passkey"
TAP = "temporaryAccessPass"
PASSWORD = "password"
_OFFERED = {
    MethodMode.FIDO2: PASSKEY, MethodMode.TAP_ONE_TIME: TAP, MethodMode.TAP_MULTI_USE: TAP,
    # A code is only ever the second step after the password, so either mode is offered as the password form.
    MethodMode.PASSWORD: PASSWORD, MethodMode.SOFTWARE_OATH: PASSWORD,
}


@dataclass(frozen=True, slots=True)
class Target:
    """What a sign-in is for: an app (by appId), or a user action on the sign-in portal."""

    app_id: str
    display_name: str
    user_action: str | None = None


PORTAL = Target(access.SIGN_IN_PORTAL_APP_ID, access.BUILT_IN_APPS[access.SIGN_IN_PORTAL_APP_ID])
REGISTER_SECURITY_INFO = Target(PORTAL.app_id, PORTAL.display_name, access.REGISTER_SECURITY_INFO)


class Refused(PassgateError):
    """A sign-in ended by Conditional Access, with the log entry (policies, status) it must be logged with."""

    def __init__(self, error: PassgateError, attempt: SignInAttempt) -> None:
        super().__init__(error.code, error.message)
        self.attempt = attempt


# Built once, as it runs on every sign-in from an app: the record and its app in one round trip.
_PENDING_APP = Prepared(
    select(PendingAuthorization.binding, PendingAuthorization.used_at, PendingAuthorization.expires_at,
           App.app_id, App.display_name)
    .join(App, App.id == PendingAuthorization.app_id)
    .where(PendingAuthorization.id_hash == bindparam("id_hash"))
)


def pending_target(session: Session, marker: str | None, binding: str, now: datetime) -> Target:
    """The app of this browser's live pending authorization (`marker` as carried back to the sign-in page),
    or the sign-in portal. Only the app is taken from the record; what it requires is evaluated afresh."""
    if marker and len(marker) <= 128:
        row = _PENDING_APP.first(session, {"id_hash": hashlib.sha256(marker.encode()).hexdigest()})
        if row is not None and row.used_at is None and row.expires_at > now \
                and secrets.compare_digest(row.binding, binding):
            return Target(row.app_id, row.display_name)
    return PORTAL


def app_target(app: App) -> Target:
    return Target(app.app_id, app.display_name)


def decide(session: Session, ctx: RequestContext, user_id: str, evidence: Evidence | None, target: Target
           ) -> Decision:
    """The engine, on the facts of this request: user, app or action, client IP, platform, browser."""
    return ca.evaluate(
        session, user_id=user_id, now=ctx.now, app_id=None if target.user_action else target.app_id,
        user_action=target.user_action, ip_address=ctx.ip_address, user_agent=ctx.user_agent,
        client_app_type=access.ClientAppType.BROWSER, evidence=evidence,
    )


def note(attempt: SignInAttempt, decision: Decision, target: Target) -> None:
    """The decision on the sign-in log entry: the app, every policy with its result, status, requirement."""
    attempt.app_id, attempt.app_display_name = target.app_id, target.display_name
    attempt.applied_policies = ca.applied_policies_json(decision, beta=True)
    attempt.conditional_access_status = str(decision.status)
    attempt.authentication_requirement = MULTI_FACTOR if access.requires_multifactor(decision) else SINGLE_FACTOR


def _strength_names(decision: Decision) -> str:
    names = sorted({o.strength.display_name for r in decision.requirements for o in r.alternatives})
    return " or ".join(repr(n) for n in names) or "a stronger sign-in"


def accepted_models(decision: Decision) -> list[str]:
    """The passkey models (name and AAGUID) the requiring strengths accept, when they name models."""
    found: set[str] = set()
    for requirement in decision.requirements:
        for outcome in requirement.alternatives:
            for config in outcome.strength.configurations:
                if "fido2" in config.applies_to:
                    found.update(config.allowed_aaguids)
    return [f"{aaguids.model_name(a) or 'Unnamed model'} ({a})" for a in sorted(found)]


def _models_text(decision: Decision) -> str:
    models = accepted_models(decision)
    return f" It accepts only passkeys of these models: {', '.join(models)}." if models else ""


def refusal(decision: Decision, target: Target) -> PassgateError | None:
    """The error a blocked sign-in ends with, naming the policy; None when the decision is no block."""
    if decision.outcome is not Outcome.BLOCK or decision.error is None:
        return None
    name = decision.blocked_by.display_name if decision.blocked_by else "a Conditional Access policy"
    if decision.error is errors.STRENGTH_CANNOT_BE_SATISFIED:
        return PassgateError(decision.error, f"{target.display_name} requires {_strength_names(decision)} "
                                             f"(policy {name!r}), and no method you have or may add satisfies it."
                             + _models_text(decision))
    doing = "Registering security info" if target.user_action else f"Signing in to {target.display_name}"
    return PassgateError(decision.error, f"{doing} is blocked by the Conditional Access policy {name!r}.")


def interruption(decision: Decision, target: Target) -> PassgateError | None:
    """The code a sign-in is interrupted with (step-up, registration, sign-in frequency); None otherwise."""
    if decision.error is None or decision.outcome in (Outcome.ALLOW, Outcome.BLOCK):
        return None
    doing = "Registering security info" if target.user_action else target.display_name
    if decision.outcome is Outcome.STEP_UP:
        message = f"{doing} requires {_strength_names(decision)}: sign in again with a method that satisfies it."
    elif decision.outcome is Outcome.REGISTRATION_REQUIRED:
        message = registration_banner(decision, target)
    else:
        message = f"{doing} requires a fresh sign-in (sign-in frequency): sign in again."
    return PassgateError(decision.error, message)


def registration_banner(decision: Decision, target: Target) -> str:
    """What Security info tells a user who must register a method to continue to an app."""
    wanted = {m for r in decision.requirements for o in r.alternatives for reg in o.registrations for m in reg}
    if MethodMode.FIDO2 in wanted:
        what = "a passkey"
    elif MethodMode.SOFTWARE_OATH in wanted:
        what = "an authenticator app"
    else:
        what = "another sign-in method"
    doing = "Registering security info" if target.user_action else target.display_name
    return f"{doing} requires {what}: add one to continue.{_models_text(decision)}"


@dataclass(frozen=True, slots=True)
class Offer:
    """What a step-up sign-in page offers: method names, the passkeys (ids) that count, and why."""

    methods: frozenset[str]
    passkey_ids: frozenset[str]
    reason: str = ""


def step_up_offer(session: Session, ctx: RequestContext, token: str | None, user: UserView, marker: str | None,
                  binding: str) -> Offer | None:
    """When this browser's session (of this same user) must step up for the app of `marker` (see
    `pending_target`): only the methods that help meet the requirement. None: no step-up under way, everything
    the user has is offered."""
    found = sessions.current(session, token, ctx.now)
    if found is None or found[1].id != user.id:
        return None  # without such a session, which app the sign-in is for is not even read
    target = pending_target(session, marker, binding, ctx.now)
    decision = decide(session, ctx, user.id, sessions.evidence_of(session, found[0]), target)
    if decision.outcome is not Outcome.STEP_UP:
        return None
    offer = access.step_up_offer(decision)
    passkeys = frozenset(p.id for p in registry.of_user(session, user.id)
                         if sessions.passkey_evidence(p) in offer.passkeys)
    methods = {_OFFERED[m] for m in offer.modes}
    if not passkeys:
        methods.discard(PASSKEY)
    interrupted = interruption(decision, target)
    return Offer(frozenset(methods), passkeys, interrupted.message if interrupted else "")


def check_ceremony(session: Session, ctx: RequestContext, attempt: SignInAttempt, user: UserView, target: Target,
                   modes: list[MethodMode], passkey: PasskeyView | None = None) -> None:
    """After a ceremony proved `modes`: the engine for the app it is for. A block ends the sign-in (nothing
    is kept, the entry says why); a step-up, registration or fresh sign-in due is logged as an interrupt, and
    the door the browser goes to next (authorize, Security info) acts on it."""
    decision = decide(session, ctx, user.id, sessions.evidence(modes, ctx.now, passkey), target)
    note(attempt, decision, target)
    refused = refusal(decision, target)
    if refused is not None:
        raise refused
    attempt.interrupted = interruption(decision, target) or attempt.interrupted


@dataclass(frozen=True, slots=True)
class Gate:
    """A door's verdict for a signed-in browser: the decision, and the error it ends or interrupts with."""

    decision: Decision
    refused: PassgateError | None
    interrupted: PassgateError | None


def gate(session: Session, ctx: RequestContext, browser: BrowserSession, user: User, target: Target, method: str
         ) -> Gate:
    """The engine for a session reused at a door (the portal, a registration). A refusal is logged here with
    the policies, on the caller's transaction: "Previously satisfied", as the session's methods were."""
    decision = decide(session, ctx, user.id, sessions.evidence_of(session, browser), target)
    refused = refusal(decision, target)
    if refused is not None or (target.user_action and decision.outcome is not Outcome.ALLOW):
        attempt = SignInAttempt(method=method, user=user, method_detail=PREVIOUSLY_SATISFIED,
                                details={"sessionId": browser.id})
        note(attempt, decision, target)
        record_sign_in(session, ctx, attempt, refused or interruption(decision, target))
    return Gate(decision, refused, interruption(decision, target))


def continue_target(session: Session, continue_url: str | None) -> tuple[str, Target] | None:
    """An authorize request to come back to after registering a method (Security info's `continue`): only
    our own authorize endpoint, for a registered app."""
    if not continue_url or not continue_url.startswith("/oauth2/authorize?") or len(continue_url) > 4096:
        return None
    client_id = (parse_qs(urlsplit(continue_url).query).get("client_id") or [""])[0]
    app = registrations.by_client_id(session, client_id[:64])
    return (continue_url, app_target(app)) if app is not None else None
