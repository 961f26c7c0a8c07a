"""Conditional Access in live sign-ins, through the HTTP doors: /oauth2/authorize (each outcome, SSO reuse),
the sign-in portal (Security info), the user action "register security info", the sign-in log's CA fields
read back through /beta/auditLogs/signIns, and What If agreeing with live sign-ins. Both databases."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from bench.softauthn import SoftAuthenticator
from passgate import methods_policy
from passgate.app import create_app
from passgate.config import Settings
from passgate.context import RequestContext, utcnow
from passgate.core import errors
from passgate.core.access import SIGN_IN_PORTAL_APP_ID
from passgate.core.roles import SECURITY_READER
from passgate.signin import passwords
from passgate.store.db import Database
from passgate.store.tables import BrowserSession, User
from tests.integration.graph_helpers import Graph
from tests.integration.oidc_helpers import authorize, claims_of, exchange, make_app, pkce, redirect_params
from tests.integration.test_signin_legacy import PASSWORD, SECRET, configure, password_step, with_app
from tests.integration.test_signin_support import (
    ORIGIN,
    enrol,
    error_of,
    issue_tap,
    make_user,
    register,
    signed_in_as,
    tap_sign_in,
)

POLICIES = "/identity/conditionalAccess/policies"
STRENGTHS = "/identity/conditionalAccess/authenticationStrength/policies"
PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004"
BLOCK = {"operator": "OR", "builtInControls": ["block"]}
MFA = {"operator": "OR", "builtInControls": ["mfa"]}
OTHER_AAGUID = "cb69481e-8ff7-4039-93ec-0a2729a154a8"


def strength_grant(strength_id: str) -> dict[str, Any]:
    return {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": strength_id}}


def add_policy(g: Graph, name: str, grant: dict[str, Any] | None, *, apps: list[str] | None = None,
               action: str | None = None, state: str = "enabled", users: dict[str, Any] | None = None,
               **conditions: Any) -> str:
    applications = {"includeUserActions": [action]} if action else {"includeApplications": apps or ["All"]}
    body: dict[str, Any] = {"displayName": name, "state": state, "grantControls": grant,
                            "conditions": {"users": users or {"includeUsers": ["All"]},
                                           "applications": applications, **conditions}}
    if "sessionControls" in conditions:
        body["sessionControls"] = body["conditions"].pop("sessionControls")
    answer = g.post(POLICIES, body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def add_strength(g: Graph, name: str, combinations: list[str], aaguids: list[str] | None = None) -> str:
    body: dict[str, Any] = {"displayName": name, "allowedCombinations": combinations}
    if aaguids is not None:
        body["combinationConfigurations"] = [{"@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                                              "appliesToCombinations": ["fido2"], "allowedAAGUIDs": aaguids}]
    answer = g.post(STRENGTHS, body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def log(g: Graph, app_id: str, *, include_unknown: bool = True) -> list[dict[str, Any]]:
    """The beta sign-in log entries of one app, oldest first."""
    headers = {"Prefer": "include-unknown-enum-members"} if include_unknown else {}
    answer = g.get("/auditLogs/signIns", headers=headers)
    assert answer.status_code == 200, answer.text
    entries = [e for e in answer.json()["value"] if e["appId"] == app_id]
    return sorted(entries, key=lambda e: e["createdDateTime"])


def sign_in_target(response: Any) -> tuple[str, dict[str, list[str]]]:
    assert response.status_code == 303, (response.status_code, response.text[:300])
    target = urlsplit(response.headers["location"])
    return target.path, parse_qs(target.query)


def marker_of(next_url: str) -> str:
    return parse_qs(urlsplit(next_url).query)["passgate_fresh"][0]


def give_password(db: Database, user_id: str) -> None:
    configure(db, methods_policy.PASSWORD)
    with db.transaction() as session:
        user = session.get(User, user_id)
        assert user is not None
        passwords.set_password(session, RequestContext(), user, PASSWORD, self_service=False)


def password_and_code(client: Any, upn: str, marker: str | None = None) -> Any:
    body: dict[str, Any] = {"username": upn, "password": PASSWORD}
    if marker:
        body["authorization"] = marker
    pending = client.post("/api/signin/password", json=body).json()["pending"]
    return client.post("/api/signin/code", json={"pending": pending, "code": pyotp.TOTP(SECRET).now(),
                                                 "authorization": marker})


def passkey_with(client: Any, authenticator: SoftAuthenticator, upn: str | None, marker: str | None) -> Any:
    options = client.post("/api/signin/passkey/options", json={"username": upn, "authorization": marker}
                          if upn else {"authorization": marker})
    assert options.status_code == 200, options.text
    credential = authenticator.get(options.json(), ORIGIN)
    return client.post("/api/signin/passkey", json={"credential": credential, "authorization": marker}), \
        options.json()


@pytest.fixture
def g(client: TestClient, db: Database) -> Graph:
    return Graph(client, db, "beta")


# -- authorize: each outcome ----------------------------------------------------------------------
def test_step_up_from_password_and_code_to_a_passkey_in_the_same_sign_in(client: Any, db: Database, g: Graph
                                                                         ) -> None:
    client_id, secret = make_app(db)
    user_id, authenticator, passkey = enrol(client, db, "cy@example.com")
    enrol(client, db, "other@example.com")  # someone else's passkey is never offered
    give_password(db, user_id)
    with_app(db, user_id)
    policy = add_policy(g, "Apps need phishing-resistant MFA", strength_grant(PHISHING_RESISTANT), apps=[client_id])
    assert password_and_code(client, "cy@example.com").status_code == 200
    verifier, challenge = pkce()
    path, query = sign_in_target(authorize(client, client_id, challenge))
    assert path == "/signin" and query["username"] == ["cy@example.com"]
    marker = marker_of(query["next"][0])
    # The sign-in page offers only what satisfies the strength: the passkey, not the password.
    found = client.post("/api/signin/identify", json={"username": "cy@example.com", "authorization": marker})
    assert found.json()["methods"] == ["passkey"]
    assert found.json()["stepUp"].endswith("Web app requires 'Phishing resistant MFA': sign in again with a method "
                                           "that satisfies it.")
    # Without the pending authorization (a plain portal sign-in) everything is offered.
    plain = client.post("/api/signin/identify", json={"username": "cy@example.com"}).json()
    assert plain["methods"] == ["passkey", "password"] and "stepUp" not in plain
    signed, options = passkey_with(client, authenticator, "cy@example.com", marker)
    assert signed.status_code == 200, signed.text
    assert [c["id"] for c in options["allowCredentials"]] == [passkey["credentialId"]]
    answer = redirect_params(client.get(query["next"][0], follow_redirects=False))
    claims = claims_of(client, exchange(client, client_id, secret, answer["code"], verifier).json()["id_token"])
    assert claims["acr"] == "phr"
    entries = log(g, client_id)
    interrupt, ceremony, issued = entries
    portal = log(g, SIGN_IN_PORTAL_APP_ID)[-1]  # the password and code sign-in: both factors, one entry
    assert [s["authenticationMethod"] for s in portal["authenticationDetails"]] == ["Password",
                                                                                    "OATH verification code"]
    assert portal["authenticationDetails"][1]["authenticationStepRequirement"] == "Multi-factor authentication"
    assert interrupt["status"]["errorCode"] == errors.STRONG_AUTHENTICATION_REQUIRED.number
    assert interrupt["conditionalAccessStatus"] == "failure"
    assert interrupt["authenticationRequirement"] == "multiFactorAuthentication"
    assert interrupt["authenticationDetails"][0]["authenticationMethodDetail"] == "Previously satisfied"
    [applied] = interrupt["appliedConditionalAccessPolicies"]
    assert (applied["id"], applied["result"]) == (policy, "failure")
    assert applied["authenticationStrength"]["authenticationStrengthResult"] == "singleChallengeRequired"
    for entry in (ceremony, issued):
        assert entry["status"]["errorCode"] == 0 and entry["conditionalAccessStatus"] == "success"
        assert entry["appliedConditionalAccessPolicies"][0]["result"] == "success"
        assert entry["authenticationRequirement"] == "multiFactorAuthentication"
    assert ceremony["authenticationDetails"][0]["succeeded"]
    assert issued["authenticationDetails"][0]["authenticationMethodDetail"] != "Previously satisfied"


def test_block_shows_the_policy_on_passgates_page_and_the_app_gets_nothing(client: Any, db: Database, g: Graph
                                                                          ) -> None:
    client_id, _ = make_app(db)
    _, authenticator, _ = enrol(client, db, "ann@example.com")
    # Signed in before the policy exists: the next app sign-in (SSO reuse) meets it.
    assert passkey_with(client, authenticator, None, None)[0].status_code == 200
    add_policy(g, "No access to the web app", BLOCK, apps=[client_id])
    _, challenge = pkce()
    page = authorize(client, client_id, challenge)
    assert page.status_code == 403 and "location" not in page.headers
    assert "53003" in page.text and "No access to the web app" in page.text
    [entry] = log(g, client_id)
    assert entry["status"]["errorCode"] == errors.BLOCKED_BY_CONDITIONAL_ACCESS.number
    assert entry["conditionalAccessStatus"] == "failure"
    assert entry["appliedConditionalAccessPolicies"][0]["enforcedGrantControls"] == ["Block"]
    assert entry["authenticationRequirement"] == "singleFactorAuthentication"
    # A fresh sign-in for the app is refused at the ceremony: no session is made, the entry says why.
    client.cookies.clear()
    _, query = sign_in_target(authorize(client, client_id, challenge))
    refused, _ = passkey_with(client, authenticator, None, marker_of(query["next"][0]))
    error_of(refused, errors.BLOCKED_BY_CONDITIONAL_ACCESS)
    assert "No access to the web app" in refused.json()["error"]["message"]
    assert client.get("/api/me").status_code == 401


def test_report_only_block_is_logged_and_not_enforced(client: Any, db: Database, g: Graph) -> None:
    client_id, secret = make_app(db)
    _, authenticator, _ = enrol(client, db, "ben@example.com")
    add_policy(g, "Trial block", BLOCK, apps=[client_id], state="enabledForReportingButNotEnforced")
    assert passkey_with(client, authenticator, None, None)[0].status_code == 200
    verifier, challenge = pkce()
    answer = redirect_params(authorize(client, client_id, challenge))
    assert exchange(client, client_id, secret, answer["code"], verifier).status_code == 200
    [entry] = log(g, client_id)
    assert entry["status"]["errorCode"] == 0 and entry["conditionalAccessStatus"] == "notApplied"
    assert entry["appliedConditionalAccessPolicies"][0]["result"] == "reportOnlyFailure"
    # Report-only members come after unknownFutureValue: without the Prefer header they read as it.
    [plain] = log(g, client_id, include_unknown=False)
    assert plain["appliedConditionalAccessPolicies"][0]["result"] == "unknownFutureValue"


def test_a_tap_user_is_sent_to_register_a_passkey_and_comes_back(client: Any, db: Database, g: Graph) -> None:
    client_id, secret = make_app(db)
    user_id = make_user(db, "new@example.com")
    add_policy(g, "Passkeys for the app", strength_grant(PHISHING_RESISTANT), apps=[client_id])
    assert tap_sign_in(client, "new@example.com", issue_tap(db, user_id)).status_code == 200
    verifier, challenge = pkce()
    path, query = sign_in_target(authorize(client, client_id, challenge))
    assert path == "/mysecurityinfo"
    back = query["continue"][0]
    page = client.get("/mysecurityinfo", params={"continue": back})
    assert page.status_code == 200
    assert "Web app requires a passkey: add one to continue." in page.text and "Continue to Web app" in page.text
    [entry] = log(g, client_id)
    assert entry["status"]["errorCode"] == errors.STRONG_AUTHENTICATION_ENROLLMENT_REQUIRED.number
    assert entry["appliedConditionalAccessPolicies"][0]["authenticationStrength"][
        "authenticationStrengthResult"] == "singleRegistrationRequired"
    # A pass counts as strong authentication for registering security info.
    authenticator = SoftAuthenticator()
    assert register(client, authenticator)[0].status_code == 201
    # Back to the app: now a step-up to the new passkey, then the code.
    path, query = sign_in_target(client.get(back, follow_redirects=False))
    assert path == "/signin"
    signed, _ = passkey_with(client, authenticator, "new@example.com", marker_of(query["next"][0]))
    assert signed.status_code == 200, signed.text
    answer = redirect_params(client.get(query["next"][0], follow_redirects=False))
    assert exchange(client, client_id, secret, answer["code"], verifier).status_code == 200


def test_a_strength_nobody_can_meet_ends_on_a_page_with_135173(client: Any, db: Database, g: Graph) -> None:
    client_id, _ = make_app(db)
    user_id = make_user(db, "pat@example.com")
    give_password(db, user_id)
    configure(db, methods_policy.FIDO2, state="disabled")  # no passkey can be added either
    add_policy(g, "Passkeys only", strength_grant(PHISHING_RESISTANT), apps=[client_id])
    assert password_step(client, "pat@example.com").status_code == 200
    _, challenge = pkce()
    page = authorize(client, client_id, challenge)
    assert page.status_code == 403 and "135173" in page.text and "Passkeys only" in page.text
    assert log(g, client_id)[0]["status"]["errorCode"] == errors.STRENGTH_CANNOT_BE_SATISFIED.number


def test_a_model_the_strength_does_not_allow_is_explained_then_admitted(client: Any, db: Database, g: Graph
                                                                        ) -> None:
    client_id, secret = make_app(db)
    _, authenticator, passkey = enrol(client, db, "kim@example.com")
    strength = add_strength(g, "Only YubiKeys", ["fido2"], [OTHER_AAGUID])
    add_policy(g, "YubiKeys for the app", strength_grant(strength), apps=[client_id])
    assert passkey_with(client, authenticator, None, None)[0].status_code == 200
    verifier, challenge = pkce()
    path, query = sign_in_target(authorize(client, client_id, challenge))
    assert path == "/mysecurityinfo"
    page = client.get("/mysecurityinfo", params={"continue": query["continue"][0]})
    assert "It accepts only passkeys of these models" in page.text and OTHER_AAGUID in page.text
    result = log(g, client_id)[0]["appliedConditionalAccessPolicies"][0]["authenticationStrength"]
    assert result["authenticationStrengthResult"] == "cannotSatisfyDueToCombinationConfiguration"
    # The admin allows the model: the same session gets its code.
    sid = g.get(f"{STRENGTHS}/{strength}").json()["combinationConfigurations"][0]["id"]
    assert g.patch(f"{STRENGTHS}/{strength}/combinationConfigurations/{sid}",
                   {"@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                    "allowedAAGUIDs": [OTHER_AAGUID, passkey["aaGuid"]]}).status_code in (200, 204)
    answer = redirect_params(client.get(query["continue"][0], follow_redirects=False))
    assert exchange(client, client_id, secret, answer["code"], verifier).status_code == 200


def test_sign_in_frequency_asks_for_a_fresh_ceremony(client: Any, db: Database, g: Graph) -> None:
    client_id, _ = make_app(db)
    user_id, authenticator, _ = enrol(client, db, "fay@example.com")
    add_policy(g, "Hourly", MFA, apps=[client_id],
               sessionControls={"signInFrequency": {"isEnabled": True, "type": "hours", "value": 1,
                                                    "frequencyInterval": "timeBased",
                                                    "authenticationType": "primaryAndSecondaryAuthentication"}})
    assert passkey_with(client, authenticator, None, None)[0].status_code == 200
    with db.transaction() as session:
        session.execute(update(BrowserSession).where(BrowserSession.user_id == user_id)
                        .values(auth_time=utcnow() - timedelta(hours=2)))
    _, challenge = pkce()
    path, query = sign_in_target(authorize(client, client_id, challenge))
    assert path == "/signin" and query["username"] == ["fay@example.com"]
    assert log(g, client_id)[0]["status"]["errorCode"] == errors.SIGN_IN_FREQUENCY.number
    signed, _ = passkey_with(client, authenticator, "fay@example.com", marker_of(query["next"][0]))
    assert signed.status_code == 200
    assert "code" in redirect_params(client.get(query["next"][0], follow_redirects=False))


# -- the portal and the registration action -------------------------------------------------------
def test_the_portal_is_an_app_for_conditional_access(client: Any, db: Database, g: Graph) -> None:
    user_id, authenticator, _ = enrol(client, db, "lee@example.com")
    give_password(db, user_id)
    add_policy(g, "Portal needs a passkey", strength_grant(PHISHING_RESISTANT), apps=[SIGN_IN_PORTAL_APP_ID])
    # The password sign-in is interrupted (logged with 50076); Security info sends it to step up.
    assert password_step(client, "lee@example.com").status_code == 200
    entry = log(g, SIGN_IN_PORTAL_APP_ID)[-1]
    assert entry["status"]["errorCode"] == errors.STRONG_AUTHENTICATION_REQUIRED.number
    path, query = sign_in_target(client.get("/mysecurityinfo", follow_redirects=False))
    assert path == "/signin" and query["next"] == ["/mysecurityinfo"]
    assert client.post("/api/signin/identify", json={"username": "lee@example.com"}).json()["methods"] == ["passkey"]
    assert passkey_with(client, authenticator, "lee@example.com", None)[0].status_code == 200
    assert client.get("/mysecurityinfo", follow_redirects=False).status_code == 200
    # A block for the portal refuses the ceremony itself.
    add_policy(g, "Portal closed", BLOCK, apps=[SIGN_IN_PORTAL_APP_ID])
    page = client.get("/mysecurityinfo", follow_redirects=False)
    assert page.status_code == 403 and "Portal closed" in page.text
    error_of(passkey_with(client, authenticator, None, None)[0], errors.BLOCKED_BY_CONDITIONAL_ACCESS)


def test_registering_security_info_is_a_user_action(client: Any, db: Database, g: Graph) -> None:
    tap_only = add_strength(g, "Passkey or pass", ["fido2", "temporaryAccessPassOneTime",
                                                   "temporaryAccessPassMultiUse"])
    add_policy(g, "Register with a pass or passkey", strength_grant(tap_only), action="urn:user:registersecurityinfo")
    signed_in_as(client, db, "tia@example.com")  # a pass session
    assert register(client, SoftAuthenticator())[0].status_code == 201
    # A password session cannot register; the refusal is logged as an interrupt.
    user_id = make_user(db, "pam@example.com")
    give_password(db, user_id)
    client.cookies.clear()
    assert password_step(client, "pam@example.com").status_code == 200
    answer = client.post("/api/me/passkeys/options")
    assert answer.json()["error"]["innerError"]["passgateCode"] in (
        errors.STRONG_AUTHENTICATION_REQUIRED.number, errors.STRONG_AUTHENTICATION_ENROLLMENT_REQUIRED.number)
    add_policy(g, "No registration from here", BLOCK, action="urn:user:registersecurityinfo")
    client.cookies.clear()
    signed_in_as(client, db, "tom@example.com")
    error_of(client.post("/api/me/passkeys/options"), errors.SECURITY_INFO_REGISTRATION_BLOCKED)
    entry = log(g, SIGN_IN_PORTAL_APP_ID)[-1]
    assert entry["status"]["errorCode"] == errors.SECURITY_INFO_REGISTRATION_BLOCKED.number
    assert {p["displayName"] for p in entry["appliedConditionalAccessPolicies"]
            if p["result"] == "failure"} >= {"No registration from here"}


# -- What If agrees with live sign-ins ----------------------------------------------------------------
OFFICE, HOME = "203.0.113.10", "192.0.2.50"


@pytest.fixture
def clients_at(settings: Settings, db: Database) -> Iterator[dict[str, TestClient]]:
    made = {ip: TestClient(create_app(settings, db), base_url=ORIGIN, headers={"origin": ORIGIN},
                           client=(ip, 4000)) for ip in (OFFICE, HOME)}
    for c in made.values():
        c.__enter__()
    yield made
    for c in made.values():
        c.__exit__(None, None, None)


def test_what_if_agrees_with_live_sign_ins(client: Any, db: Database, g: Graph,
                                           clients_at: dict[str, TestClient]) -> None:
    web, _ = make_app(db, name="Web")
    hr, _ = make_app(db, name="HR")
    group = g.new_group("Finance")["id"]
    office = g.post("/identity/conditionalAccess/namedLocations", {
        "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office", "isTrusted": True,
        "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}],
    }).json()["id"]
    admin_role = SECURITY_READER
    add_policy(g, "Finance off-site blocked", BLOCK, apps=[hr], users={"includeGroups": [group]},
               locations={"includeLocations": ["All"], "excludeLocations": [office]})
    add_policy(g, "HR needs MFA", MFA, apps=[hr])
    add_policy(g, "Readers need a passkey", strength_grant(PHISHING_RESISTANT), apps=["All"],
               users={"includeRoles": [admin_role]})
    add_policy(g, "Trial: office only", BLOCK, apps=[web], state="enabledForReportingButNotEnforced",
               locations={"includeLocations": ["All"], "excludeLocations": [office]})
    configure(db, methods_policy.PASSWORD)
    configure(db, methods_policy.SOFTWARE_OATH)
    users: dict[str, str] = {}
    keys: dict[str, SoftAuthenticator] = {}
    for upn, finance, reader in (("fin@example.com", True, False), ("rea@example.com", False, True),
                                 ("joe@example.com", False, False)):
        users[upn], keys[upn], _ = enrol(client, db, upn)
        if finance:
            assert g.post(f"/groups/{group}/members/$ref",
                          {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{users[upn]}"}
                          ).status_code == 204
        if reader:
            assert g.post("/roleManagement/directory/roleAssignments",
                          {"roleDefinitionId": admin_role, "principalId": users[upn]}).status_code == 201
        give_password(db, users[upn])
        with_app(db, users[upn])
    methods = ("passkey", "tapOnce", "tapMulti", "password", "passwordAndCode")
    for (upn, user_id), app, ip, method in itertools.product(users.items(), (web, hr), (OFFICE, HOME), methods):
        c = clients_at[ip]
        c.cookies.clear()
        what_if = g.post("/identity/conditionalAccess/evaluate", {
            "signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": user_id},
            "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [app]},
            "signInConditions": {"ipAddress": ip, "clientAppType": "browser"}, "appliedPoliciesOnly": True,
        })
        assert what_if.status_code == 200, what_if.text
        predicted = {p["displayName"] for p in what_if.json()["value"]}
        blocks = any("block" in (p["grantControls"] or {}).get("builtInControls", []) and p["state"] == "enabled"
                     for p in what_if.json()["value"])
        _, challenge = pkce()
        _, query = sign_in_target(authorize(c, app, challenge))
        marker = marker_of(query["next"][0])
        if method == "passkey":
            signed, _ = passkey_with(c, keys[upn], None, marker)
        elif method.startswith("tap"):
            secret = issue_tap(db, user_id, once=method == "tapOnce")
            signed = c.post("/api/signin/tap", json={"username": upn, "temporaryAccessPass": secret,
                                                     "authorization": marker})
        elif method == "password":
            signed = password_step_without_code(c, db, user_id, upn, marker)
        else:
            signed = password_and_code(c, upn, marker)
        entry = log(g, app)[-1]
        applied = {p["displayName"] for p in entry["appliedConditionalAccessPolicies"]
                   if p["result"] not in ("notApplied", "notEnabled", "reportOnlyNotApplied")}
        assert applied == predicted, (upn, app, ip, method, applied, predicted)
        if blocks:
            assert signed.status_code == 403 and entry["status"]["errorCode"] == 53003, (upn, app, ip, method)
        else:
            assert signed.status_code == 200, (upn, app, ip, method, signed.text)
            assert entry["status"]["errorCode"] in (0, 50076, 50079, 135173), entry["status"]


def password_step_without_code(c: TestClient, db: Database, user_id: str, upn: str, marker: str) -> Any:
    """A password-only sign-in: the user's authenticator app is removed for it, then given back."""
    from passgate.store.tables import SoftwareOathMethod

    with db.transaction() as session:
        for row in session.query(SoftwareOathMethod).filter(SoftwareOathMethod.user_id == user_id):
            session.delete(row)
    answer = c.post("/api/signin/password", json={"username": upn, "password": PASSWORD, "authorization": marker})
    with_app(db, user_id)
    return answer


def test_prompt_none_gets_interaction_required_instead_of_a_page(client: Any, db: Database, g: Graph) -> None:
    client_id, _ = make_app(db)
    user_id = make_user(db, "noe@example.com")
    add_policy(g, "Passkeys for the app", strength_grant(PHISHING_RESISTANT), apps=[client_id])
    assert tap_sign_in(client, "noe@example.com", issue_tap(db, user_id)).status_code == 200
    _, challenge = pkce()
    answer = redirect_params(authorize(client, client_id, challenge, prompt="none"))
    assert answer["error"] == "interaction_required"
    assert log(g, client_id)[-1]["status"]["errorCode"] == errors.STRONG_AUTHENTICATION_ENROLLMENT_REQUIRED.number
