"""/policies/authenticationMethodsPolicy and its method configurations (Fido2, TemporaryAccessPass, SoftwareOath,
Password)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from .. import methods_policy
from ..context import RequestContext
from ..core import errors, policy
from ..core.errors import PassgateError
from ..passkeys import enforcement
from ..store.tables import Setting
from .base import graph_json, json_body, no_content, odata_context, require, transaction

router = APIRouter()

READ = require("Policy.Read.All", "Policy.Read.AuthenticationMethod", "Policy.ReadWrite.AuthenticationMethod")
WRITE = require("Policy.ReadWrite.AuthenticationMethod")
POLICY = "/policies/authenticationMethodsPolicy"
CONFIG = POLICY + "/authenticationMethodConfigurations/{config_id}"
# Some Entra how-to pages leave out /policies; accepting the alias is cheap.
ALIAS = "/authenticationMethodsPolicy/authenticationMethodConfigurations/{config_id}"
POLICY_DOC = "AuthenticationMethodsPolicy"
# Sent by an administrator who means to save a change that leaves no Global Administrator a usable passkey.
OVERRIDE_HEADER = "Passgate-Override-Lockout"


def override_requested(request: Request) -> bool:
    """The admin confirmed a change that the lock-out guard would otherwise refuse."""
    return request.headers.get(OVERRIDE_HEADER, "").lower() == "true"


def _policy_doc(session: Any) -> dict[str, Any]:
    row = session.get(Setting, POLICY_DOC)
    stored = dict(row.value) if row is not None else {}
    return {
        "id": "authenticationMethodsPolicy",
        "displayName": "Authentication Methods Policy",
        "description": "The tenant-wide policy that controls which authentication methods are allowed.",
        "lastModifiedDateTime": stored.get("lastModifiedDateTime"),
        "policyVersion": "1.5",
        "policyMigrationState": stored.get("policyMigrationState", "migrationComplete"),
        "reconfirmationInDays": stored.get("reconfirmationInDays", 0),
        "registrationEnforcement": stored.get("registrationEnforcement", {
            "authenticationMethodsRegistrationCampaign": {
                "snoozeDurationInDays": 1, "enforceRegistrationAfterAllowedSnoozes": True, "state": "default",
                "excludeTargets": [], "includeTargets": [],
            }
        }),
    }


@router.get(POLICY)
def get_policy(request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    with transaction(request) as session:
        body = {"@odata.context": odata_context(request, "policies/authenticationMethodsPolicy/$entity"),
                **_policy_doc(session)}
        body["authenticationMethodConfigurations@odata.context"] = odata_context(
            request, "policies/authenticationMethodsPolicy/authenticationMethodConfigurations")
        body["authenticationMethodConfigurations"] = [
            methods_policy.load(session, cid) for cid in methods_policy.ODATA_TYPES
        ]
    return graph_json(ctx, body)


@router.patch(POLICY)
async def patch_policy(request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    patch = await json_body(request)
    allowed = {"@odata.type", "reconfirmationInDays", "registrationEnforcement", "policyMigrationState"}
    for key in patch:
        if key not in allowed:
            raise PassgateError(errors.INVALID_REQUEST, f"Property '{key}' cannot be changed on this resource.")
    if "reconfirmationInDays" in patch and not (
        isinstance(patch["reconfirmationInDays"], int) and 0 <= patch["reconfirmationInDays"] <= 365
    ):
        raise PassgateError(errors.INVALID_REQUEST, "Property 'reconfirmationInDays' must be 0 to 365.")
    if "policyMigrationState" in patch and patch["policyMigrationState"] not in (
        "preMigration", "migrationInProgress", "migrationComplete"
    ):
        raise PassgateError(errors.INVALID_REQUEST, "Property 'policyMigrationState' has an unknown value.")
    if "registrationEnforcement" in patch and not isinstance(patch["registrationEnforcement"], dict):
        raise PassgateError(errors.INVALID_REQUEST, "Property 'registrationEnforcement' must be an object.")
    with transaction(request) as session:
        row = session.get(Setting, POLICY_DOC)
        doc = dict(row.value) if row is not None else {}
        doc.update({k: v for k, v in patch.items() if k != "@odata.type"})
        doc["lastModifiedDateTime"] = ctx.now.isoformat().replace("+00:00", "Z")
        if row is None:
            session.add(Setting(name=POLICY_DOC, value=doc))
        else:
            row.value = doc
    return no_content(ctx)


@router.get(CONFIG)
@router.get(ALIAS, include_in_schema=False)
def get_configuration(config_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    cid = methods_policy.canonical_id(config_id)
    with transaction(request) as session:
        doc = methods_policy.load(session, cid)
    context = odata_context(request, "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity")
    return graph_json(ctx, {"@odata.context": context, **doc})


@router.patch(CONFIG)
@router.patch(ALIAS, include_in_schema=False)
async def patch_configuration(config_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    cid = methods_policy.canonical_id(config_id)
    patch = await json_body(request)
    odata_type = patch.get("@odata.type")
    if odata_type is None:
        raise PassgateError(errors.INVALID_REQUEST, "Property '@odata.type' is required when updating a configuration.")
    if odata_type != methods_policy.ODATA_TYPES[cid]:
        raise PassgateError(errors.INVALID_REQUEST,
                            f"Property '@odata.type' must be '{methods_policy.ODATA_TYPES[cid]}' for {cid}.")
    if "id" in patch and str(patch["id"]).lower() != cid.lower():
        raise PassgateError(errors.INVALID_REQUEST, f"Property 'id' must be '{cid}'.")
    with transaction(request) as session:
        current = methods_policy.load(session, cid)
        doc = methods_policy.MERGERS[cid](session, current, patch)
        if cid == methods_policy.FIDO2:
            _refuse_admin_lockout(session, current, doc, override_requested(request))
        methods_policy.save(session, ctx, cid, doc)
        if cid == methods_policy.FIDO2:
            enforcement.reevaluate(session, ctx)
    return no_content(ctx)


def _impact(session: Any, current: dict[str, Any], proposed: dict[str, Any]) -> tuple[list[policy.Loss], Any, Any,
                                                                                     bool]:
    holders, passkeys, users = enforcement.holders(session)
    old, new = methods_policy.fido2_policy(current), methods_policy.fido2_policy(proposed)
    return policy.impact(old, new, holders), passkeys, users, policy.locks_out_admins(old, new, holders)


def _loss_json(loss: policy.Loss, passkeys: Any, users: Any) -> dict[str, Any]:
    user = users[loss.user_id]
    return {
        "id": user.id, "userPrincipalName": user.user_principal_name, "displayName": user.display_name,
        "passkeysKept": loss.kept,
        "passkeysLost": [{"id": pid, "displayName": passkeys[pid].display_name, "aaGuid": passkeys[pid].aaguid,
                          "passkeyType": passkeys[pid].passkey_type} for pid in loss.lost],
    }


def _refuse_admin_lockout(session: Any, current: dict[str, Any], proposed: dict[str, Any], override: bool) -> None:
    losses, passkeys, users, locked_out = _impact(session, current, proposed)
    if locked_out and not override:
        admins = [_loss_json(x, passkeys, users) for x in losses if x.loses_every_passkey]
        raise PassgateError(
            errors.ADMIN_LOCKOUT,
            f"No Global Administrator would have a usable passkey left: "
            f"{', '.join(a['userPrincipalName'] for a in admins)}. Send the header '{OVERRIDE_HEADER}: true' "
            "to save it anyway.",
        )


@router.post(CONFIG + "/previewImpact")
async def preview_impact(config_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    """Passgate extension: who would lose which passkeys if this configuration were saved."""
    if methods_policy.canonical_id(config_id) != methods_policy.FIDO2:
        raise PassgateError(errors.INVALID_REQUEST, "previewImpact is available for the Fido2 configuration.")
    proposal = await json_body(request)
    with transaction(request) as session:
        current = methods_policy.load(session, methods_policy.FIDO2)
        proposed = methods_policy.merge_fido2(session, current, proposal)
        losses, passkeys, users, locked_out = _impact(session, current, proposed)
        everything = [_loss_json(x, passkeys, users) for x in losses if x.loses_every_passkey]
        some = [_loss_json(x, passkeys, users) for x in losses if not x.loses_every_passkey]
    return graph_json(ctx, {
        "usersLosingEveryPasskey": everything,
        "usersLosingSomePasskeys": some,
        "passkeysLosingAccess": sum(len(x.lost) for x in losses),
        "locksOutEveryGlobalAdministrator": locked_out,
    })


@router.delete(CONFIG)
@router.delete(ALIAS, include_in_schema=False)
def reset_configuration(config_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    cid = methods_policy.canonical_id(config_id)
    with transaction(request) as session:
        methods_policy.save(session, ctx, cid, methods_policy.DEFAULTS[cid](), reset=True)
        if cid == methods_policy.FIDO2:
            enforcement.reevaluate(session, ctx)
    return no_content(ctx)
