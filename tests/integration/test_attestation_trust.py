"""Attestation trust over the database: the FIDO MDS3 BLOB in force, custom trust anchors, and what a
registration's attestation proves (passkeys.trust), on both databases.

The maker is a test CA (bench.softauthn.AttestationCA) whose batch certificate signs packed
attestations; the metadata service is a test root signing fresh BLOBs (tests.mdsgen).
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bench.softauthn import AttestationCA, BatchCertificate, SoftAuthenticator
from passgate.config import Settings
from passgate.context import RequestContext
from passgate.core import errors
from passgate.core.errors import ErrorCode, PassgateError
from passgate.passkeys import ceremonies, mds, trust
from passgate.store.db import Database
from passgate.store.tables import DirectoryAudit, MdsBlob, TrustAnchor
from tests.conftest import ORIGIN
from tests.mdsgen import MetadataService, entry

PRODUCTION_2021 = Path(__file__).resolve().parents[1] / "fixtures" / "mds3" / "mds3-blob-production-no9-2021.jwt"
AAGUID = "6f1c0d1e-8a55-4c1f-9d2e-2b7a3c4d5e6f"
MODEL = "Contoso Key 5 NFC"


@pytest.fixture(scope="module")
def service() -> MetadataService:
    return MetadataService.create()


@pytest.fixture(scope="module")
def maker() -> AttestationCA:
    return AttestationCA.create("Contoso Attestation Root")


@pytest.fixture(scope="module")
def batch(maker: AttestationCA) -> BatchCertificate:
    return maker.issue(AAGUID, common_name="Contoso Key 5 Batch 7")


def listed(maker: AttestationCA, statuses: list[str] | None = None, compromised: bytes | None = None,
           aaguid: str = AAGUID, description: str = MODEL) -> dict[str, Any]:
    return entry(aaguid, description, statuses, roots_der=[maker.der], compromised_cert=compromised)


def load(db: Database, service: MetadataService, entries: list[dict[str, Any]], serial: int = 100) -> int:
    with db.transaction(write=True) as session:
        row = trust.refresh_mds(session, RequestContext(), service.blob(entries, serial=serial), "test BLOB",
                                service.root_der)
        return row.serial


def register(
    db: Database, settings: Settings, authenticator: SoftAuthenticator, require_attested: bool = False,
    **create: Any,
) -> tuple[ceremonies.NewPasskey, trust.AttestationOutcome]:
    challenge = os.urandom(32)
    options = ceremonies.registration_options(
        settings, challenge, b"handle-of-ann", "ann@example.com", "Ann", [], attestation="direct"
    )
    attestation = ceremonies.parse_attestation(settings, authenticator.create(options, ORIGIN, **create))
    with db.transaction() as session:
        return trust.verify_registration(
            session, settings, attestation, challenge, datetime.now(UTC), require_attested
        )


def refused(db: Database, settings: Settings, authenticator: SoftAuthenticator, code: ErrorCode,
            require_attested: bool = False, **create: Any) -> PassgateError:
    with pytest.raises(PassgateError) as caught:
        register(db, settings, authenticator, require_attested, **create)
    assert caught.value.code is code, caught.value
    return caught.value


def audits(db: Database, activity: str) -> list[DirectoryAudit]:
    with db.transaction() as session:
        return list(session.scalars(
            select(DirectoryAudit).where(DirectoryAudit.activity_display_name == activity)
            .order_by(DirectoryAudit.activity_at)
        ))


def in_force(db: Database) -> tuple[int | None, int]:
    with db.transaction() as session:
        row = trust.current_blob(session)
        payload = trust.current_payload(session)
        return (row.serial if row else None), (len(payload.entries) if payload else 0)


def sha1(der: bytes) -> str:
    return hashlib.sha1(der).hexdigest()


# -- attested through the metadata service ----------------------------------------------------


def test_fresh_blob_attests_a_packed_registration(
    db: Database, settings: Settings, service: MetadataService, maker: AttestationCA, batch: BatchCertificate
) -> None:
    assert in_force(db) == (None, 0)
    assert load(db, service, [listed(maker), entry(str(uuid.uuid4()), "Another key")]) == 100
    assert in_force(db) == (100, 2)
    (audit,) = audits(db, "Update FIDO metadata")
    assert audit.category == "ApplicationManagement"
    assert audit.target_resources[0]["modifiedProperties"][0] == {
        "displayName": "serialNumber", "oldValue": None, "newValue": 100}

    new, outcome = register(db, settings, SoftAuthenticator.with_batch(batch), require_attested=True)
    assert new.aaguid == AAGUID and new.attestation_format == "packed"
    assert outcome.attested and outcome.level == "attested"
    assert outcome.trust_anchor == f"FIDO MDS: {MODEL}"
    assert outcome.certificates == [sha1(batch.der)]
    assert outcome.mds_status == "FIDO_CERTIFIED_L1" and outcome.model == MODEL
    with db.transaction() as session:
        assert trust.model_name(session, AAGUID) == MODEL
        assert trust.model_name(session, "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4") == "Google Password Manager"
        assert trust.model_name(session, str(uuid.uuid4())) is None


def test_self_attestation_and_none_prove_no_model(
    db: Database, settings: Settings, service: MetadataService, maker: AttestationCA
) -> None:
    load(db, service, [listed(maker)])
    aaguid = uuid.UUID(AAGUID).bytes
    for fmt in ("packed", "none"):
        authenticator = SoftAuthenticator(aaguid=aaguid, attestation=fmt)  # type: ignore[arg-type]
        new, outcome = register(db, settings, authenticator)
        assert new.attestation_format == fmt
        assert not outcome.attested and outcome.trust_anchor is None and outcome.certificates == []
        assert outcome.model == MODEL and outcome.mds_status == "FIDO_CERTIFIED_L1"  # claimed, for display
        error = refused(db, settings, authenticator, errors.ATTESTATION_REQUIRED, require_attested=True)
        assert "self" in error.message if fmt == "packed" else "no attestation" in error.message


# -- status reports ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name_the_batch"),
    [("REVOKED", False), ("ATTESTATION_KEY_COMPROMISE", True), ("ATTESTATION_KEY_COMPROMISE", False),
     ("USER_VERIFICATION_BYPASS", False), ("USER_KEY_REMOTE_COMPROMISE", False)],
)
def test_withdrawn_or_compromised_models_are_refused(
    db: Database, settings: Settings, service: MetadataService, maker: AttestationCA, batch: BatchCertificate,
    status: str, name_the_batch: bool,
) -> None:
    load(db, service, [listed(maker, ["FIDO_CERTIFIED_L1", status], batch.der if name_the_batch else None)])
    authenticator = SoftAuthenticator.with_batch(batch)
    for required in (True, False):
        error = refused(db, settings, authenticator, errors.PASSKEY_MODEL_REVOKED, require_attested=required)
        assert status in error.message and MODEL in error.message
    # A withdrawn model is refused even when it only claims to be that model (asked for no attestation);
    # a report naming one batch certificate can only match a passkey that shows it.
    unproven = SoftAuthenticator(aaguid=batch.aaguid)
    if name_the_batch:
        _, outcome = register(db, settings, unproven)
        assert not outcome.attested and outcome.mds_status == status
    else:
        refused(db, settings, unproven, errors.PASSKEY_MODEL_REVOKED)


def test_a_compromised_batch_certificate_refuses_only_that_batch(
    db: Database, settings: Settings, service: MetadataService, maker: AttestationCA, batch: BatchCertificate
) -> None:
    other_batch = maker.issue(AAGUID, common_name="Contoso Key 5 Batch 8")
    load(db, service, [listed(maker, ["FIDO_CERTIFIED_L1", "ATTESTATION_KEY_COMPROMISE"], other_batch.der)])
    _, outcome = register(db, settings, SoftAuthenticator.with_batch(batch), require_attested=True)
    assert outcome.attested and outcome.mds_status == "ATTESTATION_KEY_COMPROMISE"
    refused(db, settings, SoftAuthenticator.with_batch(other_batch), errors.PASSKEY_MODEL_REVOKED)


# -- untrusted chains and custom anchors ------------------------------------------------------


def test_a_chain_to_an_unlisted_ca_is_not_attested(
    db: Database, settings: Settings, service: MetadataService, maker: AttestationCA
) -> None:
    load(db, service, [listed(maker)])
    rogue = AttestationCA.create("Rogue Root").issue(AAGUID)  # claims the listed model, chains elsewhere
    unlisted = AttestationCA.create("Fabrikam Root").issue(str(uuid.uuid4()))  # a model the MDS does not list
    for batch in (rogue, unlisted):
        authenticator = SoftAuthenticator.with_batch(batch)
        new, outcome = register(db, settings, authenticator)
        assert new.attestation_format == "packed"
        assert not outcome.attested and outcome.trust_anchor is None
        assert outcome.certificates == [sha1(batch.der)]
        error = refused(db, settings, authenticator, errors.ATTESTATION_UNTRUSTED, require_attested=True)
        assert "trusted maker" in error.message
    assert "Rogue Root" in refused(db, settings, SoftAuthenticator.with_batch(rogue), errors.ATTESTATION_UNTRUSTED,
                                   require_attested=True).message


def test_a_forged_attestation_is_refused_as_invalid_not_merely_unattested(
    db: Database, settings: Settings, service: MetadataService, maker: AttestationCA, batch: BatchCertificate
) -> None:
    load(db, service, [listed(maker)])
    # A batch certificate presented with another key's signature: the statement itself does not verify.
    impostor = SoftAuthenticator(attestation="packed", attestation_key=maker.issue(AAGUID).key,
                                 attestation_certificates=batch.x5c, aaguid=batch.aaguid)
    refused(db, settings, impostor, errors.REGISTRATION_INVALID)
    refused(db, settings, impostor, errors.REGISTRATION_INVALID, require_attested=True)


@pytest.mark.parametrize(
    ("change", "problem"),
    [({"unit": "Security Keys"}, "OU"), ({"country": None}, "no C"),
     ({"aaguid_extension": uuid.uuid4().bytes}, "another AAGUID"), ({"ca": True}, "CA certificate")],
)
def test_a_batch_certificate_that_breaks_the_packed_rules_is_not_trusted(
    db: Database, settings: Settings, service: MetadataService, maker: AttestationCA, change: dict[str, Any],
    problem: str,
) -> None:
    load(db, service, [listed(maker)])
    authenticator = SoftAuthenticator.with_batch(maker.issue(AAGUID, **change))
    _, outcome = register(db, settings, authenticator)
    assert not outcome.attested
    error = refused(db, settings, authenticator, errors.ATTESTATION_UNTRUSTED, require_attested=True)
    assert problem in error.message


def test_custom_anchor_attests_until_removed(db: Database, settings: Settings) -> None:
    in_house = AttestationCA.create("Northwind Token Root")
    batch = in_house.issue(str(uuid.uuid4()))
    authenticator = SoftAuthenticator.with_batch(batch)
    refused(db, settings, authenticator, errors.ATTESTATION_UNTRUSTED, require_attested=True)

    with db.transaction(write=True) as session:
        anchor = trust.add_anchor(session, RequestContext(), in_house.pem)
        anchor_id, print_ = anchor.id, anchor.thumbprint
    assert print_ == hashlib.sha256(in_house.der).hexdigest()
    _, outcome = register(db, settings, authenticator, require_attested=True)
    assert outcome.attested and outcome.trust_anchor == "Custom: Northwind Token Root"
    assert outcome.certificates == [sha1(batch.der)] and outcome.mds_status is None and outcome.model is None
    (added,) = audits(db, "Add attestation trust anchor")
    assert added.target_resources[0]["id"] == anchor_id

    with db.transaction(write=True) as session:
        assert [a.id for a in trust.list_anchors(session)] == [anchor_id]
        with pytest.raises(PassgateError) as duplicate:
            trust.add_anchor(session, RequestContext(), in_house.der)  # the same certificate, as DER
        assert duplicate.value.code is errors.CONFLICT and anchor_id in duplicate.value.message
    with db.transaction(write=True) as session:
        removed = trust.remove_anchor(session, RequestContext(), print_.upper())
        assert removed.id == anchor_id
    assert len(audits(db, "Delete attestation trust anchor")) == 1
    _, after = register(db, settings, authenticator)
    assert not after.attested
    refused(db, settings, authenticator, errors.ATTESTATION_UNTRUSTED, require_attested=True)


def test_custom_anchor_is_named_by_the_root_the_chain_ends_at(
    db: Database, settings: Settings, service: MetadataService, maker: AttestationCA, batch: BatchCertificate
) -> None:
    load(db, service, [listed(maker, description="Contoso Key 5 NFC")])
    first, second = AttestationCA.create("Unrelated Root"), AttestationCA.create("Second Root")
    with db.transaction(write=True) as session:
        trust.add_anchor(session, RequestContext(), first.pem)
        trust.add_anchor(session, RequestContext(), second.pem, display_name="Tailspin tokens")
    _, listed_model = register(db, settings, SoftAuthenticator.with_batch(batch))
    assert listed_model.trust_anchor == f"FIDO MDS: {MODEL}"
    _, custom = register(db, settings, SoftAuthenticator.with_batch(second.issue(str(uuid.uuid4()))))
    assert custom.trust_anchor == "Custom: Tailspin tokens"


def test_anchors_that_cannot_work_are_refused(db: Database, batch: BatchCertificate) -> None:
    expired = AttestationCA.create("Old Root", days=10, not_before=datetime.now(UTC) - timedelta(days=30))
    cases = [
        (b"not a certificate", errors.INVALID_REQUEST, "not an X.509 certificate"),
        (batch.certificate.public_bytes(_pem()), errors.INVALID_REQUEST, "not by itself"),
        (expired.pem, errors.INVALID_REQUEST, "expired"),
        (AttestationCA.create().pem + AttestationCA.create().pem, errors.INVALID_REQUEST, "one certificate"),
    ]
    for data, code, text in cases:
        with db.transaction(write=True) as session, pytest.raises(PassgateError) as caught:
            trust.add_anchor(session, RequestContext(), data)
        assert caught.value.code is code and text in caught.value.message
    with db.transaction(write=True) as session, pytest.raises(PassgateError) as missing:
        trust.remove_anchor(session, RequestContext(), str(uuid.uuid4()))
    assert missing.value.code is errors.NOT_FOUND
    with db.transaction() as session:
        assert session.scalars(select(TrustAnchor)).all() == []
    assert audits(db, "Add attestation trust anchor") == []


def _pem() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.PEM


# -- refusing BLOBs ---------------------------------------------------------------------------


def test_refused_blobs_leave_the_one_in_force(
    db: Database, settings: Settings, service: MetadataService, maker: AttestationCA, batch: BatchCertificate
) -> None:
    load(db, service, [listed(maker)], serial=100)

    def refresh(raw: bytes, root: bytes | None, match: str) -> None:
        with db.transaction(write=True) as session, pytest.raises(mds.BlobRefused, match=match):
            trust.refresh_mds(session, RequestContext(), raw, "refused", root)

    # The real 2021 production BLOB: signature and chain verify to GlobalSign Root R3, but it is stale.
    refresh(PRODUCTION_2021.read_bytes(), None, "stale")
    head, payload, signature = service.blob([], serial=101).split(b".")
    claims = base64.urlsafe_b64decode(payload + b"==").replace(b'"no": 101', b'"no": 999')
    tampered = b".".join([head, base64.urlsafe_b64encode(claims).rstrip(b"="), signature])
    refresh(tampered, service.root_der, "does not verify")
    refresh(service.blob([], serial=99), service.root_der, "older than the one in force")
    refresh(MetadataService.create().blob([], serial=102), service.root_der, "does not verify")
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    refresh(service.blob([], serial=103, next_update=yesterday), service.root_der, "stale")
    refresh(b"garbage", service.root_der, "not an MDS3 BLOB")

    assert in_force(db) == (100, 1)
    assert len(audits(db, "Update FIDO metadata")) == 1
    _, outcome = register(db, settings, SoftAuthenticator.with_batch(batch), require_attested=True)
    assert outcome.trust_anchor == f"FIDO MDS: {MODEL}"


def test_a_newer_blob_takes_over_and_only_a_few_are_kept(
    db: Database, settings: Settings, service: MetadataService, maker: AttestationCA, batch: BatchCertificate
) -> None:
    load(db, service, [listed(maker)], serial=100)
    _, before = register(db, settings, SoftAuthenticator.with_batch(batch))
    assert before.attested
    load(db, service, [listed(maker, ["FIDO_CERTIFIED_L1", "REVOKED"])], serial=101)
    assert in_force(db) == (101, 1)
    refused(db, settings, SoftAuthenticator.with_batch(batch), errors.PASSKEY_MODEL_REVOKED)
    load(db, service, [], serial=101)  # the same serial again replaces it (a re-download)
    assert in_force(db) == (101, 0)
    _, unlisted = register(db, settings, SoftAuthenticator.with_batch(batch))
    assert not unlisted.attested and unlisted.model is None
    for serial in (102, 103, 104):
        load(db, service, [listed(maker)], serial=serial)
    with db.transaction() as session:
        assert sorted(session.scalars(select(MdsBlob.serial))) == [102, 103, 104]
    assert in_force(db) == (104, 1)
    audit = audits(db, "Update FIDO metadata")[-1]
    assert audit.target_resources[0]["modifiedProperties"][0] == {
        "displayName": "serialNumber", "oldValue": 103, "newValue": 104}
