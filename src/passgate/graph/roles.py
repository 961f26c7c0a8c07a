"""/roleManagement/directory: the built-in role definitions and who holds them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from .. import directory
from ..context import RequestContext
from ..core import errors
from ..core.errors import PassgateError
from ..core.roles import ROLES, Role
from ..store.tables import RoleAssignment
from . import odata
from .base import (
    STRING,
    bad_request,
    check_properties,
    graph_json,
    json_body,
    no_content,
    odata_context,
    require,
    transaction,
)

router = APIRouter(prefix="/roleManagement/directory")

READ = require("RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory")
WRITE = require("RoleManagement.ReadWrite.Directory")
ASSIGNMENT_TYPE = "microsoft.graph.unifiedRoleAssignment"
_DEFINITIONS = "roleManagement/directory/roleDefinitions"
_ASSIGNMENTS = "roleManagement/directory/roleAssignments"
_CREATE = {"roleDefinitionId": STRING, "principalId": STRING, "directoryScopeId": STRING}
_FILTERS = {"principalId": RoleAssignment.principal_id, "roleDefinitionId": RoleAssignment.role_definition_id}


def definition_json(role: Role) -> dict[str, Any]:
    return {
        "id": role.template_id,
        "displayName": role.display_name,
        "description": role.description,
        "isBuiltIn": True,
        "isEnabled": True,
        "resourceScopes": ["/"],
        "templateId": role.template_id,
    }


def assignment_json(assignment: RoleAssignment) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "roleDefinitionId": assignment.role_definition_id,
        "principalId": assignment.principal_id,
        "directoryScopeId": assignment.directory_scope_id,
    }


def list_assignments(session: Session, query: odata.Query) -> list[RoleAssignment]:
    statement = select(RoleAssignment)
    if query.filter is not None:
        prop, value = query.filter
        statement = statement.where(_FILTERS[prop] == value.lower())
    return odata.page(session, statement, RoleAssignment.id, query)


@router.get("/roleDefinitions")
def list_definitions(request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    query = odata.parse(request, filterable=("displayName",), paged=False)
    roles = sorted(ROLES.values(), key=lambda r: r.display_name)
    if query.filter is not None:
        roles = [r for r in roles if r.display_name.lower() == query.filter[1].lower()]
    body = {"@odata.context": odata_context(request, _DEFINITIONS), "value": [definition_json(r) for r in roles]}
    return graph_json(ctx, body)


@router.get("/roleDefinitions/{role_id}")
def read_definition(role_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    odata.parse(request, paged=False)
    role = ROLES.get(role_id.lower())
    if role is None:
        raise PassgateError(errors.NOT_FOUND, f"No role definition has the id {role_id[:64]!r}.")
    body = {"@odata.context": odata_context(request, f"{_DEFINITIONS}/$entity"), **definition_json(role)}
    return graph_json(ctx, body)


@router.post("/roleAssignments")
def create_assignment(
    request: Request, ctx: RequestContext = Depends(WRITE), body: dict[str, Any] = Depends(json_body)
) -> Response:
    values = check_properties(body, _CREATE, ASSIGNMENT_TYPE)
    for required in ("roleDefinitionId", "principalId"):
        if required not in values:
            raise bad_request(f"Property '{required}' is required.")
    if not directory.is_guid(values["principalId"]):
        raise bad_request("Property 'principalId' must be the id (a GUID) of a user.")
    with transaction(request) as session:
        user = directory.get_user(session, values["principalId"])
        assignment = directory.assign_role(
            session, ctx, values["roleDefinitionId"], user, values.get("directoryScopeId", "/")
        )
        created = {"@odata.context": odata_context(request, f"{_ASSIGNMENTS}/$entity"), **assignment_json(assignment)}
    return graph_json(ctx, created, 201)


@router.get("/roleAssignments")
def list_all_assignments(request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    query = odata.parse(request, filterable=tuple(_FILTERS))
    with transaction(request) as session:
        rows = list_assignments(session, query)
    context = odata_context(request, _ASSIGNMENTS)
    return graph_json(ctx, odata.collection(request, context, rows, query, assignment_json))


@router.get("/roleAssignments/{assignment_id}")
def read_assignment(assignment_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    odata.parse(request, paged=False)
    with transaction(request) as session:
        assignment = directory.get_role_assignment(session, assignment_id)
    body = {"@odata.context": odata_context(request, f"{_ASSIGNMENTS}/$entity"), **assignment_json(assignment)}
    return graph_json(ctx, body)


@router.delete("/roleAssignments/{assignment_id}")
def delete_assignment(assignment_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    with transaction(request) as session:
        directory.remove_role(session, ctx, directory.get_role_assignment(session, assignment_id))
    return no_content(ctx)
