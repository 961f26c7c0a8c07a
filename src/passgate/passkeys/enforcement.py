"""The methods policy applied to stored passkeys: the facts the core decides on, the impact preview of a
proposed change, and the re-evaluation of every passkey after a policy change or an MDS refresh."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import RequestContext
from ..core import errors, policy
from ..core.attestation import StatusReport, status_refusal
from ..core.errors import ErrorCode
from ..core.roles import GLOBAL_ADMINISTRATOR
from ..logs.writer import modified, record_audit
from ..methods_policy import fido2_policy_of
from ..store.tables import GroupMember, Passkey, PasskeyView, RoleAssignment, User
from . import mds, trust


def facts(passkey: PasskeyView) -> policy.PasskeyFacts:
    kind = policy.PasskeyType.SYNCED if passkey.backup_eligible else policy.PasskeyType.DEVICE_BOUND
    return policy.PasskeyFacts(passkey.aaguid, kind, passkey.attestation_level == "attested")


def member(session: Session, user_id: str, fido2: policy.Fido2Policy | None = None) -> policy.Member:
    """The user as the policy sees them. With `fido2`, their groups are read only when it names a group (on a
    sign-in, the default policy for all users saves the query)."""
    if fido2 is not None and not fido2.names_groups:
        return policy.Member(user_id)
    groups = frozenset(session.scalars(select(GroupMember.group_id).where(GroupMember.user_id == user_id)))
    return policy.Member(user_id, groups)


def holders(session: Session) -> tuple[list[policy.Holder], dict[str, Passkey], dict[str, User]]:
    """Every user with passkeys, as the core sees them (three queries, whatever the number of users)."""
    groups: dict[str, set[str]] = defaultdict(set)
    for user_id, group_id in session.execute(select(GroupMember.user_id, GroupMember.group_id)):
        groups[user_id].add(group_id)
    admins = set(session.scalars(
        select(RoleAssignment.principal_id).where(RoleAssignment.role_definition_id == GLOBAL_ADMINISTRATOR)))
    by_user: dict[str, list[Passkey]] = defaultdict(list)
    passkeys: dict[str, Passkey] = {}
    for passkey in session.scalars(select(Passkey)):
        by_user[passkey.user_id].append(passkey)
        passkeys[passkey.id] = passkey
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(list(by_user))))}
    out = [
        policy.Holder(policy.Member(uid, frozenset(groups[uid])),
                      tuple((p.id, facts(p)) for p in keys if model_refusal(p) is None),
                      uid in admins and users[uid].account_enabled)
        for uid, keys in by_user.items() if uid in users
    ]
    return out, passkeys, users


@dataclass(frozen=True, slots=True)
class Reevaluation:
    marked: int
    restored: int


def _mark(session: Session, ctx: RequestContext, passkey: Passkey, user: User, code: ErrorCode | None,
          reason: str | None) -> None:
    old = passkey.unusable_reason
    passkey.unusable_code = code.number if code else None
    passkey.unusable_reason = reason
    record_audit(
        session, ctx, "Passkey marked unusable" if code else "Passkey usable again",
        category="UserManagement", operation="Update", target_type="User", target_id=user.id,
        target_name=user.display_name, target_upn=user.user_principal_name, service="Authentication Methods",
        changes=[modified("Passkey.usability", old, reason)],
        details={"methodId": passkey.id, "aaGuid": passkey.aaguid, "errorCode": code.number if code else 0},
    )


def model_refusal(passkey: PasskeyView) -> tuple[ErrorCode, str] | None:
    """The refusal of a passkey whose verified model the FIDO Metadata Service has since withdrawn
    (marked by `reevaluate` after an MDS refresh)."""
    if passkey.unusable_code == errors.PASSKEY_MODEL_REVOKED.number:
        return errors.PASSKEY_MODEL_REVOKED, passkey.unusable_reason or ""
    return None


def _mds_refusal(passkey: Passkey, payload: Any, today: date) -> tuple[ErrorCode, str] | None:
    """What the MDS in force says of this passkey's verified model, as a refusal (or None)."""
    if passkey.attestation_level != "attested" or payload is None:
        return None
    entry = trust.find_entry(payload, passkey.aaguid)
    if entry is None:
        return None
    passkey.mds_status = mds.latest_status(entry)
    # Compare compromised certificates by the SHA-1 thumbprints kept of the passkey's attestation chain.
    reports = [
        StatusReport(r.status, r.effective_date,
                     hashlib.sha1(r.certificate, usedforsecurity=False).hexdigest().encode() if r.certificate else None)
        for r in mds.status_reports(entry)
    ]
    refused = status_refusal(reports, [t.encode() for t in passkey.attestation_certificates or []], today)
    if refused is None:
        return None
    return errors.PASSKEY_MODEL_REVOKED, f"The FIDO Metadata Service reports this model as {refused}."


def reevaluate(session: Session, ctx: RequestContext) -> Reevaluation:
    """Mark every stored passkey that no profile in its user's scope admits any more, or whose model is now
    refused; clear the mark of those admitted again. Each change is audited."""
    current = fido2_policy_of(session)
    payload = trust.current_payload(session)
    marked = restored = 0
    users: dict[str, User] = {}
    for passkey in session.scalars(select(Passkey).order_by(Passkey.user_id)):
        user = users.get(passkey.user_id) or session.get(User, passkey.user_id)
        if user is None:
            continue
        users[user.id] = user
        # Only a verified model identity is held to what the MDS now says of that model.
        refusal = _mds_refusal(passkey, payload, ctx.now.date())
        if refusal is None:
            decision = policy.decide(current, member(session, user.id), facts(passkey), policy.Ceremony.SIGN_IN)
            if not decision.allowed and decision.refusal is not None:
                refusal = (decision.refusal, decision.explanation)
        if refusal is not None and (passkey.unusable_code, passkey.unusable_reason) != (refusal[0].number,
                                                                                        refusal[1]):
            _mark(session, ctx, passkey, user, *refusal)
            marked += 1
        elif refusal is None and passkey.unusable_code is not None:
            _mark(session, ctx, passkey, user, None, None)
            restored += 1
    return Reevaluation(marked, restored)
