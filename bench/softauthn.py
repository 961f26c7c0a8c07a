"""A software WebAuthn authenticator (with the client's part) for tests and the load benchmark.

It answers the options JSON a relying party hands out (``PublicKeyCredentialCreationOptionsJSON``,
``PublicKeyCredentialRequestOptionsJSON``) with what a browser's ``PublicKeyCredential.toJSON()``
would give: the WebAuthn Level 3 JSON forms, base64url without padding. Keys are ES256, EdDSA
(Ed25519) or RS256; attestation is ``none`` or ``packed`` (self attestation, signed with the
credential key, or full attestation with a batch certificate and key the caller supplies;
``AttestationCA`` makes a test CA and FIDO-shaped batch certificates); the UP, UV, BE and BS flags, the sign counter
(incrementing or always 0) and the AAGUID can be set per credential and overridden per call, and so
can everything the client would normally decide (origin, crossOrigin, topOrigin, challenge, type),
so that tests can build every kind of bad response. Depends only on ``cryptography`` and ``cbor2``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

ES256 = -7
EDDSA = -8
RS256 = -257
SUPPORTED_ALGORITHMS = (ES256, EDDSA, RS256)

# Flag bits of authenticatorData (WebAuthn §6.1).
UP, UV, BE, BS, AT, ED = 0x01, 0x04, 0x08, 0x10, 0x40, 0x80

Counter = Literal["increment", "zero"]
AttestationFormat = Literal["none", "packed"]
# id-fido-gen-ce-aaguid (WebAuthn §8.2.1): the AAGUID inside a batch certificate.
FIDO_AAGUID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


class SoftAuthnError(Exception):
    """What a browser would reject with: ``name`` is the DOMException name (NotAllowedError, ...)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_key(alg: int) -> PrivateKey:
    if alg == ES256:
        return ec.generate_private_key(ec.SECP256R1())
    if alg == EDDSA:
        return ed25519.Ed25519PrivateKey.generate()
    if alg == RS256:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise SoftAuthnError("NotSupportedError", f"algorithm {alg} is not supported")


def cose_key(key: PrivateKey) -> bytes:
    """The credential public key as a COSE_Key (RFC 9052/9053), CTAP2 canonical CBOR."""
    cose: dict[int, Any]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        cose = {1: 2, 3: ES256, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        cose = {1: 1, 3: EDDSA, -1: 6, -2: raw}
    else:
        rsa_numbers = key.public_key().public_numbers()
        cose = {
            1: 3, 3: RS256,
            -1: rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big"),
            -2: rsa_numbers.e.to_bytes((rsa_numbers.e.bit_length() + 7) // 8, "big"),
        }
    return cbor2.dumps(cose, canonical=True)


def sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))  # DER, as WebAuthn wants for ES256
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def algorithm_of(key: PrivateKey) -> int:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ES256
    return EDDSA if isinstance(key, ed25519.Ed25519PrivateKey) else RS256


@dataclass(slots=True)
class Credential:
    """One key pair held by the authenticator, and the state that goes with it."""

    credential_id: bytes
    key: PrivateKey
    rp_id: str
    user_handle: bytes | None  # kept for discoverable credentials: assertions carry it as userHandle
    discoverable: bool = True
    sign_count: int = 0
    counter: Counter = "increment"
    uv: bool = True
    up: bool = True
    be: bool = False
    bs: bool = False

    @property
    def alg(self) -> int:
        return algorithm_of(self.key)

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def clone(self) -> Credential:
        """A copy with its own counter: what a cloned authenticator looks like to the server."""
        return replace(self)


def _unwrap(options: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = options.get("publicKey")
    return inner if isinstance(inner, Mapping) else options


def _challenge(options: Mapping[str, Any], override: bytes | str | None) -> str:
    if override is None:
        return str(options["challenge"])
    return b64url(override) if isinstance(override, bytes) else override


def client_data_json(
    type_: str, challenge: str, origin: str, cross_origin: bool = False, top_origin: str | None = None
) -> bytes:
    """CollectedClientData as browsers serialise it (compact, members in the spec's order)."""
    data: dict[str, Any] = {"type": type_, "challenge": challenge, "origin": origin, "crossOrigin": cross_origin}
    if top_origin is not None:
        data["topOrigin"] = top_origin
    return json.dumps(data, separators=(",", ":")).encode()


@dataclass(slots=True)
class SoftAuthenticator:
    """A platform-style authenticator plus the client logic a browser adds around it.

    Defaults describe a device-bound passkey with user verification; set ``be``/``bs`` for a synced one.
    """

    aaguid: bytes = field(default_factory=lambda: uuid.UUID("5067a5f3-6fbd-4a5b-9c8f-1e2d3c4b5a69").bytes)
    uv: bool = True
    up: bool = True
    be: bool = False
    bs: bool = False
    counter: Counter = "increment"
    transports: Sequence[str] = ("internal", "hybrid")
    attachment: str | None = "platform"
    credentials: dict[bytes, Credential] = field(default_factory=dict)
    # "packed" with no certificates is self attestation; with them, full attestation signed by attestation_key
    # (x5c = attestation_certificates, DER, the batch certificate first).
    attestation: AttestationFormat = "none"
    attestation_key: PrivateKey | None = None
    attestation_certificates: Sequence[bytes] = ()
    # Answer "none" when the relying party asked for no attestation, as browsers do.
    follow_conveyance: bool = False

    @classmethod
    def with_batch(cls, batch: BatchCertificate, **fields: Any) -> SoftAuthenticator:
        """An authenticator with full packed attestation from ``batch`` (and its AAGUID)."""
        return cls(attestation="packed", attestation_key=batch.key, attestation_certificates=batch.x5c,
                   aaguid=batch.aaguid, **fields)

    # -- navigator.credentials.create() -----------------------------------------------------------
    def create(
        self,
        options: Mapping[str, Any],
        origin: str,
        *,
        alg: int | None = None,
        key: PrivateKey | None = None,
        discoverable: bool | None = None,
        uv: bool | None = None,
        up: bool | None = None,
        be: bool | None = None,
        bs: bool | None = None,
        counter: Counter | None = None,
        aaguid: bytes | None = None,
        rp_id: str | None = None,
        challenge: bytes | str | None = None,
        cross_origin: bool = False,
        top_origin: str | None = None,
        client_data_type: str = "webauthn.create",
        ignore_exclude: bool = False,
        credential_id: bytes | None = None,
        attestation: AttestationFormat | None = None,
    ) -> dict[str, Any]:
        """Make a credential and return RegistrationResponseJSON; the credential is kept.

        ``attestation`` overrides the authenticator's format for this call.
        """
        opts = _unwrap(options)
        rp = opts.get("rp") or {}
        rp_id = rp_id or rp.get("id") or _host(origin)
        if not ignore_exclude:
            for excluded in opts.get("excludeCredentials") or []:
                cred = self.credentials.get(b64url_decode(excluded["id"]))
                if cred is not None and cred.rp_id == rp_id:
                    raise SoftAuthnError("InvalidStateError", "the authenticator already holds an excluded credential")
        if key is not None:
            alg = algorithm_of(key)
        elif alg is None:
            offered = [p.get("alg") for p in opts.get("pubKeyCredParams") or [] if p.get("type") == "public-key"]
            alg = next((a for a in offered if a in SUPPORTED_ALGORITHMS), None)
            if alg is None:
                raise SoftAuthnError("NotSupportedError", f"none of the algorithms {offered} is supported")
        selection = opts.get("authenticatorSelection") or {}
        if discoverable is None:
            discoverable = selection.get("residentKey", "preferred") != "discouraged" or bool(
                selection.get("requireResidentKey")
            )
        user = opts.get("user") or {}
        cred = Credential(
            credential_id=credential_id or os.urandom(32),
            key=key or generate_key(alg),
            rp_id=rp_id,
            user_handle=b64url_decode(user["id"]) if discoverable and "id" in user else None,
            discoverable=discoverable,
            counter=self.counter if counter is None else counter,
            uv=self.uv if uv is None else uv,
            up=self.up if up is None else up,
            be=self.be if be is None else be,
            bs=self.bs if bs is None else bs,
        )
        cdj = client_data_json(client_data_type, _challenge(opts, challenge), origin, cross_origin, top_origin)
        cred.sign_count = 1 if cred.counter == "increment" else 0
        attested = (
            (self.aaguid if aaguid is None else aaguid)
            + len(cred.credential_id).to_bytes(2, "big")
            + cred.credential_id
            + cose_key(cred.key)
        )
        auth_data = _auth_data(rp_id, cred.up, cred.uv, cred.be, cred.bs, cred.sign_count, attested)
        fmt = self.attestation if attestation is None else attestation
        if attestation is None and self.follow_conveyance and opts.get("attestation", "none") == "none":
            fmt = "none"
        statement = self._statement(fmt, cred, auth_data + hashlib.sha256(cdj).digest())
        attestation_object = cbor2.dumps({"fmt": fmt, "attStmt": statement, "authData": auth_data}, canonical=True)
        self.credentials[cred.credential_id] = cred
        spki = cred.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        extensions: dict[str, Any] = {}
        if (opts.get("extensions") or {}).get("credProps"):
            extensions["credProps"] = {"rk": discoverable}
        return {
            "id": cred.id,
            "rawId": cred.id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(cdj),
                "authenticatorData": b64url(auth_data),
                "transports": sorted(self.transports),
                "publicKey": b64url(spki),
                "publicKeyAlgorithm": alg,
                "attestationObject": b64url(attestation_object),
            },
            "authenticatorAttachment": self.attachment,
            "clientExtensionResults": extensions,
        }

    def _statement(self, fmt: str, cred: Credential, signed: bytes) -> dict[str, Any]:
        if fmt == "none":
            return {}
        if fmt != "packed":
            raise SoftAuthnError("NotSupportedError", f"attestation format {fmt!r} is not supported")
        if not self.attestation_certificates:
            return {"alg": cred.alg, "sig": sign(cred.key, signed)}  # self attestation
        if self.attestation_key is None:
            raise SoftAuthnError("NotSupportedError", "full attestation needs attestation_key")
        return {
            "alg": algorithm_of(self.attestation_key),
            "sig": sign(self.attestation_key, signed),
            "x5c": [bytes(c) for c in self.attestation_certificates],
        }

    # -- navigator.credentials.get() --------------------------------------------------------------
    def get(
        self,
        options: Mapping[str, Any],
        origin: str,
        *,
        credential: Credential | bytes | None = None,
        uv: bool | None = None,
        up: bool | None = None,
        be: bool | None = None,
        bs: bool | None = None,
        sign_count: int | None = None,
        rp_id: str | None = None,
        challenge: bytes | str | None = None,
        cross_origin: bool = False,
        top_origin: str | None = None,
        client_data_type: str = "webauthn.get",
        user_handle: bytes | None = None,
        bad_signature: bool = False,
    ) -> dict[str, Any]:
        """Sign an assertion and return AuthenticationResponseJSON.

        ``credential`` picks one explicitly (it need not be in allowCredentials, nor held by this
        authenticator: pass a ``Credential`` from another one); otherwise the first held credential
        in allowCredentials, or the newest discoverable one for the RP ID when the list is empty.
        ``sign_count`` sets the counter sent (and kept) instead of the credential's next value; ``rp_id``
        signs for another RP ID than the credential's (its hash goes into authenticatorData).
        """
        opts = _unwrap(options)
        cred = self._choose(opts, opts.get("rpId") or _host(origin), credential)
        if sign_count is not None:
            cred.sign_count = sign_count
        elif cred.counter == "increment":
            cred.sign_count += 1
        cdj = client_data_json(client_data_type, _challenge(opts, challenge), origin, cross_origin, top_origin)
        auth_data = _auth_data(
            rp_id or cred.rp_id,
            cred.up if up is None else up,
            cred.uv if uv is None else uv,
            cred.be if be is None else be,
            cred.bs if bs is None else bs,
            cred.sign_count,
            b"",
        )
        signature = sign(cred.key, auth_data + hashlib.sha256(cdj).digest())
        if bad_signature:
            signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
        handle = user_handle if user_handle is not None else cred.user_handle
        response: dict[str, Any] = {
            "clientDataJSON": b64url(cdj),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if handle is not None:
            response["userHandle"] = b64url(handle)
        return {
            "id": cred.id,
            "rawId": cred.id,
            "type": "public-key",
            "response": response,
            "authenticatorAttachment": self.attachment,
            "clientExtensionResults": {},
        }

    def _choose(self, opts: Mapping[str, Any], rp_id: str, chosen: Credential | bytes | None) -> Credential:
        if isinstance(chosen, Credential):
            return chosen
        if chosen is not None:
            try:
                return self.credentials[chosen]
            except KeyError:
                raise SoftAuthnError("NotAllowedError", "no such credential on this authenticator") from None
        allowed = opts.get("allowCredentials") or []
        for descriptor in allowed:
            cred = self.credentials.get(b64url_decode(descriptor["id"]))
            if cred is not None and cred.rp_id == rp_id:
                return cred
        if not allowed:
            for cred in reversed(self.credentials.values()):
                if cred.discoverable and cred.rp_id == rp_id:
                    return cred
        raise SoftAuthnError("NotAllowedError", f"no credential for {rp_id!r} on this authenticator")


def _host(origin: str) -> str:
    return urlsplit(origin).hostname or ""


def _auth_data(
    rp_id: str, up: bool, uv: bool, be: bool, bs: bool, sign_count: int, attested: bytes
) -> bytes:
    flags = (UP if up else 0) | (UV if uv else 0) | (BE if be else 0) | (BS if bs else 0) | (AT if attested else 0)
    return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + sign_count.to_bytes(4, "big") + attested


# -- attestation certificates for tests -------------------------------------------------------------


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True, slots=True)
class BatchCertificate:
    """A batch (attestation) certificate with its key, and the chain to send as x5c."""

    key: PrivateKey
    certificate: x509.Certificate
    aaguid: bytes
    x5c: tuple[bytes, ...]

    @property
    def der(self) -> bytes:
        return _der(self.certificate)


@dataclass(frozen=True, slots=True)
class AttestationCA:
    """A self-signed attestation root, as an authenticator maker would have (ES256 key)."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, name: str = "Passgate Test Attestation Root", days: int = 3650,
               not_before: datetime | None = None) -> AttestationCA:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Passgate Tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ])
        start = not_before or datetime.now(UTC) - timedelta(days=1)
        cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def der(self) -> bytes:
        return _der(self.certificate)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        aaguid: bytes | str,
        *,
        country: str | None = "US",
        organization: str | None = "Passgate Tests",
        unit: str | None = "Authenticator Attestation",
        common_name: str | None = "Passgate Test Batch",
        aaguid_extension: bool | bytes = True,
        ca: bool = False,
        key: PrivateKey | None = None,
        days: int = 365,
    ) -> BatchCertificate:
        """A batch certificate as WebAuthn §8.2.1 wants it (subject C, O, OU="Authenticator Attestation",
        CN; basicConstraints CA=false; the AAGUID extension), with no intermediate. Each part can be changed
        or left out (``None``/``False``) to make a non-conforming one; ``aaguid_extension`` may be other
        bytes than the AAGUID."""
        raw_aaguid = uuid.UUID(aaguid).bytes if isinstance(aaguid, str) else aaguid
        batch_key = key or ec.generate_private_key(ec.SECP256R1())
        parts = [(NameOID.COUNTRY_NAME, country), (NameOID.ORGANIZATION_NAME, organization),
                 (NameOID.ORGANIZATIONAL_UNIT_NAME, unit), (NameOID.COMMON_NAME, common_name)]
        subject = x509.Name([x509.NameAttribute(oid, value) for oid, value in parts if value is not None])
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.certificate.subject)
            .public_key(batch_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if aaguid_extension is not False:
            inner = raw_aaguid if aaguid_extension is True else aaguid_extension
            assert isinstance(inner, bytes) and len(inner) < 128
            octet_string = bytes([0x04, len(inner)]) + inner  # DER OCTET STRING holding the AAGUID
            builder = builder.add_extension(x509.UnrecognizedExtension(FIDO_AAGUID_OID, octet_string), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return BatchCertificate(batch_key, cert, raw_aaguid, (_der(cert),))
