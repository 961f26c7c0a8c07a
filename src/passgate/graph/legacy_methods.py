"""/users/{id|upn}/authentication/passwordMethods and softwareOathMethods in Graph's shapes.

The password is never returned: `password` is always null, except that `resetPassword` without a
`newPassword` answers with the password it generated, once. A TOTP seed (`secretKey`) is never returned.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from .. import directory
from ..context import RequestContext
from ..core import errors
from ..core.errors import PassgateError
from ..signin import oath, passwords
from ..store.tables import Password, SoftwareOathMethod, User
from . import odata
from .authentication import READ, WRITE
from .base import NULLABLE_STRING, check_properties, graph_json, iso, json_body, no_content, odata_context, shown
from .base import transaction as graph_transaction

PASSWORD_TYPE = "microsoft.graph.passwordAuthenticationMethod"
OATH_TYPE = "microsoft.graph.softwareOathAuthenticationMethod"
RESET_RESPONSE = "microsoft.graph.passwordResetResponse"
_RESET = {"newPassword": NULLABLE_STRING}

router = APIRouter(prefix="/users/{user_ref}/authentication")


def password_json(row: Password) -> dict[str, Any]:
    return {"@odata.type": f"#{PASSWORD_TYPE}", "id": passwords.METHOD_ID, "password": None,
            "createdDateTime": iso(row.created_at)}


def oath_json(row: SoftwareOathMethod) -> dict[str, Any]:
    # displayName and the times are Passgate's additions; a Graph client ignores them.
    return {"@odata.type": f"#{OATH_TYPE}", "id": row.id, "secretKey": None, "displayName": row.display_name,
            "createdDateTime": iso(row.created_at), "lastUsedDateTime": iso(row.last_used_at)}


def methods_of(session: Session, user: User) -> list[dict[str, Any]]:
    """The user's password and authenticator apps, for the mixed `methods` collection."""
    row = passwords.password_of(session, user)
    return ([password_json(row)] if row else []) + [oath_json(m) for m in oath.methods_of(session, user.id)]


def _context(request: Request, user: User, collection: str, entity: bool = False) -> str:
    return odata_context(request, f"users('{user.id}')/authentication/{collection}" + ("/$entity" if entity else ""))


def _the_password(session: Session, user: User, method_id: str) -> Password:
    row = passwords.password_of(session, user)
    if row is None or method_id.lower() != passwords.METHOD_ID:
        raise PassgateError(errors.NOT_FOUND, f"The user has no password method with the id {shown(method_id, 64)!r}.")
    return row


@router.get("/passwordMethods")
def list_passwords(user_ref: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    odata.parse(request, paged=False)
    with graph_transaction(request) as session:
        user = directory.get_user(session, user_ref)
        row = passwords.password_of(session, user)
        body = {"@odata.context": _context(request, user, "passwordMethods"),
                "value": [password_json(row)] if row else []}
    return graph_json(ctx, body)


@router.get("/passwordMethods/{method_id}")
def read_password(user_ref: str, method_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    odata.parse(request, paged=False)
    with graph_transaction(request) as session:
        user = directory.get_user(session, user_ref)
        body = {"@odata.context": _context(request, user, "passwordMethods", entity=True),
                **password_json(_the_password(session, user, method_id))}
    return graph_json(ctx, body)


def _reset(user_ref: str, method_id: str, request: Request, ctx: RequestContext, body: dict[str, Any]) -> Response:
    values = check_properties(body, _RESET, RESET_RESPONSE)
    if method_id.lower() != passwords.METHOD_ID:
        raise PassgateError(errors.NOT_FOUND, f"The password method's id is {passwords.METHOD_ID}, "
                                              f"not {shown(method_id, 64)!r}.")
    given = values.get("newPassword")
    new = given if given is not None else passwords.generate()
    with graph_transaction(request) as session:
        user = directory.get_user(session, user_ref)
        passwords.set_password(session, ctx, user, new, self_service=False)
    # Graph answers 202 (a long-running operation); the password is done at once here. A generated password is
    # in this answer only.
    return graph_json(ctx, {"@odata.context": odata_context(request, RESET_RESPONSE),
                            "newPassword": None if given is not None else new}, 202)


@router.post("/passwordMethods/{method_id}/resetPassword")
def reset_password(user_ref: str, method_id: str, request: Request, ctx: RequestContext = Depends(WRITE),
                   body: dict[str, Any] = Depends(json_body)) -> Response:
    return _reset(user_ref, method_id, request, ctx, body)


@router.post("/methods/{method_id}/resetPassword")
def reset_password_by_method(user_ref: str, method_id: str, request: Request, ctx: RequestContext = Depends(WRITE),
                             body: dict[str, Any] = Depends(json_body)) -> Response:
    """v1.0 documents resetPassword on the mixed methods collection; both paths do the same."""
    return _reset(user_ref, method_id, request, ctx, body)


@router.get("/softwareOathMethods")
def list_oath(user_ref: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    odata.parse(request, paged=False)
    with graph_transaction(request) as session:
        user = directory.get_user(session, user_ref)
        body = {"@odata.context": _context(request, user, "softwareOathMethods"),
                "value": [oath_json(m) for m in oath.methods_of(session, user.id)]}
    return graph_json(ctx, body)


@router.get("/softwareOathMethods/{method_id}")
def read_oath(user_ref: str, method_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    odata.parse(request, paged=False)
    with graph_transaction(request) as session:
        user = directory.get_user(session, user_ref)
        body = {"@odata.context": _context(request, user, "softwareOathMethods", entity=True),
                **oath_json(oath.get(session, user, method_id))}
    return graph_json(ctx, body)


@router.delete("/softwareOathMethods/{method_id}")
def delete_oath(user_ref: str, method_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    with graph_transaction(request) as session:
        user = directory.get_user(session, user_ref)
        oath.delete(session, ctx, user, oath.get(session, user, method_id), self_service=False)
    return no_content(ctx)
