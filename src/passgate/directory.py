"""Users, groups and directory role assignments, each change audited in its transaction."""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .context import RequestContext
from .core import errors
from .core.errors import PassgateError
from .core.roles import ROLES
from .logs.writer import modified, record_audit
from .store.tables import Group, GroupMember, RoleAssignment, User

_UPN = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\Z")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def bad_request(message: str) -> PassgateError:
    return PassgateError(errors.INVALID_REQUEST, message)


def check_upn(upn: str) -> str:
    if not isinstance(upn, str) or len(upn) > 320 or not _UPN.match(upn):
        raise bad_request("userPrincipalName must look like name@example.com.")
    return upn.lower()


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


# -- users -----------------------------------------------------------------------------------
def find_user(session: Session, id_or_upn: str) -> User | None:
    if is_guid(id_or_upn):
        return session.get(User, id_or_upn.lower())
    if len(id_or_upn) > 320 or not _UPN.match(id_or_upn):
        return None  # no stored UPN looks like this; and PostgreSQL refuses text holding NUL
    return session.scalar(select(User).where(User.user_principal_name == id_or_upn.lower()))


def get_user(session: Session, id_or_upn: str) -> User:
    user = find_user(session, id_or_upn)
    if user is None:
        raise PassgateError(errors.NOT_FOUND, f"No user has the id or userPrincipalName {id_or_upn!r}.")
    return user


USER_FIELDS = {
    "displayName": "display_name",
    "mail": "mail",
    "mailNickname": "mail_nickname",
    "accountEnabled": "account_enabled",
    "userPrincipalName": "user_principal_name",
}


def _user_values(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, attr in USER_FIELDS.items():
        if key not in values:
            continue
        value = values[key]
        if key == "accountEnabled":
            if not isinstance(value, bool):
                raise bad_request("accountEnabled must be true or false.")
        elif key == "userPrincipalName":
            value = check_upn(value)
        elif key == "displayName":
            if not isinstance(value, str) or not value.strip() or len(value) > 256:
                raise bad_request("displayName must be a non-empty string of at most 256 characters.")
        elif key == "mailNickname":
            if value is not None and (not isinstance(value, str) or len(value) > 64):
                raise bad_request("mailNickname must be a string of at most 64 characters.")
        elif value is not None and (not isinstance(value, str) or len(value) > 320):
            raise bad_request(f"{key} must be a string of at most 320 characters.")
        out[attr] = value
    return out


def _upn_taken(session: Session, upn: str, except_id: str | None = None) -> bool:
    query = select(func.count()).select_from(User).where(User.user_principal_name == upn)
    if except_id:
        query = query.where(User.id != except_id)
    return bool(session.scalar(query))


def create_user(session: Session, ctx: RequestContext, values: dict[str, Any]) -> User:
    if "userPrincipalName" not in values or "displayName" not in values:
        raise bad_request("userPrincipalName and displayName are required.")
    attrs = _user_values(values)
    if _upn_taken(session, attrs["user_principal_name"]):
        raise PassgateError(
            errors.CONFLICT,
            "Another object with the same value for property userPrincipalName already exists.",
        )
    attrs.setdefault("account_enabled", True)
    user = User(**attrs, webauthn_handle=secrets.token_bytes(32), created_at=ctx.now)
    session.add(user)
    session.flush()
    record_audit(
        session, ctx, "Add user", category="UserManagement", operation="Add",
        target_type="User", target_id=user.id, target_name=user.display_name,
        target_upn=user.user_principal_name,
        changes=[modified(k, None, values[k]) for k in USER_FIELDS if k in values],
    )
    return user


def update_user(session: Session, ctx: RequestContext, user: User, values: dict[str, Any]) -> User:
    attrs = _user_values(values)
    if "user_principal_name" in attrs and _upn_taken(session, attrs["user_principal_name"], user.id):
        raise PassgateError(
            errors.CONFLICT,
            "Another object with the same value for property userPrincipalName already exists.",
        )
    changes = []
    for key, attr in USER_FIELDS.items():
        if attr in attrs and getattr(user, attr) != attrs[attr]:
            changes.append(modified(key, getattr(user, attr), attrs[attr]))
            setattr(user, attr, attrs[attr])
    if changes:
        activity = "Disable account" if attrs.get("account_enabled") is False else "Update user"
        record_audit(
            session, ctx, activity, category="UserManagement", operation="Update",
            target_type="User", target_id=user.id, target_name=user.display_name,
            target_upn=user.user_principal_name, changes=changes,
        )
    return user


def delete_user(session: Session, ctx: RequestContext, user: User) -> None:
    record_audit(
        session, ctx, "Delete user", category="UserManagement", operation="Delete",
        target_type="User", target_id=user.id, target_name=user.display_name,
        target_upn=user.user_principal_name,
    )
    session.delete(user)


# -- groups ----------------------------------------------------------------------------------
def get_group(session: Session, group_id: str) -> Group:
    group = session.get(Group, group_id.lower()) if is_guid(group_id) else None
    if group is None:
        raise PassgateError(errors.NOT_FOUND, f"No group has the id {group_id!r}.")
    return group


def create_group(session: Session, ctx: RequestContext, values: dict[str, Any]) -> Group:
    name = values.get("displayName")
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise bad_request("displayName is required: a non-empty string of at most 256 characters.")
    if values.get("mailEnabled") is True:
        raise bad_request("Only security groups are supported: mailEnabled must be false.")
    if values.get("securityEnabled") is False:
        raise bad_request("Only security groups are supported: securityEnabled must be true.")
    nickname = values.get("mailNickname") or re.sub(r"[^A-Za-z0-9]", "", name)[:64] or "group"
    description = values.get("description")
    if description is not None and not isinstance(description, str):
        raise bad_request("description must be a string.")
    group = Group(
        display_name=name, mail_nickname=str(nickname)[:64], description=description,
        security_enabled=True, created_at=ctx.now,
    )
    session.add(group)
    session.flush()
    record_audit(
        session, ctx, "Add group", category="GroupManagement", operation="Add",
        target_type="Group", target_id=group.id, target_name=group.display_name,
        changes=[modified("displayName", None, name)],
    )
    return group


def delete_group(session: Session, ctx: RequestContext, group: Group) -> None:
    record_audit(
        session, ctx, "Delete group", category="GroupManagement", operation="Delete",
        target_type="Group", target_id=group.id, target_name=group.display_name,
    )
    session.delete(group)


def group_members(session: Session, group: Group) -> list[User]:
    return list(
        session.scalars(
            select(User).join(GroupMember, GroupMember.user_id == User.id)
            .where(GroupMember.group_id == group.id).order_by(User.user_principal_name)
        )
    )


def add_member(session: Session, ctx: RequestContext, group: Group, user: User) -> None:
    if session.get(GroupMember, (group.id, user.id)) is not None:
        raise PassgateError(
            errors.INVALID_REQUEST,
            "One or more added object references already exist for the following modified properties: "
            "'members'.",
        )
    session.add(GroupMember(group_id=group.id, user_id=user.id))
    record_audit(
        session, ctx, "Add member to group", category="GroupManagement", operation="Assign",
        target_type="Group", target_id=group.id, target_name=group.display_name,
        changes=[modified("members", None, user.user_principal_name)],
        details={"userId": user.id},
    )


def remove_member(session: Session, ctx: RequestContext, group: Group, user: User) -> None:
    removed = session.execute(
        delete(GroupMember).where(GroupMember.group_id == group.id, GroupMember.user_id == user.id)
    )
    if removed.rowcount == 0:  # type: ignore[attr-defined]
        raise PassgateError(errors.NOT_FOUND, f"{user.user_principal_name} is not a member of this group.")
    record_audit(
        session, ctx, "Remove member from group", category="GroupManagement", operation="Unassign",
        target_type="Group", target_id=group.id, target_name=group.display_name,
        changes=[modified("members", user.user_principal_name, None)],
        details={"userId": user.id},
    )


def user_group_ids(session: Session, user_id: str) -> frozenset[str]:
    return frozenset(session.scalars(select(GroupMember.group_id).where(GroupMember.user_id == user_id)))


# -- role assignments ------------------------------------------------------------------------
def user_roles(session: Session, user_id: str) -> frozenset[str]:
    return frozenset(
        session.scalars(select(RoleAssignment.role_definition_id).where(RoleAssignment.principal_id == user_id))
    )


def assign_role(
    session: Session, ctx: RequestContext, role_id: str, user: User, scope: str = "/"
) -> RoleAssignment:
    role = ROLES.get(role_id.lower())
    if role is None:
        raise bad_request(f"roleDefinitionId {role_id!r} is not a known role template id.")
    if scope != "/":
        raise bad_request("Only the directory scope '/' is supported for directoryScopeId.")
    existing = session.scalar(
        select(RoleAssignment).where(
            RoleAssignment.role_definition_id == role.template_id, RoleAssignment.principal_id == user.id
        )
    )
    if existing is not None:
        raise PassgateError(errors.CONFLICT, f"{user.user_principal_name} already has {role.display_name}.")
    assignment = RoleAssignment(
        role_definition_id=role.template_id, principal_id=user.id, directory_scope_id=scope, created_at=ctx.now
    )
    session.add(assignment)
    session.flush()
    record_audit(
        session, ctx, "Add member to role", category="RoleManagement", operation="Assign",
        target_type="User", target_id=user.id, target_name=user.display_name,
        target_upn=user.user_principal_name,
        changes=[modified("Role.DisplayName", None, role.display_name)],
        details={"roleDefinitionId": role.template_id},
    )
    return assignment


def get_role_assignment(session: Session, assignment_id: str) -> RoleAssignment:
    assignment = session.get(RoleAssignment, assignment_id.lower()) if is_guid(assignment_id) else None
    if assignment is None:
        raise PassgateError(errors.NOT_FOUND, f"No role assignment has the id {assignment_id!r}.")
    return assignment


def remove_role(session: Session, ctx: RequestContext, assignment: RoleAssignment) -> None:
    user = session.get(User, assignment.principal_id)
    role = ROLES[assignment.role_definition_id]
    record_audit(
        session, ctx, "Remove member from role", category="RoleManagement", operation="Unassign",
        target_type="User", target_id=assignment.principal_id,
        target_name=user.display_name if user else None,
        target_upn=user.user_principal_name if user else None,
        changes=[modified("Role.DisplayName", role.display_name, None)],
        details={"roleDefinitionId": role.template_id},
    )
    session.delete(assignment)
