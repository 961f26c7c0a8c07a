"""Attestation enforcement as people meet it in Chromium: with Chromium's virtual authenticator batch
certificate trusted as a custom anchor (`passgate trust add`), a passkey registers as verified by
attestation; without it, the same registration is refused on the page with the error and what to do."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from passgate.core import errors

from .conftest import DEVICE_BOUND, Server, passgate_command
from .test_pages import CHROMIUM_AAGUID, add_passkey, alert_says, passkey_item
from .test_policy_pages import DEFAULT, FIDO2, Admin, onboard, try_to_add

pytestmark = pytest.mark.e2e

# Chromium's virtual authenticator batch certificate (see tests/fixtures/chromium/README.md).
BATCH_CERTIFICATE = Path(__file__).resolve().parents[1] / "fixtures" / "chromium" / "batch-certificate.pem"
BATCH_THUMBPRINT = "3c1e2adb8aa97ee03b7a3bb576ca955073485a9f1c3f64abcfb886fbcf0f5cb9"


@pytest.fixture
def enforced(server: Server) -> Iterator[Admin]:
    """The default passkey profile enforces attestation at registration; put back afterwards."""
    admin = Admin(server)
    admin.configure({"passkeyProfiles": [{**DEFAULT, "attestationEnforcement": "registrationOnly"}]})
    yield admin
    # The server is shared by the package's tests: put the policy back as it was.
    assert admin.call("DELETE", FIDO2).status_code == 204


@pytest.fixture
def batch_anchor(server: Server) -> Iterator[dict[str, Any]]:
    """Chromium's batch certificate as a custom trust anchor, added and removed with the CLI."""
    anchor: dict[str, Any] = server.cli("trust", "add", str(BATCH_CERTIFICATE))
    yield anchor
    done = subprocess.run([*passgate_command(), "trust", "remove", anchor["id"]], env=server.env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert server.cli("trust", "list") == []


def register_on_page(page: Any, name: str, add: Any) -> dict[str, Any]:
    """Add a passkey on Security info (with `add`) and return the registration options the page fetched."""
    with page.expect_response("**/api/me/passkeys/options") as options:
        add(page, name)
    assert options.value.ok
    found: dict[str, Any] = options.value.json()
    return found


def test_with_the_batch_certificate_trusted_the_passkey_is_verified(
    server: Server, enforced: Admin, batch_anchor: dict[str, Any], make_browser: Any
) -> None:
    assert batch_anchor["displayName"] == "Batch Certificate"
    assert batch_anchor["thumbprint"] == BATCH_THUMBPRINT
    b, user = onboard(make_browser, server, "ava")
    b.add_authenticator(DEVICE_BOUND)
    items: list[Any] = []
    options = register_on_page(b.page, "Laptop", lambda page, name: items.append(add_passkey(page, name)))
    assert options["attestation"] == "direct"
    (item,) = items
    expect(item).to_contain_text("Verified by attestation (Custom: Batch Certificate)")
    expect(item).to_contain_text(CHROMIUM_AAGUID)

    methods = server.graph("GET", f"/users/{user['id']}/authentication/fido2Methods")
    (method,) = methods["value"]
    assert method["attestationLevel"] == "attested"
    assert method["attestationTrustAnchor"] == "Custom: Batch Certificate"
    assert len(method["attestationCertificates"]) == 1


def test_without_the_anchor_the_same_registration_is_refused(
    server: Server, enforced: Admin, make_browser: Any
) -> None:
    assert server.cli("trust", "list") == []
    b, user = onboard(make_browser, server, "ivo")
    b.add_authenticator(DEVICE_BOUND)
    options = register_on_page(b.page, "Laptop", try_to_add)
    assert options["attestation"] == "direct"
    alert_says(b.page, errors.ATTESTATION_UNTRUSTED)
    expect(passkey_item(b.page, "Laptop")).to_have_count(0)
    assert server.graph("GET", f"/users/{user['id']}/authentication/fido2Methods")["value"] == []
