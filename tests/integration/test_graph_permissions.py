"""Who may call the Graph routes: a valid app token holding the operation's permission, or nothing happens."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwk, jwt

from passgate.context import RequestContext
from passgate.store.db import Database
from tests.integration.graph_helpers import Graph, error_of

READER_ROLE = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"


@pytest.fixture
def graph(client: TestClient, db: Database) -> Graph:
    return Graph(client, db)


@pytest.fixture
def world(graph: Graph) -> dict[str, Any]:
    """One user (with a pass, a group and a role) to aim every call at."""
    user = graph.new_user("target@contoso.example", "Target")
    group = graph.new_group("Target group")
    assert graph.post(f"/groups/{group['id']}/members/$ref", {"@odata.id": f"users/{user['id']}"}).status_code == 204
    role = graph.post(
        "/roleManagement/directory/roleAssignments", {"roleDefinitionId": READER_ROLE, "principalId": user["id"]}
    ).json()
    tap = graph.post(f"/users/{user['id']}/authentication/temporaryAccessPassMethods", {}).json()
    return {"user": user["id"], "group": group["id"], "assignment": role["id"], "tap": tap["id"]}


# (method, path template, body, permissions that allow it)
OPERATIONS: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/users", None, {"User.Read.All", "User.ReadWrite.All"}),
    ("GET", "/users/{user}", None, {"User.Read.All", "User.ReadWrite.All"}),
    ("POST", "/users", {"userPrincipalName": "new@contoso.example", "displayName": "New"}, {"User.ReadWrite.All"}),
    ("PATCH", "/users/{user}", {"displayName": "Changed"}, {"User.ReadWrite.All"}),
    ("DELETE", "/users/{user}", None, {"User.ReadWrite.All"}),
    ("GET", "/groups", None, {"Group.Read.All", "Group.ReadWrite.All"}),
    ("GET", "/groups/{group}", None, {"Group.Read.All", "Group.ReadWrite.All"}),
    ("GET", "/groups/{group}/members", None, {"Group.Read.All", "Group.ReadWrite.All"}),
    ("POST", "/groups", {"displayName": "G", "mailEnabled": False, "securityEnabled": True, "mailNickname": "g"},
     {"Group.ReadWrite.All"}),
    ("DELETE", "/groups/{group}", None, {"Group.ReadWrite.All"}),
    ("DELETE", "/groups/{group}/members/{user}/$ref", None, {"Group.ReadWrite.All"}),
    ("GET", "/roleManagement/directory/roleDefinitions", None,
     {"RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory"}),
    ("GET", "/roleManagement/directory/roleAssignments", None,
     {"RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory"}),
    ("GET", "/roleManagement/directory/roleAssignments/{assignment}", None,
     {"RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory"}),
    ("DELETE", "/roleManagement/directory/roleAssignments/{assignment}", None, {"RoleManagement.ReadWrite.Directory"}),
    ("GET", "/users/{user}/authentication/temporaryAccessPassMethods", None,
     {"UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"}),
    ("GET", "/users/{user}/authentication/temporaryAccessPassMethods/{tap}", None,
     {"UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"}),
    ("POST", "/users/{user}/authentication/temporaryAccessPassMethods", {"lifetimeInMinutes": 60},
     {"UserAuthenticationMethod.ReadWrite.All"}),
    ("DELETE", "/users/{user}/authentication/temporaryAccessPassMethods/{tap}", None,
     {"UserAuthenticationMethod.ReadWrite.All"}),
]
# Permissions close to the right one that must still not do: the read form of a write, a neighbour's write.
NEAR_MISSES = [
    "User.Read.All", "Group.Read.All", "RoleManagement.Read.Directory", "UserAuthenticationMethod.Read.All",
    "Policy.ReadWrite.AuthenticationMethod", "AuditLog.Read.All", "Application.ReadWrite.All",
]


def _ids(op: tuple[str, str, Any, set[str]]) -> str:
    return f"{op[0]} {op[1]}"


@pytest.mark.parametrize("operation", OPERATIONS, ids=_ids)
def test_operation_without_its_permission_is_403_and_changes_nothing(
    graph: Graph, world: dict[str, Any], operation: tuple[str, str, Any, set[str]]
) -> None:
    method, template, body, allowed = operation
    path = template.format(**world)
    wrong = [p for p in NEAR_MISSES if p not in allowed]
    for permission in wrong:
        graph.token(permission)
    graph.token("User.ReadWrite.All", "Group.Read.All")  # a grab bag that misses most operations
    before = graph.snapshot()
    for permission in wrong:
        answer = graph.call(method, path, json=body, permissions=(permission,))
        assert answer.status_code == 403, (permission, answer.text)
        error = error_of(answer)
        assert error["code"] == "Authorization_RequestDenied"
        assert all(p in error["message"] for p in allowed)
    assert graph.snapshot() == before
    # ... and with the permission it works.
    for permission in sorted(allowed):
        answer = graph.call(method, path, json=body, permissions=(permission,))
        assert answer.status_code in (200, 201, 204), (permission, answer.text)
        if method != "GET":
            break


@pytest.mark.parametrize("operation", OPERATIONS, ids=_ids)
def test_operation_without_a_valid_token_is_401_and_changes_nothing(
    graph: Graph, world: dict[str, Any], operation: tuple[str, str, Any, set[str]]
) -> None:
    method, template, body, _ = operation
    path = template.format(**world)
    expired = graph.expired_token()
    before = graph.snapshot()
    for token in ("", "garbage", "Bearer", expired, expired[:-4] + "AAAA", _foreign_token(graph)):
        answer = graph.call(method, path, json=body, token=token)
        assert answer.status_code == 401, (token[:20], answer.text)
        assert error_of(answer)["code"] == "InvalidAuthenticationToken"
        assert answer.headers["www-authenticate"] == "Bearer"
    for header in ("Basic dXNlcjpwYXNz", "Bearer ", "bearer"):
        answer = graph.client.request(method, f"/v1.0{path}", json=body, headers={"Authorization": header})
        assert answer.status_code == 401
    assert graph.snapshot() == before


def _foreign_token(graph: Graph) -> str:
    """A token with the right claims, signed by a key this server never published."""
    settings = graph.client.app.state.services.settings  # type: ignore[attr-defined]
    key = jwk.generate_key("EC", "P-256", parameters={"alg": "ES256", "kid": "intruder"})
    claims = {
        "iss": settings.issuer, "aud": f"{settings.issuer}/graph", "appid": "x", "roles": ["User.ReadWrite.All"],
        "iat": 1, "nbf": 1, "exp": 4_000_000_000,
    }
    return jwt.encode({"alg": "ES256", "kid": "intruder"}, claims, key)


def test_auth_is_checked_before_the_body(graph: Graph) -> None:
    assert graph.call("POST", "/users", content=b"{broken", token="").status_code == 401
    assert graph.call("POST", "/users", content=b"{broken", permissions=("User.Read.All",)).status_code == 403
    assert graph.call("POST", "/users", content=b"{broken").status_code == 400


def test_a_token_for_another_audience_is_refused(graph: Graph) -> None:
    services = graph.client.app.state.services  # type: ignore[attr-defined]
    ring = services.keys.ring(RequestContext())
    claims = {
        "iss": services.settings.issuer, "aud": "https://some-other-api", "roles": ["User.ReadWrite.All"],
        "iat": 1, "nbf": 1, "exp": 4_000_000_000,
    }
    token = jwt.encode({"alg": "ES256", "kid": ring.signing["ES256"]}, claims, ring.published)
    assert graph.get("/users", token=token).status_code == 401
