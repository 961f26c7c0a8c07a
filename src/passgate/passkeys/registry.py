"""A user's stored passkeys: registration, rename, delete, and the facts shown about each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..config import Settings
from ..context import RequestContext
from ..core import errors, policy
from ..core.errors import PassgateError
from ..logs.writer import modified, record_audit
from ..methods_policy import fido2_policy_of
from ..store.prepared import Prepared
from ..store.tables import Passkey, PasskeyView, User
from . import ceremonies, challenges, enforcement, trust

REGISTER = "register"

_PASSKEYS = Passkey.__table__
# Built once: every passkey sign-in stores the new counter, backup state and time of use, in one statement.
_USED = Prepared(
    update(_PASSKEYS).where(_PASSKEYS.c.id == bindparam("passkey_id"))
    .values(sign_count=bindparam("count"), backup_state=bindparam("backed_up"), last_used_at=bindparam("at"))
)


def of_user(session: Session, user_id: str) -> list[Passkey]:
    return list(session.scalars(select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at)))


def used(session: Session, passkey_id: str, sign_count: int, backup_state: bool, at: datetime) -> None:
    """A sign-in used this passkey (the loaded row is left as it was: nothing of it is flushed)."""
    _USED.run(session, {"passkey_id": passkey_id, "count": sign_count, "backed_up": backup_state, "at": at})


def stored(passkeys: list[Passkey]) -> list[ceremonies.StoredCredential]:
    return [ceremonies.StoredCredential(p.credential_id, list(p.transports or [])) for p in passkeys]


def get(session: Session, user: User, passkey_id: str) -> Passkey:
    passkey = session.get(Passkey, passkey_id)
    if passkey is None or passkey.user_id != user.id:
        raise PassgateError(errors.NOT_FOUND, "This passkey does not exist or belongs to someone else.")
    return passkey


def describe(passkey: PasskeyView) -> str:
    model = f", {passkey.model}" if passkey.model else ""
    return f"{passkey.display_name} ({passkey.aaguid}{model})"


def method_label(passkey: PasskeyView) -> str:
    return "Passkey (synced)" if passkey.backup_eligible else "Passkey (device-bound)"


def check_display_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise PassgateError(errors.INVALID_REQUEST, "The passkey name must be 1 to 256 characters.")
    return name.strip()


def creation_options(
    session: Session,
    ctx: RequestContext,
    settings: Settings,
    binding: str,
    user: User,
    *,
    challenge_seconds: int | None = None,
    self_service: bool = False,
) -> dict[str, Any]:
    """Registration options; the challenge lives `challenge_seconds` (default: settings.challenge_seconds).

    A user the policy gives no passkeys (or no self-service set-up) is told before the ceremony, and
    attestation is asked for when a profile in the user's scope enforces it."""
    fido2 = fido2_policy_of(session)
    member = enforcement.member(session, user.id)
    refused, _ = policy.scope(fido2, member)
    if refused is not None:
        raise PassgateError(refused.refusal or errors.FIDO2_NOT_ENABLED_FOR_USER, refused.explanation)
    if self_service and not fido2.self_service_allowed:
        raise PassgateError(errors.SELF_SERVICE_REGISTRATION_NOT_ALLOWED)
    seconds = settings.challenge_seconds if challenge_seconds is None else challenge_seconds
    challenge = challenges.issue(session, ctx, binding, REGISTER, seconds, user.id)
    return ceremonies.registration_options(
        settings, challenge, user.webauthn_handle, user.user_principal_name, user.display_name,
        stored(of_user(session, user.id)), attestation=policy.attestation_preference(fido2, member),
        hints=policy.registration_hints(fido2, member),
    )


def register(
    session: Session,
    ctx: RequestContext,
    settings: Settings,
    binding: str,
    user: User,
    credential: Any,
    display_name: str | None,
    self_service: bool,
) -> Passkey:
    name = check_display_name(display_name) if display_name is not None else None
    attestation = ceremonies.parse_attestation(settings, credential)
    row = challenges.consume(session, ctx, binding, REGISTER, attestation.client_data.challenge)
    if row.user_id != user.id:
        raise PassgateError(errors.CHALLENGE_NOT_FOUND, "The request was started for another account.")
    # Whether attestation is required is the policy's call below, made on what the attestation proved.
    new, proof = trust.verify_registration(session, settings, attestation, row.challenge, ctx.now, False)
    if session.scalar(select(Passkey.id).where(Passkey.credential_id == new.credential_id)) is not None:
        raise PassgateError(errors.CREDENTIAL_ALREADY_REGISTERED)
    kind = policy.PasskeyType.SYNCED if new.backup_eligible else policy.PasskeyType.DEVICE_BOUND
    decision = policy.decide(
        fido2_policy_of(session), enforcement.member(session, user.id),
        policy.PasskeyFacts(new.aaguid, kind, attested=proof.attested), policy.Ceremony.REGISTRATION, self_service,
    )
    if not decision.allowed:
        refusal = decision.refusal or errors.FIDO2_NOT_ENABLED_FOR_USER
        explanation = decision.explanation
        if refusal is errors.ATTESTATION_REQUIRED and proof.certificates:
            # It did present a certificate chain, only not one that leads to a trusted maker.
            refusal, explanation = errors.ATTESTATION_UNTRUSTED, f"{explanation} {proof.untrusted}".strip()
        raise PassgateError(refusal, explanation)
    model = proof.model
    passkey = Passkey(
        user_id=user.id,
        credential_id=new.credential_id,
        public_key=new.public_key,
        sign_count=new.sign_count,
        display_name=name or model or "Passkey",
        aaguid=new.aaguid,
        model=model,
        attestation_format=new.attestation_format,
        attestation_level=proof.level,
        attestation_trust_anchor=proof.trust_anchor,
        attestation_certificates=proof.certificates,
        mds_status=proof.mds_status,
        backup_eligible=new.backup_eligible,
        backup_state=new.backup_state,
        transports=new.transports,
        created_at=ctx.now,
        profile_id=decision.profile.id if decision.profile else None,
    )
    session.add(passkey)
    try:
        session.flush()
    except IntegrityError:  # the same credential registered by a request racing this one
        raise PassgateError(errors.CREDENTIAL_ALREADY_REGISTERED) from None
    who = "User" if self_service else "Admin"
    record_audit(
        session, ctx, f"{who} registered security info", category="UserManagement", operation="Add",
        target_type="User", target_id=user.id, target_name=user.display_name,
        target_upn=user.user_principal_name, service="Authentication Methods",
        changes=[modified("Passkey", None, describe(passkey))],
        details={
            "methodId": passkey.id, "aaGuid": passkey.aaguid, "passkeyType": passkey.passkey_type,
            "attestationFormat": passkey.attestation_format,
            "passkeyProfile": decision.profile.name if decision.profile else None,
            "attestationLevel": passkey.attestation_level, "trustAnchor": passkey.attestation_trust_anchor,
        },
    )
    return passkey


def rename(session: Session, ctx: RequestContext, user: User, passkey: Passkey, name: Any) -> Passkey:
    new_name = check_display_name(name)
    old = passkey.display_name
    passkey.display_name = new_name
    record_audit(
        session, ctx, "User updated security info", category="UserManagement", operation="Update",
        target_type="User", target_id=user.id, target_name=user.display_name,
        target_upn=user.user_principal_name, service="Authentication Methods",
        changes=[modified("Passkey.displayName", old, new_name)],
        details={"methodId": passkey.id, "aaGuid": passkey.aaguid},
    )
    return passkey


def remove(session: Session, ctx: RequestContext, user: User, passkey: Passkey, self_service: bool) -> None:
    who = "User" if self_service else "Admin"
    record_audit(
        session, ctx, f"{who} deleted security info", category="UserManagement", operation="Delete",
        target_type="User", target_id=user.id, target_name=user.display_name,
        target_upn=user.user_principal_name, service="Authentication Methods",
        changes=[modified("Passkey", describe(passkey), None)],
        details={"methodId": passkey.id, "aaGuid": passkey.aaguid},
    )
    session.delete(passkey)
