"""/policies/authenticationMethodsPolicy and its Fido2 / TemporaryAccessPass configurations (Graph shapes)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from passgate import methods_policy
from passgate.core.policy import DEFAULT_PROFILE_ID, PasskeyType
from passgate.store.db import Database
from passgate.store.tables import Setting
from tests.integration.graph_helpers import Graph, error_of

FIDO2_TYPE = "#microsoft.graph.fido2AuthenticationMethodConfiguration"
TAP_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration"
CONFIGS = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations"
AUTHENTICATOR = ["90a3ccdf-635c-4729-a248-9b709135078f", "de1e552d-db1d-4423-a619-566b625cdc84"]


@pytest.fixture
def graph(client: TestClient, db: Database) -> Graph:
    return Graph(client, db)


def stored(db: Database, name: str) -> dict[str, Any] | None:
    with db.transaction() as session:
        row = session.scalar(select(Setting).where(Setting.name == name))
        return dict(row.value) if row is not None else None


def test_defaults_in_graph_shape_with_case_insensitive_ids(graph: Graph) -> None:
    policy = graph.get("/policies/authenticationMethodsPolicy")
    assert policy.status_code == 200
    body = policy.json()
    assert body["id"] == "authenticationMethodsPolicy"
    assert [c["id"] for c in body["authenticationMethodConfigurations"]] == [
        "Fido2", "TemporaryAccessPass", "SoftwareOath", "Password"]
    for config_id in ("fido2", "Fido2", "FIDO2"):
        fido2 = graph.get(f"{CONFIGS}/{config_id}").json()
        assert fido2["@odata.type"] == FIDO2_TYPE and fido2["id"] == "Fido2"
    assert fido2["passkeyProfiles"][0]["id"] == DEFAULT_PROFILE_ID
    assert fido2["passkeyProfiles"][0]["passkeyTypes"] == "deviceBound,synced"
    assert fido2["includeTargets"] == [{"targetType": "group", "id": "all_users", "isRegistrationRequired": False,
                                        "allowedPasskeyProfiles": [DEFAULT_PROFILE_ID]}]
    tap = graph.get(f"{CONFIGS}/temporaryaccesspass").json()
    assert (tap["defaultLifetimeInMinutes"], tap["minimumLifetimeInMinutes"], tap["maximumLifetimeInMinutes"],
            tap["defaultLength"], tap["isUsableOnce"]) == (60, 60, 480, 8, False)
    assert graph.get(f"{CONFIGS}/Sms").status_code == 404


def test_seed_002_powershell_body_is_accepted_unchanged(graph: Graph, db: Database) -> None:
    # The seed article's hashtable sends its booleans as strings; Graph accepts that, so do we.
    body = {
        "@odata.type": FIDO2_TYPE, "state": "enabled", "isSelfServiceRegistrationAllowed": "true",
        "isAttestationEnforced": "true",
        "keyRestrictions": {"isEnforced": "true", "enforcementType": "allow", "aaGuids": AUTHENTICATOR},
    }
    answer = graph.patch(f"{CONFIGS}/Fido2", body)
    assert answer.status_code == 204, answer.text
    fido2 = graph.get(f"{CONFIGS}/Fido2").json()
    assert fido2["isAttestationEnforced"] is True
    assert fido2["keyRestrictions"] == {"isEnforced": True, "enforcementType": "allow", "aaGuids": AUTHENTICATOR}
    default = fido2["passkeyProfiles"][0]
    # The legacy properties and the default profile are kept in step.
    assert default["attestationEnforcement"] == "registrationOnly"
    assert default["keyRestrictions"] == fido2["keyRestrictions"]
    policy = methods_policy.fido2_policy(stored(db, "Fido2") or {})
    assert policy.profiles[0].attestation_enforced
    assert policy.profiles[0].key_restrictions.aaguids == frozenset(AUTHENTICATOR)
    assert graph.audits("Authentication Methods Policy Update")


def test_reference_profiles_body_and_profile_targets(graph: Graph, db: Database) -> None:
    admins = graph.new_group("Admins")
    body = {
        "@odata.type": FIDO2_TYPE, "id": "Fido2", "state": "enabled", "isSelfServiceRegistrationAllowed": True,
        "isAttestationEnforced": True,
        "keyRestrictions": {"isEnforced": False, "enforcementType": "block", "aaGuids": []},
        "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": False,
                            "allowedPasskeyProfiles": [DEFAULT_PROFILE_ID]}],
        "excludeTargets": [],
        "passkeyProfiles": [{"id": DEFAULT_PROFILE_ID, "name": "Default passkey profile",
                             "passkeyTypes": "deviceBound,synced", "attestationEnforcement": "disabled",
                             "keyRestrictions": {"isEnforced": False, "enforcementType": "allow", "aaGuids": []}}],
    }
    assert graph.patch(f"{CONFIGS}/fido2", body).status_code == 204
    # With profiles in the body, the default profile wins and the legacy mirror follows it.
    assert graph.get(f"{CONFIGS}/fido2").json()["isAttestationEnforced"] is False

    # A fourth profile (Entra stops at three) for Admins, sent without an id: the server assigns one.
    profiles = body["passkeyProfiles"] + [
        {"name": f"Profile {n}", "passkeyTypes": "deviceBound", "attestationEnforcement": "registrationOnly"}
        for n in range(3)
    ]
    assert graph.patch(f"{CONFIGS}/fido2", {"@odata.type": FIDO2_TYPE, "passkeyProfiles": profiles}).status_code == 204
    saved = graph.get(f"{CONFIGS}/fido2").json()["passkeyProfiles"]
    assert len(saved) == 4 and all(p["id"] for p in saved)
    admin_profile = saved[1]["id"]
    targets = [{"targetType": "group", "id": admins["id"], "allowedPasskeyProfiles": [admin_profile]},
               {"targetType": "group", "id": "all_users", "allowedPasskeyProfiles": [DEFAULT_PROFILE_ID]}]
    assert graph.patch(f"{CONFIGS}/fido2", {"@odata.type": FIDO2_TYPE, "includeTargets": targets}).status_code == 204
    policy = methods_policy.fido2_policy(stored(db, "Fido2") or {})
    assert policy.profile(admin_profile) is not None
    assert policy.profile(admin_profile).passkey_types == frozenset({PasskeyType.DEVICE_BOUND})  # type: ignore[union-attr]

    # A referenced profile cannot be removed; the default cannot be removed or renamed.
    before = stored(db, "Fido2")
    for bad in (
        {"passkeyProfiles": [saved[0]]},
        {"passkeyProfiles": saved[1:]},
        {"passkeyProfiles": [{**saved[0], "name": "Renamed"}, *saved[1:]]},
    ):
        answer = graph.patch(f"{CONFIGS}/fido2", {"@odata.type": FIDO2_TYPE, **bad})
        assert answer.status_code == 400, answer.text
        assert "passkeyProfiles" in error_of(answer)["message"]
    assert stored(db, "Fido2") == before


@pytest.mark.parametrize(
    ("config", "body", "named"),
    [
        ("fido2", {"state": "on"}, "state"),
        ("fido2", {"isSelfServiceRegistrationAllowed": "maybe"}, "isSelfServiceRegistrationAllowed"),
        ("fido2", {"colour": "blue"}, "colour"),
        ("fido2", {"keyRestrictions": {"isEnforced": True, "enforcementType": "deny", "aaGuids": []}},
         "enforcementType"),
        ("fido2", {"keyRestrictions": {"isEnforced": True, "enforcementType": "allow", "aaGuids": ["nope"]}},
         "aaGuids"),
        ("fido2", {"passkeyProfiles": [{"id": DEFAULT_PROFILE_ID, "name": "Default passkey profile",
                                        "passkeyTypes": "cloud"}]}, "passkeyTypes"),
        ("fido2", {"includeTargets": [{"targetType": "group", "id": "11111111-2222-3333-4444-555555555555"}]},
         "includeTargets.id"),
        ("fido2", {"includeTargets": [{"targetType": "group", "id": "all_users",
                                       "allowedPasskeyProfiles": ["11111111-2222-3333-4444-555555555555"]}]},
         "allowedPasskeyProfiles"),
        ("TemporaryAccessPass", {"defaultLifetimeInMinutes": 5}, "defaultLifetimeInMinutes"),
        ("TemporaryAccessPass", {"maximumLifetimeInMinutes": 50000}, "maximumLifetimeInMinutes"),
        ("TemporaryAccessPass", {"minimumLifetimeInMinutes": 600, "maximumLifetimeInMinutes": 120},
         "minimumLifetimeInMinutes"),
        ("TemporaryAccessPass", {"defaultLength": 7}, "defaultLength"),
        ("TemporaryAccessPass", {"defaultLength": 49}, "defaultLength"),
    ],
)
def test_invalid_bodies_name_the_property_and_save_nothing(
    graph: Graph, db: Database, config: str, body: dict[str, Any], named: str
) -> None:
    odata_type = FIDO2_TYPE if config == "fido2" else TAP_TYPE
    answer = graph.patch(f"{CONFIGS}/{config}", {"@odata.type": odata_type, **body})
    assert answer.status_code == 400, answer.text
    error = error_of(answer)
    assert error["code"] == "Request_BadRequest" and named in error["message"]
    assert stored(db, "Fido2") is None and stored(db, "TemporaryAccessPass") is None


def test_odata_type_is_required_and_must_match(graph: Graph, db: Database) -> None:
    missing = graph.patch(f"{CONFIGS}/fido2", {"state": "disabled"})
    assert missing.status_code == 400 and "@odata.type" in error_of(missing)["message"]
    wrong = graph.patch(f"{CONFIGS}/fido2", {"@odata.type": TAP_TYPE, "state": "disabled"})
    assert wrong.status_code == 400
    assert stored(db, "Fido2") is None


def test_tap_policy_changes_the_passes_issued_and_delete_resets(graph: Graph, db: Database) -> None:
    user = graph.new_user("pat@contoso.example")
    patch = {"@odata.type": TAP_TYPE, "minimumLifetimeInMinutes": 10, "defaultLifetimeInMinutes": 15,
             "maximumLifetimeInMinutes": 30, "defaultLength": 12, "isUsableOnce": True}
    assert graph.patch(f"{CONFIGS}/TemporaryAccessPass", patch).status_code == 204
    issued = graph.post(f"/users/{user['id']}/authentication/temporaryAccessPassMethods", {})
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert (len(body["temporaryAccessPass"]), body["lifetimeInMinutes"], body["isUsableOnce"]) == (12, 15, True)
    multi = graph.post(f"/users/{user['id']}/authentication/temporaryAccessPassMethods", {"isUsableOnce": False})
    assert multi.status_code == 400
    assert graph.delete(f"{CONFIGS}/TemporaryAccessPass").status_code == 204
    assert graph.get(f"{CONFIGS}/TemporaryAccessPass").json()["defaultLength"] == 8
    assert graph.audits("Authentication Methods Policy Reset")


def test_policy_needs_its_permission(graph: Graph, db: Database) -> None:
    read_only = graph.get(f"{CONFIGS}/fido2", permissions=("User.ReadWrite.All",))
    assert read_only.status_code == 403
    denied = graph.patch(f"{CONFIGS}/fido2", {"@odata.type": FIDO2_TYPE, "state": "disabled"},
                         permissions=("Policy.Read.All",))
    assert denied.status_code == 403
    assert graph.get(f"{CONFIGS}/fido2", permissions=("Policy.Read.All",)).status_code == 200
    assert stored(db, "Fido2") is None
