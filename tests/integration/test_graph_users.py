"""/users through the Graph-compatible admin API: shapes, paging, lookups, validation, audit."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from passgate.store.db import Database
from tests.integration.graph_helpers import ALL, Graph, error_of

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def graph(client: TestClient, db: Database) -> Graph:
    return Graph(client, db)


def test_create_read_update_delete_in_graph_shape(graph: Graph) -> None:
    created = graph.post(
        "/users",
        {
            "accountEnabled": True,
            "displayName": "Adele Vance",
            "mailNickname": "AdeleV",
            "userPrincipalName": "AdeleV@contoso.example",
            "mail": "adele@contoso.example",
            "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": "xWwvJ]6NMw+bWH-d"},
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["@odata.context"] == "http://localhost:8443/v1.0/$metadata#users/$entity"
    assert GUID.match(user["id"])
    assert TIMESTAMP.match(user["createdDateTime"])
    assert {k: v for k, v in user.items() if k not in ("id", "createdDateTime", "@odata.context")} == {
        "userPrincipalName": "adelev@contoso.example",
        "displayName": "Adele Vance",
        "mail": "adele@contoso.example",
        "mailNickname": "AdeleV",
        "accountEnabled": True,
    }
    assert created.headers["request-id"]

    read = graph.get(f"/users/{user['id']}")
    assert read.status_code == 200
    assert read.json() == user

    changed = graph.patch(f"/users/{user['id']}", {"displayName": "Adele V.", "accountEnabled": False})
    assert changed.status_code == 204
    assert changed.content == b""
    after = graph.get(f"/users/{user['id']}").json()
    assert (after["displayName"], after["accountEnabled"]) == ("Adele V.", False)

    gone = graph.delete(f"/users/{user['id']}")
    assert gone.status_code == 204
    missing = graph.get(f"/users/{user['id']}")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "Request_ResourceNotFound"


def test_password_profile_is_accepted_but_never_kept_or_logged(graph: Graph) -> None:
    graph.new_user("pw@contoso.example", passwordProfile={"password": "Secret-Pa55word!"})
    graph.new_user("nopw@contoso.example", passwordProfile=None)
    for record in graph.audits("Add user"):
        assert "Secret-Pa55word!" not in repr(record.target_resources)
        assert "passwordProfile" not in repr(record.target_resources)
    patched = graph.patch("/users/pw@contoso.example", {"passwordProfile": {"password": "another"}})
    assert patched.status_code == 400
    assert "passwordProfile" in error_of(patched)["message"]


def test_same_routes_under_beta(graph: Graph) -> None:
    beta = Graph(graph.client, graph.db, version="beta")
    user = beta.new_user("beta@contoso.example")
    assert user["@odata.context"] == "http://localhost:8443/beta/$metadata#users/$entity"
    assert graph.get(f"/users/{user['id']}").json()["userPrincipalName"] == "beta@contoso.example"


def test_lookup_by_upn_is_case_insensitive(graph: Graph) -> None:
    user = graph.new_user("Megan.Bowen@Contoso.example", "Megan Bowen")
    for ref in ("megan.bowen@contoso.example", "MEGAN.BOWEN@CONTOSO.EXAMPLE", "Megan.Bowen@Contoso.example"):
        answer = graph.get(f"/users/{ref}")
        assert answer.status_code == 200, ref
        assert answer.json()["id"] == user["id"]
    assert graph.get(f"/users/{user['id'].upper()}").json()["id"] == user["id"]
    assert graph.patch("/users/MEGAN.bowen@contoso.EXAMPLE", {"mail": "megan@contoso.example"}).status_code == 204
    assert graph.get(f"/users/{user['id']}").json()["mail"] == "megan@contoso.example"


def test_filter_by_upn(graph: Graph) -> None:
    graph.new_user("alex@contoso.example")
    wanted = graph.new_user("o'brien@contoso.example")
    answer = graph.get("/users?$filter=userPrincipalName eq 'O''Brien@CONTOSO.example'")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["@odata.context"] == "http://localhost:8443/v1.0/$metadata#users"
    assert [u["id"] for u in body["value"]] == [wanted["id"]]
    assert "@odata.nextLink" not in body
    none = graph.get("/users?$filter=userPrincipalName eq 'nobody@contoso.example'").json()
    assert none["value"] == []
    not_a_name = graph.get("/users?$filter=userPrincipalName eq 'not a name'")
    assert (not_a_name.status_code, not_a_name.json()["value"]) == (200, [])


@pytest.mark.parametrize(
    "query",
    [
        "$filter=displayName eq 'Alex'",
        "$filter=startswith(userPrincipalName,'a')",
        "$filter=userPrincipalName ne 'a@b.c'",
        "$filter=userPrincipalName eq 'a@b.c' and displayName eq 'x'",
        "$filter=",
        "$orderby=displayName",
        "$search=\"displayName:a\"",
        "$expand=memberOf",
        "$top=0",
        "$top=1000",
        "$top=ten",
        "$top=-1",
        "$top=%C2%B2",
        "$top=99999999999999999999999",
        "$top=5&$top=6",
        "$skiptoken=garbage",
        "$select=id,password",
        "$filter=userPrincipalName eq 'a%00b@c.d'",
    ],
)
def test_unsupported_or_bad_query_options_are_refused(graph: Graph, query: str) -> None:
    graph.new_user("alex@contoso.example")
    answer = graph.get(f"/users?{query}")
    assert answer.status_code == 400, answer.text
    error = error_of(answer)
    assert error["code"] == "Request_BadRequest"
    option = query.split("=", 1)[0]
    assert option in error["message"] or "$filter" in error["message"] or "$select" in error["message"], error


def test_top_pages_with_next_link_in_id_order(graph: Graph) -> None:
    made = sorted(graph.new_user(f"user{i:02}@contoso.example")["id"] for i in range(7))
    seen: list[str] = []
    url: str | None = "/users?$top=3&$select=id,userPrincipalName"
    pages = 0
    while url is not None:
        answer = graph.get(url)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["value"]) <= 3
        for item in body["value"]:
            assert set(item) == {"id", "userPrincipalName"}
        seen += [u["id"] for u in body["value"]]
        url = body.get("@odata.nextLink")
        if url is not None:
            assert url.startswith("http://localhost:8443/v1.0/users?")
            query = parse_qs(urlsplit(url).query)
            assert query["$top"] == ["3"]
            assert query["$select"] == ["id,userPrincipalName"]
            assert GUID.match(query["$skiptoken"][0])
        pages += 1
    assert pages == 3
    assert seen == made


def test_a_page_that_ends_exactly_has_no_next_link(graph: Graph) -> None:
    for i in range(4):
        graph.new_user(f"even{i}@contoso.example")
    first = graph.get("/users?$top=2").json()
    second = graph.get(first["@odata.nextLink"]).json()
    assert len(second["value"]) == 2
    assert "@odata.nextLink" not in second
    everything = graph.get("/users").json()
    assert len(everything["value"]) == 4
    assert "@odata.nextLink" not in everything


def test_select_on_a_single_user(graph: Graph) -> None:
    user = graph.new_user("sel@contoso.example", "Selma")
    answer = graph.get(f"/users/{user['id']}?$select=displayName,ACCOUNTENABLED")
    assert answer.status_code == 200
    assert answer.json() == {
        "@odata.context": "http://localhost:8443/v1.0/$metadata#users(displayName,accountEnabled)/$entity",
        "displayName": "Selma",
        "accountEnabled": True,
    }


def test_duplicate_upn_is_refused_and_nothing_saved(graph: Graph) -> None:
    first = graph.new_user("dup@contoso.example")
    before = graph.snapshot()
    again = graph.post("/users", {"userPrincipalName": "DUP@contoso.example", "displayName": "Second"})
    assert again.status_code == 409
    error = error_of(again)
    assert error["code"] == "Request_Conflict"
    assert "userPrincipalName" in error["message"]
    other = graph.new_user("other@contoso.example")
    before = graph.snapshot()
    renamed = graph.patch(f"/users/{other['id']}", {"userPrincipalName": "Dup@Contoso.example", "displayName": "X"})
    assert renamed.status_code == 409
    assert graph.snapshot() == before
    assert graph.get(f"/users/{first['id']}").json()["displayName"] == "dup@contoso.example"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"userPrincipalName": "v@contoso.example", "displayName": "V", "givenName": "Vee"}, "givenName"),
        ({"userPrincipalName": "v@contoso.example", "displayName": "V", "id": "x"}, "'id'"),
        ({"userPrincipalName": "v@contoso.example", "displayName": "V", "accountEnabled": "yes"}, "accountEnabled"),
        ({"userPrincipalName": "v@contoso.example", "displayName": "V", "accountEnabled": 1}, "accountEnabled"),
        ({"userPrincipalName": "v@contoso.example", "displayName": 7}, "displayName"),
        ({"userPrincipalName": "v@contoso.example", "displayName": ""}, "displayName"),
        ({"userPrincipalName": "v@contoso.example", "displayName": "x" * 257}, "displayName"),
        ({"userPrincipalName": "v@contoso.example"}, "displayName"),
        ({"displayName": "V"}, "userPrincipalName"),
        ({"userPrincipalName": "not an address", "displayName": "V"}, "userPrincipalName"),
        ({"userPrincipalName": "v@contoso.example\n", "displayName": "V"}, "userPrincipalName"),
        ({"userPrincipalName": ["v@contoso.example"], "displayName": "V"}, "userPrincipalName"),
        ({"userPrincipalName": "v@contoso.example", "displayName": "V", "mailNickname": "n" * 65}, "mailNickname"),
        ({"userPrincipalName": "v@contoso.example", "displayName": "V", "mail": 5}, "mail"),
        ({"userPrincipalName": "v@contoso.example", "displayName": "V", "passwordProfile": "pw"}, "passwordProfile"),
        ({"userPrincipalName": "v@contoso.example", "displayName": "nul\u0000byte"}, "displayName"),
        ({"userPrincipalName": "v@contoso.example", "displayName": "V", "@odata.type": "#microsoft.graph.group"},
         "@odata.type"),
    ],
)
def test_invalid_create_names_the_property_and_saves_nothing(graph: Graph, body: dict[str, object], named: str) -> None:
    graph.token()
    before = graph.snapshot()
    answer = graph.post("/users", body)
    assert answer.status_code == 400, answer.text
    error = error_of(answer)
    assert error["code"] == "Request_BadRequest"
    assert named in error["message"]
    assert graph.snapshot() == before


def test_odata_type_of_user_is_accepted(graph: Graph) -> None:
    answer = graph.post(
        "/users", {"@odata.type": "#microsoft.graph.user", "userPrincipalName": "t@contoso.example", "displayName": "T"}
    )
    assert answer.status_code == 201


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"accountEnabled": "false"}, "accountEnabled"),
        ({"displayName": None}, "displayName"),
        ({"userPrincipalName": None}, "userPrincipalName"),
        ({"jobTitle": "Boss"}, "jobTitle"),
        ({"displayName": "Fine", "surname": "Bad"}, "surname"),
        ({"mailNickname": "n" * 65}, "mailNickname"),
        ({"userPrincipalName": "bad name"}, "userPrincipalName"),
    ],
)
def test_invalid_update_names_the_property_and_saves_nothing(graph: Graph, body: dict[str, object], named: str) -> None:
    user = graph.new_user("keep@contoso.example", "Keep Me")
    before = graph.snapshot()
    answer = graph.patch(f"/users/{user['id']}", body)
    assert answer.status_code == 400, answer.text
    assert named in error_of(answer)["message"]
    assert graph.snapshot() == before


@pytest.mark.parametrize(
    ("content", "method", "path"),
    [
        (b"{not json", "POST", "/users"),
        (b"", "POST", "/users"),
        (b"[1, 2]", "POST", "/users"),
        (b'"text"', "POST", "/users"),
        (b"\xff\xfe\x00", "POST", "/users"),
        (b"[" * 100_000, "POST", "/users"),
        (b'{"userPrincipalName": "s@contoso.example", "displayName": "\\ud800"}', "POST", "/users"),
        (b'{"displayName": "\\udfff lone"}', "PATCH", "/users/target@contoso.example"),
        (b"{oops", "PATCH", "/users/target@contoso.example"),
    ],
)
def test_malformed_bodies_are_400_and_change_nothing(graph: Graph, content: bytes, method: str, path: str) -> None:
    graph.new_user("target@contoso.example")
    before = graph.snapshot()
    answer = graph.call(method, path, content=content)
    assert answer.status_code == 400, answer.text
    assert error_of(answer)["code"] in ("MalformedJson", "Request_BadRequest")
    assert graph.snapshot() == before


@pytest.mark.parametrize(
    "ref",
    [
        "00000000-0000-0000-0000-000000000000",
        "not-a-guid",
        "nobody@contoso.example",
        "bad%00name@contoso.example",
        "a%0A@contoso.example",
        "x" * 400,
        "%E2%98%83",
    ],
)
def test_unknown_or_malformed_ids_are_404(graph: Graph, ref: str) -> None:
    graph.new_user("someone@contoso.example")
    before = graph.snapshot()
    for method, body in (("GET", None), ("PATCH", {"displayName": "X"}), ("DELETE", None)):
        answer = graph.call(method, f"/users/{ref}", json=body)
        assert answer.status_code == 404, (method, answer.text)
        assert error_of(answer)["code"] == "Request_ResourceNotFound"
    assert graph.snapshot() == before


def test_every_change_is_audited_with_old_and_new_values(graph: Graph) -> None:
    user = graph.new_user("audit@contoso.example", "Audit Me", mail="a@contoso.example")
    graph.patch(f"/users/{user['id']}", {"displayName": "Audited", "mail": "a@contoso.example"})
    graph.patch(f"/users/{user['id']}", {"accountEnabled": False})
    graph.patch(f"/users/{user['id']}", {"accountEnabled": False})  # no change, no record
    graph.delete(f"/users/{user['id']}")
    records = [r for r in graph.audits() if r.category == "UserManagement"]
    assert [r.activity_display_name for r in records] == ["Add user", "Update user", "Disable account", "Delete user"]
    app_id = graph.app_ids[ALL]
    for record in records:
        assert record.initiated_by["app"]["appId"] == app_id
        assert record.initiated_by["user"] is None
        target = record.target_resources[0]
        assert (target["id"], target["type"]) == (user["id"], "User")
    added, updated, disabled, _ = (r.target_resources[0]["modifiedProperties"] for r in records)
    assert {"displayName": "userPrincipalName", "oldValue": None, "newValue": "audit@contoso.example"} in added
    assert updated == [{"displayName": "displayName", "oldValue": "Audit Me", "newValue": "Audited"}]
    assert disabled == [{"displayName": "accountEnabled", "oldValue": True, "newValue": False}]


def test_a_refused_change_leaves_no_audit_record(graph: Graph) -> None:
    user = graph.new_user("norecord@contoso.example")
    count = len(graph.audits())
    assert graph.patch(f"/users/{user['id']}", {"displayName": "ok", "unknownThing": 1}).status_code == 400
    duplicate = {"userPrincipalName": "norecord@contoso.example", "displayName": "x"}
    assert graph.post("/users", duplicate).status_code == 409
    assert len(graph.audits()) == count


def test_deleting_a_user_removes_memberships_roles_and_pass(graph: Graph) -> None:
    user = graph.new_user("leaver@contoso.example")
    group = graph.new_group("Leavers")
    assert graph.post(f"/groups/{group['id']}/members/$ref", {"@odata.id": f"users/{user['id']}"}).status_code == 204
    reader = {"roleDefinitionId": "f2ef992c-3afb-46b9-b7cf-a126ee74c451", "principalId": user["id"]}
    assert graph.post("/roleManagement/directory/roleAssignments", reader).status_code == 201
    assert graph.post(f"/users/{user['id']}/authentication/temporaryAccessPassMethods", {}).status_code == 201
    assert graph.delete(f"/users/{user['id']}").status_code == 204
    counts = graph.snapshot()["counts"]
    assert (counts["users"], counts["group_members"], counts["role_assignments"]) == (0, 0, 0)
    assert counts["temporary_access_passes"] == 0
    assert graph.get(f"/groups/{group['id']}/members").json()["value"] == []
