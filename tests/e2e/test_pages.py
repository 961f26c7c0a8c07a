"""The pages in real Chromium against a real `passgate serve`: onboarding with a Temporary Access Pass,
passkeys (username-first, usernameless, autofill), Security info, and the errors a person sees."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from passgate.core import errors

from .conftest import DEVICE_BOUND, SYNCED, Browser, Server

pytestmark = pytest.mark.e2e

CHROMIUM_AAGUID = "01020304-0506-0708-0102-030405060708"  # the virtual authenticator's AAGUID
expect.set_options(timeout=15_000)


def new_user(server: Server, name: str, one_time: bool = False) -> tuple[dict[str, Any], str]:
    """An automation app creates the user and issues a Temporary Access Pass through the Graph API."""
    token = server.graph_token()
    upn = f"{name}.{uuid.uuid4().hex[:8]}@example.com"
    user = server.graph(
        "POST", "/users",
        {"userPrincipalName": upn, "displayName": name.title(), "accountEnabled": True, "mailNickname": name},
        token,
    )
    assert user["userPrincipalName"] == upn
    issued = server.graph(
        "POST", f"/users/{user['id']}/authentication/temporaryAccessPassMethods",
        {"lifetimeInMinutes": 60, "isUsableOnce": one_time}, token,
    )
    return user, issued["temporaryAccessPass"]


def screenshot(page: Any, name: str) -> None:
    """Save a full-page screenshot when PASSGATE_E2E_SCREENSHOTS names a directory (to look at the pages)."""
    folder = os.environ.get("PASSGATE_E2E_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def alert_says(page: Any, code: errors.ErrorCode) -> None:
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(f"Error {code.number} ({code.name})")
    expect(alert).to_contain_text(code.action)


def identify(page: Any, upn: str, found: bool = True) -> None:
    page.get_by_label("Username").fill(upn)
    page.get_by_role("button", name="Next").click()
    if found:
        expect(page.get_by_role("button", name="Use another account")).to_be_visible()


def sign_in_with_tap(page: Any, upn: str, tap: str) -> None:
    identify(page, upn)
    page.get_by_label("Temporary Access Pass").fill(tap)
    page.get_by_role("button", name="Sign in", exact=True).click()


def on_security_info(b: Browser) -> None:
    expect(b.page).to_have_url(f"{b.base_url}/mysecurityinfo")
    expect(b.page.get_by_role("heading", name="Security info", level=1)).to_be_visible()


def add_passkey(page: Any, name: str) -> Any:
    page.get_by_label("Passkey name").fill(name)
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("status")).to_have_text(f"Passkey “{name}” added.")
    return passkey_item(page, name)


def passkey_item(page: Any, name: str) -> Any:
    return page.get_by_role("listitem", name=name, exact=True)


def presence(b: Browser, authenticator: str, on: bool) -> None:
    """Whether the virtual authenticator answers by itself. Off, a passkey autofill request waits on the
    sign-in page as it does for a person who has not picked a passkey yet."""
    b.cdp.send("WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": authenticator, "enabled": on})


def sign_out_to_waiting_autofill(b: Browser, authenticator: str) -> None:
    """Sign out and let the sign-in page's autofill request wait, as for a person who has not chosen a
    passkey; then let the authenticator answer by itself again for the next, modal, request."""
    presence(b, authenticator, False)
    sign_out(b)
    expect(b.page.get_by_label("Username")).to_have_attribute("data-passkey-autofill", "waiting")
    # The request is with the browser now; give it a moment to reach the (silent) authenticator.
    b.page.wait_for_timeout(300)
    presence(b, authenticator, True)


def sign_out(b: Browser) -> None:
    b.page.get_by_role("button", name="Sign out").click()
    expect(b.page).to_have_url(f"{b.base_url}/")


def autofill_after_sign_out(b: Browser) -> None:
    """Sign out with the authenticator answering by itself: back on the sign-in page, the waiting
    conditional (autofill) request gets the passkey and signs in without a click."""
    page = b.page
    with (
        page.expect_request(f"{b.base_url}/api/signin/passkey/options") as options,
        page.expect_response(f"{b.base_url}/api/signin/passkey") as signed_in,
    ):
        page.get_by_role("button", name="Sign out").click()
    assert options.value.post_data_json == {}
    assert signed_in.value.ok
    on_security_info(b)


def test_onboarding_with_a_pass_then_passkeys(server: Server, make_browser: Any) -> None:
    user, tap = new_user(server, "ada")
    upn = user["userPrincipalName"]
    b = make_browser()
    page = b.page
    device = b.add_authenticator(DEVICE_BOUND)

    # Security info needs a session: the browser is sent to sign-in, which comes back afterwards.
    b.goto("/mysecurityinfo")
    expect(page).to_have_url(f"{b.base_url}/?next=/mysecurityinfo")
    expect(page.get_by_label("Username")).to_have_attribute("autocomplete", "username webauthn")
    screenshot(page, "signin")

    # A mistyped pass is refused with its number, name and what to do.
    sign_in_with_tap(page, upn, "Wrong-pass-42")
    alert_says(page, errors.TAP_INVALID)
    screenshot(page, "signin-error")
    expect(page).to_have_url(re.compile(r"/\?next="))

    page.get_by_label("Temporary Access Pass").fill(tap)
    page.get_by_role("button", name="Sign in", exact=True).click()
    on_security_info(b)
    expect(page.get_by_text(upn).first).to_be_visible()
    expect(page.locator("#signed-in-with")).to_have_text("Temporary Access Pass")
    tap_item = page.get_by_role("listitem", name="Temporary Access Pass")
    expect(tap_item).to_contain_text("Usable")
    expect(tap_item).not_to_contain_text(tap)  # the secret is never shown again
    expect(page.get_by_text("You have no passkeys yet")).to_be_visible()

    # Register a passkey on this device.
    laptop = add_passkey(page, "Work laptop")
    expect(laptop).to_contain_text("Device-bound")
    expect(laptop).to_contain_text(CHROMIUM_AAGUID)
    expect(laptop).to_contain_text("Never")  # not used yet
    assert len(b.credentials(device)) == 1
    expect(page.get_by_text("You have no passkeys yet")).to_have_count(0)

    # Username-first: the passkey autofill request waits quietly until the button aborts it.
    sign_out_to_waiting_autofill(b, device)
    identify(page, upn)
    page.get_by_role("button", name="Sign in with a passkey").click()
    on_security_info(b)
    expect(page.locator("#signed-in-with")).to_have_text("Passkey “Work laptop”")
    expect(passkey_item(page, "Work laptop")).not_to_contain_text("Never")

    # Usernameless: no username typed at all.
    sign_out_to_waiting_autofill(b, device)
    expect(page.get_by_label("Username")).to_have_value("")
    page.get_by_role("button", name="Sign in with a passkey").click()
    on_security_info(b)
    expect(page.locator("#signed-in-with")).to_have_text("Passkey “Work laptop”")

    # Passkey autofill: on the sign-in page the conditional request signs in as soon as a passkey is given.
    autofill_after_sign_out(b)
    expect(page.locator("#signed-in-with")).to_have_text("Passkey “Work laptop”")

    # A synced passkey (backup eligible and backed up), from another authenticator.
    b.remove_authenticator(device)
    phone = b.add_authenticator(SYNCED)
    synced = add_passkey(page, "Phone")
    expect(synced).to_contain_text("Synced")
    expect(synced).to_contain_text("backed up")
    expect(passkey_item(page, "Work laptop")).to_contain_text("Device-bound")
    assert b.credentials(phone)[0]["backupEligibility"] is True
    screenshot(page, "securityinfo")

    # And it signs in (autofill again, now with the synced passkey).
    autofill_after_sign_out(b)
    expect(page.locator("#signed-in-with")).to_have_text("Passkey “Phone”")


def test_rename_and_delete_a_passkey(server: Server, make_browser: Any) -> None:
    user, tap = new_user(server, "grace", one_time=True)
    b = make_browser()
    page = b.page
    device = b.add_authenticator(DEVICE_BOUND)
    b.goto("/")
    sign_in_with_tap(page, user["userPrincipalName"], tap)
    on_security_info(b)
    expect(page.get_by_role("listitem", name="Temporary Access Pass")).to_contain_text("Used")
    item = add_passkey(page, "Passkey 1")

    item.get_by_role("button", name="Rename Passkey 1").click()
    new_name = page.get_by_label("New name")
    expect(new_name).to_be_focused()
    new_name.fill("Desk key")
    item.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Passkey renamed to “Desk key”.")
    desk = passkey_item(page, "Desk key")
    expect(desk).to_be_visible()
    expect(passkey_item(page, "Passkey 1")).to_have_count(0)
    page.reload()  # stored, not only shown
    expect(passkey_item(page, "Desk key")).to_be_visible()

    # An empty name is refused on the page with a sentence to act on.
    passkey_item(page, "Desk key").get_by_role("button", name="Rename Desk key").click()
    page.get_by_label("New name").fill("  ")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Type a name for the passkey.")
    page.get_by_role("button", name="Cancel").click()

    # Delete asks first; this is the last way in (the one-time pass is used), so it warns.
    passkey_item(page, "Desk key").get_by_role("button", name="Delete Desk key").click()
    dialog = page.get_by_role("dialog", name="Delete passkey?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("“Desk key” will be removed")
    expect(dialog).to_contain_text("This is your only way to sign in.")
    screenshot(page, "delete-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    expect(passkey_item(page, "Desk key")).to_be_visible()

    passkey_item(page, "Desk key").get_by_role("button", name="Delete Desk key").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete passkey").click()
    expect(page.get_by_role("status")).to_have_text("Passkey “Desk key” deleted.")
    expect(passkey_item(page, "Desk key")).to_have_count(0)
    expect(page.get_by_text("You have no passkeys yet")).to_be_visible()
    # The Signal API told the authenticator, so the passkey is gone from the device too.
    assert b.credentials(device) == []
    page.reload()
    expect(passkey_item(page, "Desk key")).to_have_count(0)


def test_errors_show_their_code_and_what_to_do(server: Server, make_browser: Any) -> None:
    user, tap = new_user(server, "linus")
    upn = user["userPrincipalName"]
    b = make_browser()
    page = b.page
    device = b.add_authenticator(DEVICE_BOUND)
    b.goto("/")

    # Unknown account.
    identify(page, f"nobody.{uuid.uuid4().hex[:6]}@example.com", found=False)
    alert_says(page, errors.USER_NOT_FOUND)
    expect(page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")

    # Nothing typed: the page says what to do without asking the server.
    page.get_by_label("Username").fill("")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("alert")).to_contain_text("Type your username first.")

    sign_in_with_tap(page, upn, tap)
    on_security_info(b)
    add_passkey(page, "Laptop")

    # The same authenticator cannot hold a second passkey for the account (excludeCredentials).
    page.get_by_label("Passkey name").fill("Again")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("InvalidStateError")
    expect(page.get_by_role("alert")).to_contain_text("Use the passkey you already have")

    # A passkey response without user verification is refused by the server with its code.
    sign_out_to_waiting_autofill(b, device)
    b.cdp.send("WebAuthn.setResponseOverrideBits", {"authenticatorId": device, "isBadUV": True})
    page.get_by_role("button", name="Sign in with a passkey").click()
    alert_says(page, errors.USER_VERIFICATION_REQUIRED)
    expect(page).to_have_url(f"{b.base_url}/")
    b.cdp.send("WebAuthn.setResponseOverrideBits", {"authenticatorId": device, "isBadUV": False})

    # A browser with no passkey for this account: the browser refuses, and the page says what to do.
    other = make_browser()
    other.add_authenticator(DEVICE_BOUND)
    other.goto("/")
    identify(other.page, upn)
    other.page.get_by_role("button", name="Sign in with a passkey").click()
    alert = other.page.get_by_role("alert")
    expect(alert).to_contain_text("NotAllowedError")
    expect(alert).to_contain_text("Select “Sign in with a passkey” again")
    expect(other.page).to_have_url(f"{b.base_url}/")


def test_security_info_redirects_to_sign_in_and_next_stays_on_site(server: Server, make_browser: Any) -> None:
    response = httpx.get(f"{server.base_url}/mysecurityinfo", follow_redirects=False, timeout=30)
    assert response.status_code == 303
    assert response.headers["location"] == "/?next=/mysecurityinfo"

    for path in ("/", "/signin"):
        page = httpx.get(f"{server.base_url}{path}", timeout=30)
        assert page.status_code == 200
        assert 'autocomplete="username webauthn"' in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    script = httpx.get(f"{server.base_url}/static/passgate.js", timeout=30)
    assert script.status_code == 200
    assert "parseRequestOptionsFromJSON" in script.text

    # A page that does not exist says so with its code, and leads back to sign-in.
    b = make_browser()
    b.goto("/no-such-page")
    alert_says(b.page, errors.NOT_FOUND)
    screenshot(b.page, "error-page")
    b.page.get_by_role("link", name="Back to sign-in").click()
    expect(b.page.get_by_label("Username")).to_be_visible()

    # ?next= is followed only to a path on this site.
    user, tap = new_user(server, "hedy")
    b.goto("/?next=//evil.example/steal")
    sign_in_with_tap(b.page, user["userPrincipalName"], tap)
    on_security_info(b)
