"""Makes FIDO MDS3 BLOBs signed by a test root, the way the FIDO Alliance signs the real one (RS256, x5c)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import RSAKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                                                                        "Passgate tests")])


@dataclass
class MetadataService:
    root_key: rsa.RSAPrivateKey
    root: x509.Certificate
    signer_key: rsa.RSAPrivateKey
    signer: x509.Certificate

    @classmethod
    def create(cls, now: datetime | None = None) -> MetadataService:
        now = now or datetime.now(UTC)
        root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root = (
            x509.CertificateBuilder().subject_name(_name("Test MDS Root")).issuer_name(_name("Test MDS Root"))
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        signer = (
            x509.CertificateBuilder().subject_name(_name("mds.test")).issuer_name(root.subject)
            .public_key(signer_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        return cls(root_key, root, signer_key, signer)

    @property
    def root_der(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.DER)

    def blob(self, entries: list[dict[str, Any]], serial: int = 100, next_update: date | None = None) -> bytes:
        payload = {
            "legalHeader": "Test data only.",
            "no": serial,
            "nextUpdate": (next_update or (datetime.now(UTC).date() + timedelta(days=30))).isoformat(),
            "entries": entries,
        }
        key = RSAKey.import_key(self.signer_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        x5c = [base64.b64encode(self.signer.public_bytes(serialization.Encoding.DER)).decode()]
        import json

        token = jws.serialize_compact({"alg": "RS256", "typ": "JWT", "x5c": x5c}, json.dumps(payload).encode(), key)
        return token.encode()


def entry(aaguid: str, description: str, statuses: list[str] | None = None,
          roots_der: list[bytes] | None = None, compromised_cert: bytes | None = None) -> dict[str, Any]:
    """One metadata entry for a FIDO2 authenticator model."""
    reports = [{"status": s, "effectiveDate": "2024-01-01"} for s in (statuses or ["FIDO_CERTIFIED_L1"])]
    if compromised_cert is not None:
        reports[-1]["certificate"] = base64.b64encode(compromised_cert).decode()
    return {
        "aaguid": aaguid,
        "statusReports": reports,
        "timeOfLastStatusChange": "2024-01-01",
        "metadataStatement": {
            "description": description, "aaguid": aaguid, "authenticatorVersion": 1, "schema": 3,
            "upv": [{"major": 1, "minor": 1}], "attestationTypes": ["basic_full"],
            "userVerificationDetails": [[{"userVerificationMethod": "presence_internal"}]],
            "keyProtection": ["hardware"], "matcherProtection": ["on_chip"], "attachmentHint": ["external"],
            "tcDisplay": [], "protocolFamily": "fido2",
            "attestationRootCertificates": [base64.b64encode(r).decode() for r in (roots_der or [])],
        },
    }


def random_aaguid() -> str:
    return str(uuid.uuid4())
