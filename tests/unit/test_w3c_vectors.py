"""The W3C WebAuthn Level 3 test vectors (§16) through Passgate's own verification layer.

Each vector goes through what registration and sign-in use: ``passkeys.ceremonies`` parses and
verifies, ``passkeys.trust`` decides what the attestation proves. The vectors use their own RP ID and
origin (example.org), so the settings here are built for them. The spec presents all 15 as valid;
Passgate's policy (user verification required, no cross-origin frames, ES256/EdDSA/RS256 only) and
the library's limits refuse some: every vector is listed below with what happens and why.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fido2.mds3 import MetadataBlobPayload
from webauthn import verify_registration_response
from webauthn.helpers import parse_attestation_object
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.structs import AttestationFormat

from bench.softauthn import AttestationCA
from passgate.config import load_settings
from passgate.core import errors
from passgate.core.errors import ErrorCode, PassgateError
from passgate.passkeys import ceremonies, mds, trust
from tests.mdsgen import MetadataService, entry

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "w3c" / "w3c-webauthn-l3-test-vectors.json"
DATA: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
VECTORS: dict[str, dict[str, Any]] = {
    v["id"].removeprefix("sctn-test-vectors-"): v for v in DATA["vectors"]
}
SETTINGS = load_settings(rp_id=DATA["rp_id"], origins=[DATA["origin"]], database_url="sqlite://")
CA_DER = bytes.fromhex(DATA["attestation_root"]["attestation_ca_cert"])
W3C_CA = trust.Anchor("Custom: WebAuthn test vectors", CA_DER)
NOW = datetime.now(UTC)

UV = errors.USER_VERIFICATION_REQUIRED
CROSS = errors.CROSS_ORIGIN_NOT_ALLOWED
BROKEN = errors.REGISTRATION_INVALID
ATTESTED, NOT_ATTESTED = "attested", "notAttested"


@dataclass(frozen=True)
class Expect:
    registration: str | ErrorCode  # the attestation level Passgate records, or the code it refuses with
    authentication: ErrorCode | None  # None: the assertion verifies
    why: str


EXPECTED = {
    "none-es256": Expect(UV, UV, "the authenticator did not verify the user (UV clear) in either ceremony"),
    "packed-self-es256": Expect(NOT_ATTESTED, UV, "self attestation proves no model; the assertion has UV clear"),
    "none-es256-crossOrigin": Expect(
        CROSS, CROSS, "crossOrigin=true: Passgate is never framed (py_webauthn alone would accept it)"),
    "none-es256-topOrigin": Expect(
        CROSS, CROSS, "crossOrigin=true with topOrigin: refused like any framed ceremony"),
    "none-es256-long-credential-id": Expect(UV, None, "the 1023-byte credential id is fine; registration UV clear"),
    "packed-es256": Expect(ATTESTED, None, "valid; x5c chains to the vectors' attestation CA"),
    "packed-es384": Expect(UV, errors.ASSERTION_INVALID, "UV clear; py_webauthn 3.0.1 has no ES384 (-35)"),
    "packed-es512": Expect(BROKEN, UV, "ES512 (-36) is not one of Passgate's algorithms (ES256, EdDSA, RS256)"),
    "packed-rs256": Expect(ATTESTED, UV, "valid registration; the assertion has UV clear"),
    "packed-eddsa": Expect(UV, UV, "UV clear in both ceremonies"),
    "packed-ed448": Expect(UV, errors.ASSERTION_INVALID, "UV clear; py_webauthn 3.0.1 has no Ed448 (-53)"),
    "tpm-es256": Expect(BROKEN, None, "py_webauthn does not know TPM manufacturer id 0 (LIBRARY_CANNOT_VERIFY)"),
    "android-key-es256": Expect(
        BROKEN, UV, "py_webauthn wants a Google root as the last x5c element (LIBRARY_CANNOT_VERIFY)"),
    "apple-es256": Expect(UV, UV, "UV clear in both ceremonies"),
    "fido-u2f-es256": Expect(UV, UV, "U2F cannot verify the user; py_webauthn also wants a zero AAGUID"),
}

# What py_webauthn 3.0.1 itself refuses even with the vectors' CA as root, no UV requirement and every
# algorithm it knows (libraries.md A.3): the reason it gives.
LIBRARY_CANNOT_VERIFY = {
    "packed-es384": 'Unsupported credential public key alg "-35"',
    "packed-ed448": 'Unsupported credential public key alg "-53"',
    "tpm-es256": 'Unrecognized TPM Manufacturer "id:00000000"',
    "android-key-es256": "x5c was empty",
    "fido-u2f-es256": "was not expected 00000000-0000-0000-0000-000000000000",
}


def b64url(hex_text: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(hex_text)).rstrip(b"=").decode()


def registration_json(vector: dict[str, Any]) -> dict[str, Any]:
    reg = vector["registration"]
    return {
        "id": b64url(reg["credential_id"]), "rawId": b64url(reg["credential_id"]), "type": "public-key",
        "response": {"clientDataJSON": b64url(reg["clientDataJSON"]),
                     "attestationObject": b64url(reg["attestationObject"])},
        "clientExtensionResults": {},
    }


def authentication_json(vector: dict[str, Any]) -> dict[str, Any]:
    auth, reg = vector["authentication"], vector["registration"]
    return {
        "id": b64url(reg["credential_id"]), "rawId": b64url(reg["credential_id"]), "type": "public-key",
        "response": {"clientDataJSON": b64url(auth["clientDataJSON"]),
                     "authenticatorData": b64url(auth["authenticatorData"]),
                     "signature": b64url(auth["signature"])},
        "clientExtensionResults": {},
    }


def register(
    name: str,
    anchors: list[trust.Anchor] | None = None,
    payload: MetadataBlobPayload | None = None,
    require_attested: bool = False,
) -> tuple[ceremonies.NewPasskey, trust.AttestationOutcome]:
    vector = VECTORS[name]
    attestation = ceremonies.parse_attestation(SETTINGS, registration_json(vector))
    return trust.evaluate(
        SETTINGS, attestation, bytes.fromhex(vector["registration"]["challenge"]), now=NOW,
        require_attested=require_attested, payload=payload, anchors=[W3C_CA] if anchors is None else anchors,
    )


def credential_public_key(vector: dict[str, Any]) -> bytes:
    data = parse_attestation_object(bytes.fromhex(vector["registration"]["attestationObject"])).auth_data
    assert data.attested_credential_data is not None
    return data.attested_credential_data.credential_public_key


def test_every_vector_is_accounted_for() -> None:
    assert set(EXPECTED) == set(VECTORS)
    assert len(VECTORS) == 15
    assert set(LIBRARY_CANNOT_VERIFY) <= set(VECTORS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registration(name: str) -> None:
    expected = EXPECTED[name].registration
    if isinstance(expected, ErrorCode):
        with pytest.raises(PassgateError) as refused:
            register(name)
        assert refused.value.code is expected, f"{name}: {refused.value} ({EXPECTED[name].why})"
        return
    new, outcome = register(name)
    vector = VECTORS[name]
    assert new.credential_id == bytes.fromhex(vector["registration"]["credential_id"])
    assert new.aaguid == str(uuid.UUID(vector["registration"]["aaguid"]))
    assert outcome.level == expected
    statement = parse_attestation_object(bytes.fromhex(vector["registration"]["attestationObject"])).att_stmt
    assert outcome.certificates == [hashlib.sha1(c).hexdigest() for c in statement.x5c or []]
    assert outcome.trust_anchor == (W3C_CA.label if expected == ATTESTED else None)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_authentication(name: str) -> None:
    vector = VECTORS[name]
    expected = EXPECTED[name].authentication
    challenge = bytes.fromhex(vector["authentication"]["challenge"])

    def sign_in() -> int:
        assertion = ceremonies.parse_assertion(SETTINGS, authentication_json(vector))
        return ceremonies.verify_assertion(SETTINGS, assertion, challenge, credential_public_key(vector), 0)

    if expected is None:
        counter = int.from_bytes(bytes.fromhex(vector["authentication"]["authenticatorData"])[33:37], "big")
        assert sign_in() == counter
        return
    with pytest.raises(PassgateError) as refused:
        sign_in()
    assert refused.value.code is expected, f"{name}: {refused.value} ({EXPECTED[name].why})"


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_what_the_library_itself_cannot_verify(name: str) -> None:
    """The library's own limits, apart from Passgate's policy: the vectors' CA as root for every format,
    user verification not required, every algorithm py_webauthn knows. Fails when an upgrade changes them."""
    vector = VECTORS[name]
    ca_pem = mds.pem(CA_DER)

    def verify() -> Any:
        return verify_registration_response(
            credential=registration_json(vector), expected_challenge=bytes.fromhex(vector["registration"]["challenge"]),
            expected_rp_id=DATA["rp_id"], expected_origin=DATA["origin"], require_user_verification=False,
            supported_pub_key_algs=list(COSEAlgorithmIdentifier),
            pem_root_certs_bytes_by_fmt={f: [ca_pem] for f in AttestationFormat},
        )

    if name in LIBRARY_CANNOT_VERIFY:
        with pytest.raises(Exception, match=re.escape(LIBRARY_CANNOT_VERIFY[name])):
            verify()
    else:
        assert verify().credential_id == bytes.fromhex(vector["registration"]["credential_id"])


@pytest.mark.parametrize("name", ["packed-es256", "packed-rs256"])
def test_packed_x5c_is_attested_only_by_the_vectors_ca(name: str) -> None:
    other = AttestationCA.create("Some other maker")
    _, unanchored = register(name, anchors=[])
    assert not unanchored.attested and unanchored.trust_anchor is None and len(unanchored.certificates) == 1
    _, wrong = register(name, anchors=[trust.Anchor("Custom: other", other.der)])
    assert not wrong.attested
    for anchors in ([], [trust.Anchor("Custom: other", other.der)]):
        with pytest.raises(PassgateError) as refused:
            register(name, anchors=anchors, require_attested=True)
        assert refused.value.code is errors.ATTESTATION_UNTRUSTED
    _, attested = register(name, anchors=[trust.Anchor("Custom: other", other.der), W3C_CA], require_attested=True)
    assert attested.attested and attested.trust_anchor == W3C_CA.label

    # The same CA given to py_webauthn through ceremonies.verify_attestation, and a wrong one.
    vector = VECTORS[name]
    attestation = ceremonies.parse_attestation(SETTINGS, registration_json(vector))
    challenge = bytes.fromhex(vector["registration"]["challenge"])
    assert ceremonies.verify_attestation(SETTINGS, attestation, challenge, roots=[mds.pem(CA_DER)]).public_key
    with pytest.raises(PassgateError) as untrusted:
        ceremonies.verify_attestation(SETTINGS, attestation, challenge, roots=[other.pem])
    assert untrusted.value.code is errors.REGISTRATION_INVALID


def _payload(aaguid: str, statuses: list[str] | None = None) -> MetadataBlobPayload:
    service = MetadataService.create()
    blob = service.blob([entry(aaguid, "W3C test vector model", statuses, roots_der=[CA_DER])])
    return mds.verify(blob, service.root_der, None, NOW).payload


def test_packed_x5c_attested_by_the_metadata_service_and_refused_when_revoked() -> None:
    aaguid = str(uuid.UUID(VECTORS["packed-es256"]["registration"]["aaguid"]))
    payload = _payload(aaguid)
    _, outcome = register("packed-es256", anchors=[], payload=payload, require_attested=True)
    assert outcome.attested and outcome.trust_anchor == "FIDO MDS: W3C test vector model"
    assert outcome.model == "W3C test vector model" and outcome.mds_status == "FIDO_CERTIFIED_L1"
    revoked = _payload(aaguid, ["FIDO_CERTIFIED_L1", "REVOKED"])
    with pytest.raises(PassgateError) as refused:
        register("packed-es256", anchors=[], payload=revoked)
    assert refused.value.code is errors.PASSKEY_MODEL_REVOKED and "REVOKED" in refused.value.message


def test_self_attestation_is_not_attestation() -> None:
    with pytest.raises(PassgateError) as refused:
        register("packed-self-es256", require_attested=True)
    assert refused.value.code is errors.ATTESTATION_REQUIRED
