"""The methods policy applied to stored passkeys: the facts the core decides on, the impact preview of a
proposed change, and the re-evaluation of every passkey after a policy change or an MDS refresh."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import RequestContext
from ..core import errors, policy
from ..core.errors import ErrorCode
from ..core.roles import GLOBAL_ADMINISTRATOR
from ..logs.writer import modified, record_audit
from ..methods_policy import fido2_policy_of
from ..store.tables import GroupMember, Passkey, RoleAssignment, User


def facts(passkey: Passkey) -> policy.PasskeyFacts:
    kind = policy.PasskeyType.SYNCED if passkey.backup_eligible else policy.PasskeyType.DEVICE_BOUND
    return policy.PasskeyFacts(passkey.aaguid, kind, passkey.attestation_level == "attested")


def member(session: Session, user_id: str) -> policy.Member:
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


def model_refusal(passkey: Passkey) -> tuple[ErrorCode, str] | None:
    """A stored status that refuses the model (set at registration or by an MDS refresh)."""
    from ..core.attestation import REFUSED_STATUSES

    if passkey.attestation_level == "attested" and passkey.mds_status in REFUSED_STATUSES:
        code = errors.by_number(135136) or errors.PASSKEY_MODEL_NOT_ALLOWED
        return code, f"The FIDO Metadata Service now reports this model as {passkey.mds_status}."
    return None


def reevaluate(session: Session, ctx: RequestContext) -> Reevaluation:
    """Mark every stored passkey that no profile in its user's scope admits any more, or whose model is now
    refused; clear the mark of those admitted again. Each change is audited."""
    current = fido2_policy_of(session)
    marked = restored = 0
    users: dict[str, User] = {}
    for passkey in session.scalars(select(Passkey).order_by(Passkey.user_id)):
        user = users.get(passkey.user_id) or session.get(User, passkey.user_id)
        if user is None:
            continue
        users[user.id] = user
        refusal = model_refusal(passkey)
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
