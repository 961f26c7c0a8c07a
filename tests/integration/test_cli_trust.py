"""`passgate mds` and `passgate trust` as operators call them: real processes on a real database."""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from bench.softauthn import AttestationCA
from passgate.store.db import Database
from passgate.store.tables import DirectoryAudit, MdsBlob, TrustAnchor
from tests.integration.test_cli import run
from tests.mdsgen import MetadataService, entry

PRODUCTION_2021 = Path(__file__).resolve().parents[1] / "fixtures" / "mds3" / "mds3-blob-production-no9-2021.jwt"
AAGUID = "6f1c0d1e-8a55-4c1f-9d2e-2b7a3c4d5e6f"


@pytest.fixture
def env(db: Database, tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PASSGATE_")}
    return {**base, "PASSGATE_DATABASE_URL": db.url, "PASSGATE_DATA_DIR": str(tmp_path)}


@pytest.fixture(scope="module")
def service() -> MetadataService:
    return MetadataService.create()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local web server for `mds refresh --url`, serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def serials(db: Database) -> list[int]:
    with db.transaction() as session:
        return sorted(session.scalars(select(MdsBlob.serial)))


def test_mds_refresh_and_show(
    env: dict[str, str], db: Database, tmp_path: Path, service: MetadataService, served: tuple[str, Path]
) -> None:
    empty = run(env, "mds", "show")
    assert "no FIDO metadata BLOB is loaded" in empty.stdout
    assert run(env, "mds", "show", "--json").stdout.strip() == "null"

    root_pem = tmp_path / "mds-root.pem"
    root_pem.write_bytes(service.root.public_bytes(Encoding.PEM))
    blob = tmp_path / "blob.jwt"
    blob.write_bytes(service.blob([entry(AAGUID, "Contoso Key 5 NFC"), entry(AAGUID.replace("6f", "7a"), "X")],
                                  serial=100))
    loaded = json.loads(run(env, "mds", "refresh", "--file", str(blob), "--root", str(root_pem), "--json").stdout)
    assert loaded["serialNumber"] == 100 and loaded["entries"] == 2 and loaded["source"] == str(blob.resolve())
    shown = run(env, "mds", "show")
    assert "serial:     100" in shown.stdout and "entries:    2" in shown.stdout and "loaded at:" in shown.stdout
    assert json.loads(run(env, "mds", "show", "--json").stdout)["nextUpdate"] == loaded["nextUpdate"]

    # Refused BLOBs: the reason, exit 1, and the BLOB in force stays.
    stale = run(env, "mds", "refresh", "--file", str(PRODUCTION_2021), check=False)
    assert stale.returncode == 1
    assert "stale" in stale.stderr and "nextUpdate was 2021-12-01" in stale.stderr
    assert "stays no. 100" in stale.stderr
    tampered = tmp_path / "tampered.jwt"
    head, payload, signature = service.blob([], serial=101).split(b".")
    tampered.write_bytes(b".".join([head, payload[:-4] + b"AAAA", signature]))
    bad = run(env, "mds", "refresh", "--file", str(tampered), "--root", str(root_pem), check=False)
    assert bad.returncode == 1 and "does not verify" in bad.stderr
    rollback = tmp_path / "old.jwt"
    rollback.write_bytes(service.blob([], serial=99))
    older = run(env, "mds", "refresh", "--file", str(rollback), "--root", str(root_pem), check=False)
    assert older.returncode == 1 and "older than the one in force (100)" in older.stderr
    wrong_root = run(env, "mds", "refresh", "--file", str(blob), check=False)  # default root: GlobalSign R3
    assert wrong_root.returncode == 1 and "does not verify" in wrong_root.stderr
    assert serials(db) == [100]

    # From a URL (DER root this time).
    url, www = served
    (www / "blob").write_bytes(service.blob([entry(AAGUID, "Contoso Key 5 NFC")], serial=101))
    (tmp_path / "root.der").write_bytes(service.root_der)
    fetched = run(env, "mds", "refresh", "--url", f"{url}/blob", "--root", str(tmp_path / "root.der"))
    assert "BLOB no. 101 is in force: 1 entries" in fetched.stdout
    assert serials(db) == [100, 101]
    missing = run(env, "mds", "refresh", "--url", f"{url}/nothing-here", "--root", str(root_pem), check=False)
    assert missing.returncode == 1 and "cannot download" in missing.stderr

    for args, text in [((), "exactly one of --file and --url"),
                       (("--file", str(tmp_path / "absent.jwt")), "cannot read --file"),
                       (("--url", "ftp://example.com/blob"), "https://"),
                       (("--file", str(blob), "--root", str(blob)), "--root")]:
        done = run(env, "mds", "refresh", *args, check=False)
        assert done.returncode == 1 and text in done.stderr, (args, done.stderr)
    assert serials(db) == [100, 101]
    with db.transaction() as session:
        updates = session.scalars(
            select(DirectoryAudit).where(DirectoryAudit.activity_display_name == "Update FIDO metadata")).all()
        assert len(updates) == 2


def test_trust_add_list_remove(env: dict[str, str], db: Database, tmp_path: Path) -> None:
    assert run(env, "trust", "list").stdout.strip() == "no custom trust anchors"
    ca = AttestationCA.create("Northwind Token Root")
    pem = tmp_path / "northwind.pem"
    pem.write_bytes(ca.pem)
    added = json.loads(run(env, "trust", "add", str(pem), "--json").stdout)
    assert added["displayName"] == "Northwind Token Root"
    assert added["subject"].startswith("CN=Northwind Token Root")
    again = run(env, "trust", "add", str(pem), check=False)
    assert again.returncode == 1 and "Request_Conflict" in again.stderr and "already a trust anchor" in again.stderr

    der = tmp_path / "second.der"
    der.write_bytes(AttestationCA.create("Second").der)
    named = run(env, "trust", "add", str(der), "--name", "Tailspin tokens")
    assert "added trust anchor Tailspin tokens" in named.stdout
    leaf = tmp_path / "batch.der"
    leaf.write_bytes(ca.issue(AAGUID).der)
    refused = run(env, "trust", "add", str(leaf), check=False)
    assert refused.returncode == 1 and "not by itself" in refused.stderr

    listed = json.loads(run(env, "trust", "list", "--json").stdout)
    assert [a["displayName"] for a in listed] == ["Northwind Token Root", "Tailspin tokens"]
    assert added["thumbprint"] in run(env, "trust", "list").stdout

    assert "removed trust anchor Northwind" in run(env, "trust", "remove", added["thumbprint"]).stdout
    assert "removed trust anchor Tailspin" in run(env, "trust", "remove", listed[1]["id"]).stdout
    gone = run(env, "trust", "remove", added["id"], check=False)
    assert gone.returncode == 1 and "no trust anchor" in gone.stderr
    with db.transaction() as session:
        assert session.scalars(select(TrustAnchor)).all() == []
        activities = sorted(session.scalars(select(DirectoryAudit.activity_display_name)))
    assert activities == ["Add attestation trust anchor"] * 2 + ["Delete attestation trust anchor"] * 2
