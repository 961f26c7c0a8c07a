"""The sign-in flow: identify, then authenticate with a passkey, a Temporary Access Pass, or a password followed
(when the user has an authenticator app) by a TOTP code in a second step of the same sign-in.

Every attempt, success or failure, leaves one sign-in log entry in the same transaction as what it
changed (the challenge it used, the sign count, the consumed pass, the new session). A failure
changes nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from ..config import Settings
from ..context import RequestContext
from ..core import errors, policy
from ..core import legacy_methods as legacy_rules
from ..core import tap as tap_rules
from ..core.errors import ErrorCode, PassgateError
from ..core.values import MethodMode, UsabilityReason
from ..logs.writer import (
    PREVIOUSLY_SATISFIED,
    SignInAttempt,
    authentication_step,
    record_sign_in,
    sign_in_entry,
    write_sign_in,
)
from ..methods_policy import fido2_policy_of, tap_policy_of
from ..passkeys import ceremonies, challenges, enforcement, registry
from ..store.db import Database
from ..store.prepared import Prepared
from ..store.tables import (
    PASSKEY_REF_COLUMNS,
    USER_REF_COLUMNS,
    BrowserSession,
    Passkey,
    SignIn,
    TemporaryAccessPass,
    User,
    UserView,
    passkey_ref_at,
    user_ref_at,
)
from . import access, oath, passwords, sessions, taps

AUTHENTICATE = "authenticate"
SECOND_FACTOR = "secondFactor"  # the challenge purpose of a pending second step
PASSKEY = "passkey"
TAP = "temporaryAccessPass"
PASSWORD = "password"
SOFTWARE_OATH = "softwareOath"
TAP_LABEL = "Temporary Access Pass"
PASSKEY_LABEL = "Passkey"
PASSWORD_LABEL = "Password"
OATH_LABEL = "OATH verification code"
MULTI_FACTOR_STEP = "Multi-factor authentication"  # Graph's authenticationStepRequirement of a second factor

T = TypeVar("T")
U = TypeVar("U", bound=UserView)


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: UserView
    started: sessions.Started
    expires_at: Any

    @property
    def session_token(self) -> str:
        return self.started.token


@dataclass(frozen=True, slots=True)
class SecondStepRequired:
    """The first factor was right; the same sign-in continues with `method`, carrying `pending` back."""

    user: User
    method: str
    pending: str  # base64url of a single-use challenge bound to this browser
    expires_at: Any


# What the caller does in a finished sign-in's own transaction, once its session is stored (the API answers the
# authorize request the sign-in page was opened for).
Then = Callable[[Session, SignedIn], None]


def _then_if_signed_in(then: Then | None) -> Callable[[Session, SignedIn | SecondStepRequired], None] | None:
    if then is None:
        return None

    def after(session: Session, result: SignedIn | SecondStepRequired) -> None:
        if isinstance(result, SignedIn):
            then(session, result)

    return after


def label_of(browser: BrowserSession) -> str:
    """The sign-in log's authenticationMethod for what a session's sign-in was."""
    if browser.method == TAP:
        return TAP_LABEL
    if browser.method == PASSWORD:
        return OATH_LABEL if MethodMode.SOFTWARE_OATH.value in (browser.auth_methods or ()) else PASSWORD_LABEL
    return PASSKEY_LABEL


def steps_of(browser: BrowserSession, at: datetime, reused: bool) -> list[dict[str, Any]]:
    """The sign-in log's authenticationDetails for a session's sign-in: each factor it proved (password, then
    code), or, when an app reuses the session (SSO), its method as previously satisfied."""
    if reused:
        return [authentication_step(label_of(browser), PREVIOUSLY_SATISFIED, at, True)]
    if browser.method == PASSWORD and MethodMode.SOFTWARE_OATH.value in (browser.auth_methods or ()):
        return [authentication_step(PASSWORD_LABEL, None, browser.auth_time, True, "Correct password"),
                authentication_step(OATH_LABEL, None, browser.auth_time, True, requirement=MULTI_FACTOR_STEP)]
    return [authentication_step(label_of(browser), None, browser.auth_time, True)]


def run_attempt(
    db: Database,
    ctx: RequestContext,
    method: str,
    body: Callable[[Session, SignInAttempt], T],
    log_success: bool = True,
    after: Callable[[Session, T], None] | None = None,
) -> T:
    """Run one sign-in attempt (or one step of it); on refusal, log it with what was learnt and re-raise, with
    nothing else of the attempt kept. A step that is not itself a sign-in (identify, request options) logs only
    refusals. `after` runs in the same transaction once the attempt succeeded and was logged."""
    attempt = SignInAttempt(method=method)
    if method in _WRONG_GUESSES:
        return _counted_attempt(db, ctx, attempt, body, log_success, after)
    entry: dict[str, Any] | None = None
    try:
        # Every attempt writes (the log entry if nothing else); a refused one's entry is written below, durably.
        with db.transaction(write=True, ceremony=True) as session:
            try:
                result = body(session, attempt)
            except PassgateError as exc:
                # Taken now, while the user is loaded: the rollback expires it.
                entry = sign_in_entry(ctx, attempt, exc)
                raise
            if log_success:
                record_sign_in(session, ctx, attempt, attempt.interrupted)
            if after is not None:
                after(session, result)
            return result
    except PassgateError:
        if entry is None:
            raise
        # Nothing the refused attempt did survives (no savepoint on the way to a success); only its entry stays.
        with db.transaction(write=True) as session:
            write_sign_in(session, entry)
        raise


def _counted_attempt(db: Database, ctx: RequestContext, attempt: SignInAttempt,
                     body: Callable[[Session, SignInAttempt], T], log_success: bool,
                     after: Callable[[Session, T], None] | None) -> T:
    """An attempt with a guessable secret (pass, password, code), whose refusals the rate limit counts from the
    log: a refusal is logged in the attempt's own transaction (a savepoint undoes the rest), so on SQLite, whose
    write lock serialises attempts, the next guess counts it."""
    failure: PassgateError | None = None
    with db.transaction(write=True) as session:
        try:
            with session.begin_nested():
                result = body(session, attempt)
            if log_success:
                record_sign_in(session, ctx, attempt, attempt.interrupted)
            if after is not None:
                after(session, result)
            return result
        except PassgateError as exc:
            record_sign_in(session, ctx, attempt, exc)
            failure = exc
    raise failure


# Built once: these run on every sign-in.
_USER_BY_UPN = select(User).where(User.user_principal_name == bindparam("upn"))
_PASSKEYS = Passkey.__table__
_USERS = User.__table__
# Read as rows, not ORM entities (see UserRef): the account and its passkeys' credentials (in registration order)
# in one round trip.
_USER_AND_CREDENTIALS = Prepared(
    select(*USER_REF_COLUMNS, _PASSKEYS.c.id, _PASSKEYS.c.credential_id, _PASSKEYS.c.transports)
    .select_from(_USERS.outerjoin(_PASSKEYS, _PASSKEYS.c.user_id == _USERS.c.id))
    .where(_USERS.c.user_principal_name == bindparam("upn"))
    .order_by(_PASSKEYS.c.created_at)
)
_PASSKEY_AND_USER = Prepared(
    select(*PASSKEY_REF_COLUMNS, *USER_REF_COLUMNS)
    .select_from(_PASSKEYS.join(_USERS, _USERS.c.id == _PASSKEYS.c.user_id))
    .where(_PASSKEYS.c.credential_id == bindparam("raw_id"))
)
_CREDENTIALS_AT = len(USER_REF_COLUMNS)  # where a row of _USER_AND_CREDENTIALS has its passkey's columns


def _user_named(session: Session, name: str) -> User | None:
    return session.scalar(_USER_BY_UPN, {"upn": name})


def _require_enabled(name: str, user: U | None, attempt: SignInAttempt | None) -> U:
    """The account for a typed username (noted on the attempt, for its log entry), if it may sign in."""
    if attempt is not None:
        attempt.user_principal_name, attempt.user = name, user
    if user is None:
        raise PassgateError(errors.USER_NOT_FOUND)
    if not user.account_enabled:
        raise PassgateError(errors.USER_DISABLED)
    return user


def _enabled_user(session: Session, upn: str, attempt: SignInAttempt | None = None) -> User:
    name = upn.strip().lower()
    return _require_enabled(name, _user_named(session, name), attempt)


def identify(session: Session, ctx: RequestContext, upn: str, session_token: str | None = None,
             marker: str | None = None, binding: str = "") -> tuple[User, list[str], str | None]:
    """The account, the methods to offer, and why only those (None: no step-up). When this browser's session
    of the same user must step up for the app the sign-in is for, only the methods that satisfy it are offered."""
    user = _enabled_user(session, upn)
    methods = []
    if registry.of_user(session, user.id):
        methods.append(PASSKEY)
    row = taps.pass_of(session, user)
    if row is not None and taps.usability(session, row, ctx.now) is UsabilityReason.ENABLED_BY_POLICY:
        methods.append(TAP)
    if passwords.usable(session, user):
        methods.append(PASSWORD)
    offer = access.step_up_offer(session, ctx, session_token, user, marker, binding)
    if offer is None:
        return user, methods, None
    return user, [m for m in methods if m in offer.methods], offer.reason


def password_and_code_available(session: Session, user: User) -> bool:
    """Whether the user could sign in with a password and then a TOTP code (two factors)."""
    return passwords.usable(session, user) and oath.usable(session, user)


def passkey_options(
    db: Database, ctx: RequestContext, settings: Settings, binding: str, upn: str | None,
    session_token: str | None = None, marker: str | None = None,
) -> dict[str, Any]:
    """Request options: username-first lists the user's passkeys (in a step-up, only those that count for the
    required strength); without a username, any discoverable one.

    A refusal here (no such user, account disabled) ends a passkey sign-in, so it is logged as one."""

    def body(session: Session, attempt: SignInAttempt) -> dict[str, Any]:
        user_id = None
        allowed: list[ceremonies.StoredCredential] = []
        if upn:
            name = upn.strip().lower()
            rows = _USER_AND_CREDENTIALS.all(session, {"upn": name})
            user = _require_enabled(name, user_ref_at(rows[0]) if rows else None, attempt)
            user_id = user.id
            offer = access.step_up_offer(session, ctx, session_token, user, marker, binding)
            allowed = [ceremonies.StoredCredential(credential_id, list(transports or []))
                       for passkey_id, credential_id, transports in (row[_CREDENTIALS_AT:] for row in rows)
                       if passkey_id is not None and (offer is None or passkey_id in offer.passkey_ids)]
        challenge = challenges.issue(session, ctx, binding, AUTHENTICATE, settings.challenge_seconds, user_id)
        return ceremonies.authentication_options(settings, challenge, allowed)

    return run_attempt(db, ctx, PASSKEY_LABEL, body, log_success=False)


def _passkey_body(
    ctx: RequestContext, settings: Settings, binding: str, credential: Any, marker: str | None = None
) -> Callable[[Session, SignInAttempt], SignedIn]:
    def body(session: Session, attempt: SignInAttempt) -> SignedIn:
        assertion = ceremonies.parse_assertion(settings, credential)
        row = challenges.consume(session, ctx, binding, AUTHENTICATE, assertion.client_data.challenge)
        found = _PASSKEY_AND_USER.first(session, {"raw_id": assertion.credential.raw_id})
        if found is None:
            raise PassgateError(errors.CREDENTIAL_NOT_FOUND)
        passkey, user = passkey_ref_at(found), user_ref_at(found, len(PASSKEY_REF_COLUMNS))
        assert passkey is not None and user is not None  # an inner join
        attempt.user = user
        attempt.method = registry.method_label(passkey)
        attempt.method_detail = registry.describe(passkey)
        attempt.details = {"passkeyId": passkey.id, "aaGuid": passkey.aaguid, "passkeyType": passkey.passkey_type}
        handle = assertion.credential.response.user_handle
        if (row.user_id is not None and row.user_id != user.id) or (
            handle is not None and handle != user.webauthn_handle
        ):
            raise PassgateError(errors.USER_HANDLE_MISMATCH)
        new_count = ceremonies.verify_assertion(
            settings, assertion, row.challenge, passkey.public_key, passkey.sign_count
        )
        if assertion.auth_data.flags.be != passkey.backup_eligible:
            # Backup eligibility is fixed when the key is made; a change means another authenticator.
            raise PassgateError(errors.ASSERTION_INVALID, "The passkey's backup eligibility changed.")
        # Checked once the response is proven genuine: nobody else learns that the account is disabled.
        if not user.account_enabled:
            raise PassgateError(errors.USER_DISABLED)
        model_refused = enforcement.model_refusal(passkey)
        if model_refused is not None:
            raise PassgateError(*model_refused)
        fido2 = fido2_policy_of(session)
        decision = policy.decide(fido2, enforcement.member(session, user.id, fido2), enforcement.facts(passkey),
                                 policy.Ceremony.SIGN_IN)
        if not decision.allowed:
            raise PassgateError(decision.refusal or errors.FIDO2_NOT_ENABLED_FOR_USER, decision.explanation)
        attempt.details["passkeyProfile"] = decision.profile.name if decision.profile else None
        access.check_ceremony(session, ctx, attempt, user, access.pending_target(session, marker, binding, ctx.now),
                              [MethodMode.FIDO2], passkey)
        registry.used(session, passkey.id, new_count, assertion.auth_data.flags.bs, ctx.now)
        # RFC 8176: a hardware-protected key only when attested and device-bound (it cannot leave the device).
        hardware = passkey.attestation_level == "attested" and not passkey.backup_eligible
        amr = ["hwk" if hardware else "swk", "user", "mfa"]
        started = sessions.start(
            session, ctx, user, PASSKEY, amr, ctx.now + timedelta(minutes=settings.session_minutes), passkey,
            modes=[MethodMode.FIDO2],
        )
        return SignedIn(user, started, ctx.now + timedelta(minutes=settings.session_minutes))

    return body


def passkey_sign_in(
    db: Database, ctx: RequestContext, settings: Settings, binding: str, credential: Any, marker: str | None = None,
    then: Then | None = None,
) -> SignedIn:
    """`marker`: the pending authorization the sign-in page was sent with (Conditional Access runs for its
    app; without one, for the sign-in portal)."""
    return run_attempt(db, ctx, PASSKEY_LABEL, _passkey_body(ctx, settings, binding, credential, marker), after=then)


# Which logged refusals count as a wrong guess, per method label: the log is the counter.
_WRONG_GUESSES: dict[str, tuple[ErrorCode, ...]] = {
    TAP_LABEL: (errors.TAP_INVALID, errors.USER_NOT_FOUND),
    PASSWORD_LABEL: (errors.INVALID_USERNAME_OR_PASSWORD, errors.USER_NOT_FOUND),
    OATH_LABEL: (errors.VERIFICATION_CODE_INVALID, errors.VERIFICATION_CODE_ALREADY_USED),
}


def _recent_failures(session: Session, ctx: RequestContext, settings: Settings, label: str, **where: Any) -> int:
    since = ctx.now - timedelta(minutes=settings.tap_failure_window_minutes)
    query = select(func.count()).select_from(SignIn).where(
        SignIn.created_at >= since,
        SignIn.error_code.in_([c.number for c in _WRONG_GUESSES[label]]),
        SignIn.authentication_method == label,
    )
    for column, value in where.items():
        query = query.where(getattr(SignIn, column) == value)
    return int(session.scalar(query) or 0)


def _refuse_if_rate_limited(
    session: Session, ctx: RequestContext, settings: Settings, label: str, user: User | None, refusal: ErrorCode
) -> None:
    """Wrong guesses of a secret (pass, password, code) in the window, per user and per client IP."""
    # The log is the counter: failures recorded by every process are seen by every process.
    per_user = _recent_failures(session, ctx, settings, label, user_id=user.id) if user else 0
    per_ip = _recent_failures(session, ctx, settings, label, ip_address=ctx.ip_address) if ctx.ip_address else 0
    if tap_rules.rate_limited(per_user, per_ip, settings.tap_failures_per_user, settings.tap_failures_per_ip):
        raise PassgateError(refusal)


def tap_sign_in(db: Database, ctx: RequestContext, settings: Settings, upn: str, secret: str,
                binding: str = "", marker: str | None = None, then: Then | None = None) -> SignedIn:
    def body(session: Session, attempt: SignInAttempt) -> SignedIn:
        attempt.user_principal_name = upn.strip().lower()
        user = _user_named(session, attempt.user_principal_name)
        attempt.user = user
        _refuse_if_rate_limited(session, ctx, settings, TAP_LABEL, user, errors.TOO_MANY_ATTEMPTS)
        if user is None:
            raise PassgateError(errors.USER_NOT_FOUND)
        if not user.account_enabled:
            raise PassgateError(errors.USER_DISABLED)
        row = taps.pass_of(session, user)
        if row is None or not taps.matches(row, secret.strip()):
            raise PassgateError(errors.TAP_INVALID)
        attempt.method_detail = f"Temporary Access Pass {row.id}"
        state = taps.state_of(row)
        tap_rules.check_sign_in(state, tap_policy_of(session), ctx.now)
        if row.is_usable_once:
            # Claimed atomically: two racing sign-ins with the same one-time pass cannot both succeed.
            claimed = session.execute(
                update(TemporaryAccessPass)
                .where(TemporaryAccessPass.id == row.id, TemporaryAccessPass.used_at.is_(None))
                .values(used_at=ctx.now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                raise PassgateError(errors.TAP_ALREADY_USED)
            # Stored by the UPDATE above: as committed, so that the flush does not write it again.
            set_committed_value(row, "used_at", ctx.now)
        end = tap_rules.session_end(state, ctx.now, ctx.now + timedelta(minutes=settings.session_minutes))
        mode = MethodMode.TAP_ONE_TIME if row.is_usable_once else MethodMode.TAP_MULTI_USE
        attempt.details = {"temporaryAccessPassId": row.id, "isUsableOnce": row.is_usable_once}
        access.check_ceremony(session, ctx, attempt, user, access.pending_target(session, marker, binding, ctx.now),
                              [mode])
        return SignedIn(user, sessions.start(session, ctx, user, TAP, ["otp"], end, modes=[mode]), end)

    return run_attempt(db, ctx, TAP_LABEL, body, after=then)


def _start_legacy_session(
    session: Session, ctx: RequestContext, settings: Settings, user: User, modes: frozenset[MethodMode],
    attempt: SignInAttempt, target: access.Target,
) -> SignedIn:
    end = ctx.now + timedelta(minutes=settings.session_minutes)
    ordered = [m for m in (MethodMode.PASSWORD, MethodMode.SOFTWARE_OATH) if m in modes]
    access.check_ceremony(session, ctx, attempt, user, target, ordered)
    return SignedIn(user, sessions.start(session, ctx, user, PASSWORD, legacy_rules.amr_of(modes), end, modes=ordered),
                    end)


def password_sign_in(
    db: Database, ctx: RequestContext, settings: Settings, binding: str, upn: str, password: str,
    marker: str | None = None, then: Then | None = None,
) -> SignedIn | SecondStepRequired:
    """Check the password; finish the sign-in, or, when the user has an authenticator app, ask for its code
    in a second step bound to this browser (logged as interrupted: the password was right)."""

    def body(session: Session, attempt: SignInAttempt) -> SignedIn | SecondStepRequired:
        attempt.user_principal_name = upn.strip().lower()
        user = _user_named(session, attempt.user_principal_name)
        attempt.user = user
        _refuse_if_rate_limited(session, ctx, settings, PASSWORD_LABEL, user, errors.TOO_MANY_WRONG_SECRETS)
        if user is None:
            raise PassgateError(errors.USER_NOT_FOUND)
        if not passwords.matches(passwords.password_of(session, user), password):
            raise PassgateError(errors.INVALID_USERNAME_OR_PASSWORD)
        # Checked once the password is proven: nobody else learns whether the account or method is off.
        if not user.account_enabled:
            raise PassgateError(errors.USER_DISABLED)
        passwords.require_allowed(session, user)
        if not oath.usable(session, user):
            attempt.details = {"authenticationStepResultDetail": "Correct password", "factors": [PASSWORD]}
            return _start_legacy_session(session, ctx, settings, user, frozenset({MethodMode.PASSWORD}), attempt,
                                         access.pending_target(session, marker, binding, ctx.now))
        pending = challenges.issue(session, ctx, binding, SECOND_FACTOR, settings.challenge_seconds, user.id)
        attempt.details = {"authenticationStepResultDetail": "Correct password; verification code required",
                           "factors": [PASSWORD]}
        attempt.interrupted = PassgateError(errors.VERIFICATION_CODE_REQUIRED)
        return SecondStepRequired(user, SOFTWARE_OATH, bytes_to_base64url(pending),
                                  ctx.now + timedelta(seconds=settings.challenge_seconds))

    return run_attempt(db, ctx, PASSWORD_LABEL, body, after=_then_if_signed_in(then))


def confirm_password(db: Database, ctx: RequestContext, settings: Settings, user_id: str, password: str) -> None:
    """Re-authentication with the current password (to change it): wrong ones are logged and rate-limited
    like sign-in attempts, so a borrowed session cannot be used to guess the password."""

    def body(session: Session, attempt: SignInAttempt) -> None:
        user = session.get(User, user_id)
        attempt.user = user
        attempt.details = {"reauthentication": True}
        _refuse_if_rate_limited(session, ctx, settings, PASSWORD_LABEL, user, errors.TOO_MANY_WRONG_SECRETS)
        if user is None or not passwords.matches(passwords.password_of(session, user), password):
            raise PassgateError(errors.INVALID_USERNAME_OR_PASSWORD, "The current password is not right.")

    run_attempt(db, ctx, PASSWORD_LABEL, body, log_success=False)


def code_sign_in(
    db: Database, ctx: RequestContext, settings: Settings, binding: str, pending: str, code: str,
    marker: str | None = None, then: Then | None = None,
) -> SignedIn:
    """The second step after a right password: a TOTP code from one of the user's authenticator apps."""

    def body(session: Session, attempt: SignInAttempt) -> SignedIn:
        try:
            row = challenges.consume(session, ctx, binding, SECOND_FACTOR, base64url_to_bytes(pending))
        except (PassgateError, ValueError):
            raise PassgateError(errors.PENDING_SIGN_IN_NOT_FOUND) from None
        user = session.get(User, row.user_id) if row.user_id else None
        if user is None:
            raise PassgateError(errors.PENDING_SIGN_IN_NOT_FOUND)
        attempt.user = user
        _refuse_if_rate_limited(session, ctx, settings, OATH_LABEL, user, errors.TOO_MANY_WRONG_SECRETS)
        if not user.account_enabled:
            raise PassgateError(errors.USER_DISABLED)
        # The policy may have changed since the password step.
        passwords.require_allowed(session, user)
        oath.require_allowed(session, user)
        used = oath.verify(session, ctx, user, code)
        attempt.method_detail = used.display_name
        attempt.details = {"softwareOathMethodId": used.id, "factors": [PASSWORD, SOFTWARE_OATH]}
        attempt.authentication_details = [
            authentication_step(PASSWORD_LABEL, None, ctx.now, True, "Correct password"),
            authentication_step(OATH_LABEL, used.display_name, ctx.now, True, requirement=MULTI_FACTOR_STEP)]
        return _start_legacy_session(
            session, ctx, settings, user, frozenset({MethodMode.PASSWORD, MethodMode.SOFTWARE_OATH}), attempt,
            access.pending_target(session, marker, binding, ctx.now),
        )

    return run_attempt(db, ctx, OATH_LABEL, body, after=then)
