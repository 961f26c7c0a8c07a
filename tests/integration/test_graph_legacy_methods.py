"""Graph: the Password and SoftwareOath method configurations, passwordMethods (resetPassword) and
softwareOathMethods, and both kinds in the mixed methods collection."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from passgate.context import utcnow
from passgate.core import errors
from passgate.signin import passwords
from passgate.store.db import Database
from passgate.store.tables import Password, SoftwareOathMethod
from tests.integration.graph_helpers import Graph, error_of
from tests.integration.test_signin_support import snapshot

CONFIGS = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations"
PASSWORD_CONFIG_TYPE = "#microsoft.graph.passwordAuthenticationMethodConfiguration"
OATH_CONFIG_TYPE = "#microsoft.graph.softwareOathAuthenticationMethodConfiguration"
PASSWORD_ID = "28c10230-6103-485e-b985-444c60001490"
GOOD = "correct horse battery staple"


@pytest.fixture(params=["v1.0", "beta"])
def graph(request: pytest.FixtureRequest, client: TestClient, db: Database) -> Graph:
    return Graph(client, db, request.param)


def enable(graph: Graph, config: str, odata_type: str) -> None:
    answer = graph.patch(f"{CONFIGS}/{config}", {"@odata.type": odata_type, "state": "enabled"})
    assert answer.status_code == 204, answer.text


def refused(graph: Graph, answer: Any, code: errors.ErrorCode, before: dict[str, Any]) -> dict[str, Any]:
    assert answer.status_code == code.status, answer.text
    error = error_of(answer)
    assert error["code"] == code.name and error["innerError"]["passgateCode"] == code.number
    assert snapshot(graph.db) == before
    return error


@pytest.mark.parametrize(("config_id", "odata_type"), [("Password", PASSWORD_CONFIG_TYPE),
                                                       ("SoftwareOath", OATH_CONFIG_TYPE)])
def test_configurations_default_off_patch_and_reset(graph: Graph, config_id: str, odata_type: str) -> None:
    default = graph.get(f"{CONFIGS}/{config_id.lower()}").json()
    assert (default["@odata.type"], default["id"], default["state"]) == (odata_type, config_id, "disabled")
    assert default["includeTargets"] == [{"targetType": "group", "id": "all_users", "isRegistrationRequired": False}]
    assert default["excludeTargets"] == []
    group = graph.new_group("Pilot")
    answer = graph.patch(f"{CONFIGS}/{config_id.upper()}", {
        "@odata.type": odata_type, "state": "enabled",
        "includeTargets": [{"targetType": "group", "id": group["id"], "isRegistrationRequired": False}],
        "excludeTargets": [],
    })
    assert answer.status_code == 204, answer.text
    stored = graph.get(f"{CONFIGS}/{config_id}").json()
    assert stored["state"] == "enabled" and stored["includeTargets"][0]["id"] == group["id"]
    (audit,) = [a for a in graph.audits("Authentication Methods Policy Update")
                if a.target_resources[0]["id"] == config_id]
    modified = audit.target_resources[0]["modifiedProperties"]
    changed = {m["displayName"]: (m["oldValue"], m["newValue"]) for m in modified}
    assert changed["state"] == ("disabled", "enabled")
    listed = graph.get("/policies/authenticationMethodsPolicy").json()["authenticationMethodConfigurations"]
    assert any(c["id"] == config_id and c["state"] == "enabled" for c in listed)
    assert graph.delete(f"{CONFIGS}/{config_id}").status_code == 204
    assert graph.get(f"{CONFIGS}/{config_id}").json()["state"] == "disabled"


@pytest.mark.parametrize("body", [
    {"state": "enabled"},  # no @odata.type
    {"@odata.type": OATH_CONFIG_TYPE, "state": "enabled"},  # another configuration's type
    {"@odata.type": PASSWORD_CONFIG_TYPE, "state": "on"},
    {"@odata.type": PASSWORD_CONFIG_TYPE, "minimumLength": 8},
    {"@odata.type": PASSWORD_CONFIG_TYPE, "includeTargets": [{"targetType": "group", "id": "not-a-guid"}]},
    {"@odata.type": PASSWORD_CONFIG_TYPE,
     "includeTargets": [{"targetType": "group", "id": "11111111-1111-1111-1111-111111111111"}]},
    {"@odata.type": PASSWORD_CONFIG_TYPE, "excludeTargets": "all_users"},
])
def test_bad_configuration_patches_change_nothing(graph: Graph, body: dict[str, Any]) -> None:
    graph.token()
    before = snapshot(graph.db)
    answer = graph.patch(f"{CONFIGS}/Password", body)
    refused(graph, answer, errors.INVALID_REQUEST, before)
    assert graph.get(f"{CONFIGS}/Password").json()["state"] == "disabled"


def test_configuration_permissions(graph: Graph) -> None:
    body = {"@odata.type": PASSWORD_CONFIG_TYPE, "state": "enabled"}
    assert graph.patch(f"{CONFIGS}/Password", body, permissions=("Policy.Read.All",)).status_code == 403
    assert graph.get(f"{CONFIGS}/Password", permissions=("Policy.Read.All",)).status_code == 200
    assert graph.get(f"{CONFIGS}/SoftwareOath", token="").status_code == 401


def test_reset_password_sets_it_and_never_returns_it(graph: Graph) -> None:
    user = graph.new_user("ada@example.com")
    base = f"/users/{user['id']}/authentication"
    assert graph.get(f"{base}/passwordMethods").json()["value"] == []
    before = snapshot(graph.db)
    refused(graph, graph.post(f"{base}/passwordMethods/{PASSWORD_ID}/resetPassword", {"newPassword": GOOD}),
            errors.PASSWORD_NOT_ENABLED_FOR_USER, before)
    enable(graph, "Password", PASSWORD_CONFIG_TYPE)
    answer = graph.post(f"{base}/passwordMethods/{PASSWORD_ID}/resetPassword", {"newPassword": GOOD})
    assert answer.status_code == 202, answer.text
    assert answer.json()["newPassword"] is None
    (method,) = graph.get(f"{base}/passwordMethods").json()["value"]
    assert method == {"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": PASSWORD_ID,
                      "password": None, "createdDateTime": method["createdDateTime"]}
    one = graph.get(f"/users/ada@example.com/authentication/passwordMethods/{PASSWORD_ID.upper()}")
    assert one.status_code == 200 and one.json()["id"] == PASSWORD_ID
    with graph.db.transaction() as session:
        row = session.get(Password, user["id"])
        assert row is not None and GOOD not in row.password_hash and passwords.matches(row, GOOD)
    (audit,) = graph.audits("Admin registered security info")
    assert GOOD not in str(audit.target_resources) + str(audit.additional_details)
    # Graph's v1.0 path on the mixed collection, with a generated password shown once.
    generated = graph.post(f"{base}/methods/{PASSWORD_ID}/resetPassword", {})
    assert generated.status_code == 202, generated.text
    new = generated.json()["newPassword"]
    assert isinstance(new, str) and len(new) >= 12
    with graph.db.transaction() as session:
        assert passwords.matches(session.get(Password, user["id"]), new)
    assert len(graph.audits("Admin updated security info")) == 1


@pytest.mark.parametrize(("path", "body", "code"), [
    (f"passwordMethods/{PASSWORD_ID}/resetPassword", {"newPassword": "short"}, errors.PASSWORD_TOO_WEAK),
    (f"passwordMethods/{PASSWORD_ID}/resetPassword", {"newPassword": "my ada password!"}, errors.PASSWORD_TOO_WEAK),
    (f"passwordMethods/{PASSWORD_ID}/resetPassword", {"newPassword": 12345678901234}, errors.INVALID_REQUEST),
    (f"passwordMethods/{PASSWORD_ID}/resetPassword", {"password": GOOD}, errors.INVALID_REQUEST),
    ("passwordMethods/00000000-0000-0000-0000-000000000000/resetPassword", {"newPassword": GOOD}, errors.NOT_FOUND),
])
def test_bad_resets_change_nothing(graph: Graph, path: str, body: dict[str, Any], code: errors.ErrorCode) -> None:
    user = graph.new_user("ada@example.com")
    enable(graph, "Password", PASSWORD_CONFIG_TYPE)
    before = snapshot(graph.db)
    refused(graph, graph.post(f"/users/{user['id']}/authentication/{path}", body), code, before)
    assert graph.post(f"/users/{user['id']}/authentication/{path}", content="[1]").status_code == 400


def test_reset_password_permissions(graph: Graph) -> None:
    user = graph.new_user("ada@example.com")
    enable(graph, "Password", PASSWORD_CONFIG_TYPE)
    path = f"/users/{user['id']}/authentication/passwordMethods/{PASSWORD_ID}/resetPassword"
    graph.token("UserAuthenticationMethod.Read.All")  # registering the test's app is not the call under test
    before = snapshot(graph.db)
    refused(graph, graph.post(path, {"newPassword": GOOD}, permissions=("UserAuthenticationMethod.Read.All",)),
            errors.INSUFFICIENT_PERMISSIONS, before)
    refused(graph, graph.post(path, {"newPassword": GOOD}, token=""), errors.INVALID_TOKEN, before)
    listing = f"/users/{user['id']}/authentication/passwordMethods"
    assert graph.get(listing, permissions=("UserAuthenticationMethod.Read.All",)).status_code == 200
    assert graph.get(listing, permissions=("User.Read.All",)).status_code == 403


def test_software_oath_methods_read_and_delete(graph: Graph) -> None:
    user = graph.new_user("bob@example.com")
    with graph.db.transaction() as session:
        app = SoftwareOathMethod(user_id=user["id"], secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", display_name="Phone",
                                 created_at=utcnow())
        session.add(app)
        session.flush()
        app_id = app.id
    base = f"/users/{user['id']}/authentication"
    (listed,) = graph.get(f"{base}/softwareOathMethods").json()["value"]
    assert listed["@odata.type"] == "#microsoft.graph.softwareOathAuthenticationMethod"
    assert listed["id"] == app_id and listed["secretKey"] is None
    assert "JBSWY3DP" not in graph.get(f"{base}/softwareOathMethods/{app_id}").text
    kinds = {m["@odata.type"] for m in graph.get(f"{base}/methods").json()["value"]}
    assert "#microsoft.graph.softwareOathAuthenticationMethod" in kinds
    assert graph.get(f"{base}/methods/{app_id}").json()["id"] == app_id
    graph.token("UserAuthenticationMethod.Read.All")
    before = snapshot(graph.db)
    refused(graph, graph.delete(f"{base}/softwareOathMethods/{app_id}",
                                permissions=("UserAuthenticationMethod.Read.All",)),
            errors.INSUFFICIENT_PERMISSIONS, before)
    refused(graph, graph.delete(f"{base}/softwareOathMethods/not-an-id%00"), errors.NOT_FOUND, before)
    refused(graph, graph.get(f"{base}/softwareOathMethods/{user['id']}"), errors.NOT_FOUND, before)
    assert graph.delete(f"{base}/softwareOathMethods/{app_id}").status_code == 204
    with graph.db.transaction() as session:
        assert session.scalar(select(SoftwareOathMethod)) is None
    (audit,) = graph.audits("Admin deleted security info")
    assert audit.target_resources[0]["modifiedProperties"][0]["oldValue"] == "Phone"
    assert graph.get(f"{base}/softwareOathMethods/{app_id}").status_code == 404


def test_methods_collection_lists_the_password(graph: Graph) -> None:
    user = graph.new_user("cy@example.com")
    enable(graph, "Password", PASSWORD_CONFIG_TYPE)
    base = f"/users/{user['id']}/authentication"
    graph.post(f"{base}/passwordMethods/{PASSWORD_ID}/resetPassword", {"newPassword": GOOD})
    methods = graph.get(f"{base}/methods").json()["value"]
    assert next(m for m in methods if m["id"] == PASSWORD_ID)["@odata.type"] == (
        "#microsoft.graph.passwordAuthenticationMethod")
    assert graph.get(f"{base}/methods/{PASSWORD_ID}").json()["password"] is None
