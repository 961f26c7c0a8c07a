"""Authentication strengths, Conditional Access policies and named locations: stored as Graph-shaped
documents, validated whole on write (nothing is saved from a bad one), audited, read as core values.

`evaluate()` is the one entry to the engine (core/access.py): What If and live sign-ins (signin/access.py) call it.
"""

from __future__ import annotations

import copy
import ipaddress
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .context import RequestContext
from .core import access, errors, strengths
from .core.access import ClientAppType, Platform
from .core.errors import ErrorCode, PassgateError
from .core.policy import Member, scope
from .core.roles import GLOBAL_ADMINISTRATOR, ROLES
from .core.strengths import PasskeyRequirements, RegisteredMethods, Strength
from .core.values import Evidence, MethodMode, UsabilityReason
from .directory import is_guid, user_group_ids, user_roles
from .logs.writer import modified, record_audit
from .methods_policy import fido2_policy_of
from .signin import oath, passwords, taps
from .signin.sessions import passkey_evidence
from .store import config_cache
from .store.tables import (
    App,
    AuthenticationStrength,
    ConditionalAccessPolicy,
    Group,
    NamedLocation,
    Passkey,
    RoleAssignment,
    TemporaryAccessPass,
    User,
)

SERVICE = "Conditional Access"
FIDO2_CONFIGURATION = "#microsoft.graph.fido2CombinationConfiguration"
IP_NAMED_LOCATION = "#microsoft.graph.ipNamedLocation"
IPV4_RANGE = "#microsoft.graph.iPv4CidrRange"
IPV6_RANGE = "#microsoft.graph.iPv6CidrRange"
PASSKEY_REQUIREMENTS = "passgatePasskeyRequirements"  # Passgate's extension on a custom strength


def _bad(code: ErrorCode, message: str) -> PassgateError:
    return PassgateError(code, message)


def _only(doc: dict[str, Any], allowed: Iterable[str], where: str, code: ErrorCode) -> None:
    allowed = set(allowed)
    for key in doc:
        if key not in allowed and not key.endswith("@odata.context"):
            raise _bad(code, f"Property '{where}{str(key)[:80]}' is not supported here; the properties accepted are: "
                             f"{', '.join(sorted(allowed))}.")


def _text(value: Any, prop: str, code: ErrorCode, *, required: bool = True, limit: int = 256) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit or "\x00" in value:
        raise _bad(code, f"Property '{prop}' must be text of {'1' if required else '0'} to {limit} characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(code, f"Property '{prop}' contains a lone surrogate, which cannot be stored.") from None
    return value.strip()


def _bool(value: Any, prop: str, code: ErrorCode) -> bool:
    if not isinstance(value, bool):
        raise _bad(code, f"Property '{prop}' must be true or false.")
    return value


def _list(value: Any, prop: str, code: ErrorCode) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(code, f"Property '{prop}' must be an array.")
    return value


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    return [modified(k, old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


# == authentication strengths =====================================================================
@dataclass(frozen=True, slots=True)
class StoredStrength:
    """A strength with the dates Graph shows (built-ins carry Entra's fixed date)."""

    value: Strength
    created: datetime
    modified: datetime


def _built_in(strength: Strength) -> StoredStrength:
    return StoredStrength(strength, strengths.BUILT_IN_DATE, strengths.BUILT_IN_DATE)


def _configuration_value(doc: dict[str, Any]) -> strengths.CombinationConfiguration:
    return strengths.CombinationConfiguration(
        doc["id"], frozenset(a.lower() for a in doc["allowedAAGUIDs"]), frozenset(doc["appliesToCombinations"])
    )


def _strength_value(row: AuthenticationStrength) -> StoredStrength:
    req = row.passkey_requirements or {}
    value = Strength(
        row.id, row.display_name, tuple(strengths.parse_combination(c) for c in row.allowed_combinations),
        strengths.PolicyType.CUSTOM, row.description,
        tuple(_configuration_value(c) for c in row.combination_configurations),
        PasskeyRequirements(bool(req.get("requireAttested")), bool(req.get("requireDeviceBound"))),
    )
    return StoredStrength(value, row.created_at, row.modified_at)


def list_strengths(session: Session) -> list[StoredStrength]:
    rows = session.scalars(select(AuthenticationStrength).order_by(AuthenticationStrength.created_at,
                                                                   AuthenticationStrength.id))
    return [_built_in(s) for s in strengths.BUILT_INS.values()] + [_strength_value(r) for r in rows]


def get_strength(session: Session, strength_id: str) -> StoredStrength:
    built_in = strengths.BUILT_INS.get(strength_id.lower())
    if built_in is not None:
        return _built_in(built_in)
    row = session.get(AuthenticationStrength, strength_id.lower()) if is_guid(strength_id) else None
    if row is None:
        raise PassgateError(errors.NOT_FOUND, f"There is no authentication strength with the id {strength_id[:64]!r}.")
    return _strength_value(row)


def _custom_row(session: Session, strength_id: str) -> AuthenticationStrength:
    if strength_id.lower() in strengths.BUILT_INS:
        raise PassgateError(errors.STRENGTH_READ_ONLY, f"{strengths.BUILT_INS[strength_id.lower()].display_name!r} "
                                                       "is a built-in strength.")
    row = session.get(AuthenticationStrength, strength_id.lower()) if is_guid(strength_id) else None
    if row is None:
        raise PassgateError(errors.NOT_FOUND, f"There is no authentication strength with the id {strength_id[:64]!r}.")
    return row


def combination_configuration_document(config: strengths.CombinationConfiguration) -> dict[str, Any]:
    return {"@odata.type": FIDO2_CONFIGURATION, "id": config.id,
            "appliesToCombinations": sorted(config.applies_to), "allowedAAGUIDs": sorted(config.allowed_aaguids)}


def strength_document(stored: StoredStrength) -> dict[str, Any]:
    s = stored.value
    doc: dict[str, Any] = {
        "id": s.id,
        "createdDateTime": _iso(stored.created),
        "modifiedDateTime": _iso(stored.modified),
        "displayName": s.display_name,
        "description": s.description,
        "policyType": str(s.policy_type),
        "requirementsSatisfied": s.requirements_satisfied,
        "allowedCombinations": [strengths.format_combination(c) for c in s.combinations],
        "combinationConfigurations": [combination_configuration_document(c) for c in s.configurations],
    }
    if s.policy_type is strengths.PolicyType.CUSTOM:
        doc[PASSKEY_REQUIREMENTS] = {"requireAttested": s.passkey_requirements.require_attested,
                                     "requireDeviceBound": s.passkey_requirements.require_device_bound}
    return doc


_STRENGTH_WRITABLE = ("displayName", "description", PASSKEY_REQUIREMENTS)
_STRENGTH_READ_ONLY = ("id", "createdDateTime", "modifiedDateTime", "policyType", "requirementsSatisfied")


def _passkey_requirements(value: Any) -> dict[str, bool] | None:
    code = errors.INVALID_REQUEST
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(code, f"Property '{PASSKEY_REQUIREMENTS}' must be an object with requireAttested and "
                         "requireDeviceBound.")
    _only(value, ("requireAttested", "requireDeviceBound"), PASSKEY_REQUIREMENTS + ".", code)
    return {k: _bool(value.get(k, False), f"{PASSKEY_REQUIREMENTS}.{k}", code)
            for k in ("requireAttested", "requireDeviceBound")}


def _name_taken(session: Session, name: str, except_id: str | None = None) -> bool:
    if any(s.display_name.lower() == name.lower() for s in strengths.BUILT_INS.values()):
        return True
    rows = session.scalars(select(AuthenticationStrength))
    return any(r.display_name.lower() == name.lower() and r.id != except_id for r in rows)


def _strength_name(session: Session, value: Any, except_id: str | None = None) -> str:
    name = _text(value, "displayName", errors.INVALID_REQUEST, limit=256)
    if _name_taken(session, name, except_id):
        raise PassgateError(errors.CONFLICT, f"An authentication strength named {name!r} already exists.")
    return name


def _strength_snapshot(row: AuthenticationStrength) -> dict[str, Any]:
    return {"displayName": row.display_name, "description": row.description,
            "allowedCombinations": list(row.allowed_combinations),
            "combinationConfigurations": copy.deepcopy(row.combination_configurations),
            PASSKEY_REQUIREMENTS: row.passkey_requirements}


def _audit_strength(session: Session, ctx: RequestContext, activity: str, operation: str, strength_id: str,
                    name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    record_audit(session, ctx, activity, category="Policy", operation=operation, target_type="Policy",
                 target_id=strength_id, target_name=name, changes=_changes(old, new), service=SERVICE)


def create_strength(session: Session, ctx: RequestContext, body: dict[str, Any]) -> StoredStrength:
    code = errors.INVALID_REQUEST
    _only(body, (*_STRENGTH_WRITABLE, *_STRENGTH_READ_ONLY, "@odata.type", "allowedCombinations",
                 "combinationConfigurations"), "", code)
    if body.get("policyType", "custom") != "custom":
        raise _bad(code, "Only custom strengths can be created (policyType 'custom').")
    if "allowedCombinations" not in body:
        raise _bad(code, "Property 'allowedCombinations' is required.")
    combinations = strengths.parse_combinations(
        _list(body["allowedCombinations"], "allowedCombinations", errors.STRENGTH_COMBINATION_INVALID))
    row = AuthenticationStrength(
        id=str(uuid.uuid4()), display_name=_strength_name(session, body.get("displayName")),
        description=_text(body.get("description"), "description", code, required=False, limit=1024),
        allowed_combinations=[strengths.format_combination(c) for c in combinations],
        combination_configurations=[], passkey_requirements=_passkey_requirements(body.get(PASSKEY_REQUIREMENTS)),
        created_at=ctx.now, modified_at=ctx.now,
    )
    configurations = _list(body.get("combinationConfigurations"), "combinationConfigurations", code)
    if len(configurations) > 1:
        raise _bad(errors.COMBINATION_CONFIGURATION_INVALID, "A strength takes one fido2 combination configuration.")
    row.combination_configurations = [_configuration(row, item, None) for item in configurations]
    session.add(row)
    _audit_strength(session, ctx, "Add authentication strength", "Add", row.id, row.display_name, {},
                    _strength_snapshot(row))
    return _strength_value(row)


def update_strength(session: Session, ctx: RequestContext, strength_id: str, body: dict[str, Any],
                    override: bool = False) -> None:
    code = errors.INVALID_REQUEST
    row = _custom_row(session, strength_id)
    if "allowedCombinations" in body:
        raise _bad(code, "Change allowedCombinations with POST .../updateAllowedCombinations, as in Microsoft Graph.")
    _only(body, (*_STRENGTH_WRITABLE, *_STRENGTH_READ_ONLY, "@odata.type"), "", code)
    old = _strength_snapshot(row)
    if "displayName" in body:
        row.display_name = _strength_name(session, body["displayName"], row.id)
    if "description" in body:
        row.description = _text(body["description"], "description", code, required=False, limit=1024)
    if PASSKEY_REQUIREMENTS in body:
        row.passkey_requirements = _passkey_requirements(body[PASSKEY_REQUIREMENTS])
    row.modified_at = ctx.now
    _audit_strength(session, ctx, "Update authentication strength", "Update", row.id, row.display_name, old,
                    _strength_snapshot(row))
    _refuse_strength_lockout(session, ctx, row.id, override)


def strength_usage(session: Session, strength_id: str) -> list[ConditionalAccessPolicy]:
    """The Conditional Access policies whose grant requires this strength."""
    wanted = strength_id.lower()
    return [p for p in _policy_rows(session)
            if ((p.document.get("grantControls") or {}).get("authenticationStrength") or {}).get("id") == wanted]


def delete_strength(session: Session, ctx: RequestContext, strength_id: str) -> None:
    row = _custom_row(session, strength_id)
    users = strength_usage(session, row.id)
    if users:
        raise PassgateError(errors.STRENGTH_IN_USE, "It is used by: " + ", ".join(repr(p.display_name) for p in users)
                            + ".")
    old = _strength_snapshot(row)
    session.delete(row)
    _audit_strength(session, ctx, "Delete authentication strength", "Delete", row.id, row.display_name, old, {})


def update_allowed_combinations(
    session: Session, ctx: RequestContext, strength_id: str, body: dict[str, Any], override: bool = False
) -> tuple[list[str], list[str], list[ConditionalAccessPolicy]]:
    """(previous, current, referencing policies), Graph's updateAllowedCombinationsResult."""
    code = errors.STRENGTH_COMBINATION_INVALID
    row = _custom_row(session, strength_id)
    _only(body, ("allowedCombinations",), "", errors.INVALID_REQUEST)
    combinations = strengths.parse_combinations(_list(body.get("allowedCombinations"), "allowedCombinations", code))
    current = [strengths.format_combination(c) for c in combinations]
    if row.combination_configurations and frozenset({"fido2"}) not in combinations:
        raise _bad(code, "A combination configuration applies to fido2; delete it before removing fido2.")
    old = _strength_snapshot(row)
    previous = list(row.allowed_combinations)
    row.allowed_combinations = current
    row.modified_at = ctx.now
    _audit_strength(session, ctx, "Update authentication strength", "Update", row.id, row.display_name, old,
                    _strength_snapshot(row))
    _refuse_strength_lockout(session, ctx, row.id, override)
    return previous, current, strength_usage(session, row.id)


def _configuration(row: AuthenticationStrength, body: Any, config_id: str | None) -> dict[str, Any]:
    code = errors.COMBINATION_CONFIGURATION_INVALID
    if not isinstance(body, dict):
        raise _bad(code, "A combination configuration must be an object.")
    odata_type = body.get("@odata.type", FIDO2_CONFIGURATION if config_id else None)
    if odata_type == "#microsoft.graph.x509CertificateCombinationConfiguration":
        raise _bad(code, "Passgate has no certificate-based authentication, so x509 configurations cannot apply.")
    if odata_type != FIDO2_CONFIGURATION:
        raise _bad(code, f"Property '@odata.type' must be '{FIDO2_CONFIGURATION}'.")
    _only(body, ("@odata.type", "id", "allowedAAGUIDs", "appliesToCombinations"), "", code)
    applies = body.get("appliesToCombinations", ["fido2"])
    if applies != ["fido2"]:
        raise _bad(code, "appliesToCombinations of a fido2 configuration must be exactly ['fido2'].")
    aaguids = _list(body.get("allowedAAGUIDs"), "allowedAAGUIDs", code)
    if not aaguids or not all(isinstance(a, str) and is_guid(a) for a in aaguids):
        raise _bad(code, "allowedAAGUIDs must list at least one AAGUID, each a GUID such as "
                         "'cb69481e-8ff7-4039-93ec-0a2729a154a8'.")
    if "fido2" not in row.allowed_combinations:
        raise _bad(code, "This strength does not allow the fido2 combination, so a fido2 configuration cannot apply.")
    return {"id": config_id or str(uuid.uuid4()), "appliesToCombinations": ["fido2"],
            "allowedAAGUIDs": sorted({a.lower() for a in aaguids})}


def add_combination_configuration(
    session: Session, ctx: RequestContext, strength_id: str, body: dict[str, Any], override: bool = False
) -> strengths.CombinationConfiguration:
    row = _custom_row(session, strength_id)
    if row.combination_configurations:
        raise PassgateError(errors.CONFLICT, "This strength already has a fido2 combination configuration; "
                                             "change that one with PATCH.")
    old = _strength_snapshot(row)
    config = _configuration(row, body, None)
    row.combination_configurations = [config]
    row.modified_at = ctx.now
    _audit_strength(session, ctx, "Update authentication strength", "Update", row.id, row.display_name, old,
                    _strength_snapshot(row))
    _refuse_strength_lockout(session, ctx, row.id, override)
    return _configuration_value(config)


def _config_index(row: AuthenticationStrength, config_id: str) -> int:
    for i, c in enumerate(row.combination_configurations):
        if c["id"] == config_id.lower():
            return i
    raise PassgateError(errors.NOT_FOUND, f"There is no combination configuration {config_id[:64]!r} here.")


def get_combination_configuration(session: Session, strength_id: str, config_id: str
                                  ) -> strengths.CombinationConfiguration:
    stored = get_strength(session, strength_id)
    found = next((c for c in stored.value.configurations if c.id == config_id.lower()), None)
    if found is None:
        raise PassgateError(errors.NOT_FOUND, f"There is no combination configuration {config_id[:64]!r} here.")
    return found


def update_combination_configuration(
    session: Session, ctx: RequestContext, strength_id: str, config_id: str, body: dict[str, Any],
    override: bool = False,
) -> None:
    row = _custom_row(session, strength_id)
    index = _config_index(row, config_id)
    current = row.combination_configurations[index]
    merged = {"@odata.type": FIDO2_CONFIGURATION, **current, **body}
    if str(merged.get("id", "")).lower() != current["id"]:
        raise _bad(errors.COMBINATION_CONFIGURATION_INVALID, "Property 'id' cannot be changed.")
    old = _strength_snapshot(row)
    configs = list(row.combination_configurations)
    configs[index] = _configuration(row, merged, current["id"])
    row.combination_configurations = configs
    row.modified_at = ctx.now
    _audit_strength(session, ctx, "Update authentication strength", "Update", row.id, row.display_name, old,
                    _strength_snapshot(row))
    _refuse_strength_lockout(session, ctx, row.id, override)


def delete_combination_configuration(session: Session, ctx: RequestContext, strength_id: str, config_id: str) -> None:
    row = _custom_row(session, strength_id)
    index = _config_index(row, config_id)
    old = _strength_snapshot(row)
    row.combination_configurations = [c for i, c in enumerate(row.combination_configurations) if i != index]
    row.modified_at = ctx.now
    _audit_strength(session, ctx, "Update authentication strength", "Update", row.id, row.display_name, old,
                    _strength_snapshot(row))


# == named locations ==============================================================================
def _location_value(row: NamedLocation) -> access.NamedLocation:
    doc = row.document
    return access.NamedLocation(
        row.id, row.display_name,
        tuple(ipaddress.ip_network(r["cidrAddress"], strict=False) for r in doc["ipRanges"]),
        bool(doc.get("isTrusted")),
    )


def location_document(row: NamedLocation) -> dict[str, Any]:
    return {"@odata.type": IP_NAMED_LOCATION, "id": row.id, "displayName": row.display_name,
            "createdDateTime": _iso(row.created_at), "modifiedDateTime": _iso(row.modified_at),
            "isTrusted": bool(row.document.get("isTrusted")), "ipRanges": copy.deepcopy(row.document["ipRanges"])}


def _ip_ranges(value: Any) -> list[dict[str, Any]]:
    code = errors.NAMED_LOCATION_INVALID
    items = _list(value, "ipRanges", code)
    if not items:
        raise _bad(code, "Property 'ipRanges' must list at least one range.")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise _bad(code, "Each ipRanges entry must be an object with @odata.type and cidrAddress.")
        _only(item, ("@odata.type", "cidrAddress"), "ipRanges[].", code)
        cidr = item.get("cidrAddress")
        try:
            network = ipaddress.ip_network(cidr, strict=False) if isinstance(cidr, str) and "/" in cidr else None
        except ValueError:
            network = None
        if network is None:
            raise _bad(code, f"{str(cidr)[:60]!r} is not a CIDR range such as '203.0.113.0/24' or '2001:db8::/48'.")
        kind = IPV4_RANGE if network.version == 4 else IPV6_RANGE
        if item.get("@odata.type", kind) != kind:
            raise _bad(code, f"{cidr!r} is an IPv{network.version} range, so its @odata.type must be '{kind}'.")
        out.append({"@odata.type": kind, "cidrAddress": cidr})
    return out


def _location_fields(body: dict[str, Any], current: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    code = errors.NAMED_LOCATION_INVALID
    odata_type = body.get("@odata.type")
    if odata_type == "#microsoft.graph.countryNamedLocation":
        raise _bad(code, "Passgate has no IP geolocation, so only ipNamedLocation (IP ranges) is supported.")
    if odata_type != IP_NAMED_LOCATION:
        raise _bad(code, f"Property '@odata.type' is required and must be '{IP_NAMED_LOCATION}'.")
    _only(body, ("@odata.type", "id", "displayName", "isTrusted", "ipRanges", "createdDateTime",
                 "modifiedDateTime"), "", code)
    base = current or {}
    name = _text(body.get("displayName", base.get("displayName")), "displayName", code)
    trusted = _bool(body.get("isTrusted", base.get("isTrusted", False)), "isTrusted", code)
    ranges = _ip_ranges(body["ipRanges"]) if "ipRanges" in body or current is None else base["ipRanges"]
    return name, {"isTrusted": trusted, "ipRanges": ranges}


def list_locations(session: Session) -> list[NamedLocation]:
    return list(session.scalars(select(NamedLocation).order_by(NamedLocation.created_at, NamedLocation.id)))


def get_location(session: Session, location_id: str) -> NamedLocation:
    row = session.get(NamedLocation, location_id.lower()) if is_guid(location_id) else None
    if row is None:
        raise PassgateError(errors.NOT_FOUND, f"There is no named location with the id {location_id[:64]!r}.")
    return row


def _audit_location(session: Session, ctx: RequestContext, activity: str, operation: str, row: NamedLocation,
                    old: dict[str, Any], new: dict[str, Any]) -> None:
    record_audit(session, ctx, activity, category="Policy", operation=operation, target_type="Policy",
                 target_id=row.id, target_name=row.display_name, changes=_changes(old, new), service=SERVICE)


def create_location(session: Session, ctx: RequestContext, body: dict[str, Any]) -> NamedLocation:
    name, doc = _location_fields(body, None)
    row = NamedLocation(id=str(uuid.uuid4()), display_name=name, document=doc, created_at=ctx.now, modified_at=ctx.now)
    session.add(row)
    _audit_location(session, ctx, "Add named location", "Add", row, {}, {"displayName": name, **doc})
    return row


def update_location(session: Session, ctx: RequestContext, location_id: str, body: dict[str, Any]) -> None:
    row = get_location(session, location_id)
    old = {"displayName": row.display_name, **row.document}
    name, doc = _location_fields(body, old)
    row.display_name, row.document, row.modified_at = name, doc, ctx.now
    _audit_location(session, ctx, "Update named location", "Update", row, old, {"displayName": name, **doc})


def delete_location(session: Session, ctx: RequestContext, location_id: str) -> None:
    row = get_location(session, location_id)
    users = [p.display_name for p in _policy_rows(session)
             if row.id in _location_ids((p.document.get("conditions") or {}).get("locations"))]
    if users:
        raise PassgateError(errors.NAMED_LOCATION_IN_USE, "It is used by: " + ", ".join(map(repr, users)) + ".")
    old = {"displayName": row.display_name, **row.document}
    session.delete(row)
    _audit_location(session, ctx, "Delete named location", "Delete", row, old, {})


def _location_ids(locations: dict[str, Any] | None) -> set[str]:
    if not locations:
        return set()
    return set(locations.get("includeLocations") or []) | set(locations.get("excludeLocations") or [])


# == Conditional Access policies ===================================================================
STATES = tuple(str(s) for s in access.PolicyState)
_CLIENT_APP_TYPES = ("all", *(str(c) for c in ClientAppType))
_PLATFORMS = ("all", *(str(p) for p in Platform))
_UNSUPPORTED_CONTROLS = ("compliantDevice", "domainJoinedDevice", "approvedApplication", "compliantApplication",
                         "passwordChange", "riskRemediation")
_EMPTY_CONDITIONS = ("userRiskLevels", "signInRiskLevels", "servicePrincipalRiskLevels")
_NULL_CONDITIONS = ("devices", "clientApplications", "insiderRiskLevels", "authenticationFlows", "times",
                    "deviceStates")
_NULL_SESSION_CONTROLS = ("applicationEnforcedRestrictions", "cloudAppSecurity", "persistentBrowser",
                          "disableResilienceDefaults", "continuousAccessEvaluation", "secureSignInSession")


def _pbad(message: str) -> PassgateError:
    return PassgateError(errors.CONDITIONAL_ACCESS_POLICY_INVALID, message)


def _ids(session: Session, value: Any, prop: str, specials: tuple[str, ...], exists: Any) -> list[str]:
    out: list[str] = []
    for item in _list(value, prop, errors.CONDITIONAL_ACCESS_POLICY_INVALID):
        if not isinstance(item, str):
            raise _pbad(f"Property '{prop}' must be an array of strings.")
        special = next((s for s in specials if s.lower() == item.lower()), None)
        if special is not None:
            out.append(special)
            continue
        if not is_guid(item) or not exists(item.lower()):
            allowed = " or ".join(repr(s) for s in specials)
            raise _pbad(f"{prop}: {item[:64]!r} is not {allowed + ' or ' if specials else ''}the id of an existing "
                        f"{prop.removeprefix('include').removeprefix('exclude').rstrip('s').lower()}.")
        out.append(item.lower())
    if len(out) > 1 and any(s in out for s in ("All", "None")):
        raise _pbad(f"Property '{prop}': 'All' and 'None' stand alone.")
    return list(dict.fromkeys(out))


def _users(session: Session, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _pbad("conditions.users is required: an object with includeUsers, includeGroups or includeRoles.")
    _only(value, ("includeUsers", "excludeUsers", "includeGroups", "excludeGroups", "includeRoles", "excludeRoles",
                  "includeGuestsOrExternalUsers", "excludeGuestsOrExternalUsers"), "conditions.users.",
          errors.CONDITIONAL_ACCESS_POLICY_INVALID)
    for guests in ("includeGuestsOrExternalUsers", "excludeGuestsOrExternalUsers"):
        if value.get(guests) is not None:
            raise _pbad(f"conditions.users.{guests}: Passgate has no guest or external users.")

    def user(i: str) -> bool:
        return session.get(User, i) is not None

    def group(i: str) -> bool:
        return session.get(Group, i) is not None

    def role(i: str) -> bool:
        return i in ROLES

    out = {
        "includeUsers": _ids(session, value.get("includeUsers"), "includeUsers", ("All", "None"), user),
        "excludeUsers": _ids(session, value.get("excludeUsers"), "excludeUsers", (), user),
        "includeGroups": _ids(session, value.get("includeGroups"), "includeGroups", (), group),
        "excludeGroups": _ids(session, value.get("excludeGroups"), "excludeGroups", (), group),
        "includeRoles": _ids(session, value.get("includeRoles"), "includeRoles", (), role),
        "excludeRoles": _ids(session, value.get("excludeRoles"), "excludeRoles", (), role),
        "includeGuestsOrExternalUsers": None, "excludeGuestsOrExternalUsers": None,
    }
    if not (out["includeUsers"] or out["includeGroups"] or out["includeRoles"]):
        raise _pbad("conditions.users must include someone: includeUsers ('All', 'None' or user ids), "
                    "includeGroups or includeRoles.")
    return out


def _applications(session: Session, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _pbad("conditions.applications is required: an object with includeApplications or includeUserActions.")
    _only(value, ("includeApplications", "excludeApplications", "includeUserActions",
                  "includeAuthenticationContextClassReferences", "applicationFilter"), "conditions.applications.",
          errors.CONDITIONAL_ACCESS_POLICY_INVALID)
    if value.get("includeAuthenticationContextClassReferences") or value.get("applicationFilter"):
        raise _pbad("conditions.applications: authentication contexts and application filters are not supported.")

    def app(i: str) -> bool:
        return i in access.BUILT_IN_APPS or session.scalar(select(App.id).where(App.app_id == i)) is not None

    actions = _list(value.get("includeUserActions"), "includeUserActions", errors.CONDITIONAL_ACCESS_POLICY_INVALID)
    for action in actions:
        if action not in access.USER_ACTIONS:
            raise _pbad(f"includeUserActions: {str(action)[:64]!r} is not supported; the user action is "
                        f"'{access.REGISTER_SECURITY_INFO}'.")
    out = {
        "includeApplications": _ids(session, value.get("includeApplications"), "includeApplications",
                                    ("All", "None"), app),
        "excludeApplications": _ids(session, value.get("excludeApplications"), "excludeApplications", (), app),
        "includeUserActions": list(dict.fromkeys(actions)),
        "includeAuthenticationContextClassReferences": [],
    }
    if bool(out["includeApplications"]) == bool(actions):
        raise _pbad("conditions.applications needs includeApplications or includeUserActions (one, not both).")
    return out


def _enum_list(value: Any, prop: str, allowed: tuple[str, ...]) -> list[str]:
    out = []
    for item in _list(value, prop, errors.CONDITIONAL_ACCESS_POLICY_INVALID):
        known = next((a for a in allowed if isinstance(item, str) and a.lower() == item.lower()), None)
        if known is None:
            raise _pbad(f"{prop}: {str(item)[:64]!r} is not one of {', '.join(allowed)}.")
        out.append(known)
    return list(dict.fromkeys(out))


def _platforms(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _pbad("conditions.platforms must be an object with includePlatforms and excludePlatforms.")
    _only(value, ("includePlatforms", "excludePlatforms"), "conditions.platforms.",
          errors.CONDITIONAL_ACCESS_POLICY_INVALID)
    include = _enum_list(value.get("includePlatforms"), "includePlatforms", _PLATFORMS)
    if not include:
        raise _pbad("conditions.platforms.includePlatforms must name at least one platform, or 'all'.")
    return {"includePlatforms": include,
            "excludePlatforms": _enum_list(value.get("excludePlatforms"), "excludePlatforms", _PLATFORMS)}


def _locations(session: Session, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _pbad("conditions.locations must be an object with includeLocations and excludeLocations.")
    _only(value, ("includeLocations", "excludeLocations"), "conditions.locations.",
          errors.CONDITIONAL_ACCESS_POLICY_INVALID)

    def location(i: str) -> bool:
        return session.get(NamedLocation, i) is not None

    include = _ids(session, value.get("includeLocations"), "includeLocations", ("All", "AllTrusted"), location)
    if not include:
        raise _pbad("conditions.locations.includeLocations must name 'All', 'AllTrusted' or named location ids.")
    return {"includeLocations": include,
            "excludeLocations": _ids(session, value.get("excludeLocations"), "excludeLocations", ("AllTrusted",),
                                     location)}


def _conditions(session: Session, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _pbad("Property 'conditions' is required: an object with users and applications.")
    _only(value, ("users", "applications", "clientAppTypes", "platforms", "locations", *_EMPTY_CONDITIONS,
                  *_NULL_CONDITIONS), "conditions.", errors.CONDITIONAL_ACCESS_POLICY_INVALID)
    for prop in _EMPTY_CONDITIONS:
        if value.get(prop):
            raise _pbad(f"conditions.{prop}: Passgate has no risk detection, so risk conditions cannot be met.")
    for prop in _NULL_CONDITIONS:
        if value.get(prop) is not None:
            raise _pbad(f"conditions.{prop} is not supported by Passgate; leave it null.")
    client_app_types = _enum_list(value.get("clientAppTypes", ["all"]), "clientAppTypes", _CLIENT_APP_TYPES)
    return {
        "users": _users(session, value.get("users")),
        "applications": _applications(session, value.get("applications")),
        "clientAppTypes": client_app_types or ["all"],
        "platforms": _platforms(value.get("platforms")),
        "locations": _locations(session, value.get("locations")),
        "userRiskLevels": [], "signInRiskLevels": [], "servicePrincipalRiskLevels": [],
        "devices": None, "clientApplications": None, "insiderRiskLevels": None, "authenticationFlows": None,
    }


def _grant_controls(session: Session, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _pbad("grantControls must be an object with operator, builtInControls and authenticationStrength.")
    _only(value, ("operator", "builtInControls", "customAuthenticationFactors", "termsOfUse",
                  "authenticationStrength", "authenticationStrength@odata.context"), "grantControls.",
          errors.CONDITIONAL_ACCESS_POLICY_INVALID)
    operator = value.get("operator", "OR")
    if operator not in ("AND", "OR"):
        raise _pbad("grantControls.operator must be 'AND' or 'OR'.")
    controls = _list(value.get("builtInControls"), "builtInControls", errors.CONDITIONAL_ACCESS_POLICY_INVALID)
    for control in controls:
        if control in _UNSUPPORTED_CONTROLS:
            raise _pbad(f"grantControls.builtInControls: {control!r} needs device or app management that Passgate "
                        "does not have; use 'block', 'mfa' or an authenticationStrength.")
        if control not in ("block", "mfa"):
            raise _pbad(f"grantControls.builtInControls: {str(control)[:64]!r} is not a control; use 'block' or 'mfa'.")
    for prop in ("customAuthenticationFactors", "termsOfUse"):
        if value.get(prop):
            raise _pbad(f"grantControls.{prop} is not supported by Passgate.")
    strength = value.get("authenticationStrength")
    strength_id = None
    if strength is not None:
        if not isinstance(strength, dict) or not isinstance(strength.get("id"), str):
            raise _pbad("grantControls.authenticationStrength must be an object with the strength's id.")
        try:
            strength_id = get_strength(session, strength["id"]).value.id
        except PassgateError:
            raise _pbad(f"grantControls.authenticationStrength: there is no authentication strength with the id "
                        f"{strength['id'][:64]!r}.") from None
        if "mfa" in controls:
            raise _pbad("grantControls cannot require both 'mfa' and an authenticationStrength (Entra refuses this "
                        "too); the Multifactor authentication strength, 00000000-0000-0000-0000-000000000002, is "
                        "what 'mfa' means.")
    if not controls and strength_id is None:
        raise _pbad("grantControls must name at least one control ('block', 'mfa') or an authenticationStrength.")
    return {"operator": operator, "builtInControls": list(dict.fromkeys(controls)),
            "customAuthenticationFactors": [], "termsOfUse": [],
            "authenticationStrength": {"id": strength_id} if strength_id else None}


def _session_controls(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _pbad("sessionControls must be an object.")
    _only(value, ("signInFrequency", *_NULL_SESSION_CONTROLS), "sessionControls.",
          errors.CONDITIONAL_ACCESS_POLICY_INVALID)
    for prop in _NULL_SESSION_CONTROLS:
        if value.get(prop) not in (None, False):
            raise _pbad(f"sessionControls.{prop} is not supported by Passgate; leave it null.")
    frequency = value.get("signInFrequency")
    if frequency is None:
        return None
    if not isinstance(frequency, dict):
        raise _pbad("sessionControls.signInFrequency must be an object.")
    _only(frequency, ("isEnabled", "value", "type", "authenticationType", "frequencyInterval"),
          "sessionControls.signInFrequency.", errors.CONDITIONAL_ACCESS_POLICY_INVALID)
    enabled = _bool(frequency.get("isEnabled", True), "signInFrequency.isEnabled",
                    errors.CONDITIONAL_ACCESS_POLICY_INVALID)
    if not enabled:
        return None
    interval = frequency.get("frequencyInterval", "timeBased")
    auth_type = frequency.get("authenticationType", "primaryAndSecondaryAuthentication")
    if auth_type not in ("primaryAndSecondaryAuthentication", "secondaryAuthentication"):
        raise _pbad("signInFrequency.authenticationType must be 'primaryAndSecondaryAuthentication' or "
                    "'secondaryAuthentication'.")
    out: dict[str, Any] = {"isEnabled": True, "authenticationType": auth_type, "frequencyInterval": interval}
    if interval == "everyTime":
        if frequency.get("value") is not None or frequency.get("type") is not None:
            raise _pbad("signInFrequency: 'everyTime' takes no value or type.")
        return {"signInFrequency": {**out, "value": None, "type": None}}
    if interval != "timeBased":
        raise _pbad("signInFrequency.frequencyInterval must be 'timeBased' or 'everyTime'.")
    unit, amount = frequency.get("type"), frequency.get("value")
    high = {"hours": 23, "days": 365}.get(unit) if isinstance(unit, str) else None
    if high is None:
        raise _pbad("signInFrequency.type must be 'hours' or 'days'.")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= high:
        raise _pbad(f"signInFrequency.value must be a whole number from 1 to {high} {unit}.")
    return {"signInFrequency": {**out, "value": amount, "type": unit}}


_POLICY_PROPS = ("displayName", "description", "state", "conditions", "grantControls", "sessionControls")
_POLICY_READ_ONLY = ("@odata.type", "id", "createdDateTime", "modifiedDateTime", "templateId", "deletedDateTime")


def _policy_document(session: Session, body: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    _only(body, (*_POLICY_PROPS, *_POLICY_READ_ONLY), "", errors.CONDITIONAL_ACCESS_POLICY_INVALID)
    doc = copy.deepcopy(current) if current else {}
    if current is None or "displayName" in body:
        doc["displayName"] = _text(body.get("displayName"), "displayName", errors.CONDITIONAL_ACCESS_POLICY_INVALID)
    if current is None or "description" in body:
        doc["description"] = _text(body.get("description"), "description", errors.CONDITIONAL_ACCESS_POLICY_INVALID,
                                   required=False, limit=1024) or None
    if current is None or "state" in body:
        state = body.get("state")
        if state not in STATES:
            raise _pbad(f"Property 'state' must be one of {', '.join(STATES)}.")
        doc["state"] = state
    if current is None or "conditions" in body:
        merged = body.get("conditions")
        if current is not None and isinstance(merged, dict):
            # PATCH replaces each condition it names and keeps the others, as Graph does.
            merged = {**current["conditions"], **merged}
        doc["conditions"] = _conditions(session, merged)
    if current is None or "grantControls" in body:
        doc["grantControls"] = _grant_controls(session, body.get("grantControls"))
    if current is None or "sessionControls" in body:
        doc["sessionControls"] = _session_controls(body.get("sessionControls"))
    if doc["grantControls"] is None and doc["sessionControls"] is None:
        raise _pbad("A policy needs grantControls or sessionControls.")
    return doc


def _policy_rows(session: Session) -> list[ConditionalAccessPolicy]:
    return list(session.scalars(select(ConditionalAccessPolicy).order_by(ConditionalAccessPolicy.created_at,
                                                                         ConditionalAccessPolicy.id)))


def list_policies(session: Session) -> list[ConditionalAccessPolicy]:
    return _policy_rows(session)


def get_policy(session: Session, policy_id: str) -> ConditionalAccessPolicy:
    row = session.get(ConditionalAccessPolicy, policy_id.lower()) if is_guid(policy_id) else None
    if row is None:
        raise PassgateError(errors.NOT_FOUND, f"There is no Conditional Access policy with the id {policy_id[:64]!r}.")
    return row


def policy_document(session: Session, row: ConditionalAccessPolicy) -> dict[str, Any]:
    """Graph's read shape: the stored document, with the whole strength object in grantControls."""
    doc = copy.deepcopy(row.document)
    grant = doc.get("grantControls")
    if grant and grant.get("authenticationStrength"):
        stored = get_strength(session, grant["authenticationStrength"]["id"])
        grant["authenticationStrength"] = strength_document(stored)
    return {"id": row.id, "templateId": None, "displayName": row.display_name,
            "description": doc.get("description"),
            "createdDateTime": _iso(row.created_at), "modifiedDateTime": _iso(row.modified_at), "state": row.state,
            "sessionControls": doc.get("sessionControls"), "conditions": doc["conditions"], "grantControls": grant}


def _ids_set(values: list[str] | None) -> frozenset[str]:
    return frozenset(values or [])


def policy_value(row_id: str, doc: dict[str, Any], strengths_by_id: dict[str, Strength]) -> access.Policy:
    c = doc["conditions"]
    users, apps = c["users"], c["applications"]
    platforms, locations = c.get("platforms"), c.get("locations")
    conditions = access.Conditions(
        access.Users(*(_ids_set(users.get(k)) for k in ("includeUsers", "excludeUsers", "includeGroups",
                                                         "excludeGroups", "includeRoles", "excludeRoles"))),
        access.Applications(_ids_set(apps.get("includeApplications")), _ids_set(apps.get("excludeApplications")),
                            _ids_set(apps.get("includeUserActions"))),
        _ids_set(c.get("clientAppTypes")),
        _ids_set(platforms["includePlatforms"]) if platforms else None,
        _ids_set(platforms["excludePlatforms"]) if platforms else frozenset(),
        _ids_set(locations["includeLocations"]) if locations else None,
        _ids_set(locations["excludeLocations"]) if locations else frozenset(),
    )
    grant = None
    g = doc.get("grantControls")
    if g:
        controls = {access.Control(x) for x in g.get("builtInControls", [])}
        strength = None
        if g.get("authenticationStrength"):
            strength = strengths_by_id[g["authenticationStrength"]["id"]]
            controls.add(access.Control.AUTHENTICATION_STRENGTH)
        grant = access.Grant(g.get("operator", "OR"), frozenset(controls), strength)
    frequency = None
    f = (doc.get("sessionControls") or {}).get("signInFrequency")
    if f:
        frequency = (access.SignInFrequency(every_time=True) if f["frequencyInterval"] == "everyTime"
                     else access.SignInFrequency(False, f["value"], f["type"]))
    return access.Policy(row_id, doc["displayName"], access.PolicyState(doc["state"]), conditions, grant, frequency)


def _strengths_by_id(session: Session) -> dict[str, Strength]:
    return {s.value.id: s.value for s in list_strengths(session)}


def policies_of(session: Session) -> list[access.Policy]:
    rows = _policy_rows(session)
    # Most deployments have no policy: then the strengths are not needed.
    by_id = _strengths_by_id(session) if rows else {}
    return [policy_value(r.id, r.document, by_id) for r in rows]


def locations_of(session: Session) -> list[access.NamedLocation]:
    return [_location_value(r) for r in list_locations(session)]


@dataclass(frozen=True, slots=True)
class AccessConfiguration:
    """What every sign-in's evaluation reads: the policies (strengths resolved) and, with any, the locations."""

    policies: tuple[access.Policy, ...]
    locations: tuple[access.NamedLocation, ...]


def _load_configuration(session: Session) -> AccessConfiguration:
    policies = tuple(policies_of(session))
    return AccessConfiguration(policies, tuple(locations_of(session)) if policies else ())


def configuration(session: Session) -> AccessConfiguration:
    """Cached per process until a policy, strength or location changes."""
    return config_cache.cached(session, "conditional access", _load_configuration)


# -- who signs in, as the engine sees them -----------------------------------------------------------
def registered_methods(session: Session, user_id: str, now: datetime) -> RegisteredMethods:
    """What the user could sign in with now: usable passkeys, a usable Temporary Access Pass, a password the
    policy allows and, with it, an authenticator app (its code is only ever a second step after the password)."""
    passkeys = tuple(
        passkey_evidence(p)
        for p in session.scalars(select(Passkey).where(Passkey.user_id == user_id, Passkey.unusable_code.is_(None)))
    )
    modes: set[MethodMode] = set()
    tap = session.scalar(select(TemporaryAccessPass).where(TemporaryAccessPass.user_id == user_id))
    if tap is not None and taps.usability(session, tap, now) is UsabilityReason.ENABLED_BY_POLICY:
        modes.add(MethodMode.TAP_ONE_TIME if tap.is_usable_once else MethodMode.TAP_MULTI_USE)
    user = session.get(User, user_id)
    if user is not None and passwords.usable(session, user):
        modes.add(MethodMode.PASSWORD)
        if oath.usable(session, user):
            modes.add(MethodMode.SOFTWARE_OATH)
    return RegisteredMethods(frozenset(modes), passkeys)


def registrable_methods(session: Session, user_id: str, groups: frozenset[str]) -> frozenset[MethodMode]:
    """The modes this user may add on Security info (the methods policy decides)."""
    fido2 = fido2_policy_of(session)
    refusal, _ = scope(fido2, Member(user_id, groups))
    modes = {MethodMode.FIDO2} if refusal is None and fido2.self_service_allowed else set()
    user = session.get(User, user_id)
    if user is not None and passwords.allowed_for(session, user):
        modes.add(MethodMode.PASSWORD)
    if user is not None and oath.allowed_for(session, user):
        modes.add(MethodMode.SOFTWARE_OATH)
    return frozenset(modes)


def subject(session: Session, user_id: str, now: datetime) -> access.Subject:
    groups = user_group_ids(session, user_id)
    return access.Subject(user_id, groups, user_roles(session, user_id), registered_methods(session, user_id, now),
                          registrable_methods(session, user_id, groups))


def _ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not value:
        return None
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def evaluate(
    session: Session,
    *,
    user_id: str,
    now: datetime,
    app_id: str | None = None,
    user_action: str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
    platform: Platform | None = None,
    client_app_type: ClientAppType | None = ClientAppType.BROWSER,
    evidence: Evidence | None = None,
) -> access.Decision:
    """Conditional Access for one sign-in (or, with `evidence` None, a What If question).

    `app_id` is the app signed in to (access.ADMIN_API_APP_ID for the admin API,
    access.SIGN_IN_PORTAL_APP_ID for the portal and Security info); `user_action` is
    access.REGISTER_SECURITY_INFO when registering methods. The platform comes from `user_agent`
    unless given."""
    config = configuration(session)
    if not config.policies:
        # Every sign-in comes here: with no policy there is nothing to learn, of the user (groups, roles,
        # methods) or of the request (platform, address), and every decision is the same.
        return access.evaluate((), access.SignIn(access.Subject(user_id), now, app_id, user_action, client_app_type,
                                                 platform, None, evidence))
    sign_in = access.SignIn(
        subject(session, user_id, now), now, app_id, user_action, client_app_type,
        platform if platform is not None else access.platform_from_user_agent(user_agent), _ip(ip_address), evidence,
    )
    return access.evaluate(config.policies, sign_in, config.locations)


# -- writes, with the lock-out guard -------------------------------------------------------------
def _global_admins(session: Session, now: datetime) -> list[access.Subject]:
    ids = set(session.scalars(select(RoleAssignment.principal_id)
                              .where(RoleAssignment.role_definition_id == GLOBAL_ADMINISTRATOR)))
    return [subject(session, i, now) for i in sorted(ids)]


def _refuse_lockout(session: Session, ctx: RequestContext, row_id: str, doc: dict[str, Any], override: bool) -> None:
    if override or doc["state"] != "enabled":
        return
    value = policy_value(row_id, doc, _strengths_by_id(session))
    if access.locks_out(value, _global_admins(session, ctx.now), ctx.now):
        raise PassgateError(
            errors.CONDITIONAL_ACCESS_LOCKOUT,
            f"Policy {value.display_name!r} applies to every Global Administrator at the admin API "
            f"(appId {access.ADMIN_API_APP_ID}) under every condition, and "
            + ("blocks them." if value.grant and access.Control.BLOCK in value.grant.controls else
               "requires a strength none of them can meet with the methods they have registered.")
            + " Send the header 'Passgate-Override-Lockout: true' to save it anyway.",
        )


def _refuse_strength_lockout(session: Session, ctx: RequestContext, strength_id: str, override: bool) -> None:
    """A stricter strength can lock administrators out through the enabled policies that require it."""
    session.flush()
    for row in strength_usage(session, strength_id):
        _refuse_lockout(session, ctx, row.id, row.document, override)


def _audit_policy(session: Session, ctx: RequestContext, activity: str, operation: str, row_id: str, name: str,
                  old: dict[str, Any], new: dict[str, Any]) -> None:
    record_audit(session, ctx, activity, category="Policy", operation=operation, target_type="Policy",
                 target_id=row_id, target_name=name, changes=_changes(old, new), service=SERVICE)


def create_policy(session: Session, ctx: RequestContext, body: dict[str, Any], override: bool = False
                  ) -> ConditionalAccessPolicy:
    row_id = str(uuid.uuid4())
    doc = _policy_document(session, body, None)
    _refuse_lockout(session, ctx, row_id, doc, override)
    row = ConditionalAccessPolicy(id=row_id, display_name=doc["displayName"], state=doc["state"], document=doc,
                                  created_at=ctx.now, modified_at=ctx.now)
    session.add(row)
    _audit_policy(session, ctx, "Add conditional access policy", "Add", row_id, row.display_name, {}, doc)
    return row


def update_policy(session: Session, ctx: RequestContext, policy_id: str, body: dict[str, Any],
                  override: bool = False) -> None:
    row = get_policy(session, policy_id)
    old = copy.deepcopy(row.document)
    doc = _policy_document(session, body, old)
    _refuse_lockout(session, ctx, row.id, doc, override)
    row.document, row.display_name, row.state, row.modified_at = doc, doc["displayName"], doc["state"], ctx.now
    _audit_policy(session, ctx, "Update conditional access policy", "Update", row.id, row.display_name, old, doc)


def delete_policy(session: Session, ctx: RequestContext, policy_id: str) -> None:
    row = get_policy(session, policy_id)
    old = copy.deepcopy(row.document)
    session.delete(row)
    _audit_policy(session, ctx, "Delete conditional access policy", "Delete", row.id, row.display_name, old, {})


# -- What If --------------------------------------------------------------------------------------
def what_if(
    session: Session,
    *,
    user_id: str,
    now: datetime,
    app_ids: Iterable[str] = (),
    user_action: str | None = None,
    ip_address: str | None = None,
    platform: Platform | None = None,
    client_app_type: ClientAppType | None = None,
) -> list[tuple[ConditionalAccessPolicy, access.PolicyEvaluation]]:
    """Each policy against a sign-in that has not happened (no evidence): does it apply, and if not, why.
    With several apps a policy applies when it applies to any of them."""
    rows = {r.id: r for r in _policy_rows(session)}
    contexts = [(a, None) for a in app_ids] if user_action is None else [(None, user_action)]
    found: dict[str, access.PolicyEvaluation] = {}
    for app_id, action in contexts or [(None, None)]:
        decision = evaluate(session, user_id=user_id, now=now, app_id=app_id, user_action=action,
                            ip_address=ip_address, platform=platform, client_app_type=client_app_type)
        for e in decision.policies:
            if e.policy.id not in found or (e.applies and not found[e.policy.id].applies):
                found[e.policy.id] = e
    return [(rows[i], found[i]) for i in rows if i in found]


# -- the sign-in log's words ----------------------------------------------------------------------------
def applied_policies_json(decision: access.Decision, beta: bool = True) -> list[dict[str, Any]]:
    """Graph's `appliedConditionalAccessPolicies[]` for a sign-in log entry; `beta` adds the strength."""
    out = []
    for e in decision.policies:
        item: dict[str, Any] = {
            "id": e.policy.id, "displayName": e.policy.display_name,
            "enforcedGrantControls": list(e.enforced_grant_controls),
            "enforcedSessionControls": list(e.enforced_session_controls), "result": str(e.result),
        }
        if beta:
            strength = e.strength
            item["authenticationStrength"] = None if strength is None else {
                "authenticationStrengthId": strength.strength.id, "displayName": strength.strength.display_name,
                "authenticationStrengthResult": str(strength.result if e.applies else strengths.StrengthResult.NOT_SET),
            }
        out.append(item)
    return out
