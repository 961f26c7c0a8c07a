"""/identity/conditionalAccess: policies (and the /policies/conditionalAccessPolicies alias), named locations,
What If, and the lock-out guard, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from passgate import conditional_access as ca
from passgate.core.access import ADMIN_API_APP_ID, SIGN_IN_PORTAL_APP_ID, Outcome, Platform
from passgate.core.roles import GLOBAL_ADMINISTRATOR
from passgate.core.values import Evidence, MethodMode, PasskeyEvidence
from passgate.store.db import Database
from passgate.store.tables import ConditionalAccessPolicy, NamedLocation, Passkey
from tests.integration.graph_helpers import Graph, error_of

POLICIES = "/identity/conditionalAccess/policies"
ALIAS = "/policies/conditionalAccessPolicies"
LOCATIONS = "/identity/conditionalAccess/namedLocations"
EVALUATE = "/identity/conditionalAccess/evaluate"
PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004"
OFFICE_IP, HOME_IP, OFFICE_V6, HOME_V6 = "203.0.113.10", "192.0.2.50", "2001:db8:1::10", "2001:db8:9::1"
YUBIKEY = "cb69481e-8ff7-4039-93ec-0a2729a154a8"


@pytest.fixture(params=["v1.0", "beta"])
def graph(request: pytest.FixtureRequest, client: TestClient, db: Database) -> Graph:
    return Graph(client, db, request.param)


def _give_passkey(db: Database, user_id: str, *, synced: bool = True, attested: bool = False) -> None:
    with db.transaction() as session:
        session.add(Passkey(
            user_id=user_id, credential_id=user_id.encode()[:16] + (b"s" if synced else b"d"), public_key=b"k" * 77,
            display_name="Key", aaguid=YUBIKEY, attestation_format="packed" if attested else "none",
            attestation_level="attested" if attested else "notAttested", backup_eligible=synced,
            backup_state=synced, transports=[], created_at=datetime.now(UTC),
        ))


def _admin(graph: Graph, upn: str = "admin@contoso.example") -> dict[str, Any]:
    user = graph.new_user(upn)
    answer = graph.post("/roleManagement/directory/roleAssignments",
                        {"roleDefinitionId": GLOBAL_ADMINISTRATOR, "principalId": user["id"]})
    assert answer.status_code == 201, answer.text
    return user


def _office(graph: Graph, trusted: bool = True) -> dict[str, Any]:
    answer = graph.post(LOCATIONS, {
        "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office", "isTrusted": trusted,
        "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"},
                     {"@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": "2001:db8:1::/48"}],
    })
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _policy(name: str, users: dict[str, Any], grant: dict[str, Any] | None, *, state: str = "enabled",
            apps: dict[str, Any] | None = None, **conditions: Any) -> dict[str, Any]:
    return {"displayName": name, "state": state,
            "conditions": {"users": users, "applications": apps or {"includeApplications": ["All"]}, **conditions},
            "grantControls": grant}


BLOCK = {"operator": "OR", "builtInControls": ["block"]}
MFA = {"operator": "OR", "builtInControls": ["mfa"]}
PASSKEY = {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": PHISHING_RESISTANT}}


def _rows(db: Database) -> tuple[int, int, int]:
    with db.transaction() as session:
        return (session.scalar(select(func.count()).select_from(ConditionalAccessPolicy)) or 0,
                session.scalar(select(func.count()).select_from(NamedLocation)) or 0,
                len(list(session.scalars(select(ConditionalAccessPolicy.document)))))


# -- policies --------------------------------------------------------------------------------------
def test_policy_crud_in_graph_shape_with_the_whole_strength(graph: Graph) -> None:
    user = graph.new_user("u@contoso.example")
    office = _office(graph)
    body = _policy("Passkeys outside the office", {"includeUsers": ["All"], "excludeUsers": [user["id"]]}, PASSKEY,
                   locations={"includeLocations": ["All"], "excludeLocations": [office["id"]]},
                   platforms={"includePlatforms": ["all"], "excludePlatforms": ["linux"]},
                   clientAppTypes=["browser"])
    body["sessionControls"] = {"signInFrequency": {"isEnabled": True, "value": 8, "type": "hours",
                                                   "frequencyInterval": "timeBased"}}
    created = graph.post(POLICIES, body, permissions=("Policy.ReadWrite.ConditionalAccess",))
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["@odata.context"].endswith("$metadata#identity/conditionalAccess/policies/$entity")
    assert doc["state"] == "enabled" and doc["templateId"] is None
    assert doc["conditions"]["users"]["excludeUsers"] == [user["id"]]
    assert doc["conditions"]["locations"] == {"includeLocations": ["All"], "excludeLocations": [office["id"]]}
    assert doc["conditions"]["clientAppTypes"] == ["browser"] and doc["conditions"]["userRiskLevels"] == []
    strength = doc["grantControls"]["authenticationStrength"]
    assert strength["id"] == PHISHING_RESISTANT and strength["displayName"] == "Phishing resistant MFA"
    assert strength["allowedCombinations"] == ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"]
    assert doc["sessionControls"]["signInFrequency"]["value"] == 8
    pid = doc["id"]
    for path in (POLICIES, ALIAS):
        assert graph.get(f"{path}/{pid}", permissions=("Policy.Read.All",)).json()["displayName"] == body["displayName"]
        listed = graph.get(path, permissions=("Policy.Read.ConditionalAccess",)).json()["value"]
        assert [p["id"] for p in listed] == [pid]
    assert graph.get(f"{POLICIES}?$filter=state eq 'disabled'").json()["value"] == []
    patched = graph.patch(f"{ALIAS}/{pid}", {"state": "enabledForReportingButNotEnforced",
                                             "conditions": {"clientAppTypes": ["all"]}})
    assert patched.status_code == 204, patched.text
    after = graph.get(f"{POLICIES}/{pid}").json()
    assert after["state"] == "enabledForReportingButNotEnforced" and after["conditions"]["clientAppTypes"] == ["all"]
    assert after["conditions"]["locations"] == doc["conditions"]["locations"]  # untouched conditions are kept
    audit = graph.audits("Update conditional access policy")[-1]
    changes = {c["displayName"]: c for c in audit.target_resources[0]["modifiedProperties"]}
    assert changes["state"]["oldValue"] == "enabled" and changes["state"]["newValue"] == (
        "enabledForReportingButNotEnforced")
    in_use = graph.delete(f"{LOCATIONS}/{office['id']}")
    assert in_use.status_code == 409 and error_of(in_use)["code"] == "NamedLocationInUse"
    assert graph.delete(f"{POLICIES}/{pid}").status_code == 204
    assert graph.get(f"{POLICIES}/{pid}").status_code == 404
    assert [a.activity_display_name for a in graph.audits() if "conditional access" in a.activity_display_name] == [
        "Add conditional access policy", "Update conditional access policy", "Delete conditional access policy"]


BAD_POLICIES: list[tuple[str, dict[str, Any]]] = [
    ("unknown property", {**_policy("X", {"includeUsers": ["All"]}, BLOCK), "colour": "red"}),
    ("bad state", _policy("X", {"includeUsers": ["All"]}, BLOCK, state="on")),
    ("no name", {**_policy("X", {"includeUsers": ["All"]}, BLOCK), "displayName": ""}),
    ("unknown user", _policy("X", {"includeUsers": ["11111111-1111-1111-1111-111111111111"]}, BLOCK)),
    ("unknown group", _policy("X", {"includeGroups": ["11111111-1111-1111-1111-111111111111"]}, BLOCK)),
    ("unknown role", _policy("X", {"includeRoles": ["11111111-1111-1111-1111-111111111111"]}, BLOCK)),
    ("nobody", _policy("X", {"excludeUsers": []}, BLOCK)),
    ("guests", _policy("X", {"includeUsers": ["All"], "includeGuestsOrExternalUsers": {"x": 1}}, BLOCK)),
    ("unknown app", _policy("X", {"includeUsers": ["All"]}, BLOCK,
                            apps={"includeApplications": ["11111111-1111-1111-1111-111111111111"]})),
    ("app and action", _policy("X", {"includeUsers": ["All"]}, BLOCK,
                               apps={"includeApplications": ["All"],
                                     "includeUserActions": ["urn:user:registersecurityinfo"]})),
    ("device action", _policy("X", {"includeUsers": ["All"]}, BLOCK,
                              apps={"includeUserActions": ["urn:user:registerdevice"]})),
    ("unknown strength", _policy("X", {"includeUsers": ["All"]},
                                 {"operator": "OR", "authenticationStrength": {"id": "nope"}})),
    ("mfa and strength", _policy("X", {"includeUsers": ["All"]},
                                 {"operator": "OR", "builtInControls": ["mfa"],
                                  "authenticationStrength": {"id": PHISHING_RESISTANT}})),
    ("device control", _policy("X", {"includeUsers": ["All"]},
                               {"operator": "OR", "builtInControls": ["compliantDevice"]})),
    ("bad operator", _policy("X", {"includeUsers": ["All"]}, {"operator": "XOR", "builtInControls": ["block"]})),
    ("no control", _policy("X", {"includeUsers": ["All"]}, {"operator": "OR", "builtInControls": []})),
    ("risk", _policy("X", {"includeUsers": ["All"]}, BLOCK, signInRiskLevels=["high"])),
    ("bad platform", _policy("X", {"includeUsers": ["All"]}, BLOCK, platforms={"includePlatforms": ["amiga"]})),
    ("bad client app", _policy("X", {"includeUsers": ["All"]}, BLOCK, clientAppTypes=["telnet"])),
    ("unknown location", _policy("X", {"includeUsers": ["All"]}, BLOCK,
                                 locations={"includeLocations": ["11111111-1111-1111-1111-111111111111"]})),
    ("frequency", {**_policy("X", {"includeUsers": ["All"]}, MFA),
                   "sessionControls": {"signInFrequency": {"isEnabled": True, "value": 0, "type": "hours"}}}),
    ("frequency unit", {**_policy("X", {"includeUsers": ["All"]}, MFA),
                        "sessionControls": {"signInFrequency": {"isEnabled": True, "value": 2, "type": "weeks"}}}),
    ("every time with value", {**_policy("X", {"includeUsers": ["All"]}, MFA), "sessionControls": {
        "signInFrequency": {"isEnabled": True, "value": 2, "type": "hours", "frequencyInterval": "everyTime"}}}),
]


@pytest.mark.parametrize(("case", "body"), BAD_POLICIES, ids=[c for c, _ in BAD_POLICIES])
def test_bad_policies_are_refused_and_change_nothing(graph: Graph, case: str, body: dict[str, Any]) -> None:
    existing = graph.post(POLICIES, _policy("Existing", {"includeUsers": ["None"]}, MFA)).json()
    before = (_rows(graph.db), len(graph.audits()), graph.get(f"{POLICIES}/{existing['id']}").json())
    answer = graph.post(POLICIES, body)
    assert answer.status_code == 400, answer.text
    assert error_of(answer)["code"] == "ConditionalAccessPolicyInvalid", error_of(answer)
    answer = graph.patch(f"{POLICIES}/{existing['id']}", body)
    assert answer.status_code == 400, (case, answer.text)
    assert (_rows(graph.db), len(graph.audits()), graph.get(f"{POLICIES}/{existing['id']}").json()) == before


def test_mfa_with_strength_message_says_why(graph: Graph) -> None:
    body = _policy("X", {"includeUsers": ["All"]}, {"operator": "OR", "builtInControls": ["mfa"],
                                                    "authenticationStrength": {"id": PHISHING_RESISTANT}})
    assert "both 'mfa' and an authenticationStrength" in error_of(graph.post(POLICIES, body))["message"]


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", POLICIES, {"Policy.Read.All", "Policy.Read.ConditionalAccess", "Policy.ReadWrite.ConditionalAccess"}),
    ("POST", POLICIES, {"Policy.ReadWrite.ConditionalAccess"}),
    ("GET", LOCATIONS, {"Policy.Read.All", "Policy.Read.ConditionalAccess", "Policy.ReadWrite.ConditionalAccess"}),
    ("POST", LOCATIONS, {"Policy.ReadWrite.ConditionalAccess"}),
    ("POST", EVALUATE, {"Policy.Read.All", "Policy.Read.ConditionalAccess", "Policy.ReadWrite.ConditionalAccess"}),
])
def test_permissions(graph: Graph, method: str, path: str, allowed: set[str]) -> None:
    user = graph.new_user("p@contoso.example")
    bodies = {
        POLICIES: _policy("Perm", {"includeUsers": ["None"]}, MFA),
        LOCATIONS: {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "L",
                    "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "10.0.0.0/8"}]},
        EVALUATE: {"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": user["id"]},
                   "signInContext": {"@odata.type": "#microsoft.graph.applicationContext",
                                     "includeApplications": [ADMIN_API_APP_ID]}},
    }
    body = bodies[path] if method == "POST" else None
    for permission in ("User.ReadWrite.All", "Policy.ReadWrite.AuthenticationMethod", *sorted(allowed)):
        answer = graph.call(method, path, json=body, permissions=(permission,))
        if permission in allowed:
            assert answer.status_code in (200, 201), (permission, answer.text)
        else:
            assert answer.status_code == 403 and error_of(answer)["code"] == "Authorization_RequestDenied"
    assert graph.call(method, path, json=body, token="").status_code == 401


# -- named locations -------------------------------------------------------------------------------
def test_named_locations(graph: Graph) -> None:
    office = _office(graph)
    assert office["@odata.type"] == "#microsoft.graph.ipNamedLocation" and office["isTrusted"] is True
    assert office["ipRanges"][1] == {"@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": "2001:db8:1::/48"}
    lid = office["id"]
    assert graph.get(f"{LOCATIONS}/{lid}").json()["displayName"] == "Office"
    assert graph.patch(f"{LOCATIONS}/{lid}", {"displayName": "HQ"}).status_code == 400  # @odata.type is required
    assert graph.patch(f"{LOCATIONS}/{lid}", {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "HQ",
                                              "isTrusted": False}).status_code == 204
    got = graph.get(f"{LOCATIONS}/{lid}").json()
    assert (got["displayName"], got["isTrusted"], len(got["ipRanges"])) == ("HQ", False, 2)
    assert [x["id"] for x in graph.get(f"{LOCATIONS}?$filter=displayName eq 'HQ'").json()["value"]] == [lid]
    assert graph.delete(f"{LOCATIONS}/{lid}").status_code == 204
    assert graph.get(f"{LOCATIONS}/{lid}").status_code == 404
    assert [a.activity_display_name for a in graph.audits() if "named location" in a.activity_display_name] == [
        "Add named location", "Update named location", "Delete named location"]


@pytest.mark.parametrize("body", [
    {"@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "FR", "countriesAndRegions": ["FR"]},
    {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "X", "ipRanges": []},
    {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "X",
     "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "300.1.1.0/24"}]},
    {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "X",
     "ipRanges": [{"@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": "10.0.0.0/8"}]},
    {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "X",
     "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "10.0.0.1"}]},
    {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "X", "isTrusted": "yes",
     "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "10.0.0.0/8"}]},
    {"displayName": "X", "ipRanges": [{"cidrAddress": "10.0.0.0/8"}]},
])
def test_bad_named_locations_are_refused(graph: Graph, body: dict[str, Any]) -> None:
    graph.token()  # registering the test's own app is audited too
    before = (_rows(graph.db), len(graph.audits()))
    answer = graph.post(LOCATIONS, body)
    assert answer.status_code == 400 and error_of(answer)["code"] == "NamedLocationInvalid", answer.text
    assert (_rows(graph.db), len(graph.audits())) == before


# -- lock-out ----------------------------------------------------------------------------------------
def test_lockout_is_refused_with_409_unless_overridden(graph: Graph) -> None:
    admin = _admin(graph)
    block_all = _policy("Block everything", {"includeUsers": ["All"]}, BLOCK)
    refused = graph.post(POLICIES, block_all)
    assert refused.status_code == 409, refused.text
    error = error_of(refused)
    assert error["code"] == "ConditionalAccessWouldLockOutAdministrators" and "'Block everything'" in error["message"]
    assert _rows(graph.db)[0] == 0
    excluded = _policy("Block all but admins", {"includeUsers": ["All"], "excludeRoles": [GLOBAL_ADMINISTRATOR]},
                       BLOCK)
    assert graph.post(POLICIES, excluded).status_code == 201
    portal_only = _policy("Block portal", {"includeUsers": ["All"]}, BLOCK,
                          apps={"includeApplications": [SIGN_IN_PORTAL_APP_ID]})
    assert graph.post(POLICIES, portal_only).status_code == 201
    # a strength the admin cannot meet (no passkey) locks out; disabled it is fine, enabling it is refused
    passkey_admin = _policy("Passkeys for the admin API", {"includeRoles": [GLOBAL_ADMINISTRATOR]}, PASSKEY,
                            apps={"includeApplications": [ADMIN_API_APP_ID]})
    assert graph.post(POLICIES, passkey_admin).status_code == 409
    pid = graph.post(POLICIES, {**passkey_admin, "state": "disabled"}).json()["id"]
    assert graph.patch(f"{POLICIES}/{pid}", {"state": "enabled"}).status_code == 409
    assert graph.get(f"{POLICIES}/{pid}").json()["state"] == "disabled"
    _give_passkey(graph.db, admin["id"])
    assert graph.patch(f"{POLICIES}/{pid}", {"state": "enabled"}).status_code == 204
    forced = graph.post(POLICIES, block_all, headers={"Passgate-Override-Lockout": "true"})
    assert forced.status_code == 201, forced.text


# -- What If ---------------------------------------------------------------------------------------------
@pytest.fixture
def tenant(graph: Graph) -> dict[str, Any]:
    """Two users (a Sales member; a Global Administrator with a passkey), an app, a trusted office and
    five policies of every state."""
    sales = graph.new_group("Sales")
    alice = graph.new_user("alice@contoso.example")
    assert graph.post(f"/groups/{sales['id']}/members/$ref",
                      {"@odata.id": f"users/{alice['id']}"}).status_code == 204
    bob = _admin(graph, "bob@contoso.example")
    _give_passkey(graph.db, bob["id"], synced=False, attested=True)
    graph.token()
    app = next(iter(graph.app_ids.values())).lower()
    office = _office(graph)
    outside = {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}
    specs = {
        "sales_outside": _policy("Block Sales outside the office", {"includeGroups": [sales["id"]]}, BLOCK,
                                 locations=outside),
        "admin_api": _policy("Phishing resistant for the admin API", {"includeRoles": [GLOBAL_ADMINISTRATOR]},
                             PASSKEY, apps={"includeApplications": [ADMIN_API_APP_ID]}),
        "report_mfa": _policy("Report MFA for the app", {"includeUsers": ["All"]}, MFA,
                              state="enabledForReportingButNotEnforced", apps={"includeApplications": [app]}),
        "disabled": _policy("Disabled block", {"includeUsers": ["All"]}, BLOCK, state="disabled"),
        "register_office": _policy("Register from the office only", {"includeUsers": ["All"]}, BLOCK,
                                   apps={"includeUserActions": ["urn:user:registersecurityinfo"]}, locations=outside),
        "android_mfa": _policy("MFA on Android", {"includeUsers": ["All"]}, MFA,
                               platforms={"includePlatforms": ["android"]}),
    }
    ids = {}
    for key, body in specs.items():
        answer = graph.post(POLICIES, body)
        assert answer.status_code == 201, answer.text
        ids[key] = answer.json()["id"]
    return {"alice": alice["id"], "bob": bob["id"], "app": app, "office": office["id"], "ids": ids}


def _expected(who: str, context: str, ip: str, platform: str | None) -> set[str]:
    outside = ip not in (OFFICE_IP, OFFICE_V6)
    applies = set()
    if context == "register":
        return {"register_office"} if outside else set()
    if who == "alice" and outside:
        applies.add("sales_outside")
    if who == "bob" and context == "admin":
        applies.add("admin_api")
    if context == "app":
        applies.add("report_mfa")
    if platform == "android":
        applies.add("android_mfa")
    return applies


MATRIX = [(who, context, ip, platform) for who in ("alice", "bob") for context in ("app", "admin", "portal", "register")
          for ip in (OFFICE_IP, HOME_IP, OFFICE_V6, HOME_V6) for platform in (None, "android", "windows")]


def test_what_if_answers_a_matrix_and_agrees_with_live_sign_ins(graph: Graph, tenant: dict[str, Any]) -> None:
    names = {v: k for k, v in tenant["ids"].items()}
    apps = {"app": tenant["app"], "admin": ADMIN_API_APP_ID, "portal": SIGN_IN_PORTAL_APP_ID}
    for who, context, ip, platform in MATRIX[:: 3 if graph.version == "beta" else 1]:
        sign_in_context = (
            {"@odata.type": "#microsoft.graph.userActionContext", "userAction": "registerSecurityInformation"}
            if context == "register" else
            {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [apps[context]]})
        conditions: dict[str, Any] = {"ipAddress": ip, "clientAppType": "browser", "country": "US",
                                      "signInRiskLevel": "none"}
        if platform:
            conditions["devicePlatform"] = platform
        answer = graph.post(EVALUATE, {
            "signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": tenant[who]},
            "signInContext": sign_in_context, "signInConditions": conditions, "appliedPoliciesOnly": False})
        assert answer.status_code == 200, answer.text
        results = answer.json()["value"]
        assert len(results) == 6
        applied = {names[r["id"]] for r in results if r["policyApplies"]}
        assert applied == _expected(who, context, ip, platform), (who, context, ip, platform)
        for r in results:
            assert r["analysisReasons"] == "notSet" if r["policyApplies"] else r["analysisReasons"] != "notSet"
        # the live engine (with evidence) applies the same policies
        with graph.db.transaction() as session:
            live = ca.evaluate(
                session, user_id=tenant[who], now=datetime.now(UTC),
                app_id=None if context == "register" else apps[context],
                user_action="urn:user:registersecurityinfo" if context == "register" else None,
                ip_address=ip, platform=Platform(platform) if platform else None,
                evidence=Evidence(frozenset({MethodMode.TAP_MULTI_USE}), datetime.now(UTC)))
        live_applied = {names[e.policy.id] for e in live.policies if e.applies}
        assert live_applied == applied


def test_what_if_shapes_and_reasons(graph: Graph, tenant: dict[str, Any]) -> None:
    body = {"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": tenant["alice"]},
            "signInContext": {"@odata.type": "#microsoft.graph.applicationContext",
                              "includeApplications": [tenant["app"]]},
            "signInConditions": {"ipAddress": HOME_IP, "devicePlatform": "iOS"}, "appliedPoliciesOnly": True}
    answer = graph.post(EVALUATE, body)
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    assert payload["@odata.context"].endswith("$metadata#Collection(microsoft.graph.whatIfAnalysisResult)")
    by_name = {r["displayName"]: r for r in payload["value"]}
    assert set(by_name) == {"Block Sales outside the office", "Report MFA for the app"}
    block = by_name["Block Sales outside the office"]
    assert block["grantControls"]["builtInControls"] == ["block"] and block["state"] == "enabled"
    assert {"conditions", "createdDateTime", "sessionControls"} <= set(block)
    everything = graph.post(EVALUATE, {**body, "appliedPoliciesOnly": False}).json()["value"]
    reasons = {r["displayName"]: r["analysisReasons"] for r in everything}
    assert reasons["Disabled block"].endswith("policyNotEnabled")
    assert reasons["MFA on Android"] == "devicePlatform"
    assert reasons["Phishing resistant for the admin API"] == "users,application"
    assert reasons["Register from the office only"] == "userActions"


@pytest.mark.parametrize("body", [
    {},
    {"signInIdentity": {"@odata.type": "#microsoft.graph.servicePrincipalSignIn", "servicePrincipalId": "x"},
     "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": ["All"]}},
    {"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "11111111-1111-1111-1111-111111111111"},
     "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": ["x"]}},
    {"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "{alice}"},
     "signInContext": {"@odata.type": "#microsoft.graph.authContext", "authenticationContextValue": "c1"}},
    {"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "{alice}"},
     "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": []}},
    {"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "{alice}"},
     "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": ["x"]},
     "signInConditions": {"ipAddress": "999.1.1.1"}},
    {"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "{alice}"},
     "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": ["x"]},
     "signInConditions": {"devicePlatform": "amiga"}},
    {"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "{alice}"},
     "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": ["x"]},
     "colour": "red"},
])
def test_what_if_bad_input(graph: Graph, tenant: dict[str, Any], body: dict[str, Any]) -> None:
    import json

    sent = json.loads(json.dumps(body).replace("{alice}", tenant["alice"]))
    answer = graph.post(EVALUATE, sent)
    assert answer.status_code == 400 and error_of(answer)["code"] == "Request_BadRequest", answer.text


def test_live_evaluation_steps_up_and_blocks(graph: Graph, tenant: dict[str, Any]) -> None:
    """The service's evaluate() is what live sign-ins will call: it reads users, groups, roles, passkeys and
    locations from the database."""
    now = datetime.now(UTC)
    with graph.db.transaction() as session:
        blocked = ca.evaluate(session, user_id=tenant["alice"], now=now, app_id=tenant["app"], ip_address=HOME_IP,
                              evidence=Evidence(frozenset({MethodMode.FIDO2}), now,
                                                PasskeyEvidence(YUBIKEY, True, True)))
        assert blocked.outcome is Outcome.BLOCK and blocked.blocked_by is not None
        assert blocked.blocked_by.display_name == "Block Sales outside the office"
        at_office = ca.evaluate(session, user_id=tenant["alice"], now=now, app_id=tenant["app"], ip_address=OFFICE_IP,
                                evidence=Evidence(frozenset({MethodMode.TAP_ONE_TIME}), now))
        assert at_office.outcome is Outcome.ALLOW
        report = next(e for e in at_office.policies if e.policy.display_name == "Report MFA for the app")
        assert report.result == "reportOnlySuccess"
        bob = ca.evaluate(session, user_id=tenant["bob"], now=now, app_id=ADMIN_API_APP_ID,
                          evidence=Evidence(frozenset({MethodMode.TAP_MULTI_USE}), now))
        assert bob.outcome is Outcome.STEP_UP
        assert bob.requirements[0].alternatives[0].challenges == (frozenset({MethodMode.FIDO2}),)
        assert bob.requirements[0].alternatives[0].passkeys == (PasskeyEvidence(YUBIKEY, True, True),)


def test_sign_in_log_words(graph: Graph, tenant: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    with graph.db.transaction() as session:
        decision = ca.evaluate(session, user_id=tenant["bob"], now=now, app_id=ADMIN_API_APP_ID,
                               evidence=Evidence(frozenset({MethodMode.TAP_MULTI_USE}), now))
    entries = {e["displayName"]: e for e in ca.applied_policies_json(decision)}
    admin = entries["Phishing resistant for the admin API"]
    assert admin["result"] == "failure" and admin["enforcedGrantControls"] == ["RequireAuthenticationStrength"]
    assert admin["authenticationStrength"] == {"authenticationStrengthId": PHISHING_RESISTANT,
                                               "displayName": "Phishing resistant MFA",
                                               "authenticationStrengthResult": "singleChallengeRequired"}
    assert entries["Disabled block"]["result"] == "notEnabled"
    assert entries["Report MFA for the app"]["result"] == "reportOnlyNotApplied"
    assert "authenticationStrength" not in ca.applied_policies_json(decision, beta=False)[0]
    assert decision.status == "failure"


def test_a_stricter_strength_cannot_lock_administrators_out_either(graph: Graph) -> None:
    admin = _admin(graph)
    _give_passkey(graph.db, admin["id"], synced=True)
    strengths = "/identity/conditionalAccess/authenticationStrength/policies"
    sid = graph.post(strengths, {"displayName": "Admin keys", "allowedCombinations": ["fido2"]}).json()["id"]
    policy = _policy("Admin keys for the admin API", {"includeRoles": [GLOBAL_ADMINISTRATOR]},
                     {"operator": "OR", "authenticationStrength": {"id": sid}},
                     apps={"includeApplications": [ADMIN_API_APP_ID]})
    assert graph.post(POLICIES, policy).status_code == 201
    stricter = {"passgatePasskeyRequirements": {"requireAttested": False, "requireDeviceBound": True}}
    refused = graph.patch(f"{strengths}/{sid}", stricter)
    assert refused.status_code == 409, refused.text
    assert "'Admin keys for the admin API'" in error_of(refused)["message"]
    assert graph.get(f"{strengths}/{sid}").json()["passgatePasskeyRequirements"]["requireDeviceBound"] is False
    other_model = {"@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                   "allowedAAGUIDs": ["de1e552d-db1d-4423-a619-566b625cdc84"], "appliesToCombinations": ["fido2"]}
    assert graph.post(f"{strengths}/{sid}/combinationConfigurations", other_model).status_code == 409
    assert graph.get(f"{strengths}/{sid}/combinationConfigurations").json()["value"] == []
    forced = graph.patch(f"{strengths}/{sid}", stricter, headers={"Passgate-Override-Lockout": "true"})
    assert forced.status_code == 204
