"""The methods policy as people meet it in Chromium: passkey profiles per group at registration, and a
block list that stops (and then again allows) sign-in with a registered passkey."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from passgate.core import errors
from passgate.core.policy import DEFAULT_PROFILE_ID
from passgate.store.db import Database
from passgate.store.tables import SignIn

from .conftest import DEVICE_BOUND, SYNCED, Browser, Server
from .test_pages import (
    CHROMIUM_AAGUID,
    add_passkey,
    alert_says,
    new_user,
    on_security_info,
    sign_in_with_tap,
    sign_out_to_waiting_autofill,
)

pytestmark = pytest.mark.e2e

FIDO2 = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2"
FIDO2_TYPE = "#microsoft.graph.fido2AuthenticationMethodConfiguration"
DEFAULT = {"id": DEFAULT_PROFILE_ID, "name": "Default passkey profile", "passkeyTypes": "deviceBound,synced"}


class Admin:
    """An automation app allowed to change the methods policy and groups."""

    def __init__(self, server: Server) -> None:
        out = server.cli("apps", "add", "--name", f"policy admin {uuid.uuid4().hex[:6]}",
                         "--permission", "Policy.ReadWrite.AuthenticationMethod", "--permission", "Group.ReadWrite.All")
        answer = httpx.post(f"{server.base_url}/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": out["appId"], "client_secret": out["clientSecret"]})
        self.token = answer.json()["access_token"]
        self.server = server

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.request(method, f"{self.server.base_url}/v1.0{path}", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {self.token}"})

    def configure(self, body: dict[str, Any]) -> None:
        answer = self.call("PATCH", FIDO2, {"@odata.type": FIDO2_TYPE, **body})
        assert answer.status_code == 204, answer.text

    def group_with(self, name: str, user_id: str) -> str:
        group = self.call("POST", "/groups", {"displayName": name, "mailEnabled": False,
                                              "mailNickname": name, "securityEnabled": True}).json()
        added = self.call("POST", f"/groups/{group['id']}/members/$ref",
                          {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user_id}"})
        assert added.status_code == 204, added.text
        return str(group["id"])


@pytest.fixture
def admin(server: Server) -> Iterator[Admin]:
    a = Admin(server)
    yield a
    # The server is shared by the package's tests: put the policy back as it was.
    assert a.call("DELETE", FIDO2).status_code == 204


def onboard(make_browser: Any, server: Server, name: str) -> tuple[Browser, dict[str, Any]]:
    user, tap = new_user(server, name)
    b = make_browser()
    b.goto("/")
    sign_in_with_tap(b.page, user["userPrincipalName"], tap)
    on_security_info(b)
    return b, user


def try_to_add(page: Any, name: str) -> None:
    page.get_by_label("Passkey name").fill(name)
    page.get_by_role("button", name="Add a passkey").click()


def test_admins_get_device_bound_only_and_sales_may_sync(server: Server, admin: Admin, make_browser: Any) -> None:
    b, ada = onboard(make_browser, server, "ada")
    s, sam = onboard(make_browser, server, "sam")
    admins, sales = admin.group_with("Admins", ada["id"]), admin.group_with("Sales", sam["id"])
    device_only = {"id": str(uuid.uuid4()), "name": "Admins: device-bound only", "passkeyTypes": "deviceBound"}
    admin.configure({
        "passkeyProfiles": [DEFAULT, device_only],
        "includeTargets": [
            {"targetType": "group", "id": admins, "allowedPasskeyProfiles": [device_only["id"]]},
            {"targetType": "group", "id": sales, "allowedPasskeyProfiles": [DEFAULT_PROFILE_ID]},
        ],
    })

    # An administrator's synced passkey is refused, with the code and the profile that refused it.
    phone = b.add_authenticator(SYNCED)
    try_to_add(b.page, "Phone")
    alert_says(b.page, errors.PASSKEY_TYPE_NOT_ALLOWED)
    expect(b.page.get_by_role("alert")).to_contain_text("Admins: device-bound only")
    expect(b.page.get_by_role("listitem", name="Phone")).to_have_count(0)
    b.remove_authenticator(phone)
    b.add_authenticator(DEVICE_BOUND)
    expect(add_passkey(b.page, "Security key")).to_contain_text("Device-bound")

    # Sales may keep a synced passkey.
    s.add_authenticator(SYNCED)
    expect(add_passkey(s.page, "Phone")).to_contain_text("Synced")


def test_block_list_stops_sign_in_and_lifting_it_lets_it_back(
    server: Server, admin: Admin, make_browser: Any, database_url: str
) -> None:
    b, user = onboard(make_browser, server, "bo")
    device = b.add_authenticator(DEVICE_BOUND)
    add_passkey(b.page, "Laptop")
    blocked = {**DEFAULT, "keyRestrictions": {"isEnforced": True, "enforcementType": "block",
                                              "aaGuids": [CHROMIUM_AAGUID]}}
    admin.configure({"passkeyProfiles": [blocked]})
    # Back on the sign-in page the autofill request waits, as for a person who has not chosen yet.
    sign_out_to_waiting_autofill(b, device)
    b.page.get_by_role("button", name="Sign in with a passkey").click()
    alert_says(b.page, errors.PASSKEY_MODEL_NOT_ALLOWED)
    expect(b.page.get_by_role("alert")).to_contain_text(CHROMIUM_AAGUID)

    db = Database(database_url)
    with db.transaction() as session:
        entry = (session.query(SignIn).filter(SignIn.user_id == user["id"])
                 .order_by(SignIn.created_at.desc()).first())
        assert entry is not None and entry.error_code == errors.PASSKEY_MODEL_NOT_ALLOWED.number
    db.dispose()

    admin.configure({"passkeyProfiles": [DEFAULT]})
    b.page.get_by_role("button", name="Sign in with a passkey").click()
    on_security_info(b)
