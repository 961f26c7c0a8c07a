"""/policies/authenticationStrengthPolicies and /identity/conditionalAccess/authenticationStrength: shapes,
permissions, bad input refused with nothing changed, audit."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from passgate.store.db import Database
from tests.integration.graph_helpers import Graph, error_of

ROOTS = ("/policies/authenticationStrengthPolicies", "/identity/conditionalAccess/authenticationStrength/policies")
PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004"
YUBIKEY = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
SEED_003 = {"displayName": "TAP or passkey", "description": "New users register with a TAP",
            "allowedCombinations": ["fido2", "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse"]}


@pytest.fixture(params=["v1.0", "beta"])
def graph(request: pytest.FixtureRequest, client: TestClient, db: Database) -> Graph:
    return Graph(client, db, request.param)


def _strengths(graph: Graph) -> list[dict[str, Any]]:
    answer = graph.get(ROOTS[0])
    assert answer.status_code == 200, answer.text
    return list(answer.json()["value"])


def test_built_ins_are_listed_as_entra_has_them(graph: Graph) -> None:
    for root in ROOTS:
        answer = graph.get(root, permissions=("Policy.Read.All",))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["@odata.context"].endswith("$metadata#policies/authenticationStrengthPolicies")
        built = {s["id"]: s for s in body["value"]}
        phishing = built[PHISHING_RESISTANT]
        assert phishing == {
            "id": PHISHING_RESISTANT, "createdDateTime": "2021-12-01T00:00:00Z",
            "modifiedDateTime": "2021-12-01T00:00:00Z", "displayName": "Phishing resistant MFA",
            "description": phishing["description"], "policyType": "builtIn", "requirementsSatisfied": "mfa",
            "allowedCombinations": ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"],
            "combinationConfigurations": [],
        }
        assert "password,softwareOath" in built["00000000-0000-0000-0000-000000000002"]["allowedCombinations"]
    filtered = graph.get(ROOTS[1] + "?$filter=policyType eq 'builtIn'").json()["value"]
    assert len(filtered) == 3
    assert graph.get(ROOTS[0] + "?$filter=displayName eq 'Passwordless MFA'").json()["value"][0]["id"].endswith("3")
    bad = graph.get(ROOTS[0] + "?$filter=description eq 'x'")
    assert bad.status_code == 400 and "policyType eq 'value'" in error_of(bad)["message"]


def test_create_read_patch_delete_custom_strength_audited(graph: Graph) -> None:
    created = graph.post(ROOTS[1], SEED_003, permissions=("Policy.ReadWrite.AuthenticationMethod",))
    assert created.status_code == 201, created.text
    body = created.json()
    sid = body["id"]
    assert body["policyType"] == "custom" and body["requirementsSatisfied"] == "mfa"
    assert body["allowedCombinations"] == SEED_003["allowedCombinations"]
    assert body["passgatePasskeyRequirements"] == {"requireAttested": False, "requireDeviceBound": False}
    for root in ROOTS:
        got = graph.get(f"{root}/{sid}")
        assert got.status_code == 200 and got.json()["displayName"] == "TAP or passkey"
    patched = graph.patch(f"{ROOTS[0]}/{sid}", {"description": "Changed",
                                                "passgatePasskeyRequirements": {"requireAttested": True,
                                                                                "requireDeviceBound": True}},
                          permissions=("Policy.ReadWrite.ConditionalAccess",))
    assert patched.status_code == 204, patched.text
    got = graph.get(f"{ROOTS[0]}/{sid}").json()
    assert got["description"] == "Changed"
    assert got["passgatePasskeyRequirements"] == {"requireAttested": True, "requireDeviceBound": True}
    audit = graph.audits("Update authentication strength")[-1]
    changed = {c["displayName"]: c for c in audit.target_resources[0]["modifiedProperties"]}
    assert changed["description"]["oldValue"] == SEED_003["description"]
    assert changed["description"]["newValue"] == "Changed"
    assert graph.delete(f"{ROOTS[1]}/{sid}").status_code == 204
    assert graph.get(f"{ROOTS[1]}/{sid}").status_code == 404
    assert [a.activity_display_name for a in graph.audits() if "strength" in a.activity_display_name] == [
        "Add authentication strength", "Update authentication strength", "Delete authentication strength"]


def test_update_allowed_combinations_and_usage(graph: Graph) -> None:
    sid = graph.post(ROOTS[0], SEED_003).json()["id"]
    answer = graph.post(f"{ROOTS[0]}/{sid}/updateAllowedCombinations",
                        {"allowedCombinations": ["fido2", "sms, password"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["previousCombinations"] == SEED_003["allowedCombinations"]
    assert answer.json()["currentCombinations"] == ["fido2", "password,sms"]
    assert answer.json()["conditionalAccessReferences"] == []
    user = graph.new_user("u@contoso.example")
    policy = graph.post("/identity/conditionalAccess/policies", {
        "displayName": "Needs custom", "state": "enabled",
        "conditions": {"users": {"includeUsers": [user["id"]]}, "applications": {"includeApplications": ["All"]}},
        "grantControls": {"operator": "OR", "authenticationStrength": {"id": sid}},
    })
    assert policy.status_code == 201, policy.text
    usage = graph.get(f"{ROOTS[1]}/{sid}/usage").json()
    assert [p["id"] for p in usage["mfa"]] == [policy.json()["id"]] and usage["none"] == []
    assert graph.get(f"{ROOTS[1]}/{sid}/usage()").status_code == 200
    refs = graph.post(f"{ROOTS[0]}/{sid}/updateAllowedCombinations", {"allowedCombinations": ["fido2"]}).json()
    assert refs["conditionalAccessReferences"] == [policy.json()["id"]]
    in_use = graph.delete(f"{ROOTS[0]}/{sid}")
    assert in_use.status_code == 409 and error_of(in_use)["code"] == "AuthenticationStrengthInUse"
    assert "Needs custom" in error_of(in_use)["message"]


def test_combination_configurations(graph: Graph) -> None:
    sid = graph.post(ROOTS[0], {"displayName": "One model", "allowedCombinations": ["fido2"]}).json()["id"]
    path = f"{ROOTS[1]}/{sid}/combinationConfigurations"
    created = graph.post(path, {"@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                                "allowedAAGUIDs": [YUBIKEY.upper()], "appliesToCombinations": ["fido2"]})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert created.json()["allowedAAGUIDs"] == [YUBIKEY]
    assert created.json()["@odata.type"] == "#microsoft.graph.fido2CombinationConfiguration"
    assert graph.get(path).json()["value"] == [{k: v for k, v in created.json().items() if k != "@odata.context"}]
    other = "de1e552d-db1d-4423-a619-566b625cdc84"
    assert graph.patch(f"{path}/{cid}", {"allowedAAGUIDs": [YUBIKEY, other]}).status_code == 200
    assert graph.get(f"{path}/{cid}").json()["allowedAAGUIDs"] == sorted([YUBIKEY, other])
    assert graph.get(f"{ROOTS[0]}/{sid}").json()["combinationConfigurations"][0]["id"] == cid
    second = graph.post(path, {"@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                               "allowedAAGUIDs": [YUBIKEY], "appliesToCombinations": ["fido2"]})
    assert second.status_code == 409
    assert graph.delete(f"{path}/{cid}").status_code == 204
    assert graph.get(path).json()["value"] == []


@pytest.mark.parametrize(("method", "suffix", "body", "code"), [
    ("POST", "", {"displayName": "X", "allowedCombinations": ["fido"]}, "AuthenticationStrengthCombinationInvalid"),
    ("POST", "", {"displayName": "X", "allowedCombinations": []}, "AuthenticationStrengthCombinationInvalid"),
    ("POST", "", {"displayName": "X", "allowedCombinations": ["fido2", "fido2"]},
     "AuthenticationStrengthCombinationInvalid"),
    ("POST", "", {"displayName": "X"}, "Request_BadRequest"),
    ("POST", "", {"displayName": "X", "allowedCombinations": ["fido2"], "colour": "red"}, "Request_BadRequest"),
    ("POST", "", {"displayName": "Phishing resistant MFA", "allowedCombinations": ["fido2"]}, "Request_Conflict"),
    ("POST", "", {"displayName": "X", "allowedCombinations": ["fido2"], "policyType": "builtIn"},
     "Request_BadRequest"),
    ("POST", "", {"displayName": "X", "allowedCombinations": ["fido2"],
                  "passgatePasskeyRequirements": {"requireAttested": "yes"}}, "Request_BadRequest"),
    ("PATCH", f"/{PHISHING_RESISTANT}", {"description": "mine"}, "AuthenticationStrengthReadOnly"),
    ("DELETE", f"/{PHISHING_RESISTANT}", None, "AuthenticationStrengthReadOnly"),
    ("POST", f"/{PHISHING_RESISTANT}/updateAllowedCombinations", {"allowedCombinations": ["fido2"]},
     "AuthenticationStrengthReadOnly"),
    ("POST", f"/{PHISHING_RESISTANT}/combinationConfigurations",
     {"@odata.type": "#microsoft.graph.fido2CombinationConfiguration", "allowedAAGUIDs": [YUBIKEY]},
     "AuthenticationStrengthReadOnly"),
    ("PATCH", "/{custom}", {"allowedCombinations": ["fido2"]}, "Request_BadRequest"),
    ("POST", "/{custom}/updateAllowedCombinations", {"allowedCombinations": ["password,bogus"]},
     "AuthenticationStrengthCombinationInvalid"),
    ("POST", "/{custom}/combinationConfigurations",
     {"@odata.type": "#microsoft.graph.fido2CombinationConfiguration", "allowedAAGUIDs": ["not-a-guid"]},
     "CombinationConfigurationInvalid"),
    ("POST", "/{custom}/combinationConfigurations",
     {"@odata.type": "#microsoft.graph.fido2CombinationConfiguration", "allowedAAGUIDs": [YUBIKEY],
      "appliesToCombinations": ["password"]}, "CombinationConfigurationInvalid"),
    ("POST", "/{custom}/combinationConfigurations",
     {"@odata.type": "#microsoft.graph.x509CertificateCombinationConfiguration", "allowedIssuerSkis": ["ab"]},
     "CombinationConfigurationInvalid"),
    ("GET", "/00000000-0000-0000-0000-0000000000ff", None, "Request_ResourceNotFound"),
    ("GET", "/not-a-guid", None, "Request_ResourceNotFound"),
])
def test_bad_input_is_refused_and_changes_nothing(graph: Graph, method: str, suffix: str, body: Any,
                                                  code: str) -> None:
    custom = graph.post(ROOTS[0], {"displayName": "Custom", "allowedCombinations": ["fido2", "password,sms"]}).json()
    before = (_strengths(graph), len(graph.audits()))
    answer = graph.call(method, ROOTS[1] + suffix.replace("{custom}", custom["id"]), json=body)
    assert answer.status_code in (400, 404, 409), answer.text
    assert error_of(answer)["code"] == code
    assert (_strengths(graph), len(graph.audits())) == before


def test_malformed_json_is_a_400(graph: Graph) -> None:
    answer = graph.call("POST", ROOTS[0], content=b"{not json")
    assert answer.status_code == 400 and error_of(answer)["code"] == "MalformedJson"


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", ROOTS[0],
     {"Policy.Read.All", "Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod"}),
    ("POST", ROOTS[1], {"Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod"}),
    ("GET", "/identity/conditionalAccess/authenticationStrength/authenticationMethodModes",
     {"Policy.Read.All", "Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod"}),
])
def test_permissions(graph: Graph, method: str, path: str, allowed: set[str]) -> None:
    body = {"displayName": "Perm", "allowedCombinations": ["fido2"]} if method == "POST" else None
    for permission in ("User.Read.All", "Policy.Read.ConditionalAccess", *sorted(allowed)):
        answer = graph.call(method, path, json=body, permissions=(permission,))
        if permission in allowed:
            assert answer.status_code in (200, 201), (permission, answer.text)
            if method == "POST":
                graph.delete(f"{ROOTS[0]}/{answer.json()['id']}")
        else:
            assert answer.status_code == 403 and error_of(answer)["code"] == "Authorization_RequestDenied"
    assert graph.call(method, path, json=body, token="").status_code == 401


def test_method_modes(graph: Graph) -> None:
    modes = graph.get("/identity/conditionalAccess/authenticationStrength/authenticationMethodModes").json()["value"]
    by_id = {m["id"]: m for m in modes}
    assert by_id["temporaryAccessPassOneTime"] == {"id": "temporaryAccessPassOneTime",
                                                   "authenticationMethod": "temporaryAccessPass",
                                                   "displayName": "Temporary Access Pass (one-time use)"}
    assert by_id["fido2"]["authenticationMethod"] == "fido2" and len(modes) == 17
