"""Authentication strengths at /policies/authenticationStrengthPolicies and
/identity/conditionalAccess/authenticationStrength/policies (the same resources), their combination
configurations, updateAllowedCombinations, usage, and the method modes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from .. import conditional_access as ca
from ..context import RequestContext
from ..core import strengths
from . import odata
from .base import F, graph_json, json_body, no_content, odata_context, require, transaction, under
from .policies import override_requested

router = APIRouter()

READ = require("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod")
# Graph accepts either permission for writing strengths.
WRITE = require("Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod")
ROOTS = ("/policies/authenticationStrengthPolicies", "/identity/conditionalAccess/authenticationStrength/policies")
MODES = "/identity/conditionalAccess/authenticationStrength/authenticationMethodModes"
ENTITY_SET = "policies/authenticationStrengthPolicies"

# Graph's authenticationMethodModeDetail: (mode, baseAuthenticationMethod, displayName).
MODE_DETAILS: tuple[tuple[str, str, str], ...] = (
    ("password", "password", "Password"),
    ("voice", "voice", "Voice call"),
    ("hardwareOath", "hardwareOath", "Hardware OATH tokens"),
    ("softwareOath", "softwareOath", "Software OATH tokens"),
    ("sms", "sms", "SMS"),
    ("fido2", "fido2", "Passkeys (FIDO2)"),
    ("windowsHelloForBusiness", "windowsHelloForBusiness", "Windows Hello For Business"),
    ("microsoftAuthenticatorPush", "microsoftAuthenticator", "Microsoft Authenticator (Push Notification)"),
    ("deviceBasedPush", "microsoftAuthenticator", "Microsoft Authenticator (Phone Sign-in)"),
    ("temporaryAccessPassOneTime", "temporaryAccessPass", "Temporary Access Pass (one-time use)"),
    ("temporaryAccessPassMultiUse", "temporaryAccessPass", "Temporary Access Pass (multi-use)"),
    ("email", "email", "Email one-time passcode"),
    ("x509CertificateSingleFactor", "x509Certificate", "Certificate-based authentication (single factor)"),
    ("x509CertificateMultiFactor", "x509Certificate", "Certificate-based authentication (multi-factor)"),
    ("federatedSingleFactor", "federation", "Federation (single factor)"),
    ("federatedMultiFactor", "federation", "Federation (multi-factor)"),
    ("qrCodePin", "qrCodePin", "QR code"),
)
assert tuple(m for m, _, _ in MODE_DETAILS) == strengths.ALL_MODES



def _entity(request: Request, body: dict[str, Any], fragment: str = ENTITY_SET + "/$entity") -> dict[str, Any]:
    return {"@odata.context": odata_context(request, fragment), **body}


def _routes(method: str, suffix: str) -> Callable[[F], F]:
    return under(router, ROOTS, method, suffix)


@_routes("get", "")
def list_strengths(request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    query = odata.parse(request, filterable=("policyType", "displayName"), paged=False)
    with transaction(request) as session:
        items = [ca.strength_document(s) for s in ca.list_strengths(session)]
    items = odata.filtered(items, query)
    return graph_json(ctx, {"@odata.context": odata_context(request, ENTITY_SET), "value": items})


@_routes("post", "")
async def create_strength(request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    body = await json_body(request)
    with transaction(request) as session:
        doc = ca.strength_document(ca.create_strength(session, ctx, body))
    return graph_json(ctx, _entity(request, doc), status=201)


@_routes("get", "/{strength_id}")
def get_strength(strength_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    with transaction(request) as session:
        doc = ca.strength_document(ca.get_strength(session, strength_id))
    return graph_json(ctx, _entity(request, doc))


@_routes("patch", "/{strength_id}")
async def update_strength(strength_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    body = await json_body(request)
    with transaction(request) as session:
        ca.update_strength(session, ctx, strength_id, body, override_requested(request))
    return no_content(ctx)


@_routes("delete", "/{strength_id}")
def delete_strength(strength_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    with transaction(request) as session:
        ca.delete_strength(session, ctx, strength_id)
    return no_content(ctx)


@_routes("post", "/{strength_id}/updateAllowedCombinations")
async def update_allowed_combinations(strength_id: str, request: Request,
                                      ctx: RequestContext = Depends(WRITE)) -> Response:
    body = await json_body(request)
    with transaction(request) as session:
        previous, current, policies = ca.update_allowed_combinations(session, ctx, strength_id, body,
                                                                            override_requested(request))
    return graph_json(ctx, {
        "@odata.context": odata_context(request, "microsoft.graph.updateAllowedCombinationsResult"),
        "additionalInformation": None,
        "conditionalAccessReferences": [p.id for p in policies],
        "currentCombinations": current,
        "previousCombinations": previous,
    })


@_routes("get", "/{strength_id}/usage")
@_routes("get", "/{strength_id}/usage()")
def usage(strength_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    with transaction(request) as session:
        stored = ca.get_strength(session, strength_id)
        policies = [ca.policy_document(session, p) for p in ca.strength_usage(session, stored.value.id)]
    mfa = stored.value.requirements_satisfied == "mfa"
    return graph_json(ctx, {
        "@odata.context": odata_context(request, "microsoft.graph.authenticationStrengthUsage"),
        "mfa": policies if mfa else [],
        "none": [] if mfa else policies,
    })


# -- combination configurations ----------------------------------------------------------------------
CONFIGS = "/{strength_id}/combinationConfigurations"


@_routes("get", CONFIGS)
def list_configurations(strength_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    with transaction(request) as session:
        stored = ca.get_strength(session, strength_id)
    return graph_json(ctx, {
        "@odata.context": odata_context(request, f"{ENTITY_SET}('{stored.value.id}')/combinationConfigurations"),
        "value": [ca.combination_configuration_document(c) for c in stored.value.configurations],
    })


@_routes("post", CONFIGS)
async def create_configuration(strength_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    body = await json_body(request)
    with transaction(request) as session:
        config = ca.add_combination_configuration(session, ctx, strength_id, body, override_requested(request))
    fragment = f"{ENTITY_SET}('{strength_id.lower()}')/combinationConfigurations/$entity"
    return graph_json(ctx, _entity(request, ca.combination_configuration_document(config), fragment), status=201)


@_routes("get", CONFIGS + "/{config_id}")
def get_configuration(strength_id: str, config_id: str, request: Request,
                      ctx: RequestContext = Depends(READ)) -> Response:
    with transaction(request) as session:
        config = ca.get_combination_configuration(session, strength_id, config_id)
    fragment = f"{ENTITY_SET}('{strength_id.lower()}')/combinationConfigurations/$entity"
    return graph_json(ctx, _entity(request, ca.combination_configuration_document(config), fragment))


@_routes("patch", CONFIGS + "/{config_id}")
async def update_configuration(strength_id: str, config_id: str, request: Request,
                               ctx: RequestContext = Depends(WRITE)) -> Response:
    body = await json_body(request)
    with transaction(request) as session:
        ca.update_combination_configuration(session, ctx, strength_id, config_id, body, override_requested(request))
        config = ca.get_combination_configuration(session, strength_id, config_id)
    fragment = f"{ENTITY_SET}('{strength_id.lower()}')/combinationConfigurations/$entity"
    return graph_json(ctx, _entity(request, ca.combination_configuration_document(config), fragment))


@_routes("delete", CONFIGS + "/{config_id}")
def delete_configuration(strength_id: str, config_id: str, request: Request,
                         ctx: RequestContext = Depends(WRITE)) -> Response:
    with transaction(request) as session:
        ca.delete_combination_configuration(session, ctx, strength_id, config_id)
    return no_content(ctx)


@router.get(MODES)
def method_modes(request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    return graph_json(ctx, {
        "@odata.context": odata_context(
            request, "identity/conditionalAccess/authenticationStrength/authenticationMethodModes"),
        "value": [{"id": m, "authenticationMethod": base, "displayName": name} for m, base, name in MODE_DETAILS],
    })
