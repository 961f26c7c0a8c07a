"""TOTP authenticator apps (Graph's softwareOath): set up by scanning a QR code, confirmed with a current code.

pyotp computes the codes and segno draws the QR code. The seed being set up is a single-use challenge bound
to the browser that asked (`passkeys.challenges`), so nothing is stored until a code proves the app has it.
Each method keeps the last time-step it accepted, so a code is accepted at most once.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .. import directory
from ..config import Settings
from ..context import RequestContext
from ..core import errors
from ..core import legacy_methods as rules
from ..core.errors import PassgateError
from ..logs.writer import modified, record_audit
from ..methods_policy import software_oath_policy_of
from ..passkeys import challenges, enforcement
from ..store.tables import SoftwareOathMethod, User

ENROL = "oathEnrolment"
SEED_BYTES = 20  # RFC 4226's recommended 160 bits; 32 base32 characters to type by hand
MAX_METHODS = 5
ISSUER = "Passgate"


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str  # base32, shown once for manual entry
    uri: str  # otpauth:// for the QR code
    qr_svg: str  # data: URI of an SVG image (allowed by the pages' img-src)


def methods_of(session: Session, user_id: str) -> list[SoftwareOathMethod]:
    return list(session.scalars(
        select(SoftwareOathMethod).where(SoftwareOathMethod.user_id == user_id)
        .order_by(SoftwareOathMethod.created_at, SoftwareOathMethod.id)
    ))


def get(session: Session, user: User, method_id: str) -> SoftwareOathMethod:
    row = session.get(SoftwareOathMethod, method_id.lower()) if directory.is_guid(method_id) else None
    if row is None or row.user_id != user.id:
        raise PassgateError(errors.NOT_FOUND, f"The user has no authenticator app with the id {method_id[:64]!r}.")
    return row


def allowed_for(session: Session, user: User) -> bool:
    return software_oath_policy_of(session).allows(enforcement.member(session, user.id))


def require_allowed(session: Session, user: User) -> None:
    if not allowed_for(session, user):
        raise PassgateError(errors.SOFTWARE_OATH_NOT_ENABLED_FOR_USER)


def usable(session: Session, user: User) -> bool:
    return bool(methods_of(session, user.id)) and allowed_for(session, user)


def _seed_text(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


def _seed_bytes(text: str) -> bytes | None:
    cleaned = text.replace(" ", "").upper()
    try:
        return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        return None


def start_enrolment(session: Session, ctx: RequestContext, settings: Settings, binding: str, user: User) -> Enrolment:
    require_allowed(session, user)
    if len(methods_of(session, user.id)) >= MAX_METHODS:
        raise PassgateError(errors.TOO_MANY_AUTHENTICATOR_APPS, f"The limit is {MAX_METHODS}.")
    raw = challenges.issue(session, ctx, binding, ENROL, settings.challenge_seconds, user.id,
                           value=secrets.token_bytes(SEED_BYTES))
    secret = _seed_text(raw)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.user_principal_name, issuer_name=ISSUER)
    return Enrolment(secret, uri, segno.make(uri, error="m", micro=False).svg_data_uri(scale=4))


def matching_step(secret: str, code: str, unix_seconds: float) -> int | None:
    """The time-step whose code this is (now, or one either side), compared in constant time."""
    code = code.replace(" ", "")
    if not rules.is_code_shaped(code):
        return None
    totp = pyotp.TOTP(secret)
    return next((s for s in rules.steps_to_try(unix_seconds) if hmac.compare_digest(totp.generate_otp(s), code)),
                None)


def _claim(session: Session, ctx: RequestContext, row: SoftwareOathMethod, step: int) -> None:
    """Record the accepted step; a conditional UPDATE, so two racing uses of one code cannot both pass."""
    if not rules.step_is_fresh(step, row.last_counter):
        raise PassgateError(errors.VERIFICATION_CODE_ALREADY_USED)
    claimed = session.execute(
        update(SoftwareOathMethod)
        .where(SoftwareOathMethod.id == row.id,
               or_(SoftwareOathMethod.last_counter.is_(None), SoftwareOathMethod.last_counter < step))
        .values(last_counter=step, last_used_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise PassgateError(errors.VERIFICATION_CODE_ALREADY_USED)
    row.last_counter, row.last_used_at = step, ctx.now


def confirm_enrolment(
    session: Session, ctx: RequestContext, binding: str, user: User, secret: str, code: str, name: str | None
) -> SoftwareOathMethod:
    """Save the app once a current code proves it holds the seed this browser was given."""
    require_allowed(session, user)
    raw = _seed_bytes(secret)
    if raw is None or len(raw) != SEED_BYTES:
        raise PassgateError(errors.AUTHENTICATOR_SETUP_EXPIRED, "The secret sent back is not the one shown.")
    try:
        issued = challenges.consume(session, ctx, binding, ENROL, raw)
    except PassgateError:
        raise PassgateError(errors.AUTHENTICATOR_SETUP_EXPIRED) from None
    if issued.user_id != user.id:
        raise PassgateError(errors.AUTHENTICATOR_SETUP_EXPIRED)
    step = matching_step(_seed_text(raw), code, ctx.now.timestamp())
    if step is None:
        raise PassgateError(errors.VERIFICATION_CODE_INVALID)
    if len(methods_of(session, user.id)) >= MAX_METHODS:
        raise PassgateError(errors.TOO_MANY_AUTHENTICATOR_APPS, f"The limit is {MAX_METHODS}.")
    display_name = (name or "").strip()[:256] or f"Authenticator app {len(methods_of(session, user.id)) + 1}"
    row = SoftwareOathMethod(user_id=user.id, secret=_seed_text(raw), display_name=display_name,
                             last_counter=step, created_at=ctx.now, last_used_at=None)
    session.add(row)
    session.flush()
    record_audit(
        session, ctx, "User registered security info", category="UserManagement", operation="Add",
        target_type="User", target_id=user.id, target_name=user.display_name,
        target_upn=user.user_principal_name, service="Authentication Methods",
        changes=[modified("SoftwareOath.displayName", None, display_name)],
        details={"methodId": row.id, "method": "SoftwareOath"},
    )
    return row


def verify(session: Session, ctx: RequestContext, user: User, code: str) -> SoftwareOathMethod:
    """The user's app whose code this is, its step now used up; refuses a wrong code and a replayed one."""
    for row in methods_of(session, user.id):
        step = matching_step(row.secret, code, ctx.now.timestamp())
        if step is not None:
            _claim(session, ctx, row, step)
            return row
    raise PassgateError(errors.VERIFICATION_CODE_INVALID)


def delete(session: Session, ctx: RequestContext, user: User, row: SoftwareOathMethod, *, self_service: bool) -> None:
    record_audit(
        session, ctx, f"{'User' if self_service else 'Admin'} deleted security info", category="UserManagement",
        operation="Delete", target_type="User", target_id=user.id, target_name=user.display_name,
        target_upn=user.user_principal_name, service="Authentication Methods",
        changes=[modified("SoftwareOath.displayName", row.display_name, None)],
        details={"methodId": row.id, "method": "SoftwareOath"},
    )
    session.delete(row)
