"""Attestation trust rules: when a FIDO metadata BLOB may replace the one in force, and which
authenticator statuses refuse a registration. Pure: the caller parses and verifies signatures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

# Statuses after which no new registration of the model is accepted (FIDO MDS3 §3.1.4).
REFUSED_STATUSES = frozenset(
    {
        "REVOKED",
        "ATTESTATION_KEY_COMPROMISE",
        "USER_VERIFICATION_BYPASS",
        "USER_KEY_REMOTE_COMPROMISE",
        "USER_KEY_PHYSICAL_COMPROMISE",
    }
)


@dataclass(frozen=True, slots=True)
class BlobFacts:
    serial: int
    next_update: date
    signer_not_before: datetime
    signer_not_after: datetime


def blob_problem(blob: BlobFacts, previous_serial: int | None, now: datetime) -> str | None:
    """Why a BLOB whose signature chain already verified must still be refused, or None."""
    if blob.next_update < now.date():
        return (f"the BLOB is stale: its nextUpdate was {blob.next_update.isoformat()}; "
                "download the current one from the FIDO Alliance")
    if not blob.signer_not_before <= now <= blob.signer_not_after:
        return (f"the BLOB's signing certificate is not valid now (valid {blob.signer_not_before:%Y-%m-%d} "
                f"to {blob.signer_not_after:%Y-%m-%d})")
    if previous_serial is not None and blob.serial < previous_serial:
        return f"the BLOB's serial number {blob.serial} is older than the one in force ({previous_serial})"
    return None


@dataclass(frozen=True, slots=True)
class StatusReport:
    status: str
    effective_date: date | None = None
    certificate: bytes | None = None  # DER of the compromised attestation certificate, when given


def status_refusal(reports: Sequence[StatusReport], chain: Sequence[bytes], today: date) -> str | None:
    """The status that refuses this registration, or None.

    A compromise report that names a certificate refuses only attestations whose chain holds it;
    one that names none refuses every attestation of the model.
    """
    for report in reports:
        if report.status not in REFUSED_STATUSES:
            continue
        if report.effective_date is not None and report.effective_date > today:
            continue
        if report.certificate is not None and report.certificate not in chain:
            continue
        return report.status
    return None
