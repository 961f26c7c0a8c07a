"""The FIDO Metadata Service v3 BLOB: verified with fido2.mds3, then held to Passgate's own rules
(freshness, serial, signer validity; core/attestation.py) before it replaces the one in force."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fido2.mds3 import MetadataBlobPayload, MetadataBlobPayloadEntry, parse_blob
from fido2.webauthn import Aaguid

from ..core.attestation import BlobFacts, StatusReport, blob_problem

GLOBALSIGN_ROOT_R3 = Path(__file__).parent / "data" / "globalsign-root-ca-r3.der"
# Passgate re-reads only BLOBs it verified before storing them; fido2 warns on every such read.
logging.getLogger("fido2.mds3").setLevel(logging.ERROR)


class BlobRefused(Exception):
    """The BLOB cannot be used; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class VerifiedBlob:
    payload: MetadataBlobPayload
    raw: bytes


def default_root() -> bytes:
    return GLOBALSIGN_ROOT_R3.read_bytes()


def _signer(raw: bytes) -> x509.Certificate:
    try:
        header = json.loads(base64.urlsafe_b64decode(raw.split(b".", 1)[0] + b"==="))
        return x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BlobRefused(f"this is not an MDS3 BLOB (no signing certificate in its header: {exc})") from None


def verify(raw: bytes, root_der: bytes, previous_serial: int | None, now: datetime) -> VerifiedBlob:
    """Verify the signature chain to the root (fido2.mds3), then freshness, signer validity and serial."""
    raw = raw.strip()
    signer = _signer(raw)
    try:
        payload = parse_blob(raw, root_der)
    except Exception as exc:  # fido2 raises several types for a bad signature or chain
        raise BlobRefused(
            f"its signature or certificate chain does not verify against the trust anchor ({type(exc).__name__})"
        ) from None
    facts = BlobFacts(
        serial=payload.no,
        next_update=payload.next_update,
        signer_not_before=signer.not_valid_before_utc,
        signer_not_after=signer.not_valid_after_utc,
    )
    problem = blob_problem(facts, previous_serial, now)
    if problem is not None:
        raise BlobRefused(problem)
    return VerifiedBlob(payload, raw)


@lru_cache(maxsize=4)
def parse_trusted(raw: bytes) -> MetadataBlobPayload:
    """Re-read a BLOB that was verified when it was stored (the database copy is the one in force)."""
    return parse_blob(raw, None)


def entry_for(payload: MetadataBlobPayload, aaguid: str) -> MetadataBlobPayloadEntry | None:
    try:
        wanted = Aaguid.parse(aaguid)
    except ValueError:
        return None
    return next((e for e in payload.entries if e.aaguid == wanted), None)


def entry_for_chain(payload: MetadataBlobPayload, chain: list[bytes]) -> MetadataBlobPayloadEntry | None:
    """The entry listing one of the chain's certificates by key identifier (U2F-era models have no AAGUID)."""
    wanted = set()
    for der in chain:
        try:
            cert = x509.load_der_x509_certificate(der)
            wanted.add(x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest)
            wanted.add(cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
        except (ValueError, TypeError, x509.ExtensionNotFound):
            continue
    if not wanted:
        return None
    return next(
        (e for e in payload.entries if wanted.intersection(e.attestation_certificate_key_identifiers or [])), None
    )


def model_name(entry: MetadataBlobPayloadEntry | None) -> str | None:
    if entry is None or entry.metadata_statement is None:
        return None
    return entry.metadata_statement.description


def status_reports(entry: MetadataBlobPayloadEntry) -> list[StatusReport]:
    return [
        StatusReport(
            str(r.status.value if hasattr(r.status, "value") else r.status),
            r.effective_date,
            r.certificate or r.batch_certificate,
        )
        for r in entry.status_reports
    ]


def latest_status(entry: MetadataBlobPayloadEntry) -> str | None:
    if not entry.status_reports:
        return None
    # The newest by effective date; among equal (or missing) dates, the one listed last.
    order = sorted(enumerate(entry.status_reports), key=lambda ir: (ir[1].effective_date or date.min, ir[0]))
    report = order[-1][1]
    return str(report.status.value if hasattr(report.status, "value") else report.status)


def roots_der(entry: MetadataBlobPayloadEntry) -> list[bytes]:
    """The entry's own attestation roots (DER) that load as certificates."""
    if entry.metadata_statement is None:
        return []
    out = []
    for der in entry.metadata_statement.attestation_root_certificates:
        try:
            x509.load_der_x509_certificate(der)
        except ValueError:
            continue  # one damaged root must not hide the others
        out.append(bytes(der))
    return out


def roots_pem(entry: MetadataBlobPayloadEntry) -> list[bytes]:
    """The entry's own attestation roots, as PEM for py_webauthn."""
    return [pem(der) for der in roots_der(entry)]


def pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
