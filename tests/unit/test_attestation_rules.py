from datetime import UTC, date, datetime

import pytest

from passgate.core.attestation import BlobFacts, StatusReport, blob_problem, status_refusal

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
GOOD = BlobFacts(serial=80, next_update=date(2026, 12, 1),
                 signer_not_before=datetime(2026, 1, 1, tzinfo=UTC), signer_not_after=datetime(2027, 1, 1, tzinfo=UTC))


def test_fresh_blob_with_a_newer_or_equal_serial_is_accepted() -> None:
    assert blob_problem(GOOD, None, NOW) is None
    assert blob_problem(GOOD, 79, NOW) is None
    assert blob_problem(GOOD, 80, NOW) is None


@pytest.mark.parametrize(
    ("blob", "previous", "words"),
    [
        (BlobFacts(9, date(2021, 12, 1), GOOD.signer_not_before, GOOD.signer_not_after), None, "stale"),
        (BlobFacts(80, GOOD.next_update, GOOD.signer_not_before, datetime(2022, 5, 14, tzinfo=UTC)), None,
         "signing certificate"),
        (GOOD, 81, "older than the one in force"),
    ],
)
def test_stale_expired_or_rolled_back_blobs_are_refused(blob: BlobFacts, previous: int | None, words: str) -> None:
    problem = blob_problem(blob, previous, NOW)
    assert problem is not None and words in problem


CERT_A, CERT_B = b"cert-a", b"cert-b"


@pytest.mark.parametrize(
    ("reports", "chain", "refused"),
    [
        ([StatusReport("FIDO_CERTIFIED_L1")], [CERT_A], None),
        ([StatusReport("FIDO_CERTIFIED_L1"), StatusReport("REVOKED")], [CERT_A], "REVOKED"),
        ([StatusReport("USER_VERIFICATION_BYPASS")], [CERT_A], "USER_VERIFICATION_BYPASS"),
        ([StatusReport("USER_KEY_REMOTE_COMPROMISE")], [CERT_A], "USER_KEY_REMOTE_COMPROMISE"),
        ([StatusReport("USER_KEY_PHYSICAL_COMPROMISE")], [CERT_A], "USER_KEY_PHYSICAL_COMPROMISE"),
        ([StatusReport("ATTESTATION_KEY_COMPROMISE")], [CERT_A], "ATTESTATION_KEY_COMPROMISE"),
        ([StatusReport("ATTESTATION_KEY_COMPROMISE", certificate=CERT_B)], [CERT_A], None),
        ([StatusReport("ATTESTATION_KEY_COMPROMISE", certificate=CERT_A)], [CERT_A], "ATTESTATION_KEY_COMPROMISE"),
        ([StatusReport("REVOKED", effective_date=date(2027, 1, 1))], [CERT_A], None),
        ([StatusReport("NOT_FIDO_CERTIFIED"), StatusReport("SELF_ASSERTION_SUBMITTED")], [CERT_A], None),
    ],
)
def test_status_reports(reports: list[StatusReport], chain: list[bytes], refused: str | None) -> None:
    assert status_refusal(reports, chain, NOW.date()) == refused
