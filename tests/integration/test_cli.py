"""The `passgate` command as operators and scripts call it: a real process on a real database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from passgate.core import roles
from passgate.store.db import Database
from passgate.store.tables import DirectoryAudit, GroupMember, RoleAssignment, TemporaryAccessPass, User


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "passgate", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check and done.returncode != 0:
        raise AssertionError(f"passgate {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


@pytest.fixture
def env(db: Database, tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PASSGATE_")}
    return {**base, "PASSGATE_DATABASE_URL": db.url, "PASSGATE_DATA_DIR": str(tmp_path)}


def test_bootstrap_prints_the_pass_once_and_never_again(env: dict[str, str], db: Database) -> None:
    first = json.loads(run(env, "bootstrap", "--admin-upn", "Root@Example.com", "--json").stdout)
    assert first["userPrincipalName"] == "root@example.com"
    assert len(first["temporaryAccessPass"]) == 8
    assert first["signInUrl"] == "http://localhost:8000/"
    again = run(env, "bootstrap", "--json", check=False)
    assert again.returncode == 1
    assert "already bootstrapped" in again.stderr
    assert first["temporaryAccessPass"] not in again.stdout + again.stderr
    with db.transaction() as s:
        admin = s.scalar(select(User).where(User.user_principal_name == "root@example.com"))
        assert admin is not None
        assert s.scalar(select(RoleAssignment.role_definition_id).where(RoleAssignment.principal_id == admin.id)) == (
            roles.GLOBAL_ADMINISTRATOR
        )
        stored = s.scalar(select(TemporaryAccessPass.pass_hash).where(TemporaryAccessPass.user_id == admin.id))
        assert stored is not None and first["temporaryAccessPass"] not in stored


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_until_ready(env: dict[str, str], port: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "passgate", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/oauth2/jwks", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError(f"serve did not start: {proc.stdout.read() if proc.stdout else ''}")
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    return proc, out


def test_serve_bootstraps_on_first_run_only(env: dict[str, str]) -> None:
    port = _free_port()
    _, first = _serve_until_ready(env, port)
    assert "Temporary Access Pass:" in first
    assert f"http://localhost:{port}/" in first
    _, second = _serve_until_ready(env, port)
    assert "Temporary Access Pass" not in second
    assert "listening" in second


def test_a_worker_keeps_what_it_built_out_of_the_collectors_walks(env: dict[str, str]) -> None:
    # What a served worker imports (passgate.asgi) leaves the app's objects frozen: a full collection then walks
    # only what requests made since, not the ~160,000 objects of the app, which took 150 ms on the bench machine.
    probe = "import gc, passgate.asgi; print(gc.get_freeze_count(), len(gc.get_objects()))"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    frozen, walked = map(int, done.stdout.split())
    assert frozen > 50_000
    assert walked < frozen / 20


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PASSGATE_ORIGINS", "ftp://nowhere"), ("PASSGATE_RP_ID", "https://x.example"),
     ("PASSGATE_DATABASE_URL", "mysql://u@h/db")],
)
def test_invalid_configuration_stops_with_the_setting_named(env: dict[str, str], variable: str, value: str) -> None:
    done = run({**env, variable: value}, "migrate", check=False)
    assert done.returncode == 2
    assert variable in done.stderr


def test_directory_commands(env: dict[str, str], db: Database) -> None:
    added = json.loads(run(env, "users", "add", "ada@example.com", "--display-name", "Ada", "--json").stdout)
    run(env, "groups", "add", "Admins")
    run(env, "groups", "add-member", "Admins", "ada@example.com")
    run(env, "roles", "assign", "ada@example.com", "authentication-administrator")
    listed = json.loads(run(env, "users", "list", "--json").stdout)
    assert [u["userPrincipalName"] for u in listed] == ["ada@example.com"]
    run(env, "users", "disable", "ada@example.com")
    duplicate = run(env, "users", "add", "ADA@example.com", check=False)
    assert duplicate.returncode == 1 and "Request_Conflict" in duplicate.stderr
    with db.transaction() as s:
        user = s.get(User, added["id"])
        assert user is not None and not user.account_enabled
        assert s.scalar(select(func.count()).select_from(GroupMember)) == 1
        assert s.scalar(select(RoleAssignment.role_definition_id)) == roles.AUTHENTICATION_ADMINISTRATOR
        activities = set(s.scalars(select(DirectoryAudit.activity_display_name)))
    assert {"Add user", "Add group", "Add member to group", "Add member to role", "Disable account"} <= activities


def test_tap_issue_and_its_bounds(env: dict[str, str], db: Database) -> None:
    run(env, "users", "add", "bo@example.com")
    issued: dict[str, Any] = json.loads(run(env, "tap", "issue", "bo@example.com", "--one-time", "--json").stdout)
    assert issued["isUsableOnce"] is True and issued["lifetimeInMinutes"] == 60
    replaced = json.loads(run(env, "tap", "issue", "bo@example.com", "--lifetime", "120", "--json").stdout)
    assert replaced["id"] != issued["id"]
    refused = run(env, "tap", "issue", "bo@example.com", "--lifetime", "5", check=False)
    assert refused.returncode == 1 and "135105" in refused.stderr
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(TemporaryAccessPass)) == 1


def test_apps_add_prints_a_working_secret_once(env: dict[str, str], db: Database, client: Any) -> None:
    out = json.loads(
        run(env, "apps", "add", "--name", "auto", "--permission", "User.ReadWrite.All", "--json").stdout
    )
    token = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": out["appId"], "client_secret": out["clientSecret"]},
    )
    assert token.status_code == 200, token.text
    assert token.json()["token_type"].lower() == "bearer"
    unknown = run(env, "apps", "add", "--name", "x", "--permission", "Everything.All", check=False)
    assert unknown.returncode == 1 and "Everything.All" in unknown.stderr
