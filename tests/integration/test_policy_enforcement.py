"""The methods policy enforced where users meet it: registration, every sign-in, re-evaluation of stored
passkeys after a change, the impact preview and the administrator lock-out guard."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bench.softauthn import SoftAuthenticator
from passgate.core import errors
from passgate.core.policy import DEFAULT_PROFILE_ID
from passgate.core.roles import GLOBAL_ADMINISTRATOR
from passgate.store.db import Database
from passgate.store.tables import DirectoryAudit, GroupMember, Passkey, RoleAssignment
from tests.integration.graph_helpers import Graph
from tests.integration.graph_helpers import error_of as graph_error
from tests.integration.test_signin_support import (
    ORIGIN,
    enrol,
    error_of,
    passkey_sign_in,
    refused_attempt,
    register,
    request_options,
    signed_in_as,
)

FIDO2_TYPE = "#microsoft.graph.fido2AuthenticationMethodConfiguration"
FIDO2 = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2"
YUBI = "ee882879-721c-4913-9775-3dfcce97072a"


@pytest.fixture
def graph(client: TestClient, db: Database) -> Graph:
    return Graph(client, db)


def profile(name: str, types: str = "deviceBound,synced", pid: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": pid or str(uuid.uuid4()), "name": name, "passkeyTypes": types, **extra}


DEFAULT = profile("Default passkey profile", pid=DEFAULT_PROFILE_ID)


def configure(graph: Graph, body: dict[str, Any], override: bool = False) -> Any:
    headers = {"Passgate-Override-Lockout": "true"} if override else None
    answer = graph.patch(FIDO2, {"@odata.type": FIDO2_TYPE, **body}, headers=headers)
    return answer


def join(db: Database, user_id: str, group_id: str) -> None:
    with db.transaction() as session:
        session.add(GroupMember(group_id=group_id, user_id=user_id))


def answer_later(client: TestClient, key: SoftAuthenticator) -> Any:
    """The passkey's answer to fresh request options, to be posted inside refused_attempt."""
    credential = key.get(request_options(client), ORIGIN)
    return lambda: client.post("/api/signin/passkey", json={"credential": credential})


def authenticator(synced: bool = False, aaguid: str = YUBI) -> SoftAuthenticator:
    return SoftAuthenticator(be=synced, bs=synced, aaguid=uuid.UUID(aaguid).bytes)


def test_admins_device_bound_only_sales_may_use_synced(graph: Graph, client: TestClient, db: Database) -> None:
    admins, sales = graph.new_group("Admins"), graph.new_group("Sales")
    device_only = profile("Admins: device-bound", "deviceBound")
    answer = configure(graph, {
        "passkeyProfiles": [DEFAULT, device_only],
        "includeTargets": [{"targetType": "group", "id": admins["id"], "allowedPasskeyProfiles": [device_only["id"]]},
                           {"targetType": "group", "id": sales["id"], "allowedPasskeyProfiles": [DEFAULT_PROFILE_ID]}],
    })
    assert answer.status_code == 204, answer.text

    ada = signed_in_as(client, db, "ada@example.com")
    join(db, ada, admins["id"])
    refused, _ = register(client, authenticator(synced=True))
    body = error_of(refused, errors.PASSKEY_TYPE_NOT_ALLOWED)
    assert "Admins: device-bound" in body["message"] and "synced" in body["message"]
    accepted, _ = register(client, authenticator())
    assert accepted.status_code == 201 and accepted.json()["passkeyType"] == "deviceBound"
    client.post("/api/signout")

    sam = signed_in_as(client, db, "sam@example.com")
    join(db, sam, sales["id"])
    synced, _ = register(client, authenticator(synced=True))
    assert synced.status_code == 201 and synced.json()["passkeyType"] == "synced"
    client.post("/api/signout")

    nobody = signed_in_as(client, db, "nobody@example.com")
    assert nobody
    error_of(client.post("/api/me/passkeys/options"), errors.FIDO2_NOT_ENABLED_FOR_USER)


def test_block_list_refuses_sign_in_until_lifted(graph: Graph, client: TestClient, db: Database) -> None:
    _, key, passkey = enrol(client, db, "bo@example.com", authenticator())
    blocked = {**DEFAULT, "keyRestrictions": {"isEnforced": True, "enforcementType": "block", "aaGuids": [YUBI]}}
    assert configure(graph, {"passkeyProfiles": [blocked]}).status_code == 204

    entry = refused_attempt(db, answer_later(client, key), errors.PASSKEY_MODEL_NOT_ALLOWED,
                            "Passkey (device-bound)")
    assert entry is not None and YUBI in (entry.failure_reason or "")
    with db.transaction() as session:
        stored = session.get(Passkey, passkey["id"])
        assert stored is not None and stored.unusable_code == errors.PASSKEY_MODEL_NOT_ALLOWED.number
        assert YUBI in (stored.unusable_reason or "")
        marks = list(session.scalars(select(DirectoryAudit.activity_display_name)
                                     .where(DirectoryAudit.activity_display_name == "Passkey marked unusable")))
    assert marks == ["Passkey marked unusable"]

    assert configure(graph, {"passkeyProfiles": [DEFAULT]}).status_code == 204
    ok, _ = passkey_sign_in(client, key)
    assert ok.status_code == 200, ok.text
    with db.transaction() as session:
        stored = session.get(Passkey, passkey["id"])
        assert stored is not None and stored.unusable_code is None and stored.unusable_reason is None


def test_synced_passkeys_stop_at_sign_in_when_the_profile_drops_them(graph: Graph, client: TestClient,
                                                                     db: Database) -> None:
    _, phone, _ = enrol(client, db, "cy@example.com", authenticator(synced=True))
    assert configure(graph, {"passkeyProfiles": [{**DEFAULT, "passkeyTypes": "deviceBound"}]}).status_code == 204
    refused_attempt(db, answer_later(client, phone), errors.PASSKEY_TYPE_NOT_ALLOWED,
                    "Passkey (synced)")


def test_method_disabled_excluded_group_and_self_service_off(graph: Graph, client: TestClient, db: Database) -> None:
    contractors = graph.new_group("Contractors")
    user_id, key, _ = enrol(client, db, "dee@example.com", authenticator())
    assert configure(graph, {"state": "disabled"}).status_code == 204
    error_of(passkey_sign_in(client, key)[0], errors.FIDO2_DISABLED)

    join(db, user_id, contractors["id"])
    assert configure(graph, {"state": "enabled", "excludeTargets": [
        {"targetType": "group", "id": contractors["id"]}]}).status_code == 204
    error_of(passkey_sign_in(client, key)[0], errors.FIDO2_NOT_ENABLED_FOR_USER)

    # Options fetched while self-service was allowed do not help once it is turned off.
    assert configure(graph, {"excludeTargets": []}).status_code == 204
    assert passkey_sign_in(client, key)[0].status_code == 200
    options = client.post("/api/me/passkeys/options")
    assert options.status_code == 200
    assert configure(graph, {"isSelfServiceRegistrationAllowed": False}).status_code == 204
    late = authenticator(aaguid=str(uuid.uuid4())).create(options.json(), ORIGIN)
    error_of(client.post("/api/me/passkeys", json={"credential": late}), errors.SELF_SERVICE_REGISTRATION_NOT_ALLOWED)
    error_of(client.post("/api/me/passkeys/options"), errors.SELF_SERVICE_REGISTRATION_NOT_ALLOWED)


def _admin(db: Database, user_id: str) -> None:
    with db.transaction() as session:
        session.add(RoleAssignment(role_definition_id=GLOBAL_ADMINISTRATOR, principal_id=user_id,
                                   directory_scope_id="/", created_at=datetime.now(UTC)))


def test_preview_and_admin_lock_out_guard(graph: Graph, client: TestClient, db: Database) -> None:
    admin_id, _, admin_key = enrol(client, db, "root@example.com", authenticator(synced=True))
    _admin(db, admin_id)
    _, _, mixed_key = enrol(client, db, "mo@example.com", authenticator(synced=True))
    proposal = {"@odata.type": FIDO2_TYPE, "passkeyProfiles": [{**DEFAULT, "passkeyTypes": "deviceBound"}]}

    preview = graph.post(FIDO2 + "/previewImpact", proposal)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["locksOutEveryGlobalAdministrator"] is True
    assert {u["userPrincipalName"] for u in body["usersLosingEveryPasskey"]} == {"root@example.com", "mo@example.com"}
    assert body["passkeysLosingAccess"] == 2
    lost = next(u for u in body["usersLosingEveryPasskey"] if u["userPrincipalName"] == "root@example.com")
    assert lost["passkeysLost"][0]["id"] == admin_key["id"] and lost["passkeysKept"] == 0
    assert mixed_key

    with db.transaction() as session:
        before = session.scalar(select(DirectoryAudit).order_by(DirectoryAudit.activity_at.desc()).limit(1))
    refused = configure(graph, {"passkeyProfiles": proposal["passkeyProfiles"]})
    assert refused.status_code == 409
    error = graph_error(refused)
    assert error["code"] == errors.ADMIN_LOCKOUT.name and "root@example.com" in error["message"]
    assert graph.get(FIDO2).json()["passkeyProfiles"][0]["passkeyTypes"] == "deviceBound,synced"
    with db.transaction() as session:
        after = session.scalar(select(DirectoryAudit).order_by(DirectoryAudit.activity_at.desc()).limit(1))
    assert before is not None and after is not None and before.id == after.id

    forced = configure(graph, {"passkeyProfiles": proposal["passkeyProfiles"]}, override=True)
    assert forced.status_code == 204
    assert graph.get(FIDO2).json()["passkeyProfiles"][0]["passkeyTypes"] == "deviceBound"


def test_registration_options_follow_the_policy(graph: Graph, client: TestClient, db: Database) -> None:
    signed_in_as(client, db, "opt@example.com")
    plain = client.post("/api/me/passkeys/options")
    assert plain.status_code == 200 and plain.json()["attestation"] == "none"
    attested = {**DEFAULT, "attestationEnforcement": "registrationOnly"}
    assert configure(graph, {"passkeyProfiles": [attested]}).status_code == 204
    assert client.post("/api/me/passkeys/options").json()["attestation"] == "direct"
    assert "hints" not in plain.json()
    device_only = {**attested, "passkeyTypes": "deviceBound"}
    assert configure(graph, {"passkeyProfiles": [device_only]}, override=True).status_code == 204
    assert client.post("/api/me/passkeys/options").json()["hints"] == ["security-key"]
    assert configure(graph, {"isSelfServiceRegistrationAllowed": False}).status_code == 204
    error_of(client.post("/api/me/passkeys/options"), errors.SELF_SERVICE_REGISTRATION_NOT_ALLOWED)
    assert configure(graph, {"isSelfServiceRegistrationAllowed": True, "state": "disabled"}).status_code == 204
    error_of(client.post("/api/me/passkeys/options"), errors.FIDO2_DISABLED)
