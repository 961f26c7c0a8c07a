"""/roleManagement/directory: role definitions and assignments through the Graph-compatible admin API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from passgate.core.roles import AUTHENTICATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, GLOBAL_READER, ROLES
from passgate.store.db import Database
from tests.integration.graph_helpers import Graph, error_of

DEFINITIONS = "/roleManagement/directory/roleDefinitions"
ASSIGNMENTS = "/roleManagement/directory/roleAssignments"


@pytest.fixture
def graph(client: TestClient, db: Database) -> Graph:
    return Graph(client, db)


def _assign(graph: Graph, role: str, principal: str) -> dict[str, Any]:
    answer = graph.post(
        ASSIGNMENTS,
        {
            "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
            "roleDefinitionId": role,
            "principalId": principal,
            "directoryScopeId": "/",
        },
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_role_definitions_are_the_built_in_templates(graph: Graph) -> None:
    body = graph.get(DEFINITIONS).json()
    assert body["@odata.context"] == "http://localhost:8443/v1.0/$metadata#roleManagement/directory/roleDefinitions"
    assert {d["id"] for d in body["value"]} == set(ROLES)
    admin = next(d for d in body["value"] if d["id"] == GLOBAL_ADMINISTRATOR)
    assert admin["displayName"] == "Global Administrator"
    assert admin["templateId"] == GLOBAL_ADMINISTRATOR
    assert admin["isBuiltIn"] is True
    assert admin["description"]
    one = graph.get(f"{DEFINITIONS}/{GLOBAL_ADMINISTRATOR.upper()}")
    assert one.status_code == 200
    assert {k: v for k, v in one.json().items() if k != "@odata.context"} == admin
    named = graph.get(f"{DEFINITIONS}?$filter=displayName eq 'global reader'").json()["value"]
    assert [d["id"] for d in named] == [GLOBAL_READER]
    assert graph.get(f"{DEFINITIONS}/00000000-0000-0000-0000-000000000000").status_code == 404
    assert graph.get(f"{DEFINITIONS}/not-a-role").status_code == 404
    assert graph.get(f"{DEFINITIONS}?$filter=templateId eq 'x'").status_code == 400


def test_assign_read_list_filter_and_remove(graph: Graph) -> None:
    alice = graph.new_user("alice@contoso.example", "Alice")
    bob = graph.new_user("bob@contoso.example", "Bob")
    first = _assign(graph, GLOBAL_READER, alice["id"])
    assert first["@odata.context"] == (
        "http://localhost:8443/v1.0/$metadata#roleManagement/directory/roleAssignments/$entity"
    )
    assert {k: v for k, v in first.items() if k not in ("id", "@odata.context")} == {
        "roleDefinitionId": GLOBAL_READER,
        "principalId": alice["id"],
        "directoryScopeId": "/",
    }
    second = _assign(graph, AUTHENTICATION_ADMINISTRATOR.upper(), bob["id"].upper())
    assert (second["roleDefinitionId"], second["principalId"]) == (AUTHENTICATION_ADMINISTRATOR, bob["id"])
    third = _assign(graph, GLOBAL_ADMINISTRATOR, bob["id"])

    assert graph.get(f"{ASSIGNMENTS}/{first['id']}").json() == first
    every = graph.get(ASSIGNMENTS).json()
    assert every["@odata.context"] == "http://localhost:8443/v1.0/$metadata#roleManagement/directory/roleAssignments"
    assert sorted(a["id"] for a in every["value"]) == sorted(a["id"] for a in (first, second, third))
    bobs = graph.get(f"{ASSIGNMENTS}?$filter=principalId eq '{bob['id'].upper()}'").json()["value"]
    assert sorted(a["id"] for a in bobs) == sorted([second["id"], third["id"]])
    readers = graph.get(f"{ASSIGNMENTS}?$filter=roleDefinitionId eq '{GLOBAL_READER}'").json()["value"]
    assert [a["id"] for a in readers] == [first["id"]]
    paged = graph.get(f"{ASSIGNMENTS}?$top=2").json()
    rest = graph.get(paged["@odata.nextLink"]).json()
    assert len(paged["value"]) + len(rest["value"]) == 3
    assert graph.get(f"{ASSIGNMENTS}?$filter=principalId eq 'nobody'").json()["value"] == []

    assert graph.delete(f"{ASSIGNMENTS}/{third['id']}").status_code == 204
    assert graph.get(f"{ASSIGNMENTS}/{third['id']}").status_code == 404
    records = [r for r in graph.audits() if r.category == "RoleManagement"]
    assert [r.activity_display_name for r in records] == ["Add member to role"] * 3 + ["Remove member from role"]
    assert records[0].target_resources[0]["id"] == alice["id"]
    assert records[0].target_resources[0]["modifiedProperties"] == [
        {"displayName": "Role.DisplayName", "oldValue": None, "newValue": "Global Reader"}
    ]
    assert records[-1].target_resources[0]["modifiedProperties"] == [
        {"displayName": "Role.DisplayName", "oldValue": "Global Administrator", "newValue": None}
    ]


def test_assignment_errors_are_4xx_and_change_nothing(graph: Graph) -> None:
    user = graph.new_user("someone@contoso.example")
    _assign(graph, GLOBAL_READER, user["id"])
    before = graph.snapshot()
    nobody = "00000000-0000-0000-0000-000000000001"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"roleDefinitionId": GLOBAL_READER, "principalId": user["id"]}, 409, "Global Reader"),
        ({"roleDefinitionId": nobody, "principalId": user["id"]}, 400, "roleDefinitionId"),
        ({"roleDefinitionId": GLOBAL_READER, "principalId": nobody}, 404, nobody),
        ({"roleDefinitionId": GLOBAL_READER, "principalId": "someone@contoso.example"}, 400, "principalId"),
        ({"roleDefinitionId": GLOBAL_READER}, 400, "principalId"),
        ({"principalId": user["id"]}, 400, "roleDefinitionId"),
        ({"roleDefinitionId": 7, "principalId": user["id"]}, 400, "roleDefinitionId"),
        ({"roleDefinitionId": GLOBAL_ADMINISTRATOR, "principalId": user["id"], "directoryScopeId": "/units/1"}, 400,
         "directoryScopeId"),
        ({"roleDefinitionId": GLOBAL_ADMINISTRATOR, "principalId": user["id"], "appScopeId": "/"}, 400, "appScopeId"),
        ({"roleDefinitionId": GLOBAL_ADMINISTRATOR, "principalId": user["id"], "@odata.type": "#x"}, 400,
         "@odata.type"),
    ]
    for body, status, mentioned in cases:
        answer = graph.post(ASSIGNMENTS, body)
        assert answer.status_code == status, (body, answer.text)
        assert mentioned in error_of(answer)["message"], answer.text
    for path in (f"{ASSIGNMENTS}/{nobody}", f"{ASSIGNMENTS}/not-a-guid"):
        assert graph.get(path).status_code == 404
        assert graph.delete(path).status_code == 404
    assert graph.get(f"{ASSIGNMENTS}?$filter=directoryScopeId eq '/'").status_code == 400
    assert graph.snapshot() == before
