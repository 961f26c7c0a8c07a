"""End-to-end fixtures: a real `passgate serve` process and headless Chromium with a virtual authenticator.

The server runs on the database of the `database_url` fixture (SQLite, and PostgreSQL when
PASSGATE_TEST_POSTGRES_URL is set). Chromium is Debian's, driven by Playwright's sync API; passkeys
are made by Chromium's DevTools virtual authenticator.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from passgate.store.db import Database
from tests.conftest import empty_tables

CHROMIUM = os.environ.get("PASSGATE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Chromium's virtual authenticator: a platform authenticator with discoverable keys and user verification.
DEVICE_BOUND = {
    "protocol": "ctap2", "ctap2Version": "ctap2_1", "transport": "internal",
    "hasResidentKey": True, "hasUserVerification": True, "isUserVerified": True,
    "automaticPresenceSimulation": True, "defaultBackupEligibility": False, "defaultBackupState": False,
}
SYNCED = {**DEVICE_BOUND, "defaultBackupEligibility": True, "defaultBackupState": True}


def passgate_command() -> list[str]:
    """The installed `passgate` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("passgate")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from passgate.cli import main; main()"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """A running `passgate serve` and what it takes to drive it from outside."""

    base_url: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes]
    _app: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str) -> Any:
        """Run `passgate ARGS --json` against the server's database and return the parsed output."""
        done = subprocess.run(
            [*passgate_command(), *args, "--json"], env=self.env, capture_output=True,
            text=True, timeout=60, check=False,
        )
        assert done.returncode == 0, f"passgate {' '.join(args)} failed: {done.stderr}"
        return json.loads(done.stdout)

    # -- the Graph admin API, as an automation app sees it ------------------------------------
    def app_credentials(self) -> dict[str, str]:
        if not self._app:
            out = self.cli(
                "apps", "add", "--name", "e2e provisioning",
                "--permission", "User.ReadWrite.All", "--permission", "UserAuthenticationMethod.ReadWrite.All",
            )
            self._app.update(appId=out["appId"], clientSecret=out["clientSecret"])
        return self._app

    def graph_token(self) -> str:
        app = self.app_credentials()
        response = httpx.post(
            f"{self.base_url}/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": app["appId"], "client_secret": app["clientSecret"]},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def graph(self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
        response = httpx.request(
            method, f"{self.base_url}/v1.0{path}", json=body, timeout=30,
            headers={"Authorization": f"Bearer {token or self.graph_token()}"},
        )
        assert response.status_code in (200, 201), f"{method} {path}: {response.status_code} {response.text}"
        return response.json()


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"passgate serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"passgate serve did not listen on port {port} within {seconds}s:\n{log.read_text()}")


@pytest.fixture(scope="package")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`passgate serve` on a free port, on an emptied database; stopped at the end."""
    db = Database(database_url)
    empty_tables(db)
    db.dispose()
    port = _free_port()
    data_dir = tmp_path_factory.mktemp("passgate-e2e")
    origin = f"http://localhost:{port}"
    env = {
        **os.environ,
        "PASSGATE_DATABASE_URL": database_url,
        "PASSGATE_DATA_DIR": str(data_dir),
        "PASSGATE_ORIGINS": origin,
        "PASSGATE_RP_ID": "localhost",
    }
    env.pop("PASSGATE_CONFIG_FILE", None)
    log = data_dir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*passgate_command(), "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_listening(process, port, log)
        yield Server(base_url=origin, env=env, log=log, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (scripts/test installs Debian's chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Browser:
    """One browser profile (a fresh context: no cookies) with one page and its DevTools session."""

    def __init__(self, context: Any, base_url: str) -> None:
        self.context = context
        self.page = context.new_page()
        self.page.set_default_timeout(15_000)
        self.base_url = base_url
        # Script errors and Content-Security-Policy refusals on any page fail the test.
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        self.page.on("console", self._console)
        self.cdp = context.new_cdp_session(self.page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        self.authenticators: list[str] = []

    def _console(self, message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.problems.append(f"console: {message.text}")

    def add_authenticator(self, options: dict[str, Any]) -> str:
        """Plug in a virtual authenticator (keep one at a time: Chromium asks every one that is plugged in)."""
        found = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
        authenticator_id: str = found["authenticatorId"]
        self.authenticators.append(authenticator_id)
        return authenticator_id

    def remove_authenticator(self, authenticator_id: str) -> None:
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator_id})
        self.authenticators.remove(authenticator_id)

    def credentials(self, authenticator_id: str) -> list[dict[str, Any]]:
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
        creds: list[dict[str, Any]] = found["credentials"]
        return creds

    def goto(self, path: str) -> Any:
        return self.page.goto(f"{self.base_url}{path}")


@pytest.fixture
def make_browser(browser: Any, server: Server) -> Iterator[Any]:
    """Open fresh browser profiles on the server (each its own cookies and authenticators)."""
    contexts: list[Any] = []
    browsers: list[Browser] = []

    def make() -> Browser:
        context = browser.new_context(base_url=server.base_url, locale="en-GB", timezone_id="UTC")
        contexts.append(context)
        browsers.append(Browser(context, server.base_url))
        return browsers[-1]

    yield make
    for context in contexts:
        context.close()
    problems = [problem for b in browsers for problem in b.problems]
    assert not problems, "the pages had problems:\n" + "\n".join(problems)
