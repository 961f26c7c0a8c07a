"""/users: create, list, read, update and delete directory users in Graph's shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from .. import directory
from ..context import RequestContext
from ..core.errors import PassgateError
from ..store.tables import User
from . import odata
from .base import (
    BOOLEAN,
    NULLABLE_OBJECT,
    NULLABLE_STRING,
    STRING,
    bad_request,
    check_properties,
    graph_json,
    iso,
    json_body,
    no_content,
    odata_context,
    require,
    transaction,
)

router = APIRouter()

READ = require("User.Read.All", "User.ReadWrite.All")
WRITE = require("User.ReadWrite.All")
ODATA_TYPE = "microsoft.graph.user"

PROPERTIES = (
    "id", "userPrincipalName", "displayName", "mail", "mailNickname", "accountEnabled", "createdDateTime",
)
_WRITABLE = {
    "userPrincipalName": STRING,
    "displayName": STRING,
    "accountEnabled": BOOLEAN,
    "mailNickname": NULLABLE_STRING,
    "mail": NULLABLE_STRING,
}
# Graph requires a passwordProfile on create; Passgate users are passwordless, so it is accepted and dropped.
_CREATE = {**_WRITABLE, "passwordProfile": NULLABLE_OBJECT}


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "displayName": user.display_name,
        "mail": user.mail,
        "mailNickname": user.mail_nickname,
        "accountEnabled": user.account_enabled,
        "createdDateTime": iso(user.created_at),
    }


def _entity(request: Request, user: User, query: odata.Query | None = None) -> dict[str, Any]:
    query = query or odata.Query()
    context = odata_context(request, odata.fragment("users", query) + "/$entity")
    return {"@odata.context": context, **odata.project(user_json(user), query)}


def list_users(session: Session, query: odata.Query) -> list[User]:
    statement = select(User)
    if query.filter is not None:
        try:
            upn = directory.check_upn(query.filter[1])
        except PassgateError:
            return []  # no stored user has a name of that shape
        statement = statement.where(User.user_principal_name == upn)
    return odata.page(session, statement, User.id, query)


@router.post("/users")
def create_user(
    request: Request, ctx: RequestContext = Depends(WRITE), body: dict[str, Any] = Depends(json_body)
) -> Response:
    values = check_properties(body, _CREATE, ODATA_TYPE)
    values.pop("passwordProfile", None)
    with transaction(request) as session:
        user = directory.create_user(session, ctx, values)
        return graph_json(ctx, _entity(request, user), 201)


@router.get("/users")
def list_all(request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    query = odata.parse(request, filterable=("userPrincipalName",), selectable=PROPERTIES)
    with transaction(request) as session:
        rows = list_users(session, query)
    context = odata_context(request, odata.fragment("users", query))
    return graph_json(ctx, odata.collection(request, context, rows, query, user_json))


@router.get("/users/{user_ref}")
def read(user_ref: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    query = odata.parse(request, selectable=PROPERTIES, paged=False)
    with transaction(request) as session:
        user = directory.get_user(session, user_ref)
        return graph_json(ctx, _entity(request, user, query))


@router.patch("/users/{user_ref}")
def update(
    user_ref: str, request: Request, ctx: RequestContext = Depends(WRITE), body: dict[str, Any] = Depends(json_body)
) -> Response:
    if "passwordProfile" in body:
        raise bad_request("Property 'passwordProfile' cannot be changed: Passgate users sign in without passwords.")
    values = check_properties(body, _WRITABLE, ODATA_TYPE)
    with transaction(request) as session:
        directory.update_user(session, ctx, directory.get_user(session, user_ref), values)
    return no_content(ctx)


@router.delete("/users/{user_ref}")
def delete(user_ref: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    with transaction(request) as session:
        directory.delete_user(session, ctx, directory.get_user(session, user_ref))
    return no_content(ctx)
