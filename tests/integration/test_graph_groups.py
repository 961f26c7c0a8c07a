"""/groups and their members through the Graph-compatible admin API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from passgate.store.db import Database
from tests.integration.graph_helpers import GRAPH_ID, Graph, error_of


@pytest.fixture
def graph(client: TestClient, db: Database) -> Graph:
    return Graph(client, db)


def test_create_read_list_delete_security_group(graph: Graph) -> None:
    created = graph.post(
        "/groups",
        {
            "description": "Self help community for golf",
            "displayName": "Golf Assist",
            "groupTypes": [],
            "mailEnabled": False,
            "mailNickname": "golfassist",
            "securityEnabled": True,
        },
    )
    assert created.status_code == 201, created.text
    group = created.json()
    assert group["@odata.context"] == "http://localhost:8443/v1.0/$metadata#groups/$entity"
    assert {k: v for k, v in group.items() if k not in ("id", "createdDateTime", "@odata.context")} == {
        "displayName": "Golf Assist",
        "description": "Self help community for golf",
        "mailNickname": "golfassist",
        "mailEnabled": False,
        "securityEnabled": True,
        "groupTypes": [],
    }
    assert graph.get(f"/groups/{group['id']}").json() == group
    listed = graph.get("/groups").json()
    assert listed["@odata.context"] == "http://localhost:8443/v1.0/$metadata#groups"
    assert [g["id"] for g in listed["value"]] == [group["id"]]
    by_name = graph.get("/groups?$filter=displayName eq 'Golf Assist'").json()["value"]
    assert [g["id"] for g in by_name] == [group["id"]]
    assert graph.get("/groups?$filter=displayName eq 'Tennis'").json()["value"] == []

    assert graph.delete(f"/groups/{group['id']}").status_code == 204
    assert graph.get(f"/groups/{group['id']}").status_code == 404
    assert [r.activity_display_name for r in graph.audits() if r.category == "GroupManagement"] == [
        "Add group", "Delete group",
    ]


def test_groups_page_with_next_link(graph: Graph) -> None:
    made = sorted(graph.new_group(f"Team {i}")["id"] for i in range(5))
    first = graph.get("/groups?$top=2").json()
    second = graph.get(first["@odata.nextLink"]).json()
    third = graph.get(second["@odata.nextLink"]).json()
    assert "@odata.nextLink" not in third
    assert [g["id"] for page in (first, second, third) for g in page["value"]] == made


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"mailEnabled": False, "securityEnabled": True, "mailNickname": "x"}, "displayName"),
        ({"displayName": "M365", "mailEnabled": True, "securityEnabled": False, "mailNickname": "m"}, "mailEnabled"),
        ({"displayName": "NoSec", "securityEnabled": False}, "securityEnabled"),
        ({"displayName": "Unified", "groupTypes": ["Unified"]}, "groupTypes"),
        ({"displayName": "Bad types", "groupTypes": "Unified"}, "groupTypes"),
        ({"displayName": "Bad types", "groupTypes": [1]}, "groupTypes"),
        ({"displayName": "Owners", "owners@odata.bind": []}, "owners@odata.bind"),
        ({"displayName": "Visible", "visibility": "Private"}, "visibility"),
        ({"displayName": 12}, "displayName"),
        ({"displayName": "x" * 257}, "displayName"),
        ({"displayName": "ok", "mailEnabled": "no"}, "mailEnabled"),
        ({"displayName": "ok", "description": ["d"]}, "description"),
        ({"displayName": "ok", "mailNickname": None}, "mailNickname"),
        ({"displayName": "nul\u0000"}, "displayName"),
    ],
)
def test_invalid_group_names_the_property_and_saves_nothing(graph: Graph, body: dict[str, Any], named: str) -> None:
    graph.token()
    before = graph.snapshot()
    answer = graph.post("/groups", body)
    assert answer.status_code == 400, answer.text
    assert named in error_of(answer)["message"]
    assert graph.snapshot() == before


def test_members_add_list_remove(graph: Graph) -> None:
    group = graph.new_group("Pilots")
    alice = graph.new_user("alice@contoso.example", "Alice")
    bob = graph.new_user("bob@contoso.example", "Bob")
    carol = graph.new_user("carol@contoso.example", "Carol")
    for ref in (
        f"{GRAPH_ID}{alice['id']}",
        f"http://localhost:8443/v1.0/users/{bob['id']}",
        f"https://graph.microsoft.com/beta/users/{carol['id'].upper()}/",
    ):
        answer = graph.post(f"/groups/{group['id']}/members/$ref", {"@odata.id": ref})
        assert answer.status_code == 204, answer.text
        assert answer.content == b""
    members = graph.get(f"/groups/{group['id']}/members").json()
    assert members["@odata.context"] == "http://localhost:8443/v1.0/$metadata#directoryObjects"
    assert [m["userPrincipalName"] for m in members["value"]] == [
        "alice@contoso.example", "bob@contoso.example", "carol@contoso.example",
    ]
    for member in members["value"]:
        assert member["@odata.type"] == "#microsoft.graph.user"
        assert {"id", "displayName", "accountEnabled", "mail"} <= set(member)

    assert graph.delete(f"/groups/{group['id']}/members/{bob['id']}/$ref").status_code == 204
    assert graph.delete(f"/groups/{group['id']}/members/carol@contoso.example/$ref").status_code == 204
    left = graph.get(f"/groups/{group['id']}/members").json()["value"]
    assert [m["id"] for m in left] == [alice["id"]]

    records = [r for r in graph.audits() if r.activity_display_name.endswith("group") and "member" in
               r.activity_display_name]
    assert [r.activity_display_name for r in records] == ["Add member to group"] * 3 + ["Remove member from group"] * 2
    assert records[0].target_resources[0]["modifiedProperties"] == [
        {"displayName": "members", "oldValue": None, "newValue": "alice@contoso.example"}
    ]
    assert records[-1].target_resources[0]["modifiedProperties"] == [
        {"displayName": "members", "oldValue": "carol@contoso.example", "newValue": None}
    ]


def test_member_errors_are_4xx_and_change_nothing(graph: Graph) -> None:
    group = graph.new_group("Crew")
    user = graph.new_user("crew@contoso.example")
    assert graph.post(f"/groups/{group['id']}/members/$ref", {"@odata.id": GRAPH_ID + user["id"]}).status_code == 204
    before = graph.snapshot()
    nobody = "00000000-0000-0000-0000-000000000001"
    cases: list[tuple[str, Any, int, str]] = [
        (group["id"], {"@odata.id": GRAPH_ID + user["id"]}, 400, "already exist"),
        (group["id"], {"@odata.id": GRAPH_ID + nobody}, 404, nobody),
        (nobody, {"@odata.id": GRAPH_ID + user["id"]}, 404, nobody),
        ("not-a-guid", {"@odata.id": GRAPH_ID + user["id"]}, 404, "not-a-guid"),
        (group["id"], {}, 400, "@odata.id"),
        (group["id"], {"@odata.id": 5}, 400, "@odata.id"),
        (group["id"], {"@odata.id": "crew@contoso.example"}, 400, "@odata.id"),
        (group["id"], {"@odata.id": f"https://graph.microsoft.com/v1.0/groups/{group['id']}"}, 400, "@odata.id"),
        (group["id"], {"@odata.id": GRAPH_ID + user["id"], "extra": 1}, 400, "extra"),
    ]
    for group_id, body, status, mentioned in cases:
        answer = graph.post(f"/groups/{group_id}/members/$ref", body)
        assert answer.status_code == status, (body, answer.text)
        assert mentioned in error_of(answer)["message"], answer.text
    assert graph.call("POST", f"/groups/{group['id']}/members/$ref", content=b"{").status_code == 400
    other = graph.new_user("outsider@contoso.example")
    before = graph.snapshot()
    for path in (
        f"/groups/{group['id']}/members/{other['id']}/$ref",
        f"/groups/{group['id']}/members/{nobody}/$ref",
        f"/groups/{nobody}/members/{user['id']}/$ref",
        f"/groups/{group['id']}/members/%00/$ref",
    ):
        answer = graph.delete(path)
        assert answer.status_code == 404, (path, answer.text)
    assert graph.get(f"/groups/{nobody}/members").status_code == 404
    assert graph.snapshot() == before


def test_deleting_a_group_keeps_its_members(graph: Graph) -> None:
    group = graph.new_group("Temporary")
    user = graph.new_user("stays@contoso.example")
    graph.post(f"/groups/{group['id']}/members/$ref", {"@odata.id": GRAPH_ID + user["id"]})
    assert graph.delete(f"/groups/{group['id']}").status_code == 204
    assert graph.get(f"/users/{user['id']}").status_code == 200
    assert graph.snapshot()["counts"]["group_members"] == 0
    assert graph.delete(f"/groups/{group['id']}").status_code == 404
