"""/groups: security groups and their members in Graph's shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from .. import directory
from ..context import RequestContext
from ..store.tables import Group, User
from . import odata
from .base import (
    BOOLEAN,
    NULLABLE_STRING,
    STRING,
    STRING_LIST,
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
from .users import user_json

router = APIRouter()

READ = require("Group.Read.All", "Group.ReadWrite.All")
WRITE = require("Group.ReadWrite.All")
ODATA_TYPE = "microsoft.graph.group"

PROPERTIES = (
    "id", "displayName", "description", "mailNickname", "mailEnabled", "securityEnabled", "groupTypes",
    "createdDateTime",
)
_CREATE = {
    "displayName": STRING,
    "description": NULLABLE_STRING,
    "mailNickname": STRING,
    "mailEnabled": BOOLEAN,
    "securityEnabled": BOOLEAN,
    "groupTypes": STRING_LIST,
}
_REFERENCE = {"@odata.id": STRING}
_REFERENCE_SETS = ("directoryobjects", "users")


def group_json(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "displayName": group.display_name,
        "description": group.description,
        "mailNickname": group.mail_nickname,
        "mailEnabled": False,
        "securityEnabled": group.security_enabled,
        "groupTypes": [],
        "createdDateTime": iso(group.created_at),
    }


def member_json(user: User) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.user", **user_json(user)}


def referenced_id(reference: str) -> str:
    """The object id at the end of an @odata.id such as https://graph.microsoft.com/v1.0/directoryObjects/{id}."""
    parts = reference.strip().split("?", 1)[0].rstrip("/").split("/")
    if len(parts) < 2 or parts[-2].lower() not in _REFERENCE_SETS or not directory.is_guid(parts[-1]):
        raise bad_request(
            f"Property '@odata.id' must reference a user, as in "
            f"https://graph.microsoft.com/v1.0/directoryObjects/{{id}}; got {shown(reference)!r}."
        )
    return parts[-1].lower()


def list_groups(session: Session, query: odata.Query) -> list[Group]:
    statement = select(Group)
    if query.filter is not None:
        statement = statement.where(Group.display_name == query.filter[1])
    return odata.page(session, statement, Group.id, query)


@router.post("/groups")
def create_group(
    request: Request, ctx: RequestContext = Depends(WRITE), body: dict[str, Any] = Depends(json_body)
) -> Response:
    values = check_properties(body, _CREATE, ODATA_TYPE)
    if values.get("groupTypes"):
        raise bad_request("Property 'groupTypes' must be empty: only security groups are supported.")
    with transaction(request) as session:
        group = directory.create_group(session, ctx, values)
        created = {"@odata.context": odata_context(request, "groups/$entity"), **group_json(group)}
    return graph_json(ctx, created, 201)


@router.get("/groups")
def list_all(request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    query = odata.parse(request, filterable=("displayName",), selectable=PROPERTIES)
    with transaction(request) as session:
        rows = list_groups(session, query)
    context = odata_context(request, odata.fragment("groups", query))
    return graph_json(ctx, odata.collection(request, context, rows, query, group_json))


@router.get("/groups/{group_id}")
def read(group_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    query = odata.parse(request, selectable=PROPERTIES, paged=False)
    with transaction(request) as session:
        group = directory.get_group(session, group_id)
    context = odata_context(request, odata.fragment("groups", query) + "/$entity")
    return graph_json(ctx, {"@odata.context": context, **odata.project(group_json(group), query)})


@router.delete("/groups/{group_id}")
def delete(group_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    with transaction(request) as session:
        directory.delete_group(session, ctx, directory.get_group(session, group_id))
    return no_content(ctx)


@router.get("/groups/{group_id}/members")
def members(group_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    odata.parse(request, paged=False)
    with transaction(request) as session:
        users = directory.group_members(session, directory.get_group(session, group_id))
    listing = {
        "@odata.context": odata_context(request, "directoryObjects"),
        "value": [member_json(u) for u in users],
    }
    return graph_json(ctx, listing)


@router.post("/groups/{group_id}/members/$ref")
def add_member(
    group_id: str, request: Request, ctx: RequestContext = Depends(WRITE), body: dict[str, Any] = Depends(json_body)
) -> Response:
    values = check_properties(body, _REFERENCE, "microsoft.graph.directoryObject")
    if "@odata.id" not in values:
        raise bad_request("Property '@odata.id' is required: the URL of the user to add.")
    user_id = referenced_id(values["@odata.id"])
    with transaction(request) as session:
        group = directory.get_group(session, group_id)
        directory.add_member(session, ctx, group, directory.get_user(session, user_id))
    return no_content(ctx)


@router.delete("/groups/{group_id}/members/{user_id}/$ref")
def remove_member(group_id: str, user_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    with transaction(request) as session:
        group = directory.get_group(session, group_id)
        directory.remove_member(session, ctx, group, directory.get_user(session, user_id))
    return no_content(ctx)
