"""MDS3 BLOB verification: fido2.mds3 for the signature chain, Passgate's rules for the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from passgate.passkeys import mds
from tests.mdsgen import MetadataService, entry

PRODUCTION_2021 = Path(__file__).resolve().parents[1] / "fixtures" / "mds3" / "mds3-blob-production-no9-2021.jwt"
# Taken once at import: every date a test makes is relative to it, so a run that crosses midnight agrees.
NOW = datetime.now(UTC)


def test_real_2021_production_blob_verifies_but_is_refused_as_stale() -> None:
    with pytest.raises(mds.BlobRefused, match="stale"):
        mds.verify(PRODUCTION_2021.read_bytes(), mds.default_root(), None, NOW)
    payload = mds.parse_trusted(PRODUCTION_2021.read_bytes().strip())
    yubikey = mds.entry_for(payload, "ee882879-721c-4913-9775-3dfcce97072a")
    assert mds.model_name(yubikey) == "YubiKey 5 Series"


def test_fresh_blob_signed_by_the_configured_root_is_accepted() -> None:
    service = MetadataService.create()
    aaguid = "01020304-0506-0708-0102-030405060708"
    verified = mds.verify(service.blob([entry(aaguid, "Test key", roots_der=[service.root_der])]),
                          service.root_der, 99, NOW)
    found = mds.entry_for(verified.payload, aaguid)
    assert mds.model_name(found) == "Test key"
    assert found is not None and mds.latest_status(found) == "FIDO_CERTIFIED_L1"
    assert mds.roots_pem(found)[0].startswith(b"-----BEGIN CERTIFICATE-----")


def test_tampered_wrong_root_rolled_back_and_stale_blobs_are_refused() -> None:
    service = MetadataService.create()
    good = service.blob([entry("01020304-0506-0708-0102-030405060708", "Test key")], serial=100)
    head, payload, signature = good.split(b".")
    tampered = b".".join([head, payload[:-4] + (b"AAAA" if payload[-4:] != b"AAAA" else b"BBBB"), signature])
    with pytest.raises(mds.BlobRefused, match="does not verify"):
        mds.verify(tampered, service.root_der, None, NOW)
    with pytest.raises(mds.BlobRefused, match="does not verify"):
        mds.verify(good, MetadataService.create().root_der, None, NOW)
    with pytest.raises(mds.BlobRefused, match="older than the one in force"):
        mds.verify(good, service.root_der, 101, NOW)
    stale = service.blob([], serial=102, next_update=NOW.date() - timedelta(days=1))
    with pytest.raises(mds.BlobRefused, match="stale"):
        mds.verify(stale, service.root_der, None, NOW)
    with pytest.raises(mds.BlobRefused, match="not an MDS3 BLOB"):
        mds.verify(b"not a blob", service.root_der, None, NOW)
