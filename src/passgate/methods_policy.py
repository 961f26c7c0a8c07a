"""The authentication methods policy: stored as Graph-shaped documents, read as core values.

The Fido2, TemporaryAccessPass, SoftwareOath and Password configurations live in the settings table in Graph's own JSON
(so GET returns exactly what PATCH stored); `fido2_policy()`, `tap_policy()` and `method_policy()` turn them into the
core's values. Validation refuses a bad document whole: nothing is saved.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from .context import RequestContext
from .core import errors
from .core.errors import PassgateError
from .core.legacy_methods import MethodPolicy
from .core.policy import (
    ALL_USERS,
    DEFAULT_PROFILE_ID,
    Fido2Policy,
    KeyRestrictions,
    PasskeyProfile,
    PasskeyType,
    Target,
)
from .core.tap import LENGTH_CEILING, LENGTH_FLOOR, LIFETIME_CEILING_MINUTES, LIFETIME_FLOOR_MINUTES
from .core.values import TapPolicy
from .logs.writer import modified, record_audit
from .store import config_cache
from .store.tables import Group, Setting, User

FIDO2 = "Fido2"
TAP = "TemporaryAccessPass"
SOFTWARE_OATH = "SoftwareOath"
# Entra has no configuration for passwords (every account has one); Passgate's passwords are optional, so
# the Password configuration is a Passgate extension in the same shape.
PASSWORD = "Password"
T = TypeVar("T")
ODATA_TYPES = {
    FIDO2: "#microsoft.graph.fido2AuthenticationMethodConfiguration",
    TAP: "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
    SOFTWARE_OATH: "#microsoft.graph.softwareOathAuthenticationMethodConfiguration",
    PASSWORD: "#microsoft.graph.passwordAuthenticationMethodConfiguration",
}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def canonical_id(config_id: str) -> str:
    for known in ODATA_TYPES:
        if known.lower() == config_id.lower():
            return known
    raise PassgateError(errors.NOT_FOUND, f"There is no authentication method configuration {config_id!r}.")


def _default_fido2() -> dict[str, Any]:
    return {
        "@odata.type": ODATA_TYPES[FIDO2],
        "id": FIDO2,
        "state": "enabled",
        "isSelfServiceRegistrationAllowed": True,
        "isAttestationEnforced": False,
        "keyRestrictions": {"isEnforced": False, "enforcementType": "block", "aaGuids": []},
        "defaultPasskeyProfile": DEFAULT_PROFILE_ID,
        "includeTargets": [
            {"targetType": "group", "id": ALL_USERS, "isRegistrationRequired": False,
             "allowedPasskeyProfiles": [DEFAULT_PROFILE_ID]}
        ],
        "excludeTargets": [],
        "passkeyProfiles": [
            {"id": DEFAULT_PROFILE_ID, "name": "Default passkey profile", "passkeyTypes": "deviceBound,synced",
             "attestationEnforcement": "disabled",
             "keyRestrictions": {"isEnforced": False, "enforcementType": "block", "aaGuids": []}}
        ],
    }


def _default_tap() -> dict[str, Any]:
    return {
        "@odata.type": ODATA_TYPES[TAP],
        "id": TAP,
        "state": "enabled",
        "defaultLifetimeInMinutes": 60,
        "defaultLength": 8,
        "minimumLifetimeInMinutes": 60,
        "maximumLifetimeInMinutes": 480,
        "isUsableOnce": False,
        "includeTargets": [{"targetType": "group", "id": ALL_USERS, "isRegistrationRequired": False}],
        "excludeTargets": [],
    }


def _default_targets_only(config_id: str) -> dict[str, Any]:
    """Password and SoftwareOath: off until an administrator turns them on."""
    return {
        "@odata.type": ODATA_TYPES[config_id],
        "id": config_id,
        "state": "disabled",
        "includeTargets": [{"targetType": "group", "id": ALL_USERS, "isRegistrationRequired": False}],
        "excludeTargets": [],
    }


DEFAULTS = {
    FIDO2: _default_fido2, TAP: _default_tap,
    SOFTWARE_OATH: lambda: _default_targets_only(SOFTWARE_OATH), PASSWORD: lambda: _default_targets_only(PASSWORD),
}


def load(session: Session, config_id: str) -> dict[str, Any]:
    """The stored document over the defaults, so that properties added in a later version have a value."""
    row = session.get(Setting, config_id)
    return {**DEFAULTS[config_id](), **(copy.deepcopy(row.value) if row is not None else {})}


def _bad(prop: str, why: str) -> PassgateError:
    return PassgateError(errors.INVALID_REQUEST, f"Invalid value for property '{prop}': {why}")


def _bool(doc: dict[str, Any], prop: str, where: str = "") -> None:
    """Booleans, also as the strings "true"/"false" that PowerShell hashtables send (seed 002 does)."""
    value = doc.get(prop)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        doc[prop] = value.lower() == "true"
    elif prop in doc and not isinstance(value, bool):
        raise _bad(where + prop, "must be true or false.")


def _int(doc: dict[str, Any], prop: str, low: int, high: int) -> None:
    value = doc.get(prop)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(prop, f"must be a whole number from {low} to {high}.")


def _only(doc: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in doc:
        if key not in allowed and not key.endswith("@odata.context"):
            raise PassgateError(errors.INVALID_REQUEST, f"Property '{where}{key}' does not exist on this resource.")


def _guid(value: Any, prop: str) -> str:
    if not isinstance(value, str) or not _GUID.match(value):
        raise _bad(prop, f"{value!r} is not a GUID.")
    return value.lower()


def _restrictions(value: Any, prop: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(prop, "must be an object with isEnforced, enforcementType and aaGuids.")
    _only(value, {"isEnforced", "enforcementType", "aaGuids"}, prop + ".")
    _bool(value, "isEnforced", prop + ".")
    kind = value.get("enforcementType", "block")
    if kind not in ("allow", "block"):
        raise _bad(prop + ".enforcementType", "must be 'allow' or 'block'.")
    aaguids = value.get("aaGuids", [])
    if not isinstance(aaguids, list):
        raise _bad(prop + ".aaGuids", "must be a list of AAGUIDs.")
    return {"isEnforced": bool(value.get("isEnforced", False)), "enforcementType": kind,
            "aaGuids": sorted({_guid(a, prop + ".aaGuids") for a in aaguids})}


def _group_exists(session: Session, target_id: str, target_type: str) -> bool:
    if target_type == "user":
        return session.scalar(select(User.id).where(User.id == target_id)) is not None
    return session.scalar(select(Group.id).where(Group.id == target_id)) is not None


def _targets(session: Session, value: Any, prop: str, include: bool, profiles: set[str]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _bad(prop, "must be a list of targets.")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise _bad(prop, "each target must be an object.")
        allowed = {"id", "targetType", "@odata.type"}
        if include:
            allowed |= {"isRegistrationRequired", "allowedPasskeyProfiles"}
        _only(item, allowed, prop + "[].")
        target_type = item.get("targetType", "group")
        if target_type not in ("group", "user"):
            raise _bad(prop + ".targetType", "must be 'group' or 'user'.")
        target_id = item.get("id")
        if target_id != ALL_USERS:
            target_id = _guid(target_id, prop + ".id")
            if not _group_exists(session, target_id, target_type):
                raise _bad(prop + ".id", f"no {target_type} has the id {target_id}.")
        entry: dict[str, Any] = {"targetType": target_type, "id": target_id}
        if include:
            _bool(item, "isRegistrationRequired", prop + ".")
            entry["isRegistrationRequired"] = bool(item.get("isRegistrationRequired", False))
            chosen = item.get("allowedPasskeyProfiles")
            if chosen is not None:
                if not isinstance(chosen, list):
                    raise _bad(prop + ".allowedPasskeyProfiles", "must be a list of passkey profile ids.")
                ids = [_guid(p, prop + ".allowedPasskeyProfiles") for p in chosen]
                missing = [p for p in ids if p not in profiles]
                if missing:
                    raise _bad(prop + ".allowedPasskeyProfiles", f"no passkey profile has the id {missing[0]}.")
                entry["allowedPasskeyProfiles"] = ids
        out.append(entry)
    return out


def _profiles(value: Any, old: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _bad("passkeyProfiles", "must be a list of passkey profiles.")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise _bad("passkeyProfiles", "each profile must be an object.")
        _only(item, {"id", "name", "passkeyTypes", "attestationEnforcement", "keyRestrictions", "@odata.type"},
              "passkeyProfiles[].")
        profile_id = _guid(item["id"], "passkeyProfiles.id") if item.get("id") else str(uuid.uuid4())
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 256:
            raise _bad("passkeyProfiles.name", "every profile needs a name of 1 to 256 characters.")
        kinds = item.get("passkeyTypes", "deviceBound,synced")
        parts = [k.strip() for k in kinds.split(",")] if isinstance(kinds, str) else []
        if not parts or any(k not in (PasskeyType.DEVICE_BOUND, PasskeyType.SYNCED) for k in parts):
            raise _bad("passkeyTypes", "must be 'deviceBound', 'synced' or 'deviceBound,synced'.")
        enforcement = item.get("attestationEnforcement", "disabled")
        if enforcement not in ("disabled", "registrationOnly"):
            raise _bad("attestationEnforcement", "must be 'disabled' or 'registrationOnly'.")
        out.append({
            "id": profile_id, "name": name.strip(),
            "passkeyTypes": ",".join(k for k in ("deviceBound", "synced") if k in parts),
            "attestationEnforcement": enforcement,
            "keyRestrictions": _restrictions(item.get("keyRestrictions", {}), "passkeyProfiles.keyRestrictions"),
        })
    ids = [p["id"] for p in out]
    if len(set(ids)) != len(ids):
        raise _bad("passkeyProfiles", "two profiles have the same id.")
    default = next((p for p in out if p["id"] == DEFAULT_PROFILE_ID), None)
    if default is None:
        raise _bad("passkeyProfiles", f"the default profile {DEFAULT_PROFILE_ID} cannot be removed.")
    old_default = next((p for p in old if p["id"] == DEFAULT_PROFILE_ID), None)
    if old_default is not None and default["name"] != old_default["name"]:
        raise _bad("passkeyProfiles.name", "the default profile cannot be renamed.")
    return out


def _apply_state(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    if "state" in patch:
        if patch["state"] not in ("enabled", "disabled"):
            raise _bad("state", "must be 'enabled' or 'disabled'.")
        doc["state"] = patch["state"]


def _apply_targets(session: Session, doc: dict[str, Any], patch: dict[str, Any], profile_ids: set[str]) -> None:
    """Include and exclude targets are replaced whole, as in Graph."""
    if "includeTargets" in patch:
        doc["includeTargets"] = _targets(session, patch["includeTargets"], "includeTargets", True, profile_ids)
    if "excludeTargets" in patch:
        doc["excludeTargets"] = _targets(session, patch["excludeTargets"], "excludeTargets", False, profile_ids)


def merge_fido2(session: Session, current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a Graph PATCH body to the stored document; lists are replaced whole, as in Graph."""
    patch = copy.deepcopy(patch)
    _only(patch, {"@odata.type", "id", "state", "isSelfServiceRegistrationAllowed", "isAttestationEnforced",
                  "keyRestrictions", "includeTargets", "excludeTargets", "passkeyProfiles",
                  "defaultPasskeyProfile"}, "")
    doc = copy.deepcopy(current)
    _apply_state(doc, patch)
    for prop in ("isSelfServiceRegistrationAllowed", "isAttestationEnforced"):
        _bool(patch, prop)
    if "isSelfServiceRegistrationAllowed" in patch:
        doc["isSelfServiceRegistrationAllowed"] = patch["isSelfServiceRegistrationAllowed"]
    if patch.get("defaultPasskeyProfile") not in (None, DEFAULT_PROFILE_ID):
        raise _bad("defaultPasskeyProfile", f"the default profile is always {DEFAULT_PROFILE_ID}.")
    if "passkeyProfiles" in patch and patch["passkeyProfiles"] is not None:
        doc["passkeyProfiles"] = _profiles(patch["passkeyProfiles"], current["passkeyProfiles"])
        default = next(p for p in doc["passkeyProfiles"] if p["id"] == DEFAULT_PROFILE_ID)
        # The legacy properties mirror the default profile (Entra keeps both in step until 2027).
        doc["isAttestationEnforced"] = default["attestationEnforcement"] == "registrationOnly"
        doc["keyRestrictions"] = copy.deepcopy(default["keyRestrictions"])
    else:
        default = next(p for p in doc["passkeyProfiles"] if p["id"] == DEFAULT_PROFILE_ID)
        if "isAttestationEnforced" in patch:
            doc["isAttestationEnforced"] = patch["isAttestationEnforced"]
            default["attestationEnforcement"] = "registrationOnly" if patch["isAttestationEnforced"] else "disabled"
        if "keyRestrictions" in patch:
            doc["keyRestrictions"] = _restrictions(patch["keyRestrictions"], "keyRestrictions")
            default["keyRestrictions"] = copy.deepcopy(doc["keyRestrictions"])
    profile_ids = {p["id"] for p in doc["passkeyProfiles"]}
    _apply_targets(session, doc, patch, profile_ids)
    referenced = {p for t in doc["includeTargets"] for p in t.get("allowedPasskeyProfiles", [])}
    if not referenced <= profile_ids:
        missing = sorted(referenced - profile_ids)[0]
        raise _bad("passkeyProfiles", f"profile {missing} is still used by a target; remove it there first.")
    return doc


def merge_tap(session: Session, current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    patch = copy.deepcopy(patch)
    _only(patch, {"@odata.type", "id", "state", "defaultLifetimeInMinutes", "defaultLength",
                  "minimumLifetimeInMinutes", "maximumLifetimeInMinutes", "isUsableOnce", "includeTargets",
                  "excludeTargets"}, "")
    doc = copy.deepcopy(current)
    _apply_state(doc, patch)
    for prop in ("defaultLifetimeInMinutes", "minimumLifetimeInMinutes", "maximumLifetimeInMinutes"):
        if prop in patch:
            _int(patch, prop, LIFETIME_FLOOR_MINUTES, LIFETIME_CEILING_MINUTES)
            doc[prop] = patch[prop]
    if "defaultLength" in patch:
        _int(patch, "defaultLength", LENGTH_FLOOR, LENGTH_CEILING)
        doc["defaultLength"] = patch["defaultLength"]
    _bool(patch, "isUsableOnce")
    if "isUsableOnce" in patch:
        doc["isUsableOnce"] = patch["isUsableOnce"]
    low, default, high = (doc["minimumLifetimeInMinutes"], doc["defaultLifetimeInMinutes"],
                          doc["maximumLifetimeInMinutes"])
    if low > high:
        raise _bad("minimumLifetimeInMinutes", f"the minimum ({low}) is above the maximum ({high}).")
    if not low <= default <= high:
        raise _bad("defaultLifetimeInMinutes", f"the default ({default}) must lie between {low} and {high}.")
    _apply_targets(session, doc, patch, set())
    return doc


def merge_targets_only(session: Session, current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    patch = copy.deepcopy(patch)
    _only(patch, {"@odata.type", "id", "state", "includeTargets", "excludeTargets"}, "")
    doc = copy.deepcopy(current)
    _apply_state(doc, patch)
    _apply_targets(session, doc, patch, set())
    return doc


MERGERS = {FIDO2: merge_fido2, TAP: merge_tap, SOFTWARE_OATH: merge_targets_only, PASSWORD: merge_targets_only}


def save(session: Session, ctx: RequestContext, config_id: str, doc: dict[str, Any], reset: bool = False) -> None:
    row = session.get(Setting, config_id)
    old = row.value if row is not None else DEFAULTS[config_id]()
    if row is None:
        session.add(Setting(name=config_id, value=doc))
    else:
        row.value = doc
    changes = [modified(k, old.get(k), doc.get(k)) for k in sorted(set(old) | set(doc)) if old.get(k) != doc.get(k)]
    record_audit(
        session, ctx, "Authentication Methods Policy Reset" if reset else "Authentication Methods Policy Update",
        category="ApplicationManagement", operation="Update", target_type="Policy", target_id=config_id,
        target_name=config_id, changes=changes, service="Authentication Methods",
    )


def _core_restrictions(doc: dict[str, Any]) -> KeyRestrictions:
    return KeyRestrictions(bool(doc.get("isEnforced")), doc.get("enforcementType", "block"),
                           frozenset(a.lower() for a in doc.get("aaGuids", [])))


def _core_targets(items: list[dict[str, Any]]) -> tuple[Target, ...]:
    return tuple(
        Target(t["id"], t.get("targetType", "group"), bool(t.get("isRegistrationRequired")),
               tuple(t.get("allowedPasskeyProfiles") or ()))
        for t in items
    )


def fido2_policy(doc: dict[str, Any]) -> Fido2Policy:
    profiles = tuple(
        PasskeyProfile(
            p["id"], p["name"], frozenset(PasskeyType(k) for k in p["passkeyTypes"].split(",") if k),
            p["attestationEnforcement"] == "registrationOnly", _core_restrictions(p["keyRestrictions"]),
        )
        for p in doc["passkeyProfiles"]
    )
    return Fido2Policy(
        enabled=doc["state"] == "enabled",
        self_service_allowed=bool(doc["isSelfServiceRegistrationAllowed"]),
        profiles=profiles,
        include_targets=_core_targets(doc["includeTargets"]),
        exclude_targets=_core_targets(doc["excludeTargets"]),
    )


def method_policy(doc: dict[str, Any]) -> MethodPolicy:
    return MethodPolicy(doc["state"] == "enabled", _core_targets(doc["includeTargets"]),
                        _core_targets(doc["excludeTargets"]))


def _policy_of(session: Session, config_id: str, value: Callable[[dict[str, Any]], T]) -> T:
    """The core value of one configuration, as sign-ins read it: cached per process until the policy changes
    (Graph reads `load` the document itself)."""
    return config_cache.cached(session, ("methods policy", config_id), lambda s: value(load(s, config_id)))


def password_policy_of(session: Session) -> MethodPolicy:
    return _policy_of(session, PASSWORD, method_policy)


def software_oath_policy_of(session: Session) -> MethodPolicy:
    return _policy_of(session, SOFTWARE_OATH, method_policy)


def tap_policy_of(session: Session) -> TapPolicy:
    return _policy_of(session, TAP, tap_policy)


def fido2_policy_of(session: Session) -> Fido2Policy:
    return _policy_of(session, FIDO2, fido2_policy)


def tap_policy(doc: dict[str, Any]) -> TapPolicy:
    return TapPolicy(
        enabled=doc["state"] == "enabled",
        default_lifetime_minutes=doc["defaultLifetimeInMinutes"],
        minimum_lifetime_minutes=doc["minimumLifetimeInMinutes"],
        maximum_lifetime_minutes=doc["maximumLifetimeInMinutes"],
        default_length=doc["defaultLength"],
        is_usable_once=doc["isUsableOnce"],
    )
