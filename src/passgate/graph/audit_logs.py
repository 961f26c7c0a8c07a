"""/auditLogs: the sign-in log and the audit log in Graph's shapes (reference §7, §8.1).

`signIn` differs by version as Graph's does: /beta carries authenticationDetails, authenticationRequirement,
signInEventTypes and the other beta-only properties, and the beta parts of appliedConditionalAccessPolicy
(authenticationStrength...); /v1.0 leaves them out. Beta lists only interactive sign-ins unless the filter
names `signInEventTypes/any(t: t eq 'nonInteractiveUser')`; v1.0 lists them all.
`appliedConditionalAccessPolicy.result` is an evolvable enum: its report-only members come after
`unknownFutureValue`, so they are sent only to callers that ask with `Prefer: include-unknown-enum-members`,
and read as `unknownFutureValue` otherwise.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ..context import RequestContext
from ..core import errors
from ..logs import queries
from ..logs.writer import MULTI_FACTOR, derived_step
from ..store.tables import DirectoryAudit
from . import odata
from .base import graph_json, iso, odata_context, require, transaction

router = APIRouter()

READ = require("AuditLog.Read.All")

SIGN_IN_FILTERS = {
    "id": odata.Filterable("id", casefold=True),
    "createdDateTime": odata.time_range("created_at"),
    "userId": odata.Filterable("user_id", casefold=True),
    "userPrincipalName": odata.Filterable("user_principal_name", casefold=True),
    "appId": odata.Filterable("app_id", casefold=True),
    "ipAddress": odata.Filterable("ip_address"),
    "status/errorCode": odata.Filterable("error_code", odata.INTEGER_VALUE, ("eq", "ne")),
}
# Beta's signIn has signInEventTypes, and beta lists only interactive sign-ins unless a filter asks for others.
BETA_SIGN_IN_FILTERS = {
    **SIGN_IN_FILTERS,
    "signInEventTypes": odata.Filterable(
        "is_interactive", odata.ANY_VALUE, members=(("interactiveUser", True), ("nonInteractiveUser", False))
    ),
}
AUDIT_FILTERS = {
    "id": odata.Filterable("id", casefold=True),
    "activityDateTime": odata.time_range("activity_at"),
    "activityDisplayName": odata.Filterable("activity_display_name"),
    "category": odata.Filterable("category"),
    "correlationId": odata.Filterable("correlation_id", casefold=True),
    "loggedByService": odata.Filterable("logged_by_service"),
    "operationType": odata.Filterable("operation_type"),
    "result": odata.Filterable("result"),
    "initiatedBy/user/id": odata.Filterable("initiated_by_user_id", casefold=True),
    "initiatedBy/user/userPrincipalName": odata.Filterable("initiated_by_user_principal_name", casefold=True),
    "initiatedBy/user/displayName": odata.Filterable("initiated_by_user_display_name"),
    "initiatedBy/app/appId": odata.Filterable("initiated_by_app_id", casefold=True),
    "initiatedBy/app/displayName": odata.Filterable("initiated_by_app_display_name"),
}

INCLUDE_UNKNOWN = "include-unknown-enum-members"
# appliedConditionalAccessPolicy.result members after the unknownFutureValue sentinel.
_EVOLVED_RESULTS = frozenset(
    {"reportOnlySuccess", "reportOnlyFailure", "reportOnlyNotApplied", "reportOnlyInterrupted"}
)
_V1_POLICY_PROPERTIES = ("id", "displayName", "enforcedGrantControls", "enforcedSessionControls", "result")
# Graph's authenticationMethodsUsed names, for the step methods Passgate has that the enum lists.
_METHODS_USED = (("Passkey", "FIDO"), ("FIDO2", "FIDO"), ("Password", "Password"))


def _is_beta(request: Request) -> bool:
    return request.url.path.startswith("/beta/")


def _includes_unknown(request: Request) -> bool:
    prefer = ",".join(request.headers.getlist("prefer"))
    return any(part.strip().lower() == INCLUDE_UNKNOWN for part in prefer.split(","))


def _policy_json(policy: dict[str, Any], beta: bool, include_unknown: bool) -> dict[str, Any]:
    out = dict(policy) if beta else {k: policy.get(k) for k in _V1_POLICY_PROPERTIES}
    if out.get("result") in _EVOLVED_RESULTS and not include_unknown:
        out["result"] = "unknownFutureValue"
    return out


def _methods_used(steps: list[dict[str, Any]]) -> list[str]:
    used: list[str] = []
    for step in steps:
        method = step.get("authenticationMethod") or ""
        for prefix, name in _METHODS_USED:
            if method.startswith(prefix) and name not in used:
                used.append(name)
    return used


# Parts every entry has alike, shared by the entries of a page rather than built for each (a fifth of the time of
# building a 1,000-entry page): what sign_in_json returns is only serialised, never changed.
_NONE: list[Any] = []
_NO_LOCATION: dict[str, Any] = {
    "city": "", "state": "", "countryOrRegion": "",
    "geoCoordinates": {"altitude": None, "latitude": None, "longitude": None},
}


def sign_in_json(entry: Any, beta: bool, include_unknown: bool) -> dict[str, Any]:
    """One signIn (from a SignIn, or a log page's SignInRow) in the shape of the version asked for."""
    code = errors.by_number(entry.error_code) if entry.error_code else None
    body: dict[str, Any] = {
        "id": entry.id,
        "createdDateTime": iso(entry.created_at),
        "userDisplayName": entry.user_display_name,
        "userPrincipalName": entry.user_principal_name,
        "userId": entry.user_id or "",
        "userType": "member",
        "appId": entry.app_id,
        "appDisplayName": entry.app_display_name,
        "ipAddress": entry.ip_address,
        "clientAppUsed": entry.client_app_used,
        "userAgent": entry.user_agent,
        "correlationId": entry.correlation_id,
        "conditionalAccessStatus": entry.conditional_access_status,
        "isInteractive": entry.is_interactive,
        "resourceDisplayName": entry.resource_display_name,
        "resourceId": entry.resource_id,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes": _NONE,
        "riskEventTypes_v2": _NONE,
        "status": {
            "errorCode": entry.error_code,
            "failureReason": entry.failure_reason if entry.error_code else None,
            "additionalDetails": code.action if code else None,
        },
        "deviceDetail": {
            "deviceId": "",
            "displayName": "",
            "operatingSystem": entry.operating_system or "",
            "browser": entry.browser or "",
            "isCompliant": False,
            "isManaged": False,
            "trustType": "",
        },
        "location": _NO_LOCATION,
        "appliedConditionalAccessPolicies": [
            _policy_json(p, beta, include_unknown) for p in entry.applied_policies or []
        ],
    }
    if beta:
        steps = list(entry.authentication_details or []) or [derived_step(entry)]
        last = steps[-1]
        multi = entry.authentication_requirement == MULTI_FACTOR
        body |= {
            "authenticationDetails": steps,
            "authenticationRequirement": entry.authentication_requirement,
            "authenticationRequirementPolicies": [],
            "authenticationMethodsUsed": _methods_used(steps),
            "authenticationProtocol": entry.authentication_protocol or "none",
            "signInEventTypes": ["interactiveUser" if entry.is_interactive else "nonInteractiveUser"],
            "sessionId": entry.session_id,
            "originalRequestId": entry.correlation_id,
            "mfaDetail": {
                "authMethod": last.get("authenticationMethod") if multi else None,
                "authDetail": last.get("authenticationMethodDetail") if multi else None,
            },
        }
    return body


def _as_text(value: Any) -> str | None:
    """modifiedProperty values are strings in Graph (JSON-encoded when they are not text)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def audit_json(record: DirectoryAudit) -> dict[str, Any]:
    initiated = record.initiated_by or {}
    user = initiated.get("user")
    app = initiated.get("app")
    return {
        "id": record.id,
        "category": record.category,
        "correlationId": record.correlation_id,
        "result": record.result,
        "resultReason": "",
        "activityDisplayName": record.activity_display_name,
        "activityDateTime": iso(record.activity_at),
        "loggedByService": record.logged_by_service,
        "operationType": record.operation_type,
        "initiatedBy": {
            "user": None if user is None else {
                "id": user.get("id"), "displayName": user.get("displayName"),
                "userPrincipalName": user.get("userPrincipalName"), "ipAddress": user.get("ipAddress"),
            },
            "app": None if app is None else {
                "appId": app.get("appId"), "displayName": app.get("displayName"),
                "servicePrincipalId": app.get("servicePrincipalId"),
                "servicePrincipalName": app.get("servicePrincipalName"),
            },
        },
        "targetResources": [
            {
                "id": target.get("id"),
                "displayName": target.get("displayName"),
                "type": target.get("type"),
                "userPrincipalName": target.get("userPrincipalName"),
                "groupType": target.get("groupType"),
                "modifiedProperties": [
                    {"displayName": m.get("displayName"), "oldValue": _as_text(m.get("oldValue")),
                     "newValue": _as_text(m.get("newValue"))}
                    for m in target.get("modifiedProperties") or []
                ],
            }
            for target in record.target_resources or []
        ],
        "additionalDetails": [
            {"key": d.get("key"), "value": d.get("value")} for d in record.additional_details or []
        ],
    }


def _collection(request: Request, entity_set: str, rows: list[Any], query: queries.LogQuery, time_of: str,
                items: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"@odata.context": odata_context(request, entity_set)}
    position = queries.next_position(rows, query, time_of)
    if position is not None:
        body["@odata.nextLink"] = odata.link_after(request, position.token())
    body["value"] = items
    return body


@router.get("/auditLogs/signIns")
def list_sign_ins(request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    beta, unknown = _is_beta(request), _includes_unknown(request)
    query = odata.parse_log_query(request, BETA_SIGN_IN_FILTERS if beta else SIGN_IN_FILTERS, "createdDateTime")
    if beta and not any(c.field == "is_interactive" for c in query.where):
        query = replace(query, where=(*query.where, queries.Comparison("is_interactive", "eq", True)))
    with transaction(request) as session:
        rows = queries.sign_ins(session, query)
        items = [sign_in_json(row, beta, unknown) for row in rows[: query.top]]
    return graph_json(ctx, _collection(request, "auditLogs/signIns", rows, query, "created_at", items))


@router.get("/auditLogs/signIns/{entry_id}")
def read_sign_in(entry_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    odata.parse(request, paged=False)
    with transaction(request) as session:
        entry = queries.sign_in(session, entry_id.lower())
        body = sign_in_json(entry, _is_beta(request), _includes_unknown(request))
    return graph_json(ctx, {"@odata.context": odata_context(request, "auditLogs/signIns/$entity"), **body})


@router.get("/auditLogs/directoryAudits")
def list_directory_audits(request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    query = odata.parse_log_query(request, AUDIT_FILTERS, "activityDateTime")
    with transaction(request) as session:
        rows = queries.directory_audits(session, query)
        items = [audit_json(row) for row in rows[: query.top]]
    return graph_json(ctx, _collection(request, "auditLogs/directoryAudits", rows, query, "activity_at", items))


@router.get("/auditLogs/directoryAudits/{record_id}")
def read_directory_audit(record_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    odata.parse(request, paged=False)
    with transaction(request) as session:
        body = audit_json(queries.directory_audit(session, record_id.lower()))
    return graph_json(ctx, {"@odata.context": odata_context(request, "auditLogs/directoryAudits/$entity"), **body})
