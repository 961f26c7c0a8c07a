"""Per-user passkeys through the Graph-compatible API (entra-graph.md §4): admin provisioning with
creationOptions + POST fido2Methods, list/get/delete, the mixed methods collection, and the same for the
signed-in user under /me.

Provisioning is answered by the software authenticator exactly as a CTAP client would, and the passkey it
makes must then sign in through the ordinary sign-in API.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bench.softauthn import SoftAuthenticator, b64url
from passgate.core import errors
from passgate.core.errors import ErrorCode
from passgate.store.db import Database
from passgate.store.tables import Challenge, DirectoryAudit, Passkey
from tests.integration.graph_helpers import ALL, Graph, error_of
from tests.integration.test_signin_support import (
    ORIGIN,
    passkey_sign_in,
    request_options,
    signed_in_as,
    snapshot,
)
from tests.integration.test_signin_support import error_of as expect_error

FIDO2_TYPE = "#microsoft.graph.fido2AuthenticationMethod"
TAP_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
OPTIONS_TYPE = "#microsoft.graph.webauthnCredentialCreationOptions"
READ_ONLY = "UserAuthenticationMethod.Read.All"
READ_WRITE = "UserAuthenticationMethod.ReadWrite.All"
GOOGLE_PASSWORD_MANAGER = "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"
SOFT_AAGUID = "5067a5f3-6fbd-4a5b-9c8f-1e2d3c4b5a69"  # the software authenticator's default
V1_FIELDS = {
    "@odata.type", "id", "displayName", "createdDateTime", "aaGuid", "model", "attestationCertificates",
    "attestationLevel", "passkeyType", "attestationTrustAnchor", "passgateUsability",
}
EVIL = "http://evil.localhost:8443"
ME = "/v1.0/me/authentication/fido2Methods"


@pytest.fixture
def graph(client: TestClient, db: Database) -> Graph:
    """An app holding every permission; its token is made first, so that snapshots taken later stay equal."""
    calls = Graph(client, db)
    calls.token()
    return calls


@pytest.fixture
def beta(client: TestClient, db: Database) -> Graph:
    calls = Graph(client, db, "beta")
    calls.token()
    return calls


@pytest.fixture
def user(graph: Graph) -> dict[str, Any]:
    return graph.new_user("keyholder@contoso.example", "Key Holder")


def fido2(user_ref: str) -> str:
    return f"/users/{user_ref}/authentication/fido2Methods"


def device_bound() -> SoftAuthenticator:
    return SoftAuthenticator()


def synced() -> SoftAuthenticator:
    return SoftAuthenticator(be=True, bs=True, aaguid=uuid.UUID(GOOGLE_PASSWORD_MANAGER).bytes)


def as_graph_credential(credential: dict[str, Any]) -> dict[str, Any]:
    """The authenticator's answer in Graph's webauthnPublicKeyCredential shape: no rawId, no type."""
    response = credential["response"]
    return {
        "id": credential["id"],
        "response": {"clientDataJSON": response["clientDataJSON"], "attestationObject": response["attestationObject"]},
        "clientExtensionResults": credential["clientExtensionResults"],
    }


def options_for(graph: Graph, path: str, function: str = "creationOptions", **kwargs: Any) -> dict[str, Any]:
    answer = graph.get(f"{path}/{function}", **kwargs)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def provision(
    graph: Graph,
    path: str,
    authenticator: SoftAuthenticator,
    name: str | None = "Provisioned key",
    function: str = "creationOptions",
) -> dict[str, Any]:
    """creationOptions, the authenticator's answer, and POST fido2Methods: the 201 body."""
    credential = authenticator.create(options_for(graph, path, function)["publicKey"], ORIGIN)
    body: dict[str, Any] = {"@odata.type": FIDO2_TYPE, "publicKeyCredential": as_graph_credential(credential)}
    if name is not None:
        body["displayName"] = name
    created = graph.post(path, body)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


def stored(db: Database) -> list[Passkey]:
    with db.transaction() as session:
        return list(session.scalars(select(Passkey).order_by(Passkey.created_at)))


def open_challenges(db: Database) -> list[Challenge]:
    with db.transaction() as session:
        return list(session.scalars(select(Challenge).where(Challenge.used_at.is_(None))))


def age_challenges(db: Database, by: timedelta) -> None:
    """Move every open challenge's expiry back, as if `by` had passed since it was issued."""
    with db.transaction() as session:
        for row in session.scalars(select(Challenge).where(Challenge.used_at.is_(None))):
            row.expires_at = row.expires_at - by


def audits(db: Database, activity: str) -> list[DirectoryAudit]:
    with db.transaction() as session:
        query = select(DirectoryAudit).where(DirectoryAudit.activity_display_name == activity)
        return list(session.scalars(query.order_by(DirectoryAudit.activity_at)))


def details(record: DirectoryAudit) -> dict[str, str]:
    return {d["key"]: d["value"] for d in record.additional_details}


def refused(db: Database, answer_of: Callable[[], Any], code: ErrorCode) -> dict[str, Any]:
    """The request is refused with `code` in Graph's error body, and nothing stored changes."""
    before = snapshot(db)
    answer = answer_of()
    error = expect_error(answer, code)
    error_of(answer)
    assert snapshot(db) == before, "a refused request changed stored data"
    return error


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


# -- admin provisioning -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "kind", "aaguid", "model"),
    [(device_bound, "deviceBound", SOFT_AAGUID, None),
     (synced, "synced", GOOGLE_PASSWORD_MANAGER, "Google Password Manager")],
    ids=["device-bound", "synced"],
)
def test_provisioning_round_trip_then_the_passkey_signs_in(
    graph: Graph, beta: Graph, client: TestClient, db: Database, user: dict[str, Any],
    make: Any, kind: str, aaguid: str, model: str | None,
) -> None:
    path = fido2(user["id"])
    before = datetime.now(UTC)
    options = options_for(graph, path)
    assert set(options) == {"@odata.context", "@odata.type", "challengeTimeoutDateTime", "publicKey"}
    assert options["@odata.type"] == OPTIONS_TYPE
    assert options["@odata.context"] == f"{ORIGIN}/v1.0/$metadata#microsoft.graph.webauthnCredentialCreationOptions"
    public_key = options["publicKey"]
    assert public_key["rp"]["id"] == "localhost"
    assert (public_key["user"]["name"], public_key["user"]["displayName"]) == (user["userPrincipalName"], "Key Holder")
    assert public_key["excludeCredentials"] == []
    assert public_key["authenticatorSelection"]["userVerification"] == "required"
    assert "=" not in public_key["challenge"] and "=" not in public_key["user"]["id"]
    [challenge] = open_challenges(db)
    assert challenge.user_id == user["id"]
    timeout = _parse(options["challengeTimeoutDateTime"])
    assert timeout == challenge.expires_at
    assert before + timedelta(minutes=5) <= timeout <= datetime.now(UTC) + timedelta(minutes=5)

    authenticator = make()
    credential = authenticator.create(public_key, ORIGIN)
    created = graph.post(path, {
        "@odata.type": FIDO2_TYPE, "displayName": "Front desk key",
        "publicKeyCredential": as_graph_credential(credential),
    })
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["@odata.context"] == (
        f"{ORIGIN}/v1.0/$metadata#users('{user['id']}')/authentication/fido2Methods/$entity")
    assert set(body) - {"@odata.context"} == V1_FIELDS  # no lastUsedDateTime on v1.0
    assert body["@odata.type"] == FIDO2_TYPE
    assert (body["displayName"], body["passkeyType"], body["aaGuid"], body["model"]) == (
        "Front desk key", kind, aaguid, model)
    assert (body["attestationLevel"], body["attestationCertificates"], body["attestationTrustAnchor"]) == (
        "notAttested", [], None)
    assert body["passgateUsability"] == {"isUsable": True, "reason": None, "errorCode": None}
    assert before - timedelta(seconds=5) <= _parse(body["createdDateTime"]) <= datetime.now(UTC)
    [row] = stored(db)
    assert (row.id, row.user_id, row.backup_eligible) == (body["id"], user["id"], kind == "synced")
    assert open_challenges(db) == []

    # The list, the item by id and by UPN, read with the read-only permission too.
    listed = graph.get(path)
    assert listed.status_code == 200
    assert listed.json()["@odata.context"] == (
        f"{ORIGIN}/v1.0/$metadata#users('{user['id']}')/authentication/fido2Methods")
    expected = {k: v for k, v in body.items() if k != "@odata.context"}
    assert listed.json()["value"] == [expected]
    for read in (
        graph.get(f"{path}/{body['id']}"),
        graph.get(f"{fido2('KEYHOLDER@contoso.example')}/{body['id'].upper()}"),
        graph.get(f"{path}/{body['id']}", permissions=(READ_ONLY,)),
    ):
        assert read.status_code == 200, read.text
        assert {k: v for k, v in read.json().items() if k != "@odata.context"} == expected

    [record] = audits(db, "Admin registered security info")
    assert record.initiated_by["app"]["appId"] == graph.app_ids[ALL]
    assert record.target_resources[0]["id"] == user["id"]
    assert details(record)["methodId"] == body["id"]
    assert details(record)["passkeyType"] == kind

    # The provisioned passkey signs in through the ordinary sign-in API, username-first and usernameless.
    assert beta.get(f"{path}/{body['id']}").json()["lastUsedDateTime"] is None
    signed, _ = passkey_sign_in(client, authenticator, user["userPrincipalName"])
    assert signed.status_code == 200, signed.text
    assert client.get("/api/me").json()["id"] == user["id"]
    client.post("/api/signout")
    signed, _ = passkey_sign_in(client, authenticator)
    assert signed.status_code == 200, signed.text
    used = beta.get(f"{path}/{body['id']}").json()
    assert used["lastUsedDateTime"] is not None
    assert set(used) - {"@odata.context", "lastUsedDateTime"} == V1_FIELDS


def test_webauthn_json_with_raw_id_and_transports_is_accepted_too(
    graph: Graph, db: Database, user: dict[str, Any]
) -> None:
    path = fido2(user["id"])
    credential = SoftAuthenticator().create(options_for(graph, path)["publicKey"], ORIGIN)
    created = graph.post(path, {"publicKeyCredential": credential})  # RegistrationResponseJSON as a browser gives it
    assert created.status_code == 201, created.text
    assert created.json()["displayName"] == "Passkey"  # no name and no known model
    [row] = stored(db)
    assert row.transports == ["hybrid", "internal"]


def test_a_second_provisioning_excludes_the_first_passkey(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    path = fido2(user["id"])
    authenticator = device_bound()
    first = provision(graph, path, authenticator)
    options = options_for(graph, path)
    [excluded] = options["publicKey"]["excludeCredentials"]
    [row] = stored(db)
    assert excluded["id"] == b64url(row.credential_id)
    assert excluded["type"] == "public-key"
    # An authenticator that ignores the list and makes the same credential again is refused.
    again = authenticator.create(
        options["publicKey"], ORIGIN, ignore_exclude=True, credential_id=next(iter(authenticator.credentials))
    )
    refused(db, lambda: graph.post(path, {"publicKeyCredential": as_graph_credential(again)}),
            errors.CREDENTIAL_ALREADY_REGISTERED)
    assert [p.id for p in stored(db)] == [first["id"]]


# -- whose challenge ------------------------------------------------------------------------------
def test_a_challenge_issued_to_another_app_is_refused(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    path = fido2(user["id"])
    credential = SoftAuthenticator().create(options_for(graph, path)["publicKey"], ORIGIN)
    body = {"publicKeyCredential": as_graph_credential(credential)}
    graph.token(READ_WRITE)  # another app registration, holding the write permission
    assert graph.app_ids[(READ_WRITE,)] != graph.app_ids[ALL]
    refused(db, lambda: graph.post(path, body, permissions=(READ_WRITE,)), errors.CHALLENGE_NOT_FOUND)
    # The challenge was not spent: the app that asked for it can still use it, once.
    assert graph.post(path, body).status_code == 201
    refused(db, lambda: graph.post(path, body), errors.CHALLENGE_ALREADY_USED)


def test_a_challenge_for_another_user_is_refused(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    other = graph.new_user("other@contoso.example")
    credential = SoftAuthenticator().create(options_for(graph, fido2(other["id"]))["publicKey"], ORIGIN)
    body = {"publicKeyCredential": as_graph_credential(credential)}
    refused(db, lambda: graph.post(fido2(user["id"]), body), errors.CHALLENGE_NOT_FOUND)
    assert graph.post(fido2(other["id"]), body).status_code == 201


def test_browser_and_graph_challenges_do_not_cross(graph: Graph, client: TestClient, db: Database) -> None:
    user_id = signed_in_as(client, db, "walker@contoso.example")
    browser = client.post("/api/me/passkeys/options")
    assert browser.status_code == 200
    from_browser = SoftAuthenticator().create(browser.json(), ORIGIN)
    refused(db, lambda: graph.post(fido2(user_id), {"publicKeyCredential": as_graph_credential(from_browser)}),
            errors.CHALLENGE_NOT_FOUND)
    # A sign-in challenge is not a registration challenge either.
    sign_in = request_options(client)
    from_sign_in = SoftAuthenticator().create({**browser.json(), "challenge": sign_in["challenge"]}, ORIGIN)
    refused(db, lambda: graph.post(fido2(user_id), {"publicKeyCredential": as_graph_credential(from_sign_in)}),
            errors.CHALLENGE_NOT_FOUND)
    # ... and the app's challenge is no good to the browser, through the headless API or /me.
    from_app = SoftAuthenticator().create(options_for(graph, fido2(user_id))["publicKey"], ORIGIN)
    refused(db, lambda: client.post("/api/me/passkeys", json={"credential": from_app}), errors.CHALLENGE_NOT_FOUND)
    refused(db, lambda: client.post("/v1.0/me/authentication/fido2Methods",
                                    json={"publicKeyCredential": as_graph_credential(from_app)}),
            errors.CHALLENGE_NOT_FOUND)
    assert stored(db) == []


# -- challenge timeouts ---------------------------------------------------------------------------
def test_the_v1_challenge_expires_after_five_minutes(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    path = fido2(user["id"])
    credential = SoftAuthenticator().create(options_for(graph, path)["publicKey"], ORIGIN)
    age_challenges(db, timedelta(minutes=5, seconds=1))
    refused(db, lambda: graph.post(path, {"publicKeyCredential": as_graph_credential(credential)}),
            errors.CHALLENGE_EXPIRED)


def test_the_beta_timeout_is_honoured_and_then_expires(beta: Graph, db: Database, user: dict[str, Any]) -> None:
    path = fido2(user["id"])
    before = datetime.now(UTC)
    options = options_for(beta, path, "creationOptions(challengeTimeoutInMinutes=60)")
    timeout = _parse(options["challengeTimeoutDateTime"])
    assert before + timedelta(minutes=60) <= timeout <= datetime.now(UTC) + timedelta(minutes=60)
    [challenge] = open_challenges(db)
    assert challenge.expires_at == timeout
    credential = SoftAuthenticator().create(options["publicKey"], ORIGIN)
    body = {"publicKeyCredential": as_graph_credential(credential)}
    age_challenges(db, timedelta(minutes=61))
    refused(db, lambda: beta.post(path, body), errors.CHALLENGE_EXPIRED)

    # Half an hour into a one-hour challenge, where a five-minute one would long have expired, it still works.
    later = SoftAuthenticator().create(
        options_for(beta, path, "creationOptions(challengeTimeoutInMinutes=60)")["publicKey"], ORIGIN
    )
    age_challenges(db, timedelta(minutes=30))
    created = beta.post(path, {"publicKeyCredential": as_graph_credential(later)})
    assert created.status_code == 201, created.text
    assert "lastUsedDateTime" in created.json()


@pytest.mark.parametrize(
    ("function", "minutes"),
    [
        ("creationOptions", 5),
        ("creationOptions()", 5),
        ("creationOptions(challengeTimeoutInMinutes=5)", 5),
        ("creationOptions(challengeTimeoutInMinutes=43200)", 43200),
        ("creationOptions( challengeTimeoutInMinutes = 90 )", 90),
        ("creationOptions(challengeTimeoutInMinutes=@t)?@t=15", 15),
    ],
)
def test_beta_timeouts_in_range(beta: Graph, db: Database, user: dict[str, Any], function: str, minutes: int) -> None:
    options = options_for(beta, fido2(user["id"]), function)
    [challenge] = open_challenges(db)
    assert _parse(options["challengeTimeoutDateTime"]) == challenge.expires_at
    issued = challenge.expires_at - timedelta(minutes=minutes)
    assert datetime.now(UTC) - timedelta(seconds=30) <= issued <= datetime.now(UTC)


@pytest.mark.parametrize(
    "function",
    [
        "creationOptions(challengeTimeoutInMinutes=4)",
        "creationOptions(challengeTimeoutInMinutes=43201)",
        "creationOptions(challengeTimeoutInMinutes=0)",
        "creationOptions(challengeTimeoutInMinutes=-5)",
        "creationOptions(challengeTimeoutInMinutes=5.5)",
        "creationOptions(challengeTimeoutInMinutes='10')",
        "creationOptions(challengeTimeoutInMinutes=)",
        "creationOptions(challengeTimeoutInMinutes=99999999999999999999)",
        "creationOptions(challengeTimeoutInMinutes=@missing)",
        "creationOptions(challengeTimeoutInMinutes=10,challengeTimeoutInMinutes=20)",
    ],
)
def test_beta_timeouts_out_of_range_are_refused(
    beta: Graph, db: Database, user: dict[str, Any], function: str
) -> None:
    beta.token()
    error = refused(db, lambda: beta.get(f"{fido2(user['id'])}/{function}"), errors.INVALID_REQUEST)
    assert "challengeTimeoutInMinutes" in error["message"]


def test_function_forms_that_are_not_supported(
    graph: Graph, beta: Graph, db: Database, user: dict[str, Any]
) -> None:
    graph.token()
    beta.token()
    path = fido2(user["id"])
    error = refused(db, lambda: graph.get(f"{path}/creationOptions(challengeTimeoutInMinutes=10)"),
                    errors.INVALID_REQUEST)
    assert "/beta" in error["message"] and "challengeTimeoutInMinutes" in error["message"]
    error = refused(db, lambda: beta.get(f"{path}/creationOptions(lifetime=10)"), errors.INVALID_REQUEST)
    assert "challengeTimeoutInMinutes" in error["message"]
    refused(db, lambda: graph.get(f"{path}/creationOptions?$top=1"), errors.INVALID_REQUEST)
    refused(db, lambda: graph.get(f"{fido2('ghost@contoso.example')}/creationOptions"), errors.NOT_FOUND)


# -- the methods policy (the registry's decisions, seen through Graph) -----------------------------------
FIDO2_CONFIGURATION = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2"
FIDO2_CONFIGURATION_TYPE = "#microsoft.graph.fido2AuthenticationMethodConfiguration"


def configure(graph: Graph, **values: Any) -> None:
    answer = graph.patch(FIDO2_CONFIGURATION, {"@odata.type": FIDO2_CONFIGURATION_TYPE, **values})
    assert answer.status_code == 204, answer.text


def test_admin_provisioning_does_not_need_self_service(
    graph: Graph, client: TestClient, db: Database
) -> None:
    """Unlike Entra's known issue, an administrator provisions a passkey while self-service set-up is off;
    the user cannot add one through /me, not even with options fetched before the change."""
    user_id = signed_in_as(client, db, "managed@contoso.example")
    early = client.get(f"{ME}/creationOptions")
    assert early.status_code == 200
    configure(graph, isSelfServiceRegistrationAllowed=False)
    late = SoftAuthenticator().create(early.json()["publicKey"], ORIGIN)
    refused(db, lambda: client.post(ME, json={"publicKeyCredential": as_graph_credential(late)}),
            errors.SELF_SERVICE_REGISTRATION_NOT_ALLOWED)
    refused(db, lambda: client.get(f"{ME}/creationOptions"), errors.SELF_SERVICE_REGISTRATION_NOT_ALLOWED)
    provisioned = provision(graph, fido2(user_id), device_bound())
    assert [p["id"] for p in client.get(ME).json()["value"]] == [provisioned["id"]]
    [record] = audits(db, "Admin registered security info")
    assert details(record)["methodId"] == provisioned["id"]


def test_a_policy_refusal_comes_back_as_a_graph_error(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    path = fido2(user["id"])
    credential = SoftAuthenticator().create(options_for(graph, path)["publicKey"], ORIGIN)
    configure(graph, state="disabled")
    error = refused(db, lambda: graph.get(f"{path}/creationOptions"), errors.FIDO2_DISABLED)
    assert error["innerError"]["passgateCode"] == errors.FIDO2_DISABLED.number
    refused(db, lambda: graph.post(path, {"publicKeyCredential": as_graph_credential(credential)}),
            errors.FIDO2_DISABLED)
    configure(graph, state="enabled", passkeyProfiles=[{
        "id": "00000000-0000-0000-0000-000000000001", "name": "Default passkey profile",
        "passkeyTypes": "deviceBound", "attestationEnforcement": "disabled",
        "keyRestrictions": {"isEnforced": False, "enforcementType": "block", "aaGuids": []},
    }])
    options = options_for(graph, path)
    refused(db, lambda: graph.post(path, {"publicKeyCredential": as_graph_credential(
        synced().create(options["publicKey"], ORIGIN))}), errors.PASSKEY_TYPE_NOT_ALLOWED)
    assert graph.post(path, {"publicKeyCredential": as_graph_credential(
        device_bound().create(options["publicKey"], ORIGIN))}).status_code == 201


# -- delete -----------------------------------------------------------------------------------------
def test_delete_removes_the_passkey_and_is_audited(
    graph: Graph, client: TestClient, db: Database, user: dict[str, Any]
) -> None:
    path = fido2(user["id"])
    lost, kept = device_bound(), synced()
    gone = provision(graph, path, lost, "Lost key")
    stays = provision(graph, path, kept, "Phone")
    answer = graph.delete(f"{path}/{gone['id'].upper()}")
    assert answer.status_code == 204
    assert answer.content == b""
    assert [p["id"] for p in graph.get(path).json()["value"]] == [stays["id"]]
    assert [p.id for p in stored(db)] == [stays["id"]]
    expect_error(graph.get(f"{path}/{gone['id']}"), errors.NOT_FOUND)
    expect_error(graph.delete(f"{path}/{gone['id']}"), errors.NOT_FOUND)
    [record] = audits(db, "Admin deleted security info")
    assert details(record)["methodId"] == gone["id"]
    assert record.initiated_by["app"]["appId"] == graph.app_ids[ALL]
    assert record.target_resources[0]["modifiedProperties"][0]["oldValue"].startswith("Lost key")
    # The deleted passkey no longer signs in; the other one does.
    signed, _ = passkey_sign_in(client, lost)
    expect_error(signed, errors.CREDENTIAL_NOT_FOUND)
    signed, _ = passkey_sign_in(client, kept)
    assert signed.status_code == 200, signed.text


# -- every method ---------------------------------------------------------------------------------
def test_methods_lists_both_passkeys_and_the_pass(graph: Graph, beta: Graph, user: dict[str, Any]) -> None:
    path = fido2(user["id"])
    first = provision(graph, path, device_bound(), "Key")
    second = provision(graph, path, synced(), "Phone")
    tap = graph.post(f"/users/{user['id']}/authentication/temporaryAccessPassMethods", {}).json()
    listed = graph.get(f"/users/{user['id']}/authentication/methods")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["@odata.context"] == f"{ORIGIN}/v1.0/$metadata#users('{user['id']}')/authentication/methods"
    by_id = {m["id"]: m for m in body["value"]}
    assert set(by_id) == {first["id"], second["id"], tap["id"]}
    assert [by_id[first["id"]]["@odata.type"], by_id[second["id"]]["@odata.type"]] == [FIDO2_TYPE, FIDO2_TYPE]
    assert (by_id[first["id"]]["passkeyType"], by_id[second["id"]]["passkeyType"]) == ("deviceBound", "synced")
    for created in (first, second):
        assert by_id[created["id"]] == {k: v for k, v in created.items() if k != "@odata.context"}
    the_pass = by_id[tap["id"]]
    assert the_pass["@odata.type"] == TAP_TYPE
    assert the_pass["temporaryAccessPass"] is None
    assert the_pass == {k: v for k, v in tap.items() if k != "@odata.context"} | {"temporaryAccessPass": None}
    assert tap["temporaryAccessPass"] not in listed.text
    # One method by id, whatever its type; read-only permission suffices.
    for method_id, odata_type in ((first["id"], FIDO2_TYPE), (tap["id"], TAP_TYPE)):
        one = graph.get(f"/users/{user['id']}/authentication/methods/{method_id}", permissions=(READ_ONLY,))
        assert one.status_code == 200, one.text
        assert one.json()["@odata.type"] == odata_type
        assert one.json()["@odata.context"].endswith("/authentication/methods/$entity")
    for missing in (str(uuid.uuid4()), "not-a-guid", "%00"):
        expect_error(graph.get(f"/users/{user['id']}/authentication/methods/{missing}"), errors.NOT_FOUND)
    # fido2Methods holds only passkeys: the pass is not one.
    expect_error(graph.get(f"{path}/{tap['id']}"), errors.NOT_FOUND)
    # beta adds lastUsedDateTime to the passkeys.
    beta_items = beta.get(f"/users/{user['id']}/authentication/methods").json()["value"]
    assert {m["id"]: "lastUsedDateTime" in m for m in beta_items} == {
        first["id"]: True, second["id"]: True, tap["id"]: False}


def test_a_user_without_methods_has_empty_lists(graph: Graph, user: dict[str, Any]) -> None:
    assert graph.get(fido2(user["id"])).json()["value"] == []
    assert graph.get(f"/users/{user['id']}/authentication/methods").json()["value"] == []


def test_select_on_fido2_methods(graph: Graph, beta: Graph, user: dict[str, Any]) -> None:
    path = fido2(user["id"])
    created = provision(graph, path, synced(), "Phone")
    listed = graph.get(f"{path}?$select=displayName,passkeyType")
    assert listed.status_code == 200, listed.text
    assert listed.json()["@odata.context"].endswith("/authentication/fido2Methods(displayName,passkeyType)")
    assert listed.json()["value"] == [{"@odata.type": FIDO2_TYPE, "displayName": "Phone", "passkeyType": "synced"}]
    one = beta.get(f"{path}/{created['id']}?$select=lastUsedDateTime").json()
    assert one["lastUsedDateTime"] is None and "displayName" not in one
    expect_error(graph.get(f"{path}?$select=lastUsedDateTime"), errors.INVALID_REQUEST)
    expect_error(graph.get(f"{path}?$select=secret"), errors.INVALID_REQUEST)
    expect_error(graph.get(f"{path}?$filter=displayName eq 'Phone'"), errors.INVALID_REQUEST)


# -- permissions ------------------------------------------------------------------------------------
def test_permissions(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    path = fido2(user["id"])
    passkey = provision(graph, path, device_bound())
    credential = SoftAuthenticator().create(options_for(graph, path)["publicKey"], ORIGIN)
    post_body = {"publicKeyCredential": as_graph_credential(credential)}
    reads = [f"{path}", f"{path}/{passkey['id']}", f"/users/{user['id']}/authentication/methods",
             f"/users/{user['id']}/authentication/methods/{passkey['id']}"]
    writes: list[tuple[str, str, Any]] = [
        ("GET", f"{path}/creationOptions", None),
        ("GET", f"{path}/creationOptions()", None),
        ("POST", path, post_body),
        ("DELETE", f"{path}/{passkey['id']}", None),
    ]
    near_misses = ("User.ReadWrite.All", "Policy.ReadWrite.AuthenticationMethod", "AuditLog.Read.All")
    for permission in (READ_ONLY, READ_WRITE, *near_misses):
        graph.token(permission)
    expired = graph.expired_token()
    before = snapshot(db)
    for target in reads:
        for permission in near_misses:
            answer = graph.get(target, permissions=(permission,))
            assert answer.status_code == 403, (target, permission, answer.text)
            assert error_of(answer)["code"] == "Authorization_RequestDenied"
        for token in ("", "garbage", expired):
            answer = graph.get(target, token=token)
            assert answer.status_code == 401, (target, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
        for permission in (READ_ONLY, READ_WRITE):
            assert graph.get(target, permissions=(permission,)).status_code == 200, (target, permission)
    for method, target, body in writes:
        for permission in (READ_ONLY, *near_misses):
            answer = graph.call(method, target, json=body, permissions=(permission,))
            assert answer.status_code == 403, (method, target, permission, answer.text)
            error = error_of(answer)
            assert error["code"] == "Authorization_RequestDenied"
            assert READ_WRITE in error["message"]
        for token in ("", "garbage", expired):
            answer = graph.call(method, target, json=body, token=token)
            assert answer.status_code == 401, (method, target, answer.text)
            assert error_of(answer)["code"] == "InvalidAuthenticationToken"
    assert snapshot(db) == before
    # The write permission alone is enough for each of them (the challenge is the app's own).
    fresh = SoftAuthenticator().create(
        options_for(graph, path, permissions=(READ_WRITE,))["publicKey"], ORIGIN
    )
    created = graph.post(path, {"publicKeyCredential": as_graph_credential(fresh)}, permissions=(READ_WRITE,))
    assert created.status_code == 201, created.text
    assert graph.delete(f"{path}/{passkey['id']}", permissions=(READ_WRITE,)).status_code == 204


def test_auth_is_checked_before_the_body(graph: Graph, user: dict[str, Any]) -> None:
    path = fido2(user["id"])
    assert graph.call("POST", path, content=b"{broken", token="").status_code == 401
    assert graph.call("POST", path, content=b"{broken", permissions=(READ_ONLY,)).status_code == 403
    assert graph.call("POST", path, content=b"{broken").status_code == 400


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        (b"{", errors.MALFORMED_JSON, None),
        (b"[]", errors.MALFORMED_JSON, None),
        (b"null", errors.MALFORMED_JSON, None),
        (b"\xff\xfe", errors.MALFORMED_JSON, None),
        ({}, errors.INVALID_REQUEST, "publicKeyCredential"),
        ({"displayName": "Key"}, errors.INVALID_REQUEST, "publicKeyCredential"),
        ({"publicKeyCredential": None}, errors.INVALID_REQUEST, "publicKeyCredential"),
        ({"publicKeyCredential": "eyJ9"}, errors.INVALID_REQUEST, "publicKeyCredential"),
        ({"publicKeyCredential": []}, errors.INVALID_REQUEST, "publicKeyCredential"),
        ({"publicKeyCredential": 7}, errors.INVALID_REQUEST, "publicKeyCredential"),
        ({"publicKeyCredential": {}}, errors.MALFORMED_CREDENTIAL, None),
        ({"publicKeyCredential": {"id": 5}}, errors.MALFORMED_CREDENTIAL, None),
        ({"publicKeyCredential": {"id": "abc", "response": "x"}}, errors.MALFORMED_CREDENTIAL, None),
        ({"publicKeyCredential": {"id": "abc", "response": {"clientDataJSON": "a!b", "attestationObject": "AA"}}},
         errors.MALFORMED_CREDENTIAL, None),
        ({"publicKeyCredential": {"id": "AAAA", "response": {"clientDataJSON": "AAAA", "attestationObject": "AAAA"}}},
         errors.MALFORMED_CREDENTIAL, None),
        ({"publicKeyCredential": {"id": "a\u0000b", "response": {}}}, errors.MALFORMED_CREDENTIAL, None),
        ({"@odata.type": "#microsoft.graph.user", "publicKeyCredential": {}}, errors.INVALID_REQUEST, "@odata.type"),
        ({"publicKeyCredential": {}, "aaGuid": SOFT_AAGUID}, errors.INVALID_REQUEST, "aaGuid"),
        ({"publicKeyCredential": {}, "displayName": 5}, errors.INVALID_REQUEST, "displayName"),
        ({"publicKeyCredential": {}, "displayName": "a\u0000b"}, errors.INVALID_REQUEST, "displayName"),
        (b'{"publicKeyCredential": {}, "displayName": "\\ud800"}', errors.INVALID_REQUEST, "displayName"),
    ],
)
def test_bad_bodies_are_refused_and_change_nothing(
    graph: Graph, db: Database, user: dict[str, Any], body: Any, code: ErrorCode, named: str | None
) -> None:
    path = fido2(user["id"])
    SoftAuthenticator().create(options_for(graph, path)["publicKey"], ORIGIN)  # an open challenge to leave alone
    if isinstance(body, bytes):
        error = refused(db, lambda: graph.call("POST", path, content=body), code)
    else:
        error = refused(db, lambda: graph.post(path, body), code)
    if named is not None:
        assert named in error["message"]
    assert len(open_challenges(db)) == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 257], ids=["empty", "blank", "long"])
def test_a_bad_display_name_with_a_good_credential_keeps_the_challenge(
    graph: Graph, db: Database, user: dict[str, Any], name: str
) -> None:
    path = fido2(user["id"])
    credential = as_graph_credential(SoftAuthenticator().create(options_for(graph, path)["publicKey"], ORIGIN))
    refused(db, lambda: graph.post(path, {"displayName": name, "publicKeyCredential": credential}),
            errors.INVALID_REQUEST)
    assert graph.post(path, {"displayName": "Good", "publicKeyCredential": credential}).status_code == 201


def test_a_tampered_credential_is_refused(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    path = fido2(user["id"])
    options = options_for(graph, path)["publicKey"]
    for tamper, code in (
        ({"uv": False}, errors.USER_VERIFICATION_REQUIRED),
        ({"rp_id": "evil.localhost"}, errors.REGISTRATION_INVALID),
        ({"client_data_type": "webauthn.get"}, errors.MALFORMED_CREDENTIAL),
        ({"challenge": b"\x02" * 32}, errors.CHALLENGE_NOT_FOUND),
    ):
        credential = SoftAuthenticator().create(options, ORIGIN, **tamper)
        refused(db, partial(graph.post, path, {"publicKeyCredential": as_graph_credential(credential)}), code)
    wrong_origin = SoftAuthenticator().create(options, EVIL)
    refused(db, lambda: graph.post(path, {"publicKeyCredential": as_graph_credential(wrong_origin)}),
            errors.ORIGIN_NOT_ALLOWED)
    mismatched = SoftAuthenticator().create(options, ORIGIN)
    refused(db, lambda: graph.post(path, {"publicKeyCredential": {**mismatched, "rawId": "AAAA"}}),
            errors.MALFORMED_CREDENTIAL)


def test_unknown_users_and_method_ids_are_404(graph: Graph, db: Database, user: dict[str, Any]) -> None:
    other = graph.new_user("other@contoso.example")
    theirs = provision(graph, fido2(other["id"]), device_bound())
    mine = provision(graph, fido2(user["id"]), device_bound())
    tap = graph.post(f"/users/{user['id']}/authentication/temporaryAccessPassMethods", {}).json()
    nobody = "00000000-0000-0000-0000-000000000001"
    for user_ref in (nobody, "ghost@contoso.example", "%00", "x" * 400):
        for method, target in (
            ("GET", fido2(user_ref)), ("GET", f"{fido2(user_ref)}/{mine['id']}"),
            ("GET", f"{fido2(user_ref)}/creationOptions"), ("DELETE", f"{fido2(user_ref)}/{mine['id']}"),
            ("GET", f"/users/{user_ref}/authentication/methods"),
        ):
            refused(db, partial(graph.call, method, target), errors.NOT_FOUND)
        refused(db, partial(graph.post, fido2(user_ref), {"publicKeyCredential": {}}), errors.NOT_FOUND)
    for method_id in (theirs["id"], tap["id"], nobody, "not-a-guid", "x" * 300, "%00", "%F0%9F%94%91"):
        for method in ("GET", "DELETE"):
            refused(db, partial(graph.call, method, f"{fido2(user['id'])}/{method_id}"), errors.NOT_FOUND)
    assert graph.call("PATCH", f"{fido2(user['id'])}/{mine['id']}", json={"displayName": "x"}).status_code == 405
    assert len(stored(db)) == 2


# -- /me: the signed-in user --------------------------------------------------------------------------
def test_me_self_service_round_trip(client: TestClient, db: Database) -> None:
    user_id = signed_in_as(client, db, "selfie@contoso.example")
    options = client.get(f"{ME}/creationOptions")
    assert options.status_code == 200, options.text
    assert options.json()["@odata.type"] == OPTIONS_TYPE
    assert options.json()["publicKey"]["user"]["name"] == "selfie@contoso.example"
    assert client.cookies.get("passgate_agent")  # the challenge is bound to this browser
    authenticator = synced()
    credential = authenticator.create(options.json()["publicKey"], ORIGIN)
    created = client.post(ME, json={"displayName": "My phone", "publicKeyCredential": as_graph_credential(credential)})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["@odata.context"] == f"{ORIGIN}/v1.0/$metadata#users('{user_id}')/authentication/fido2Methods/$entity"
    assert (body["displayName"], body["passkeyType"]) == ("My phone", "synced")
    assert body["model"] == "Google Password Manager"
    [record] = audits(db, "User registered security info")
    assert record.initiated_by["user"]["id"] == user_id
    assert details(record)["methodId"] == body["id"]

    listed = client.get(ME)
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["value"]] == [body["id"]]
    assert client.get(f"{ME}/{body['id']}").json()["displayName"] == "My phone"
    methods = client.get("/v1.0/me/authentication/methods")
    assert methods.status_code == 200
    assert [(m["@odata.type"], m["id"]) for m in methods.json()["value"]] == [(FIDO2_TYPE, body["id"])]
    assert client.get(f"/v1.0/me/authentication/methods/{body['id']}").json()["id"] == body["id"]
    assert "lastUsedDateTime" in client.get(f"/beta/me/authentication/fido2Methods/{body['id']}").json()

    # It signs in, and the user can delete it.
    client.post("/api/signout")
    signed, _ = passkey_sign_in(client, authenticator, "selfie@contoso.example")
    assert signed.status_code == 200, signed.text
    assert client.delete(f"{ME}/{body['id']}").status_code == 204
    assert stored(db) == []
    [record] = audits(db, "User deleted security info")
    assert record.initiated_by["user"]["id"] == user_id
    assert details(record)["methodId"] == body["id"]
    assert audits(db, "Admin deleted security info") == []


def test_me_beta_timeout(client: TestClient, db: Database) -> None:
    signed_in_as(client, db, "timer@contoso.example")
    options = client.get("/beta/me/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes=30)")
    assert options.status_code == 200, options.text
    [challenge] = open_challenges(db)
    assert _parse(options.json()["challengeTimeoutDateTime"]) == challenge.expires_at
    refused(db, lambda: client.get(f"{ME}/creationOptions(challengeTimeoutInMinutes=30)"), errors.INVALID_REQUEST)


def test_me_sees_and_deletes_only_its_own_passkeys(graph: Graph, client: TestClient, db: Database) -> None:
    other = graph.new_user("neighbour@contoso.example")
    theirs = provision(graph, fido2(other["id"]), device_bound())
    signed_in_as(client, db, "me@contoso.example")
    assert client.get(ME).json()["value"] == []
    for send in (
        lambda: client.get(f"{ME}/{theirs['id']}"),
        lambda: client.delete(f"{ME}/{theirs['id']}"),
        lambda: client.delete(f"{ME}/not-a-guid"),
        lambda: client.get(f"/v1.0/me/authentication/methods/{theirs['id']}"),
    ):
        refused(db, send, errors.NOT_FOUND)
    assert [p.id for p in stored(db)] == [theirs["id"]]


def test_me_without_a_session_is_401(graph: Graph, client: TestClient, db: Database) -> None:
    user = graph.new_user("nosession@contoso.example")
    passkey = provision(graph, fido2(user["id"]), device_bound())
    app_token = graph.token()
    credential = SoftAuthenticator().create(options_for(graph, fido2(user["id"]))["publicKey"], ORIGIN)
    sends = [
        lambda: client.get(ME),
        lambda: client.get(f"{ME}/{passkey['id']}"),
        lambda: client.get(f"{ME}/creationOptions"),
        lambda: client.post(ME, json={"publicKeyCredential": as_graph_credential(credential)}),
        lambda: client.delete(f"{ME}/{passkey['id']}"),
        lambda: client.get("/v1.0/me/authentication/methods"),
        lambda: client.get("/beta/me/authentication/fido2Methods"),
        # An app token is no session: /me is the signed-in user's.
        lambda: client.get(ME, headers={"Authorization": f"Bearer {app_token}"}),
    ]
    for send in sends:
        refused(db, send, errors.SESSION_REQUIRED)
    # ... nor is a session that has ended.
    signed_in_as(client, db, "ended@contoso.example")
    assert client.post("/api/signout").status_code == 200
    for send in sends:
        refused(db, send, errors.SESSION_REQUIRED)
    assert [p.id for p in stored(db)] == [passkey["id"]]


def test_me_refuses_state_changes_from_a_foreign_origin(client: TestClient, db: Database) -> None:
    signed_in_as(client, db, "victim@contoso.example")
    created = client.post(ME, json={"publicKeyCredential": as_graph_credential(
        synced().create(client.get(f"{ME}/creationOptions").json()["publicKey"], ORIGIN))})
    assert created.status_code == 201, created.text
    passkey_id = created.json()["id"]
    credential = synced().create(client.get(f"{ME}/creationOptions").json()["publicKey"], ORIGIN)
    for headers in ({"origin": EVIL}, {"origin": "null"}):
        for send in (
            partial(client.get, f"{ME}/creationOptions", headers=headers),
            partial(client.post, ME, json={"publicKeyCredential": as_graph_credential(credential)}, headers=headers),
            partial(client.delete, f"{ME}/{passkey_id}", headers=headers),
        ):
            refused(db, send, errors.FORBIDDEN_ORIGIN)
    # A cross-site navigation without an Origin header is refused too.
    no_origin = {k: v for k, v in client.headers.items() if k.lower() != "origin"}
    client.headers.clear()
    client.headers.update(no_origin)
    refused(db, lambda: client.delete(f"{ME}/{passkey_id}", headers={"sec-fetch-site": "cross-site"}),
            errors.FORBIDDEN_ORIGIN)
    assert [p.id for p in stored(db)] == [passkey_id]


def test_me_bad_bodies_are_refused(client: TestClient, db: Database) -> None:
    signed_in_as(client, db, "sloppy@contoso.example")
    client.get(f"{ME}/creationOptions")
    for content, code in (
        (b"{", errors.MALFORMED_JSON),
        (b"[]", errors.MALFORMED_JSON),
        (b'{"publicKeyCredential": "x"}', errors.INVALID_REQUEST),
        (b'{"publicKeyCredential": {"id": 1}}', errors.MALFORMED_CREDENTIAL),
        (b'{"displayName": "x"}', errors.INVALID_REQUEST),
    ):
        refused(db, partial(client.post, ME, content=content, headers={"content-type": "application/json"}), code)
