"""Conditional Access: /identity/conditionalAccess/policies (alias /policies/conditionalAccessPolicies),
/identity/conditionalAccess/namedLocations and What If (POST /identity/conditionalAccess/evaluate)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from .. import conditional_access as ca
from ..context import RequestContext
from ..core import access, errors
from ..core.access import ClientAppType, Platform
from ..core.errors import PassgateError
from ..directory import is_guid
from ..store.tables import User
from . import odata
from .base import F, bad_request, graph_json, json_body, no_content, odata_context, require, transaction, under
from .policies import override_requested

router = APIRouter()

READ = require("Policy.Read.All", "Policy.Read.ConditionalAccess", "Policy.ReadWrite.ConditionalAccess")
WRITE = require("Policy.ReadWrite.ConditionalAccess")
POLICIES = ("/identity/conditionalAccess/policies", "/policies/conditionalAccessPolicies")
LOCATIONS = "/identity/conditionalAccess/namedLocations"
POLICY_SET = "identity/conditionalAccess/policies"
LOCATION_SET = "identity/conditionalAccess/namedLocations"


def _routes(method: str, suffix: str) -> Callable[[F], F]:
    return under(router, POLICIES, method, suffix)


# -- policies -------------------------------------------------------------------------------------------
@_routes("get", "")
def list_policies(request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    query = odata.parse(request, filterable=("displayName", "state"), paged=False)
    with transaction(request) as session:
        items = [ca.policy_document(session, r) for r in ca.list_policies(session)]
    items = odata.filtered(items, query)
    return graph_json(ctx, {"@odata.context": odata_context(request, POLICY_SET), "value": items})


@_routes("post", "")
async def create_policy(request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    body = await json_body(request)
    with transaction(request) as session:
        row = ca.create_policy(session, ctx, body, override_requested(request))
        doc = ca.policy_document(session, row)
    return graph_json(ctx, {"@odata.context": odata_context(request, POLICY_SET + "/$entity"), **doc}, status=201)


@_routes("get", "/{policy_id}")
def get_policy(policy_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    with transaction(request) as session:
        doc = ca.policy_document(session, ca.get_policy(session, policy_id))
    return graph_json(ctx, {"@odata.context": odata_context(request, POLICY_SET + "/$entity"), **doc})


@_routes("patch", "/{policy_id}")
async def update_policy(policy_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    body = await json_body(request)
    with transaction(request) as session:
        ca.update_policy(session, ctx, policy_id, body, override_requested(request))
    return no_content(ctx)


@_routes("delete", "/{policy_id}")
def delete_policy(policy_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    with transaction(request) as session:
        ca.delete_policy(session, ctx, policy_id)
    return no_content(ctx)


# -- named locations -------------------------------------------------------------------------------------
@router.get(LOCATIONS)
def list_locations(request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    query = odata.parse(request, filterable=("displayName",), paged=False)
    with transaction(request) as session:
        items = [ca.location_document(r) for r in ca.list_locations(session)]
    items = odata.filtered(items, query)
    return graph_json(ctx, {"@odata.context": odata_context(request, LOCATION_SET), "value": items})


@router.post(LOCATIONS)
async def create_location(request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    body = await json_body(request)
    with transaction(request) as session:
        doc = ca.location_document(ca.create_location(session, ctx, body))
    return graph_json(ctx, {"@odata.context": odata_context(request, LOCATION_SET + "/$entity"), **doc}, status=201)


@router.get(LOCATIONS + "/{location_id}")
def get_location(location_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    with transaction(request) as session:
        doc = ca.location_document(ca.get_location(session, location_id))
    return graph_json(ctx, {"@odata.context": odata_context(request, LOCATION_SET + "/$entity"), **doc})


@router.patch(LOCATIONS + "/{location_id}")
async def update_location(location_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    body = await json_body(request)
    with transaction(request) as session:
        ca.update_location(session, ctx, location_id, body)
    return no_content(ctx)


@router.delete(LOCATIONS + "/{location_id}")
def delete_location(location_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    with transaction(request) as session:
        ca.delete_location(session, ctx, location_id)
    return no_content(ctx)


# -- What If ------------------------------------------------------------------------------------------------
_USER_ACTIONS = {"registerSecurityInformation": access.REGISTER_SECURITY_INFO}
# Conditions Passgate's policies cannot hold (risk, country, device state): accepted and, exactly, irrelevant.
_IGNORED_CONDITIONS = ("signInRiskLevel", "userRiskLevel", "servicePrincipalRiskLevel", "insiderRiskLevel",
                       "country", "authenticationFlow", "deviceInfo")


def _object(body: dict[str, Any], prop: str, required: bool = True) -> dict[str, Any]:
    value = body.get(prop)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"Property '{prop}' must be an object.")
    return value


def _enum(value: Any, prop: str, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    found = next((a for a in allowed if isinstance(value, str) and a.lower() == value.lower()), None)
    if found is None:
        raise bad_request(f"signInConditions.{prop} must be one of {', '.join(allowed)}.")
    return found


@router.post("/identity/conditionalAccess/evaluate")
async def evaluate(request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    body = await json_body(request)
    for key in body:
        if key not in ("signInIdentity", "signInContext", "signInConditions", "appliedPoliciesOnly"):
            raise bad_request(f"Property '{str(key)[:80]}' does not exist on the evaluate action.")
    identity = _object(body, "signInIdentity")
    if identity.get("@odata.type") == "#microsoft.graph.servicePrincipalSignIn":
        raise bad_request("Passgate has no policies for workload identities; use #microsoft.graph.userSignIn.")
    if identity.get("@odata.type", "#microsoft.graph.userSignIn") != "#microsoft.graph.userSignIn":
        raise bad_request("signInIdentity must be a #microsoft.graph.userSignIn with userId.")
    user_id = identity.get("userId")
    context = _object(body, "signInContext")
    kind = context.get("@odata.type")
    apps: list[str] = []
    action = None
    if kind == "#microsoft.graph.applicationContext":
        raw = context.get("includeApplications")
        if not isinstance(raw, list) or not raw or not all(isinstance(a, str) for a in raw):
            raise bad_request("signInContext.includeApplications must list at least one appId.")
        apps = [a.lower() for a in raw]
    elif kind == "#microsoft.graph.userActionContext":
        action = _USER_ACTIONS.get(str(context.get("userAction")))
        if action is None:
            raise bad_request("signInContext.userAction must be 'registerSecurityInformation'.")
    else:
        raise bad_request("signInContext must be a #microsoft.graph.applicationContext or "
                          "#microsoft.graph.userActionContext (authentication contexts are not supported).")
    conditions = _object(body, "signInConditions", required=False)
    for key in conditions:
        if key not in ("devicePlatform", "clientAppType", "ipAddress", *_IGNORED_CONDITIONS):
            raise bad_request(f"Property 'signInConditions.{str(key)[:80]}' does not exist.")
    platform = _enum(conditions.get("devicePlatform"), "devicePlatform", tuple(str(p) for p in Platform))
    client = _enum(conditions.get("clientAppType"), "clientAppType", tuple(str(c) for c in ClientAppType))
    ip = conditions.get("ipAddress")
    if ip is not None:
        try:
            ipaddress.ip_address(ip if isinstance(ip, str) else "")
        except ValueError:
            raise bad_request("signInConditions.ipAddress must be an IPv4 or IPv6 address.") from None
    applied_only = body.get("appliedPoliciesOnly", False)
    if not isinstance(applied_only, bool):
        raise bad_request("Property 'appliedPoliciesOnly' must be true or false.")
    with transaction(request) as session:
        if not isinstance(user_id, str) or not is_guid(user_id) or session.get(User, user_id.lower()) is None:
            raise PassgateError(errors.INVALID_REQUEST, f"signInIdentity.userId {str(user_id)[:64]!r} is no user here.")
        results = ca.what_if(
            session, user_id=user_id.lower(), now=ctx.now, app_ids=apps, user_action=action, ip_address=ip,
            platform=Platform(platform) if platform else None,
            client_app_type=ClientAppType(client) if client else None,
        )
        value = [
            {**ca.policy_document(session, row), "policyApplies": e.applies,
             "analysisReasons": ",".join(str(r) for r in e.reasons)}
            for row, e in results if e.applies or not applied_only
        ]
    return graph_json(ctx, {
        "@odata.context": odata_context(request, "Collection(microsoft.graph.whatIfAnalysisResult)"),
        "value": value,
    })
