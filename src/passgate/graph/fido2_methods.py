"""A user's passkeys in Graph's shape (entra-graph.md §4): fido2Methods and the mixed methods collection.

Two callers share the same operations:

* `/users/{id|upn}/authentication/...`: an app holding UserAuthenticationMethod.Read.All (reads) or
  UserAuthenticationMethod.ReadWrite.All (everything). Admin provisioning: `creationOptions` issues a
  registration challenge bound to the calling app, and only that app can POST the answer to it.
* `/me/authentication/...`: the user of the browser session cookie (no delegated tokens yet); the
  challenge is bound to the browser's agent cookie, and state-changing calls must come from one of
  PASSGATE_ORIGINS.

Registration and deletion are the registry's (ceremony, policy, audit); this module only translates.
Passgate's own facts are extra properties a Graph client ignores: `passgateUsability` and
`attestationTrustAnchor`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from .. import directory
from ..context import RequestContext
from ..core import errors
from ..core.errors import PassgateError
from ..passkeys import aaguids, challenges, registry
from ..signin import taps
from ..store.tables import Passkey, TemporaryAccessPass, User
from ..web import api as web_api
from ..web.deps import request_context, services
from . import legacy_methods, odata
from .authentication import READ, tap_json
from .base import (
    NULLABLE_STRING,
    Kind,
    bad_request,
    check_properties,
    graph_json,
    iso,
    json_body,
    no_content,
    odata_context,
    require,
    shown,
    transaction,
)

FIDO2_TYPE = "microsoft.graph.fido2AuthenticationMethod"
OPTIONS_TYPE = "microsoft.graph.webauthnCredentialCreationOptions"
TIMEOUT_PARAMETER = "challengeTimeoutInMinutes"
DEFAULT_TIMEOUT_MINUTES = 5  # v1.0's fixed timeout, and beta's default
MIN_TIMEOUT_MINUTES, MAX_TIMEOUT_MINUTES = 5, 43200
PROPERTIES = (
    "id", "displayName", "createdDateTime", "aaGuid", "model", "attestationCertificates", "attestationLevel",
    "passkeyType", "attestationTrustAnchor", "passgateUsability",
)
_OBJECT: Kind = (dict,)
_CREATE = {"displayName": NULLABLE_STRING, "publicKeyCredential": _OBJECT}
_CALL = re.compile(r"creationOptions(?:\((?P<args>[^()]*)\))?", re.IGNORECASE)
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,9}")

users_router = APIRouter(prefix="/users/{user_ref}/authentication")
me_router = APIRouter(prefix="/me/authentication")
router = APIRouter()


# -- serialising --------------------------------------------------------------------------------
def is_beta(request: Request) -> bool:
    return request.url.path.split("/")[1] == "beta"


def fido2_json(passkey: Passkey, beta: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "@odata.type": f"#{FIDO2_TYPE}",
        "id": passkey.id,
        "displayName": passkey.display_name,
        "createdDateTime": iso(passkey.created_at),
        "aaGuid": passkey.aaguid,
        "model": passkey.model or aaguids.model_name(passkey.aaguid),
        "attestationCertificates": [str(t) for t in passkey.attestation_certificates or []],
        "attestationLevel": passkey.attestation_level,
        "passkeyType": passkey.passkey_type,
    }
    if beta:
        out["lastUsedDateTime"] = iso(passkey.last_used_at)
    out["attestationTrustAnchor"] = passkey.attestation_trust_anchor
    out["passgateUsability"] = {
        "isUsable": passkey.unusable_code is None and passkey.unusable_reason is None,
        "reason": passkey.unusable_reason,
        "errorCode": passkey.unusable_code,
    }
    return out


def _collection(user: User, name: str) -> str:
    return f"users('{user.id}')/authentication/{name}"


def _selectable(request: Request) -> tuple[str, ...]:
    return (*PROPERTIES, "lastUsedDateTime") if is_beta(request) else PROPERTIES


# -- who is asking -------------------------------------------------------------------------------
FindUser = Callable[[Session], User]


@dataclass(frozen=True, slots=True)
class Caller:
    """The audited actor, how the user is found, and whether it is the user acting on their own methods."""

    ctx: RequestContext
    find: FindUser
    self_service: bool


def _admin(ctx: RequestContext, user_ref: str) -> Caller:
    return Caller(ctx, lambda session: directory.get_user(session, user_ref), self_service=False)


def _app_binding(ctx: RequestContext) -> str:
    return challenges.binding_of(f"app:{ctx.actor.id}")


def _me(request: Request, ctx: RequestContext) -> Caller:
    """The signed-in user (401 without a live session), acting as themselves."""
    _, user = web_api.signed_in(request, services(request), ctx)
    user_id = user.id

    def find(session: Session) -> User:
        found = session.get(User, user_id)
        if found is None:  # deleted since the session was read
            raise PassgateError(errors.SESSION_REQUIRED)
        return found

    return Caller(web_api.as_user_actor(ctx, user), find, self_service=True)


# Graph's newer least-privilege passkey permissions are accepted beside the general method permissions.
READ_PASSKEYS = require("UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All",
                        "UserAuthMethod-Passkey.Read.All", "UserAuthMethod-Passkey.ReadWrite.All")
WRITE = require("UserAuthenticationMethod.ReadWrite.All", "UserAuthMethod-Passkey.ReadWrite.All")

# -- the operations -----------------------------------------------------------------------------
def _passkey(session: Session, user: User, method_id: str) -> Passkey:
    if not directory.is_guid(method_id):  # also keeps NUL and overlong ids away from the database
        raise PassgateError(errors.NOT_FOUND, f"The user has no passkey with the id {shown(method_id, 64)!r}.")
    return registry.get(session, user, method_id.lower())


def _list(request: Request, caller: Caller) -> Response:
    query = odata.parse(request, selectable=_selectable(request), paged=False)
    beta = is_beta(request)
    with transaction(request) as session:
        user = caller.find(session)
        rows = registry.of_user(session, user.id)
        context = odata_context(request, odata.fragment(_collection(user, "fido2Methods"), query))
        body = {"@odata.context": context, "value": [odata.project(fido2_json(p, beta), query) for p in rows]}
    return graph_json(caller.ctx, body)


def _read(request: Request, caller: Caller, method_id: str) -> Response:
    query = odata.parse(request, selectable=_selectable(request), paged=False)
    with transaction(request) as session:
        user = caller.find(session)
        passkey = _passkey(session, user, method_id)
        context = odata_context(request, odata.fragment(_collection(user, "fido2Methods"), query) + "/$entity")
        body = {"@odata.context": context, **odata.project(fido2_json(passkey, is_beta(request)), query)}
    return graph_json(caller.ctx, body)


def timeout_minutes(request: Request, segment: str) -> int:
    """The challenge lifetime asked for by `creationOptions` or `creationOptions(challengeTimeoutInMinutes=n)`.

    The function form with a value is beta's; an OData parameter alias (`=@t` with `?@t=10`) is understood.
    """
    match = _CALL.fullmatch(segment)
    args = (match.group("args") or "").strip() if match else ""
    if not args:
        return DEFAULT_TIMEOUT_MINUTES
    name, equals, raw = args.partition("=")
    if not equals or name.strip().lower() != TIMEOUT_PARAMETER.lower():
        raise bad_request(f"creationOptions takes one parameter, {TIMEOUT_PARAMETER}; {shown(args, 60)!r} is not it.")
    if not is_beta(request):
        raise bad_request(
            f"{TIMEOUT_PARAMETER} is only supported on /beta; /v1.0 uses a fixed 5-minute challenge timeout."
        )
    raw = raw.strip()
    if raw.startswith("@"):
        aliased = request.query_params.get(raw)
        if aliased is None:
            raise bad_request(f"{TIMEOUT_PARAMETER} names the parameter alias {shown(raw, 40)}, which is not given.")
        raw = aliased.strip()
    if not _WHOLE_NUMBER.fullmatch(raw) or not MIN_TIMEOUT_MINUTES <= int(raw) <= MAX_TIMEOUT_MINUTES:
        raise bad_request(
            f"{TIMEOUT_PARAMETER} must be a whole number of minutes from {MIN_TIMEOUT_MINUTES} to "
            f"{MAX_TIMEOUT_MINUTES}, not {shown(raw, 40)!r}."
        )
    return int(raw)


def _creation_options(request: Request, caller: Caller, segment: str, binding: str) -> Response:
    odata.parse(request, paged=False)
    minutes = timeout_minutes(request, segment)
    svc = services(request)
    with transaction(request, write=True) as session:  # a GET that writes: the challenge
        user = caller.find(session)
        public_key = registry.creation_options(
            session, caller.ctx, svc.settings, binding, user,
            challenge_seconds=minutes * 60, self_service=caller.self_service,
        )
    body = {
        "@odata.context": odata_context(request, OPTIONS_TYPE),
        "@odata.type": f"#{OPTIONS_TYPE}",
        "challengeTimeoutDateTime": iso(caller.ctx.now + timedelta(minutes=minutes)),
        "publicKey": public_key,
    }
    return graph_json(caller.ctx, body)


def webauthn_credential(value: dict[str, Any]) -> dict[str, Any]:
    """Graph's webauthnPublicKeyCredential ({id, response, clientExtensionResults}) as RegistrationResponseJSON,
    which also has `rawId` (the same bytes as `id`) and `type`; a client that sends them is taken at its word."""
    credential = dict(value)
    credential.setdefault("rawId", credential.get("id"))
    credential.setdefault("type", "public-key")
    return credential


def _register(request: Request, caller: Caller, body: dict[str, Any], binding: str) -> Response:
    values = check_properties(body, _CREATE, FIDO2_TYPE)
    if "publicKeyCredential" not in values:
        raise bad_request(
            "Property 'publicKeyCredential' is required: the authenticator's answer to creationOptions, "
            "{id, response: {clientDataJSON, attestationObject}, clientExtensionResults}."
        )
    settings = services(request).settings
    with transaction(request) as session:
        user = caller.find(session)
        passkey = registry.register(
            session, caller.ctx, settings, binding, user, webauthn_credential(values["publicKeyCredential"]),
            values.get("displayName"), self_service=caller.self_service,
        )
        context = odata_context(request, _collection(user, "fido2Methods") + "/$entity")
        created = {"@odata.context": context, **fido2_json(passkey, is_beta(request))}
    return graph_json(caller.ctx, created, 201)


def _delete(request: Request, caller: Caller, method_id: str) -> Response:
    with transaction(request) as session:
        user = caller.find(session)
        registry.remove(session, caller.ctx, user, _passkey(session, user, method_id), self_service=caller.self_service)
    return no_content(caller.ctx)


def _all_methods(session: Session, user: User, caller: Caller, beta: bool) -> list[dict[str, Any]]:
    items = [fido2_json(p, beta) for p in registry.of_user(session, user.id)]
    row: TemporaryAccessPass | None = taps.pass_of(session, user)
    if row is not None:
        items.append(tap_json(row, taps.usability(session, row, caller.ctx.now)))
    return items + legacy_methods.methods_of(session, user)


def _methods(request: Request, caller: Caller) -> Response:
    odata.parse(request, paged=False)
    with transaction(request) as session:
        user = caller.find(session)
        body = {
            "@odata.context": odata_context(request, _collection(user, "methods")),
            "value": _all_methods(session, user, caller, is_beta(request)),
        }
    return graph_json(caller.ctx, body)


def _method(request: Request, caller: Caller, method_id: str) -> Response:
    odata.parse(request, paged=False)
    with transaction(request) as session:
        user = caller.find(session)
        found = next(
            (m for m in _all_methods(session, user, caller, is_beta(request)) if m["id"] == method_id.lower()), None
        )
        if found is None:
            raise PassgateError(
                errors.NOT_FOUND, f"The user has no authentication method with the id {shown(method_id, 64)!r}."
            )
        body = {"@odata.context": odata_context(request, _collection(user, "methods") + "/$entity"), **found}
    return graph_json(caller.ctx, body)


def _is_call(segment: str) -> bool:
    return _CALL.fullmatch(segment) is not None


# -- /users/{id|upn}/authentication ------------------------------------------------------------
@users_router.get("/fido2Methods")
def list_passkeys(user_ref: str, request: Request, ctx: RequestContext = Depends(READ_PASSKEYS)) -> Response:
    return _list(request, _admin(ctx, user_ref))


@users_router.get("/fido2Methods/{method_id}")
def read_passkey(
    user_ref: str, method_id: str, request: Request, ctx: RequestContext = Depends(request_context)
) -> Response:
    """One passkey, or the creationOptions function (which needs the write permission: it issues a challenge)."""
    if _is_call(method_id):
        ctx = WRITE(request, ctx)
        return _creation_options(request, _admin(ctx, user_ref), method_id, _app_binding(ctx))
    return _read(request, _admin(READ_PASSKEYS(request, ctx), user_ref), method_id)


@users_router.post("/fido2Methods")
def register_passkey(
    user_ref: str, request: Request, ctx: RequestContext = Depends(WRITE), body: dict[str, Any] = Depends(json_body)
) -> Response:
    return _register(request, _admin(ctx, user_ref), body, _app_binding(ctx))


@users_router.delete("/fido2Methods/{method_id}")
def delete_passkey(user_ref: str, method_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    return _delete(request, _admin(ctx, user_ref), method_id)


@users_router.get("/methods")
def list_methods(user_ref: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    return _methods(request, _admin(ctx, user_ref))


@users_router.get("/methods/{method_id}")
def read_method(user_ref: str, method_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    return _method(request, _admin(ctx, user_ref), method_id)


# -- /me/authentication: the signed-in user (browser session) -------------------------------------
def _reader(request: Request, ctx: RequestContext = Depends(request_context)) -> Caller:
    return _me(request, ctx)


def _writer(request: Request, ctx: RequestContext = Depends(request_context)) -> Caller:
    web_api.check_origin(request)  # before anything else: a cross-site request learns nothing
    return _me(request, ctx)


@me_router.get("/fido2Methods")
def my_passkeys(request: Request, caller: Caller = Depends(_reader)) -> Response:
    return _list(request, caller)


@me_router.get("/fido2Methods/{method_id}")
def my_passkey(method_id: str, request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    if not _is_call(method_id):
        return _read(request, _me(request, ctx), method_id)
    caller = _writer(request, ctx)  # creationOptions writes a challenge
    carrier = Response()  # carries the agent cookie when this browser has none yet
    answer = _creation_options(request, caller, method_id, web_api.agent_binding(request, carrier))
    for cookie in carrier.headers.getlist("set-cookie"):
        answer.headers.append("set-cookie", cookie)
    return answer


@me_router.post("/fido2Methods")
def register_my_passkey(
    request: Request, caller: Caller = Depends(_writer), body: dict[str, Any] = Depends(json_body)
) -> Response:
    return _register(request, caller, body, web_api.agent_of(request))


@me_router.delete("/fido2Methods/{method_id}")
def delete_my_passkey(method_id: str, request: Request, caller: Caller = Depends(_writer)) -> Response:
    return _delete(request, caller, method_id)


@me_router.get("/methods")
def my_methods(request: Request, caller: Caller = Depends(_reader)) -> Response:
    return _methods(request, caller)


@me_router.get("/methods/{method_id}")
def my_method(method_id: str, request: Request, caller: Caller = Depends(_reader)) -> Response:
    return _method(request, caller, method_id)


router.include_router(users_router)
router.include_router(me_router)
