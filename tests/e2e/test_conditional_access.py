"""Conditional Access in real Chromium through a real OIDC client (Authlib's OAuth2Client) against `passgate
serve`: one test per scenario of issue 5. Every policy here names only its test's user and app, and is deleted
at the end, so the shared server stays as the other tests expect it."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from .conftest import DEVICE_BOUND, Browser, Server
from .test_legacy_methods import CONFIGS, PASSWORD, PASSWORD_ID, _call, _token
from .test_oidc import SCOPE, RelyingParty, verify_id_token
from .test_pages import CHROMIUM_AAGUID, add_passkey, identify, new_user, on_security_info, presence, sign_in_with_tap

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)

PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004"
YUBIKEY_5 = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
CA = "/v1.0/identity/conditionalAccess"


class Admin:
    """A policy admin's Graph calls; removes what it made when the test ends."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.token = _token(server, "Policy.ReadWrite.ConditionalAccess", "AuditLog.Read.All")
        self.made: list[str] = []

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = _call(self.server, "POST", path, self.token, body)
        assert answer.status_code == 201, answer.text
        made: dict[str, Any] = answer.json()
        self.made.append(f"{path}/{made['id']}")
        return made

    def patch(self, path: str, body: dict[str, Any]) -> None:
        answer = _call(self.server, "PATCH", path, self.token, body)
        assert answer.status_code in (200, 204), answer.text

    def policy(self, name: str, user_id: str, app_id: str, grant: dict[str, Any], state: str = "enabled",
               **conditions: Any) -> dict[str, Any]:
        return self.post(f"{CA}/policies", {
            "displayName": name, "state": state, "grantControls": grant,
            "conditions": {"users": {"includeUsers": [user_id]},
                           "applications": {"includeApplications": [app_id]}, **conditions},
        })

    def strength(self, name: str, combinations: list[str], aaguids: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"displayName": f"{name} {uuid.uuid4().hex[:6]}", "allowedCombinations": combinations}
        if aaguids:
            body["combinationConfigurations"] = [{
                "@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                "appliesToCombinations": ["fido2"], "allowedAAGUIDs": aaguids}]
        return self.post(f"{CA}/authenticationStrength/policies", body)

    def sign_ins(self, app_id: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.server.base_url}/beta/auditLogs/signIns", timeout=30, params={
            "$filter": f"appId eq '{app_id}'"}, headers={"Authorization": f"Bearer {self.token}",
                                                          "Prefer": "include-unknown-enum-members"})
        assert answer.status_code == 200, answer.text
        entries: list[dict[str, Any]] = answer.json()["value"]
        return entries

    def clean(self) -> None:
        # Policies before the strengths and locations they name.
        for path in sorted(self.made, key=lambda p: "/policies/" not in p or "authenticationStrength" in p):
            _call(self.server, "DELETE", path, self.token)


@pytest.fixture
def admin(server: Server) -> Iterator[Admin]:
    made = Admin(server)
    yield made
    made.clean()


def strength_grant(strength_id: str) -> dict[str, Any]:
    return {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": strength_id}}


class App:
    """A registered app with Authlib's client, its relying party in the browser, and one authorize request."""

    def __init__(self, server: Server, b: Browser, name: str) -> None:
        self.rp = RelyingParty(b)
        made = server.cli("apps", "add", "--name", f"{name} {uuid.uuid4().hex[:6]}", "--redirect-uri", self.rp.callback)
        self.id = made["appId"]
        self.discovery = httpx.get(f"{server.base_url}/.well-known/openid-configuration", timeout=30).json()
        self.oauth = OAuth2Client(made["appId"], made["clientSecret"], scope=SCOPE, redirect_uri=self.rp.callback,
                                  code_challenge_method="S256", token_endpoint=self.discovery["token_endpoint"])
        self.b = b

    def url(self) -> str:
        self.verifier, self.nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        url, _ = self.oauth.create_authorization_url(self.discovery["authorization_endpoint"],
                                                     code_verifier=self.verifier, nonce=self.nonce)
        return str(url)

    def claims(self) -> dict[str, Any]:
        """Wait for the browser to come back with a code; exchange it and verify the ID token."""
        for _ in range(150):
            if self.rp.seen:
                break
            self.b.page.wait_for_timeout(100)
        assert self.rp.seen and "code=" in self.rp.seen[-1], f"no code (at {self.b.page.url})"
        token = self.oauth.fetch_token(authorization_response=self.rp.seen[-1], code_verifier=self.verifier)
        return verify_id_token(token["id_token"], self.discovery, self.id, self.nonce)

    def open(self) -> None:
        """Start the authorize request in the browser: it stops at a Passgate page, or ends at the app."""
        try:
            self.b.page.goto(self.url())
        except PlaywrightError as error:  # at the app, where nothing listens
            assert "ERR_CONNECTION_REFUSED" in str(error), error


@pytest.fixture(autouse=True)
def _insecure_transport(monkeypatch: Any) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # http://localhost in tests only


def test_a_password_and_code_user_is_stepped_up_to_a_passkey(server: Server, make_browser: Any, admin: Admin
                                                             ) -> None:
    """(a) An app requiring Phishing-resistant MFA: password + TOTP is refused, the sign-in page offers only the
    passkey, and the app gets an ID token with acr phr."""
    policy_token = _token(server, "Policy.ReadWrite.AuthenticationMethod")
    for config, kind in (("Password", "password"), ("SoftwareOath", "softwareOath")):
        answer = _call(server, "PATCH", f"{CONFIGS}/{config}", policy_token,
                       {"@odata.type": f"#microsoft.graph.{kind}AuthenticationMethodConfiguration", "state": "enabled"})
        assert answer.status_code == 204, answer.text
    try:
        user, tap = new_user(server, "step")
        upn = user["userPrincipalName"]
        b: Browser = make_browser()
        page = b.page
        authenticator = b.add_authenticator(DEVICE_BOUND)
        presence(b, authenticator, False)  # the sign-in page's passkey autofill waits, as for a person
        b.goto("/")
        sign_in_with_tap(page, upn, tap)
        on_security_info(b)
        presence(b, authenticator, True)
        add_passkey(page, "Laptop")
        page.get_by_role("button", name="Add authenticator app").click()
        expect(page.get_by_role("img", name="QR code to set up your authenticator app")).to_be_visible()
        totp = pyotp.TOTP(page.locator("#oath-secret").inner_text().replace(" ", ""))
        page.get_by_label("Code from the app").fill(totp.now())
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("status")).to_have_text("Authenticator app “Authenticator app” added.")
        page.goto("about:blank")
        b.context.clear_cookies()
        reset = _call(server, "POST", f"/v1.0/users/{user['id']}/authentication/passwordMethods/{PASSWORD_ID}"
                      "/resetPassword", server.graph_token(), {"newPassword": PASSWORD})
        assert reset.status_code == 202, reset.text

        app = App(server, b, "Payroll")
        admin.policy("Payroll needs phishing-resistant MFA", user["id"], app.id, strength_grant(PHISHING_RESISTANT))
        presence(b, authenticator, False)
        app.open()
        identify(page, upn)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.locator("#password-form button").click()
        page.get_by_label("Code from your authenticator app").fill(totp.at(time.time() + 30))
        page.get_by_role("button", name="Verify").click()
        # Back on the sign-in page for the same account: only the passkey is offered.
        expect(page.get_by_label("Username")).to_have_value(upn)
        identify(page, upn)
        expect(page.locator("#passkey-username-first")).to_be_visible()
        expect(page.locator("#step-up")).to_contain_text("requires 'Phishing resistant MFA'")
        expect(page.locator("#password-form")).to_be_hidden()
        expect(page.locator("#tap-form")).to_be_hidden()
        presence(b, authenticator, True)
        page.locator("#passkey-username-first").click()
        claims = app.claims()
        assert claims["acr"] in ("phr", "phrh") and claims["sub"] == user["id"]
        interrupt = next(e for e in admin.sign_ins(app.id) if e["status"]["errorCode"] == 50076)
        assert interrupt["appliedConditionalAccessPolicies"][0]["result"] == "failure"
        assert interrupt["authenticationRequirement"] == "multiFactorAuthentication"
    finally:
        for config in ("Password", "SoftwareOath"):
            assert _call(server, "DELETE", f"{CONFIGS}/{config}", policy_token).status_code == 204


def test_a_new_user_with_a_pass_registers_a_passkey_under_the_seed_003_strength(
        server: Server, make_browser: Any, admin: Admin) -> None:
    """(b) The custom strength fido2 | TAP one-time | TAP multi-use, for registering security info and the app."""
    user, tap = new_user(server, "onboard", one_time=True)
    b: Browser = make_browser()
    b.add_authenticator(DEVICE_BOUND)
    app = App(server, b, "Intranet")
    strength = admin.strength("Passkey or TAP", ["fido2", "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse"])
    admin.post(f"{CA}/policies", {
        "displayName": "Register with a pass or a passkey", "state": "enabled",
        "grantControls": strength_grant(strength["id"]),
        "conditions": {"users": {"includeUsers": [user["id"]]},
                       "applications": {"includeUserActions": ["urn:user:registersecurityinfo"]}},
    })
    admin.policy("Intranet needs a passkey or pass", user["id"], app.id, strength_grant(strength["id"]))
    app.open()
    sign_in_with_tap(b.page, user["userPrincipalName"], tap)
    claims = app.claims()  # the pass satisfies the app's strength
    assert claims["acr"] == "urn:passgate:acr:tap"
    b.goto("/mysecurityinfo")
    on_security_info(b)
    add_passkey(b.page, "Laptop")  # the pass counts as strong authentication for registering
    app.rp.seen.clear()
    app.open()  # SSO: the app sign-in completes
    assert app.claims()["sub"] == user["id"]


def test_a_report_only_block_is_logged_and_not_enforced(server: Server, make_browser: Any, admin: Admin) -> None:
    """(c)"""
    user, tap = new_user(server, "trial")
    b: Browser = make_browser()
    app = App(server, b, "Wiki")
    policy = admin.policy("Trial block of the wiki", user["id"], app.id,
                          {"operator": "OR", "builtInControls": ["block"]}, state="enabledForReportingButNotEnforced")
    app.open()
    sign_in_with_tap(b.page, user["userPrincipalName"], tap)
    assert app.claims()["sub"] == user["id"]
    results = [p["result"] for e in admin.sign_ins(app.id) for p in e["appliedConditionalAccessPolicies"]
               if p["id"] == policy["id"]]
    assert results and set(results) == {"reportOnlyFailure"}


def test_a_named_location_block_shows_its_code_and_name(server: Server, make_browser: Any, admin: Admin) -> None:
    """(d) The client IP (127.0.0.1) in the location blocks with 53003 and the policy's name; another range not."""
    user, tap = new_user(server, "away")
    b: Browser = make_browser()
    app = App(server, b, "Finance")
    location = admin.post(f"{CA}/namedLocations", {
        "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": f"Here {uuid.uuid4().hex[:6]}",
        "isTrusted": False,
        "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "127.0.0.0/8"}]})
    admin.policy("Finance blocked from here", user["id"], app.id, {"operator": "OR", "builtInControls": ["block"]},
                 locations={"includeLocations": [location["id"]]})
    app.open()
    sign_in_with_tap(b.page, user["userPrincipalName"], tap)
    alert = b.page.get_by_role("alert")
    expect(alert).to_contain_text("Error 53003 (BlockedByConditionalAccess)")
    expect(alert).to_contain_text("Finance blocked from here")
    assert not app.rp.seen  # the app receives nothing
    admin.patch(f"{CA}/namedLocations/{location['id']}", {
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "10.0.0.0/8"}]})
    app.open()
    sign_in_with_tap(b.page, user["userPrincipalName"], tap)
    assert app.claims()["sub"] == user["id"]


def test_a_strength_for_one_model_refuses_another_until_it_is_allowed(server: Server, make_browser: Any,
                                                                      admin: Admin) -> None:
    """(e) Only a YubiKey 5 is allowed: Chromium's virtual authenticator is explained away, then admitted."""
    user, tap = new_user(server, "model")
    b: Browser = make_browser()
    b.add_authenticator(DEVICE_BOUND)
    b.goto("/")
    sign_in_with_tap(b.page, user["userPrincipalName"], tap)
    on_security_info(b)
    add_passkey(b.page, "Laptop")
    app = App(server, b, "Vault")
    strength = admin.strength("YubiKey 5 only", ["fido2"], [YUBIKEY_5])
    admin.policy("Vault needs a YubiKey", user["id"], app.id, strength_grant(strength["id"]))
    app.open()
    on_security_info_with_banner = b.page.locator("#requirement-text")
    expect(on_security_info_with_banner).to_contain_text("accepts only passkeys of these models")
    expect(on_security_info_with_banner).to_contain_text(YUBIKEY_5)
    assert not app.rp.seen
    config = strength["combinationConfigurations"][0]["id"]
    admin.patch(f"{CA}/authenticationStrength/policies/{strength['id']}/combinationConfigurations/{config}", {
        "@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
        "allowedAAGUIDs": [YUBIKEY_5, CHROMIUM_AAGUID]})
    # Back to the app: a step-up to the passkey (the sign-in page's autofill answers), then the code.
    b.page.get_by_role("link", name="Continue to").click()
    claims = app.claims()
    assert claims["acr"] in ("phr", "phrh")
