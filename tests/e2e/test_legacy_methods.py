"""Password and authenticator app in real Chromium: set up TOTP on Security info from the page's key, sign
out, and sign in with the password and then a code."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import expect

from .conftest import Browser, Server
from .test_pages import identify, on_security_info, sign_out

pytestmark = pytest.mark.e2e
expect.set_options(timeout=15_000)

CONFIGS = "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations"
PASSWORD_ID = "28c10230-6103-485e-b985-444c60001490"
PASSWORD = "correct horse battery staple"


def _token(server: Server, *permissions: str) -> str:
    args = ["apps", "add", "--name", f"e2e {uuid.uuid4().hex[:6]}"]
    for p in permissions:
        args += ["--permission", p]
    app = server.cli(*args)
    answer = httpx.post(f"{server.base_url}/oauth2/token", timeout=30, data={
        "grant_type": "client_credentials", "client_id": app["appId"], "client_secret": app["clientSecret"]})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _call(server: Server, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    return httpx.request(method, f"{server.base_url}{path}", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}"})


def sign_in_with_password(page: Any, upn: str) -> None:
    identify(page, upn)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_password_then_authenticator_app(server: Server, make_browser: Any) -> None:
    policy = _token(server, "Policy.ReadWrite.AuthenticationMethod")
    for config, kind in (("Password", "password"), ("SoftwareOath", "softwareOath")):
        answer = _call(server, "PATCH", f"{CONFIGS}/{config}", policy,
                       {"@odata.type": f"#microsoft.graph.{kind}AuthenticationMethodConfiguration", "state": "enabled"})
        assert answer.status_code == 204, answer.text
    try:
        admin = server.graph_token()
        upn = f"pia.{uuid.uuid4().hex[:8]}@example.com"
        user = server.graph("POST", "/users", {"userPrincipalName": upn, "displayName": "Pia",
                                               "accountEnabled": True, "mailNickname": "pia"}, admin)
        reset = _call(server, "POST", f"/v1.0/users/{user['id']}/authentication/passwordMethods/{PASSWORD_ID}"
                      "/resetPassword", admin, {"newPassword": PASSWORD})
        assert reset.status_code == 202, reset.text

        b: Browser = make_browser()
        page = b.page
        b.goto("/")
        sign_in_with_password(page, upn)
        on_security_info(b)
        expect(page.locator("#signed-in-with")).to_have_text("Password")

        # Set up the authenticator app from the key shown beside the QR code.
        page.get_by_role("button", name="Add authenticator app").click()
        expect(page.get_by_role("img", name="QR code to set up your authenticator app")).to_be_visible()
        secret = page.locator("#oath-secret").inner_text().replace(" ", "")
        assert len(secret) == 32
        totp = pyotp.TOTP(secret)
        page.get_by_label("Code from the app").fill(totp.now())
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("status")).to_have_text("Authenticator app “Authenticator app” added.")
        expect(page.get_by_role("listitem", name="Authenticator app", exact=True)).to_be_visible()
        expect(page.locator("#oath-secret")).to_have_text("")

        sign_out(b)
        sign_in_with_password(page, upn)
        code = page.get_by_label("Code from your authenticator app")
        expect(code).to_be_visible()
        # The set-up code's time-step is used up; the next step's code is within the accepted window.
        code.fill(totp.at(time.time() + 30))
        page.get_by_role("button", name="Verify").click()
        on_security_info(b)
        expect(page.locator("#signed-in-with")).to_have_text("Password and authenticator app code")
        assert b.problems == []
    finally:
        for config in ("Password", "SoftwareOath"):
            assert _call(server, "DELETE", f"{CONFIGS}/{config}", policy).status_code == 204
