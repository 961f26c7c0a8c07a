"""WebAuthn registration and authentication, verified by py_webauthn.

py_webauthn is the authority on every check; the pre-checks here only read the same parsed data
first so that each kind of failure gets its own stable error code. What the library leaves to us
(challenge storage, crossOrigin, the user handle, clone detection policy) is done here or in the
sign-in flow.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    options_to_json_dict,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_client_data_json,
    parse_registration_credential_json,
    verify_signature,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    AuthenticationCredential,
    AuthenticatorData,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CollectedClientData,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialHint,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ..config import Settings
from ..core import errors
from ..core.errors import PassgateError

ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]


@dataclass(frozen=True, slots=True)
class StoredCredential:
    credential_id: bytes
    transports: list[str]


@dataclass(frozen=True, slots=True)
class NewPasskey:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    attestation_format: str
    backup_eligible: bool
    backup_state: bool
    transports: list[str]


@dataclass(frozen=True, slots=True)
class Assertion:
    credential: AuthenticationCredential
    client_data: CollectedClientData
    auth_data: AuthenticatorData


@dataclass(frozen=True, slots=True)
class Attestation:
    credential: RegistrationCredential
    client_data: CollectedClientData
    auth_data: AuthenticatorData
    fmt: str


def _descriptors(credentials: list[StoredCredential]) -> list[PublicKeyCredentialDescriptor]:
    out = []
    for cred in credentials:
        transports = []
        for t in cred.transports:
            try:
                transports.append(AuthenticatorTransport(t))
            except ValueError:
                continue  # a transport newer than the library: leave it out rather than fail
        out.append(PublicKeyCredentialDescriptor(id=cred.credential_id, transports=transports or None))
    return out


def registration_options(
    settings: Settings,
    challenge: bytes,
    user_handle: bytes,
    user_name: str,
    display_name: str,
    existing: list[StoredCredential],
    attestation: str = "none",
    hints: tuple[str, ...] = (),
) -> dict[str, Any]:
    options = generate_registration_options(
        rp_id=settings.rp_id,
        rp_name=settings.rp_name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=display_name,
        challenge=challenge,
        timeout=settings.challenge_seconds * 1000,
        attestation=AttestationConveyancePreference(attestation),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(existing),
        supported_pub_key_algs=ALGORITHMS,
        hints=[PublicKeyCredentialHint(h) for h in hints] or None,
    )
    as_json = options_to_json_dict(options)
    # py_webauthn has no extensions argument; credProps tells us whether the key is discoverable.
    as_json["extensions"] = {"credProps": True}
    return as_json


def authentication_options(
    settings: Settings, challenge: bytes, allowed: list[StoredCredential]
) -> dict[str, Any]:
    options = generate_authentication_options(
        rp_id=settings.rp_id,
        challenge=challenge,
        timeout=settings.challenge_seconds * 1000,
        allow_credentials=_descriptors(allowed),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json_dict(options)


# Anything the library may raise on hostile input: its own exceptions and Python's for data it did not
# expect (a CBOR map where bytes belong, nesting deep enough to exhaust the stack, ...).
_DAMAGED = (
    WebAuthnException, ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError,
)
# Strict base64url: the library's decoder skips characters outside the alphabet, so "a!b" would pass.
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def _as_object(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise PassgateError(errors.MALFORMED_CREDENTIAL, "The credential is not valid JSON.") from None
    if not isinstance(value, dict):
        raise PassgateError(errors.MALFORMED_CREDENTIAL, "The credential must be a JSON object.")
    return value


def _check_base64url(body: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Every binary member must be base64url text (the library checks presence and types, not the alphabet)."""
    response = body.get("response")
    for name in ("id", "rawId", *fields):
        value = body.get(name) if name in ("id", "rawId") else (
            response.get(name) if isinstance(response, dict) else None
        )
        if isinstance(value, str) and (len(value.rstrip("=")) % 4 == 1 or not _BASE64URL.fullmatch(value)):
            raise PassgateError(errors.MALFORMED_CREDENTIAL, f"{name} is not base64url.")


def _check_client_data(settings: Settings, client_data: CollectedClientData, expected_type: str) -> None:
    if client_data.type != expected_type:
        raise PassgateError(errors.MALFORMED_CREDENTIAL, f"clientDataJSON.type must be {expected_type!r}.")
    if client_data.origin not in settings.origins:
        raise PassgateError(errors.ORIGIN_NOT_ALLOWED, f"It came from {client_data.origin!r}.")
    if client_data.cross_origin:
        raise PassgateError(errors.CROSS_ORIGIN_NOT_ALLOWED)


def parse_assertion(settings: Settings, raw: Any) -> Assertion:
    """Parse a navigator.credentials.get() result; refuse damaged data before anything is looked up."""
    body = _as_object(raw)
    _check_base64url(body, ("clientDataJSON", "authenticatorData", "signature", "userHandle"))
    try:
        credential = parse_authentication_credential_json(body)
        client_data = parse_client_data_json(credential.response.client_data_json)
        auth_data = parse_authenticator_data(credential.response.authenticator_data)
    except _DAMAGED as exc:
        raise PassgateError(errors.MALFORMED_CREDENTIAL, _reason(exc)) from None
    if bytes_to_base64url(credential.raw_id) != credential.id:
        raise PassgateError(errors.MALFORMED_CREDENTIAL, "id and rawId differ.")
    _check_client_data(settings, client_data, "webauthn.get")
    return Assertion(credential, client_data, auth_data)


def parse_attestation(settings: Settings, raw: Any) -> Attestation:
    """Parse a navigator.credentials.create() result."""
    body = _as_object(raw)
    _check_base64url(body, ("clientDataJSON", "attestationObject"))
    try:
        credential = parse_registration_credential_json(body)
        client_data = parse_client_data_json(credential.response.client_data_json)
        attestation = parse_attestation_object(credential.response.attestation_object)
    except _DAMAGED as exc:
        raise PassgateError(errors.MALFORMED_CREDENTIAL, _reason(exc)) from None
    if not _one_cbor_item(credential.response.attestation_object):
        raise PassgateError(errors.MALFORMED_CREDENTIAL, "attestationObject has bytes after its CBOR map.")
    # The library keeps fmt as the CBOR gave it: a str (an AttestationFormat when it is a known one), or junk.
    fmt = attestation.fmt.value if isinstance(attestation.fmt, Enum) else attestation.fmt
    if not isinstance(fmt, str):
        raise PassgateError(errors.MALFORMED_CREDENTIAL, "attestationObject.fmt is not a text string.")
    if bytes_to_base64url(credential.raw_id) != credential.id:
        raise PassgateError(errors.MALFORMED_CREDENTIAL, "id and rawId differ.")
    _check_client_data(settings, client_data, "webauthn.create")
    return Attestation(credential, client_data, attestation.auth_data, fmt)


def _one_cbor_item(raw: bytes) -> bool:
    """Whether the CBOR item (already decoded once by the library) is all there is: cbor2.loads ignores the rest."""
    stream = io.BytesIO(raw)
    cbor2.CBORDecoder(stream).decode()
    return stream.tell() == len(raw)


def _check_key(public_key: bytes) -> None:
    """The new credential's key must load, and be strong: P-256 for ES256, at least 2048 bits for RS256."""
    key = decoded_public_key_to_cryptography(decode_credential_public_key(public_key))
    if isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"an ES256 key must be on P-256, not {key.curve.name}")
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise ValueError(f"an RSA key must have at least 2048 bits, not {key.key_size}")


def _signature_holds(assertion: Assertion, public_key: bytes) -> bool:
    """Whether the assertion was really signed by this passkey (py_webauthn's own helpers, no policy)."""
    response = assertion.credential.response
    try:
        decoded = decode_credential_public_key(public_key)
        verify_signature(
            public_key=decoded_public_key_to_cryptography(decoded),
            signature_alg=decoded.alg,
            signature=response.signature,
            data=response.authenticator_data + hashlib.sha256(response.client_data_json).digest(),
        )
    except (InvalidSignature, *_DAMAGED):
        return False
    return True


def verify_assertion(
    settings: Settings, assertion: Assertion, challenge: bytes, public_key: bytes, sign_count: int
) -> int:
    """Verify the signature and flags with py_webauthn; returns the new sign count.

    Only a response that py_webauthn refuses is looked at again, to name the reason: the flags and the
    counter count only when the signature is genuine, so nobody can put "SignCountRegression" or
    "UserVerificationRequired" into a passkey's history with a forged response.
    """
    try:
        verified = verify_authentication_response(
            credential=assertion.credential,
            expected_challenge=challenge,
            expected_rp_id=settings.rp_id,
            expected_origin=settings.origins,
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=True,
        )
    except _DAMAGED as exc:
        if _signature_holds(assertion, public_key):
            data = assertion.auth_data
            if data.rp_id_hash == hashlib.sha256(settings.rp_id.encode()).digest() and data.flags.up:
                if not data.flags.uv:
                    raise PassgateError(errors.USER_VERIFICATION_REQUIRED) from None
                if (data.sign_count > 0 or sign_count > 0) and data.sign_count <= sign_count:
                    raise PassgateError(
                        errors.SIGN_COUNT_REGRESSION, f"Counter {data.sign_count} after {sign_count}."
                    ) from None
        raise PassgateError(errors.ASSERTION_INVALID, _reason(exc)) from None
    return int(verified.new_sign_count)


def verify_attestation(
    settings: Settings, attestation: Attestation, challenge: bytes, roots: list[bytes] | None = None
) -> NewPasskey:
    """Verify a registration with py_webauthn.

    ``roots`` (PEM) are the only attestation roots the certificate chain may lead to, besides those
    py_webauthn builds in for some formats (apple, android-key, android-safetynet). Without them the
    chain is not checked (only the attestation signature is): the caller decides what that means.
    """
    if not attestation.auth_data.flags.uv:
        raise PassgateError(errors.USER_VERIFICATION_REQUIRED)
    roots_by_fmt: dict[AttestationFormat, list[bytes]] | None = None
    if roots:
        try:
            roots_by_fmt = {AttestationFormat(attestation.fmt): list(roots)}
        except ValueError:
            roots_by_fmt = None  # a format py_webauthn does not know: it refuses the registration anyway
    try:
        verified = verify_registration_response(
            credential=attestation.credential,
            expected_challenge=challenge,
            expected_rp_id=settings.rp_id,
            expected_origin=settings.origins,
            require_user_verification=True,
            supported_pub_key_algs=ALGORITHMS,
            pem_root_certs_bytes_by_fmt=roots_by_fmt,
        )
        # With "none" attestation nothing has used the key yet: make sure it is one we can verify with.
        _check_key(verified.credential_public_key)
    except _DAMAGED as exc:
        raise PassgateError(errors.REGISTRATION_INVALID, _reason(exc)) from None
    transports = [t.value for t in (attestation.credential.response.transports or [])]
    return NewPasskey(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        attestation_format=attestation.fmt,
        backup_eligible=attestation.auth_data.flags.be,
        backup_state=bool(verified.credential_backed_up),
        transports=transports,
    )


def _reason(exc: Exception) -> str:
    text = str(exc).split(". See __cause__")[0].strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else ""
