"""The software authenticator (bench/softauthn.py) against py_webauthn directly: no server, no database."""

from __future__ import annotations

import json
import re
from typing import Any

import cbor2
import pytest
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import options_to_json_dict
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from bench.softauthn import EDDSA, ES256, RS256, SoftAuthenticator, SoftAuthnError, b64url, b64url_decode

ORIGIN = "http://localhost:8443"
B64URL = re.compile(r"[A-Za-z0-9_-]*")


def creation(exclude: list[bytes] | None = None) -> tuple[dict[str, Any], bytes]:
    options = generate_registration_options(
        rp_id="localhost", rp_name="Passgate", user_name="ann@example.com", user_id=b"user-handle-of-ann",
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.REQUIRED
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=i) for i in exclude or []],
    )
    as_json = options_to_json_dict(options)
    as_json["extensions"] = {"credProps": True}
    return as_json, options.challenge


def request(allow: list[bytes] | None = None) -> tuple[dict[str, Any], bytes]:
    options = generate_authentication_options(
        rp_id="localhost", user_verification=UserVerificationRequirement.REQUIRED,
        allow_credentials=[PublicKeyCredentialDescriptor(id=i) for i in allow or []],
    )
    return options_to_json_dict(options), options.challenge


def registered(authenticator: SoftAuthenticator, **create: Any) -> tuple[dict[str, Any], Any]:
    options, challenge = creation()
    credential = authenticator.create(options, ORIGIN, **create)
    verified = verify_registration_response(
        credential=credential, expected_challenge=challenge, expected_rp_id="localhost", expected_origin=ORIGIN,
        require_user_verification=True,
    )
    return credential, verified


def authenticate(authenticator: SoftAuthenticator, public_key: bytes, count: int, **get: Any) -> Any:
    options, challenge = request()
    credential = authenticator.get(options, ORIGIN, **get)
    return verify_authentication_response(
        credential=credential, expected_challenge=challenge, expected_rp_id="localhost", expected_origin=ORIGIN,
        credential_public_key=public_key, credential_current_sign_count=count, require_user_verification=True,
    )


@pytest.mark.parametrize("alg", [ES256, EDDSA, RS256])
def test_each_algorithm_registers_and_signs(alg: int) -> None:
    authenticator = SoftAuthenticator()
    credential, verified = registered(authenticator, alg=alg)
    assert credential["response"]["publicKeyAlgorithm"] == alg
    assert verified.fmt == "none" and verified.sign_count == 1 and verified.user_verified
    assert verified.aaguid == "5067a5f3-6fbd-4a5b-9c8f-1e2d3c4b5a69"
    result = authenticate(authenticator, verified.credential_public_key, 1)
    assert result.new_sign_count == 2 and result.user_verified


def test_the_json_is_what_a_browser_gives() -> None:
    authenticator = SoftAuthenticator()
    options, _ = creation()
    credential = authenticator.create(options, ORIGIN)
    assert set(credential) == {"id", "rawId", "type", "response", "authenticatorAttachment", "clientExtensionResults"}
    assert set(credential["response"]) == {
        "clientDataJSON", "attestationObject", "transports", "authenticatorData", "publicKey", "publicKeyAlgorithm"}
    assert credential["type"] == "public-key" and credential["id"] == credential["rawId"]
    assert credential["clientExtensionResults"] == {"credProps": {"rk": True}}
    for name in ("clientDataJSON", "attestationObject", "authenticatorData", "publicKey"):
        assert B64URL.fullmatch(credential["response"][name])  # base64url, no padding
    client_data = b64url_decode(credential["response"]["clientDataJSON"])
    assert client_data == json.dumps(
        {"type": "webauthn.create", "challenge": options["challenge"], "origin": ORIGIN, "crossOrigin": False},
        separators=(",", ":"),
    ).encode()
    raw = b64url_decode(credential["response"]["attestationObject"])
    attestation = cbor2.loads(raw)
    assert attestation["fmt"] == "none" and attestation["attStmt"] == {}
    assert cbor2.dumps(attestation, canonical=True) == raw  # canonical CBOR, as authenticators send it
    assertion = authenticator.get(request()[0], ORIGIN)
    assert set(assertion) == {"id", "rawId", "type", "response", "authenticatorAttachment", "clientExtensionResults"}
    assert set(assertion["response"]) == {"clientDataJSON", "authenticatorData", "signature", "userHandle"}
    assert b64url_decode(assertion["response"]["userHandle"]) == b"user-handle-of-ann"
    assert assertion["clientExtensionResults"] == {}


def test_flags_and_counters() -> None:
    authenticator = SoftAuthenticator(be=True, bs=True, counter="zero")
    _, verified = registered(authenticator)
    assert verified.sign_count == 0 and verified.credential_backed_up
    assert verified.credential_device_type == "multi_device"
    for _ in range(3):
        assert authenticate(authenticator, verified.credential_public_key, 0).new_sign_count == 0
    with pytest.raises(InvalidAuthenticationResponse, match="User verification"):
        authenticate(authenticator, verified.credential_public_key, 0, uv=False)
    with pytest.raises(InvalidAuthenticationResponse, match="signature"):
        authenticate(authenticator, verified.credential_public_key, 0, bad_signature=True)
    with pytest.raises(InvalidAuthenticationResponse, match="origin"):
        options, challenge = request()
        verify_authentication_response(
            credential=authenticator.get(options, "http://evil.localhost:8443"), expected_challenge=challenge,
            expected_rp_id="localhost", expected_origin=ORIGIN, credential_public_key=verified.credential_public_key,
            credential_current_sign_count=0,
        )
    with pytest.raises(InvalidRegistrationResponse, match="User verification"):
        registered(SoftAuthenticator(uv=False))


def test_a_clone_keeps_its_own_counter() -> None:
    authenticator = SoftAuthenticator()
    _, verified = registered(authenticator)
    clone = next(iter(authenticator.credentials.values())).clone()
    authenticate(authenticator, verified.credential_public_key, 1)
    with pytest.raises(InvalidAuthenticationResponse, match="sign count"):
        authenticate(authenticator, verified.credential_public_key, 2, credential=clone)


def test_choosing_credentials_like_a_client() -> None:
    authenticator = SoftAuthenticator()
    first, _ = registered(authenticator)
    options, _ = creation(exclude=[b64url_decode(first["id"])])
    with pytest.raises(SoftAuthnError) as caught:
        authenticator.create(options, ORIGIN)
    assert caught.value.name == "InvalidStateError"
    second, _ = registered(authenticator)
    # allowCredentials picks; an empty list takes the newest discoverable credential.
    assert authenticator.get(request([b64url_decode(first["id"])])[0], ORIGIN)["id"] == first["id"]
    assert authenticator.get(request()[0], ORIGIN)["id"] == second["id"]
    with pytest.raises(SoftAuthnError) as caught:
        authenticator.get(request([b"unknown"])[0], ORIGIN)
    assert caught.value.name == "NotAllowedError"
    with pytest.raises(SoftAuthnError):
        SoftAuthenticator().get(request()[0], ORIGIN)


def test_a_non_discoverable_credential_sends_no_user_handle() -> None:
    authenticator = SoftAuthenticator()
    options, _ = creation()
    credential = authenticator.create(options, ORIGIN, discoverable=False)
    assert credential["clientExtensionResults"] == {"credProps": {"rk": False}}
    assertion = authenticator.get(request([b64url_decode(credential["id"])])[0], ORIGIN)
    assert "userHandle" not in assertion["response"]
    with pytest.raises(SoftAuthnError):
        authenticator.get(request()[0], ORIGIN)  # nothing discoverable to offer


def test_overrides_for_negative_tests() -> None:
    authenticator = SoftAuthenticator()
    registered(authenticator)
    options, _ = request()
    assertion = authenticator.get(options, "https://other.example", cross_origin=True, top_origin="https://top.example",
                                  challenge=b"\x00" * 16, client_data_type="webauthn.create", user_handle=b"x")
    client_data = json.loads(b64url_decode(assertion["response"]["clientDataJSON"]))
    assert client_data == {"type": "webauthn.create", "challenge": b64url(b"\x00" * 16),
                           "origin": "https://other.example", "crossOrigin": True, "topOrigin": "https://top.example"}
    assert assertion["response"]["userHandle"] == b64url(b"x")
    data = b64url_decode(assertion["response"]["authenticatorData"])
    assert data[32] & 0x05 == 0x05  # UP and UV
    data = b64url_decode(authenticator.get(options, ORIGIN, up=False, uv=False, sign_count=7)["response"][
        "authenticatorData"])
    assert data[32] & 0x05 == 0 and int.from_bytes(data[33:37], "big") == 7
