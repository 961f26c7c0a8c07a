"""Attestation enforced where users meet it, through HTTP: registration options and registration under a
profile that enforces attestation (custom trust anchors and the FIDO Metadata Service), Graph's view of the
attested passkey, and `passgate mds refresh` withdrawing a model from stored passkeys (on both databases).

The maker is a test CA (bench.softauthn.AttestationCA) whose batch certificate signs packed
attestations; the metadata service is a test root signing fresh BLOBs (tests.mdsgen).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from sqlalchemy import select

from bench.softauthn import AttestationCA, BatchCertificate, SoftAuthenticator
from passgate.context import RequestContext, utcnow
from passgate.core import errors
from passgate.core.policy import DEFAULT_PROFILE_ID
from passgate.passkeys import trust
from passgate.signin import sessions
from passgate.store.db import Database
from passgate.store.tables import DirectoryAudit, Passkey, User
from tests.integration.graph_helpers import Graph
from tests.integration.test_cli import run
from tests.integration.test_signin_support import (
    ORIGIN,
    error_of,
    minutes,
    passkey_sign_in,
    refused_attempt,
    register,
    request_options,
    sign_ins,
    signed_in_as,
)
from tests.mdsgen import MetadataService, entry

PRODUCTION_2021 = Path(__file__).resolve().parents[1] / "fixtures" / "mds3" / "mds3-blob-production-no9-2021.jwt"
FIDO2_TYPE = "#microsoft.graph.fido2AuthenticationMethodConfiguration"
FIDO2 = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2"
ENFORCED = {"id": DEFAULT_PROFILE_ID, "name": "Default passkey profile", "passkeyTypes": "deviceBound,synced",
            "attestationEnforcement": "registrationOnly"}
AAGUID = "6f1c0d1e-8a55-4c1f-9d2e-2b7a3c4d5e6f"
MODEL = "Contoso Key 5 NFC"


@pytest.fixture
def graph(client: TestClient, db: Database) -> Graph:
    return Graph(client, db)


@pytest.fixture
def env(db: Database, tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PASSGATE_")}
    return {**base, "PASSGATE_DATABASE_URL": db.url, "PASSGATE_DATA_DIR": str(tmp_path)}


@pytest.fixture(scope="module")
def service() -> MetadataService:
    return MetadataService.create()


@pytest.fixture(scope="module")
def maker() -> AttestationCA:
    return AttestationCA.create("Contoso Attestation Root")


@pytest.fixture(scope="module")
def batch(maker: AttestationCA) -> BatchCertificate:
    return maker.issue(AAGUID, common_name="Contoso Key 5 Batch 7")


def enforce_attestation(graph: Graph) -> None:
    answer = graph.patch(FIDO2, {"@odata.type": FIDO2_TYPE, "passkeyProfiles": [ENFORCED]})
    assert answer.status_code == 204, answer.text


def sha1(der: bytes) -> str:
    return hashlib.sha1(der, usedforsecurity=False).hexdigest()


def listed(maker: AttestationCA, statuses: list[str] | None = None, compromised: bytes | None = None) -> dict[str, Any]:
    return entry(AAGUID, MODEL, statuses, roots_der=[maker.der], compromised_cert=compromised)


def audits(db: Database, activity: str) -> list[DirectoryAudit]:
    with db.transaction() as session:
        return list(session.scalars(select(DirectoryAudit).where(DirectoryAudit.activity_display_name == activity)))


def details(audit: DirectoryAudit) -> dict[str, str]:
    return {d["key"]: d["value"] for d in audit.additional_details}


def stored(db: Database, passkey_id: str) -> Passkey:
    with db.transaction() as session:
        passkey = session.get(Passkey, passkey_id)
        assert passkey is not None
        session.expunge(passkey)
        return passkey


def session_for(client: TestClient, db: Database, user_id: str) -> None:
    """Give the client a browser session for an existing user (as a pass sign-in would)."""
    with db.transaction() as session:
        user = session.get(User, user_id)
        assert user is not None
        token = sessions.start(session, RequestContext(), user, "temporaryAccessPass", ["otp"],
                               utcnow() + minutes(60)).token
    client.cookies.set(sessions.COOKIE, token)


def mds_refresh(env: dict[str, str], tmp_path: Path, service: MetadataService, entries: list[dict[str, Any]],
                serial: int) -> dict[str, Any]:
    """`passgate mds refresh --file BLOB --root ROOT --json`, a real process; its JSON answer."""
    root = tmp_path / "mds-root.pem"
    root.write_bytes(service.root.public_bytes(Encoding.PEM))
    blob = tmp_path / f"blob-{serial}.jwt"
    blob.write_bytes(service.blob(entries, serial=serial))
    out: dict[str, Any] = json.loads(run(env, "mds", "refresh", "--file", str(blob), "--root", str(root),
                                         "--json").stdout)
    assert out["serialNumber"] == serial
    return out


# -- (a) a custom trust anchor ----------------------------------------------------------------


def test_enforced_attestation_with_a_custom_anchor(
    graph: Graph, client: TestClient, db: Database, maker: AttestationCA, batch: BatchCertificate
) -> None:
    with db.transaction() as session:
        trust.add_anchor(session, RequestContext(), maker.pem)
    enforce_attestation(graph)
    user_id = signed_in_as(client, db, "ann@example.com")
    options = client.post("/api/me/passkeys/options")
    assert options.status_code == 200 and options.json()["attestation"] == "direct"

    accepted, _ = register(client, SoftAuthenticator.with_batch(batch), "Contoso key")
    assert accepted.status_code == 201, accepted.text
    body = accepted.json()
    assert body["attestationFormat"] == "packed" and body["aaGuid"] == AAGUID
    assert body["attestationLevel"] == "attested"
    assert body["attestationTrustAnchor"] == "Custom: Contoso Attestation Root"
    passkey = stored(db, body["id"])
    assert passkey.attestation_level == "attested"
    assert passkey.attestation_trust_anchor == "Custom: Contoso Attestation Root"
    assert passkey.attestation_certificates == [sha1(batch.der)]
    (audit,) = audits(db, "User registered security info")
    assert details(audit)["trustAnchor"] == "Custom: Contoso Attestation Root"

    methods = graph.get(f"/users/{user_id}/authentication/fido2Methods")
    assert methods.status_code == 200, methods.text
    (method,) = methods.json()["value"]
    assert method["id"] == body["id"] and method["aaGuid"] == AAGUID
    assert method["attestationLevel"] == "attested"
    assert method["attestationCertificates"] == [sha1(batch.der)]
    assert method["attestationTrustAnchor"] == "Custom: Contoso Attestation Root"

    # No attestation at all: refused with the code that says attestation is required.
    unattested = SoftAuthenticator(aaguid=batch.aaguid)
    error = error_of(register(client, unattested)[0], errors.ATTESTATION_REQUIRED)
    assert "Default passkey profile" in error["message"]
    # A chain to a CA nobody trusts, claiming the same model: refused as untrusted.
    rogue = AttestationCA.create("Rogue Root").issue(AAGUID)
    error = error_of(register(client, SoftAuthenticator.with_batch(rogue))[0], errors.ATTESTATION_UNTRUSTED)
    assert "Default passkey profile" in error["message"]
    with db.transaction() as session:
        assert list(session.scalars(select(Passkey.id).where(Passkey.user_id == user_id))) == [body["id"]]


# -- (b) the FIDO Metadata Service, then a BLOB that withdraws the model ----------------------


def test_mds_attests_then_a_revoking_blob_makes_the_passkey_unusable(
    graph: Graph, client: TestClient, db: Database, env: dict[str, str], tmp_path: Path,
    service: MetadataService, maker: AttestationCA, batch: BatchCertificate,
) -> None:
    with db.transaction() as session:
        trust.refresh_mds(session, RequestContext(), service.blob([listed(maker)], serial=100), "test BLOB",
                          root_der=service.root_der)
    enforce_attestation(graph)
    user_id = signed_in_as(client, db, "mo@example.com")
    key = SoftAuthenticator.with_batch(batch)
    accepted, _ = register(client, key, None)
    assert accepted.status_code == 201, accepted.text
    passkey_id = accepted.json()["id"]
    assert accepted.json()["attestationTrustAnchor"] == f"FIDO MDS: {MODEL}"
    (mine,) = client.get("/api/me").json()["passkeys"]
    assert mine["model"] == MODEL and mine["displayName"] == MODEL
    assert mine["attestationLevel"] == "attested" and mine["isUsable"] is True
    assert stored(db, passkey_id).mds_status == "FIDO_CERTIFIED_L1"
    assert client.post("/api/signout").status_code == 200
    signed, _ = passkey_sign_in(client, key)
    assert signed.status_code == 200, signed.text
    assert client.post("/api/signout").status_code == 200

    # A compromised attestation key of ANOTHER batch of the model: this passkey is not concerned.
    other_batch = maker.issue(AAGUID, common_name="Contoso Key 5 Batch 8")
    out = mds_refresh(env, tmp_path, service,
                      [listed(maker, ["FIDO_CERTIFIED_L1", "ATTESTATION_KEY_COMPROMISE"], other_batch.der)], 101)
    assert out["passkeysMarkedUnusable"] == 0
    unmarked = stored(db, passkey_id)
    assert unmarked.unusable_code is None and unmarked.unusable_reason is None
    assert unmarked.mds_status == "ATTESTATION_KEY_COMPROMISE"
    assert audits(db, "Passkey marked unusable") == []
    signed, _ = passkey_sign_in(client, key)
    assert signed.status_code == 200, signed.text
    assert client.post("/api/signout").status_code == 200

    # The model is withdrawn: the stored passkey is marked, audited, and refused at sign-in.
    out = mds_refresh(env, tmp_path, service, [listed(maker, ["FIDO_CERTIFIED_L1", "REVOKED"])], 102)
    assert out["passkeysMarkedUnusable"] == 1 and out["passkeysUsableAgain"] == 0
    marked = stored(db, passkey_id)
    assert marked.unusable_code == errors.PASSKEY_MODEL_REVOKED.number == 135136
    assert "REVOKED" in (marked.unusable_reason or "")
    (mark,) = audits(db, "Passkey marked unusable")
    assert mark.target_resources[0]["id"] == user_id
    assert details(mark)["methodId"] == passkey_id and details(mark)["errorCode"] == "135136"

    credential = key.get(request_options(client), ORIGIN)
    logged = len(sign_ins(db))
    entry_ = refused_attempt(db, lambda: client.post("/api/signin/passkey", json={"credential": credential}),
                             errors.PASSKEY_MODEL_REVOKED, "Passkey (device-bound)")
    assert entry_ is not None and entry_.user_id == user_id and len(sign_ins(db)) == logged + 1

    session_for(client, db, user_id)
    (mine,) = client.get("/api/me").json()["passkeys"]
    assert mine["isUsable"] is False and mine["unusableCode"] == 135136
    assert "REVOKED" in mine["unusableReason"]

    # The same refresh again changes nothing more.
    again = mds_refresh(env, tmp_path, service, [listed(maker, ["FIDO_CERTIFIED_L1", "REVOKED"])], 102)
    assert again["passkeysMarkedUnusable"] == 0
    assert len(audits(db, "Passkey marked unusable")) == 1


def test_a_compromise_report_naming_the_passkeys_own_batch_marks_it(
    graph: Graph, client: TestClient, db: Database, env: dict[str, str], tmp_path: Path,
    service: MetadataService, maker: AttestationCA, batch: BatchCertificate,
) -> None:
    mds_refresh(env, tmp_path, service, [listed(maker)], 100)
    enforce_attestation(graph)
    signed_in_as(client, db, "cy@example.com")
    accepted, _ = register(client, SoftAuthenticator.with_batch(batch))
    assert accepted.status_code == 201 and accepted.json()["attestationLevel"] == "attested", accepted.text
    out = mds_refresh(env, tmp_path, service,
                      [listed(maker, ["FIDO_CERTIFIED_L1", "ATTESTATION_KEY_COMPROMISE"], batch.der)], 101)
    assert out["passkeysMarkedUnusable"] == 1
    marked = stored(db, accepted.json()["id"])
    assert marked.unusable_code == errors.PASSKEY_MODEL_REVOKED.number
    assert "ATTESTATION_KEY_COMPROMISE" in (marked.unusable_reason or "")


# -- (c) a stale BLOB is refused and the one in force stays -----------------------------------


def test_the_stale_2021_production_blob_is_refused_and_the_previous_stays(
    graph: Graph, client: TestClient, db: Database, env: dict[str, str], tmp_path: Path,
    service: MetadataService, maker: AttestationCA, batch: BatchCertificate,
) -> None:
    mds_refresh(env, tmp_path, service, [listed(maker)], 100)
    stale = run(env, "mds", "refresh", "--file", str(PRODUCTION_2021), "--json", check=False)
    assert stale.returncode == 1, stale.stdout
    assert "the BLOB was refused" in stale.stderr and "stale" in stale.stderr
    assert "nextUpdate was 2021-12-01" in stale.stderr
    assert "the BLOB in force stays no. 100" in stale.stderr
    assert stale.stdout.strip() == ""
    with db.transaction() as session:
        row = trust.current_blob(session)
        assert row is not None and row.serial == 100
    assert len(audits(db, "Update FIDO metadata")) == 1

    # Registration is still judged by the BLOB in force.
    enforce_attestation(graph)
    signed_in_as(client, db, "sy@example.com")
    accepted, _ = register(client, SoftAuthenticator.with_batch(batch))
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["attestationTrustAnchor"] == f"FIDO MDS: {MODEL}"
