"""Attestation trust: which makers Passgate believes about a passkey's make and model.

Two sources of roots, both kept in the database so that every process sees the same: the FIDO
Metadata Service v3 BLOB in force (verified by ``passkeys.mds`` before it is stored; the newest
serial wins) and custom trust anchors added by an administrator. A registration's attestation is
"attested" only when py_webauthn validated its certificate chain against the roots that the MDS
lists for that very model, or against a custom anchor; nothing else counts, and Passgate then finds
which of those roots the chain ended at. MDS status reports (REVOKED, ATTESTATION_KEY_COMPROMISE,
USER_VERIFICATION_BYPASS, ...) refuse a registration of the model.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from fido2.mds3 import MetadataBlobPayload, MetadataBlobPayloadEntry
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from webauthn.helpers import parse_attestation_object

from ..config import Settings
from ..context import RequestContext
from ..core import errors
from ..core.attestation import status_refusal
from ..core.errors import PassgateError
from ..logs.writer import modified, record_audit
from ..store.tables import MdsBlob, TrustAnchor
from . import aaguids, ceremonies, mds

# Verified BLOBs kept in the database: the one in force and a few before it, for the record.
MDS_ROWS_KEPT = 3
MDS_SOURCE_LENGTH = 1024
ANCHOR_LABEL_LENGTH = 256
# id-fido-gen-ce-aaguid: the AAGUID inside a packed attestation certificate (WebAuthn §8.2.1).
FIDO_AAGUID_EXTENSION = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")
MDS_LABEL = "FIDO MDS: "
CUSTOM_LABEL = "Custom: "


@dataclass(frozen=True, slots=True)
class Anchor:
    """A root an attestation chain may lead to, and how the passkey's record names it."""

    label: str
    der: bytes


@dataclass(slots=True)
class AttestationOutcome:
    """What a registration's attestation proved. ``certificates`` are the SHA-1 thumbprints of the
    attestation certificates as presented (Graph's ``attestationCertificates``); ``trust_anchor`` is
    set only when the chain verified to it."""

    attested: bool
    trust_anchor: str | None
    certificates: list[str]
    mds_status: str | None
    model: str | None
    untrusted: str = ""  # why a presented chain was not trusted, for the refusal a person reads

    @property
    def level(self) -> str:
        """Graph's attestationLevel."""
        return "attested" if self.attested else "notAttested"


# -- the MDS BLOB in force --------------------------------------------------------------------

_cache_lock = threading.Lock()
_payloads: dict[tuple[str, int, datetime], MetadataBlobPayload] = {}


def _cache_key(session: Session, serial: int, loaded_at: datetime) -> tuple[str, int, datetime]:
    return (str(session.get_bind().engine.url), serial, loaded_at)


def _remember(key: tuple[str, int, datetime], payload: MetadataBlobPayload) -> None:
    with _cache_lock:
        while len(_payloads) >= 4:
            _payloads.pop(next(iter(_payloads)))
        _payloads[key] = payload


def current_blob(session: Session) -> MdsBlob | None:
    """The stored BLOB in force (the highest serial), or None."""
    return session.scalar(select(MdsBlob).order_by(MdsBlob.serial.desc()).limit(1))


def current_payload(session: Session) -> MetadataBlobPayload | None:
    """The parsed payload of the BLOB in force, or None; parsed once per process and BLOB."""
    head = session.execute(
        select(MdsBlob.serial, MdsBlob.loaded_at).order_by(MdsBlob.serial.desc()).limit(1)
    ).first()
    if head is None:
        return None
    key = _cache_key(session, head.serial, head.loaded_at)
    cached = _payloads.get(key)
    if cached is not None:
        return cached
    raw = session.scalar(select(MdsBlob.blob).where(MdsBlob.serial == head.serial))
    if raw is None:  # replaced between the two reads
        return current_payload(session)
    payload = mds.parse_trusted(raw.encode("ascii"))
    _remember(key, payload)
    return payload


def refresh_mds(
    session: Session, ctx: RequestContext, raw: bytes, source: str, root_der: bytes | None = None
) -> MdsBlob:
    """Verify a BLOB (chain to ``root_der``, by default GlobalSign Root R3; freshness; serial) and put
    it in force. Raises ``mds.BlobRefused`` and stores nothing when it cannot be used."""
    previous = current_blob(session)
    verified = mds.verify(
        raw, mds.default_root() if root_der is None else root_der,
        previous.serial if previous is not None else None, ctx.now,
    )
    try:
        text = verified.raw.decode("ascii")
    except UnicodeDecodeError:
        raise mds.BlobRefused("this is not an MDS3 BLOB (it is not a compact JWS)") from None
    payload = verified.payload
    old_serial, old_next = (previous.serial, previous.next_update) if previous is not None else (None, None)
    row = session.get(MdsBlob, payload.no)
    if row is None:
        row = MdsBlob(serial=payload.no)
        session.add(row)
    row.next_update = payload.next_update.isoformat()
    row.loaded_at = ctx.now
    row.source = source[:MDS_SOURCE_LENGTH]
    row.blob = text
    session.flush()
    stale = list(session.scalars(select(MdsBlob.serial).order_by(MdsBlob.serial.desc()).offset(MDS_ROWS_KEPT)))
    if stale:
        session.execute(delete(MdsBlob).where(MdsBlob.serial.in_(stale)))
    _remember(_cache_key(session, row.serial, row.loaded_at), payload)
    record_audit(
        session, ctx, "Update FIDO metadata", category="ApplicationManagement", operation="Update",
        target_type="Policy", target_id="fidoMetadataService", target_name="FIDO Metadata Service",
        service="Authentication Methods",
        changes=[
            modified("serialNumber", old_serial, payload.no),
            modified("nextUpdate", old_next, row.next_update),
        ],
        details={"source": row.source, "entries": len(payload.entries)},
    )
    return row


def blob_json(row: MdsBlob, payload: MetadataBlobPayload | None) -> dict[str, Any]:
    return {
        "serialNumber": row.serial,
        "nextUpdate": row.next_update,
        "entries": len(payload.entries) if payload is not None else None,
        "loadedDateTime": row.loaded_at.isoformat().replace("+00:00", "Z"),
        "source": row.source,
        "legalHeader": payload.legal_header if payload is not None else None,
    }


def find_entry(payload: MetadataBlobPayload | None, aaguid: str, chain: Sequence[bytes] = ()) -> (
    MetadataBlobPayloadEntry | None
):
    """The model's MDS entry: by AAGUID, or (for models without one) by attestation key identifier."""
    if payload is None:
        return None
    if aaguid != aaguids.ZERO:
        found = mds.entry_for(payload, aaguid)
        if found is not None:
            return found
    return mds.entry_for_chain(payload, list(chain)) if chain else None


def model_name(session: Session, aaguid: str) -> str | None:
    """The model's name for display: the MDS description, else the community list, else None."""
    return mds.model_name(find_entry(current_payload(session), aaguid)) or aaguids.model_name(aaguid)


# -- custom trust anchors ---------------------------------------------------------------------


def load_certificate(data: bytes) -> x509.Certificate:
    """One X.509 certificate, PEM or DER; PassgateError(INVALID_REQUEST) otherwise."""
    try:
        if b"-----BEGIN" in data:
            found = x509.load_pem_x509_certificates(data)
            if len(found) != 1:
                raise PassgateError(
                    errors.INVALID_REQUEST, f"Give one certificate per trust anchor, not {len(found)}."
                )
            return found[0]
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise PassgateError(
            errors.INVALID_REQUEST, "This is not an X.509 certificate in PEM or DER form."
        ) from None


def thumbprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _name_of(cert: x509.Certificate) -> str:
    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.ORGANIZATION_NAME):
        values = cert.subject.get_attributes_for_oid(oid)
        if values and str(values[0].value).strip():
            return str(values[0].value).strip()
    return cert.subject.rfc4514_string() or "unnamed certificate"


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # another issuer, an unsupported key type, a bad signature
        return False
    return True


def _self_signed(cert: x509.Certificate) -> bool:
    return _issued_by(cert, cert)


def _reissued(chain: Sequence[bytes], anchors: Sequence[Anchor]) -> list[Anchor]:
    """Self-signed certificates in the chain that carry an anchor's name and key, as presented.

    A trust anchor is a name and a public key (RFC 5280 §6.1.1), not the bytes of one certificate; OpenSSL
    only accepts a self-signed certificate it holds byte for byte, and some authenticators (Chromium's
    virtual one) re-issue their self-signed batch certificate, same name and key, at every registration."""
    out = []
    for der in chain:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            continue
        for anchor in anchors:
            try:
                root = x509.load_der_x509_certificate(anchor.der)
            except ValueError:
                continue
            same_key = root.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == (
                cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
            # Signed by the anchor's key under the anchor's name, and carrying that same key: the anchor.
            if anchor.der != der and same_key and _issued_by(cert, root):
                out.append(Anchor(anchor.label, der))
    return out


def add_anchor(
    session: Session, ctx: RequestContext, pem_or_der: bytes, display_name: str | None = None
) -> TrustAnchor:
    """Trust a self-signed root (a maker's attestation CA, or a self-signed batch certificate)."""
    cert = load_certificate(pem_or_der)
    if ctx.now > cert.not_valid_after_utc:
        raise PassgateError(
            errors.INVALID_REQUEST, f"This certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}."
        )
    if not _self_signed(cert):
        raise PassgateError(
            errors.INVALID_REQUEST,
            f"This certificate is issued by {cert.issuer.rfc4514_string()!r}, not by itself: add the root "
            "certificate at the top of that chain instead (an intermediate or end-entity certificate "
            "cannot be a trust anchor).",
        )
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    except ValueError:
        raise PassgateError(errors.INVALID_REQUEST, "This certificate's extensions cannot be read.") from None
    der = cert.public_bytes(Encoding.DER)
    print_ = thumbprint(der)
    existing = session.scalar(select(TrustAnchor).where(TrustAnchor.thumbprint == print_))
    if existing is not None:
        raise PassgateError(
            errors.CONFLICT,
            f"This certificate is already a trust anchor ({existing.display_name!r}, id {existing.id}).",
        )
    name = (display_name or "").strip() or _name_of(cert)
    anchor = TrustAnchor(
        display_name=name[:ANCHOR_LABEL_LENGTH - len(CUSTOM_LABEL)], thumbprint=print_, certificate_der=der,
        created_at=ctx.now,
    )
    session.add(anchor)
    try:
        session.flush()
    except IntegrityError:  # the same certificate added by a request racing this one
        raise PassgateError(errors.CONFLICT, "This certificate is already a trust anchor.") from None
    record_audit(
        session, ctx, "Add attestation trust anchor", category="ApplicationManagement", operation="Add",
        target_type="Policy", target_id=anchor.id, target_name=anchor.display_name,
        service="Authentication Methods",
        changes=[modified("TrustAnchor", None, f"{anchor.display_name} ({print_})")],
        details={
            "thumbprint": print_, "subject": cert.subject.rfc4514_string(),
            "notAfter": cert.not_valid_after_utc.isoformat(),
            "certificateAuthority": bool(constraints and constraints.ca),
        },
    )
    return anchor


def list_anchors(session: Session) -> list[TrustAnchor]:
    return list(session.scalars(select(TrustAnchor).order_by(TrustAnchor.created_at, TrustAnchor.id)))


def get_anchor(session: Session, id_or_thumbprint: str) -> TrustAnchor:
    key = id_or_thumbprint.strip()
    anchor = None
    with contextlib.suppress(ValueError):
        anchor = session.get(TrustAnchor, str(uuid.UUID(key)))
    if anchor is None:
        print_ = key.replace(":", "").replace(" ", "").lower()
        anchor = session.scalar(select(TrustAnchor).where(TrustAnchor.thumbprint == print_))
    if anchor is None:
        raise PassgateError(errors.NOT_FOUND, f"There is no trust anchor with id or thumbprint {key!r}.")
    return anchor


def remove_anchor(session: Session, ctx: RequestContext, id_or_thumbprint: str) -> TrustAnchor:
    anchor = get_anchor(session, id_or_thumbprint)
    record_audit(
        session, ctx, "Delete attestation trust anchor", category="ApplicationManagement", operation="Delete",
        target_type="Policy", target_id=anchor.id, target_name=anchor.display_name,
        service="Authentication Methods",
        changes=[modified("TrustAnchor", f"{anchor.display_name} ({anchor.thumbprint})", None)],
        details={"thumbprint": anchor.thumbprint},
    )
    session.delete(anchor)
    session.flush()
    return anchor


def anchor_json(anchor: TrustAnchor) -> dict[str, Any]:
    cert = x509.load_der_x509_certificate(anchor.certificate_der)
    return {
        "id": anchor.id,
        "displayName": anchor.display_name,
        "thumbprint": anchor.thumbprint,
        "subject": cert.subject.rfc4514_string(),
        "notAfter": cert.not_valid_after_utc.isoformat().replace("+00:00", "Z"),
        "createdDateTime": anchor.created_at.isoformat().replace("+00:00", "Z"),
    }


def custom_anchors(session: Session) -> list[Anchor]:
    return [Anchor(CUSTOM_LABEL + a.display_name, a.certificate_der) for a in list_anchors(session)]


# -- registration -----------------------------------------------------------------------------


def verify_registration(
    session: Session,
    settings: Settings,
    attestation: ceremonies.Attestation,
    challenge: bytes,
    now: datetime,
    require_attested: bool,
) -> tuple[ceremonies.NewPasskey, AttestationOutcome]:
    """Verify a registration and what its attestation proves, against the MDS BLOB in force and the
    custom trust anchors. Refuses (PassgateError) a damaged or forged registration, a withdrawn or
    compromised model, and, when ``require_attested``, a passkey that could not prove its model."""
    return evaluate(
        settings, attestation, challenge, now=now, require_attested=require_attested,
        payload=current_payload(session), anchors=custom_anchors(session),
    )


def evaluate(
    settings: Settings,
    attestation: ceremonies.Attestation,
    challenge: bytes,
    *,
    now: datetime,
    require_attested: bool,
    payload: MetadataBlobPayload | None,
    anchors: Sequence[Anchor],
) -> tuple[ceremonies.NewPasskey, AttestationOutcome]:
    """``verify_registration`` with the metadata and the custom anchors given (no database)."""
    chain = attestation_chain(attestation)
    aaguid = _aaguid(attestation)
    entry = find_entry(payload, aaguid, chain)
    model = mds.model_name(entry) or aaguids.model_name(aaguid)
    status = mds.latest_status(entry) if entry is not None else None
    certificates = [hashlib.sha1(der, usedforsecurity=False).hexdigest() for der in chain]

    anchor: Anchor | None = None
    new: ceremonies.NewPasskey | None = None
    untrusted = ""
    if attestation.fmt != "none" and chain:
        candidates = [Anchor(MDS_LABEL + (model or aaguid), der) for der in mds.roots_der(entry)] if entry else []
        # A re-issued anchor replaces the stored one: OpenSSL looks roots up by name and takes the first.
        reissued = _reissued(chain, anchors)
        candidates += [a for a in anchors if a.label not in {r.label for r in reissued}] + reissued
        if not candidates:
            untrusted = (f"No root is known for this model ({model or aaguid}): the FIDO Metadata Service in "
                         "force does not list it and no custom trust anchor is set.")
        else:
            try:
                new = ceremonies.verify_attestation(
                    settings, attestation, challenge, roots=[mds.pem(a.der) for a in candidates]
                )
            except PassgateError as exc:
                if exc.code is not errors.REGISTRATION_INVALID:
                    raise
            else:
                anchor = _anchor_of(chain, candidates)
                problem = _certificate_problem(attestation.fmt, chain[0], aaguid) if anchor else None
                if problem:
                    anchor, untrusted = None, problem
            if anchor is None and not untrusted:
                untrusted = (f"Its certificate chain (issued by {_issuer_of(chain[-1])}) does not lead to a root "
                             f"the FIDO Metadata Service lists for {model or aaguid}, nor to a custom trust anchor.")
    if new is None:
        # Unattested, or the chain did not verify to a trusted root: the registration itself must still hold.
        new = ceremonies.verify_attestation(settings, attestation, challenge)

    if entry is not None:
        refusal = status_refusal(
            mds.status_reports(entry), [*chain, *([anchor.der] if anchor else [])], now.date()
        )
        if refusal is not None:
            raise PassgateError(errors.PASSKEY_MODEL_REVOKED, f"The FIDO Metadata Service reports {refusal} "
                                                              f"for {model or aaguid}.")
    if anchor is None and require_attested:
        if untrusted:
            raise PassgateError(errors.ATTESTATION_UNTRUSTED, untrusted)
        raise PassgateError(errors.ATTESTATION_REQUIRED, f"It gave {_kind(attestation.fmt)} attestation.")
    return new, AttestationOutcome(
        attested=anchor is not None,
        trust_anchor=anchor.label[:ANCHOR_LABEL_LENGTH] if anchor else None,
        certificates=certificates,
        mds_status=status,
        model=model,
        untrusted=untrusted if anchor is None else "",
    )


def attestation_chain(attestation: ceremonies.Attestation) -> list[bytes]:
    """The attestation certificates as presented (attestation certificate first), DER; [] for none/self."""
    try:
        statement = parse_attestation_object(attestation.credential.response.attestation_object).att_stmt
    except Exception:  # already parsed once by parse_attestation; a failure here means nothing to show
        return []
    if statement.x5c:
        return [bytes(c) for c in statement.x5c if isinstance(c, bytes | bytearray)]
    if attestation.fmt == "android-safetynet" and isinstance(statement.response, bytes):
        try:
            header = json.loads(base64.urlsafe_b64decode(statement.response.split(b".", 1)[0] + b"==="))
            return [base64.b64decode(c) for c in header.get("x5c", [])]
        except (ValueError, TypeError, AttributeError):
            return []
    return []


def _aaguid(attestation: ceremonies.Attestation) -> str:
    data = attestation.auth_data.attested_credential_data
    if data is None or len(data.aaguid) != 16:
        return aaguids.ZERO
    return str(uuid.UUID(bytes=bytes(data.aaguid)))


def _anchor_of(chain: Sequence[bytes], candidates: Sequence[Anchor]) -> Anchor | None:
    """The candidate root the chain ends at: one of its certificates, or the issuer of its last one."""
    for candidate in candidates:
        if candidate.der in chain:
            return candidate
    try:
        last = x509.load_der_x509_certificate(chain[-1])
    except ValueError:
        return None
    for candidate in candidates:
        try:
            root = x509.load_der_x509_certificate(candidate.der)
        except ValueError:
            continue  # custom anchors and MDS roots were checked when stored; skip rather than fail
        if _issued_by(last, root):
            return candidate
    return None


def _certificate_problem(fmt: str, leaf_der: bytes, aaguid: str) -> str | None:
    """The packed attestation certificate requirements (WebAuthn §8.2.1) that py_webauthn leaves out."""
    if fmt != "packed":
        return None
    try:
        cert = x509.load_der_x509_certificate(leaf_der)
        extensions = cert.extensions
    except ValueError:
        return "Its attestation certificate cannot be read."
    subject = cert.subject
    if cert.version is not x509.Version.v3:
        return "Its attestation certificate is not an X.509 version 3 certificate."
    for oid, label in ((NameOID.COUNTRY_NAME, "C"), (NameOID.ORGANIZATION_NAME, "O"),
                       (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU"), (NameOID.COMMON_NAME, "CN")):
        if not subject.get_attributes_for_oid(oid):
            return f"Its attestation certificate's subject has no {label}."
    units = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    if "Authenticator Attestation" not in units:
        return 'Its attestation certificate\'s subject OU is not "Authenticator Attestation".'
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return "Its attestation certificate is a CA certificate."
    except x509.ExtensionNotFound:
        return "Its attestation certificate has no basic constraints."
    try:
        claimed = extensions.get_extension_for_oid(FIDO_AAGUID_EXTENSION)
    except x509.ExtensionNotFound:
        return None
    if claimed.critical:
        return "Its attestation certificate marks the AAGUID extension critical."
    value = getattr(claimed.value, "value", b"")
    expected = b"\x04\x10" + uuid.UUID(aaguid).bytes
    if value != expected:
        return "Its attestation certificate names another AAGUID than the passkey."
    return None


def _issuer_of(der: bytes) -> str:
    try:
        return repr(x509.load_der_x509_certificate(der).issuer.rfc4514_string())
    except ValueError:
        return "an unreadable certificate"


def _kind(fmt: str) -> str:
    return "no" if fmt == "none" else "only self"
