"""Virtual users that drive Passgate through its public HTTP interface only.

A sign-in is what an app and a browser do together: the app's authorize request (code flow, PKCE S256,
nonce), the headless sign-in API for request options, the authenticator's assertion (sent with the page's
way back, so that its answer is the app's redirect URI with the code, as the sign-in page gets it), and the
app's code exchange; the ID token is then verified against the JWKS like an app would. `--follow-next`
does what a sign-in page that does not send its way back does: the authorize request again, with the
session, for the code. Each sign-in starts from an empty cookie jar, so no
sign-in is served by single sign-on. Provisioning uses the Graph API as an automation script would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .softauthn import SoftAuthenticator
from .wire import Client, Response, WireError

REDIRECT_URI = "http://localhost:9000/cb"
FIDO2_TYPE = "#microsoft.graph.fido2AuthenticationMethod"
SCOPE = "openid profile email offline_access"
REFRESH_STEP = "refresh"
FRESH = "passgate_fresh"  # the pending authorization's marker in the sign-in page's way back


class BenchError(Exception):
    """A response that a real app or browser would not accept."""


@dataclass(slots=True)
class BenchUser:
    upn: str
    user_id: str
    authenticator: SoftAuthenticator
    refresh_token: str | None = None


@dataclass(slots=True)
class Target:
    base_url: str  # where requests go (always 127.0.0.1)
    origin: str  # the origin the browser would be on (PASSGATE_ORIGINS)
    issuer: str
    client_id: str
    client_secret: str
    username_first: bool = True
    follow_next: bool = False  # the page does not send its way back: authorize again for the code
    reuse_connections: bool = False  # browsers share the generator's kept connections instead of opening their own


@dataclass
class Tally:
    """What one measured window saw: completed operations, latencies per HTTP step, and errors."""

    completed: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    verified_id_tokens: int = 0

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(message[:300])


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class Cookies:
    """Just enough of a cookie jar for one host and one browser: each sign-in starts with an empty one."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def take(self, response: Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            pair, _, attributes = header.partition(";")
            name, _, value = pair.strip().partition("=")
            if not value or "max-age=0" in attributes.lower().replace(" ", ""):
                self.values.pop(name, None)
            else:
                self.values[name] = value.strip('"')

    def header(self) -> dict[str, str]:
        return {"cookie": "; ".join(f"{k}={v}" for k, v in self.values.items())} if self.values else {}


class Verifier:
    """Checks ID tokens as a relying party does: signature against the JWKS, then iss, aud, exp, nonce."""

    def __init__(self, client: Client, target: Target) -> None:
        self.client = client
        self.target = target
        self.keys: KeySet | None = None

    async def load(self) -> None:
        answer = await self.client.get("/oauth2/jwks")
        if answer.status_code != 200:
            raise BenchError(f"JWKS answered {answer.status_code}")
        self.keys = KeySet.import_key_set(answer.json())

    async def check(self, id_token: str, nonce: str | None, subject: str) -> dict[str, Any]:
        if self.keys is None:
            await self.load()
        assert self.keys is not None
        try:
            claims = jwt.decode(id_token, self.keys, algorithms=["ES256", "RS256"]).claims
        except (JoseError, ValueError):
            await self.load()  # a rotated key: refetch once, as a relying party would
            claims = jwt.decode(id_token, self.keys, algorithms=["ES256", "RS256"]).claims
        now = time.time()
        if claims.get("iss") != self.target.issuer or claims.get("aud") != self.target.client_id:
            raise BenchError(f"ID token iss/aud wrong: {claims.get('iss')} {claims.get('aud')}")
        if not claims.get("exp") or claims["exp"] < now - 5:
            raise BenchError("ID token expired")
        if nonce is not None and claims.get("nonce") != nonce:
            raise BenchError("ID token nonce mismatch")
        if claims.get("sub") != subject:
            raise BenchError("ID token subject is not the user who signed in")
        return dict(claims)


async def _timed(tally: Tally, step: str, call: Awaitable[Response]) -> Response:
    start = time.perf_counter()
    response = await call
    tally.latencies[step].append(time.perf_counter() - start)
    return response


def _expect(response: Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise BenchError(f"{what}: HTTP {response.status_code} {response.text[:200]}")


async def sign_in(client: Client, target: Target, verifier: Verifier, user: BenchUser,
                  tally: Tally) -> None:
    """One complete OIDC passkey sign-in from a fresh browser; raises BenchError on anything wrong. The browser's
    requests go on connections of its own, opened for this sign-in (a new browser has none open), unless the
    target says to reuse the shared pool; the app's code exchange uses the shared pool, as an app server would."""
    browser = client if target.reuse_connections else Client(target.base_url)
    try:
        await _browser_sign_in(browser, client, target, verifier, user, tally)
    finally:
        if browser is not client:
            await browser.aclose()


async def _browser_sign_in(browser: Client, client: Client, target: Target, verifier: Verifier, user: BenchUser,
                           tally: Tally) -> None:
    cookies = Cookies()
    code_verifier, code_challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    params = {
        "client_id": target.client_id, "redirect_uri": REDIRECT_URI, "response_type": "code", "scope": SCOPE,
        "state": state, "nonce": nonce, "code_challenge": code_challenge, "code_challenge_method": "S256",
    }
    first = await _timed(tally, "authorize", browser.get("/oauth2/authorize", params=params))
    _expect(first, 303, "authorize")
    cookies.take(first)  # the browser's agent cookie: the pending authorization is bound to it
    location = urlsplit(first.headers["location"])
    if location.path != "/signin":
        raise BenchError(f"authorize sent the browser to {location.path}, not /signin")
    back = parse_qs(location.query)["next"][0]
    # What the sign-in page sends: the pending authorization's marker, and (unless told not to) its way back.
    page = {"authorization": parse_qs(urlsplit(back).query)[FRESH][0]}
    api_headers = {"origin": target.origin}
    username = {"username": user.upn} if target.username_first else {}
    options = await _timed(tally, "options", browser.post(
        "/api/signin/passkey/options", json={**username, **page}, headers={**api_headers, **cookies.header()}))
    _expect(options, 200, "passkey options")
    cookies.take(options)
    credential = user.authenticator.get(options.json(), target.origin)
    if not target.follow_next:
        page["next"] = back
    signed = await _timed(tally, "assertion", browser.post(
        "/api/signin/passkey", json={"credential": credential, **page}, headers={**api_headers, **cookies.header()}))
    _expect(signed, 200, "passkey sign-in")
    cookies.take(signed)
    where = signed.json().get("redirect", "")
    if target.follow_next:
        again = await _timed(tally, "authorize_code", browser.get(back, headers=cookies.header()))
        _expect(again, 302, "authorize with a session")
        where = again.headers["location"]
    if not where.startswith(REDIRECT_URI + "?"):
        raise BenchError(f"the sign-in did not end at the app: {where[:200]}")
    answer = {k: v[0] for k, v in parse_qs(urlsplit(where).query).items()}
    if answer.get("state") != state or "code" not in answer or answer.get("iss") != target.issuer:
        raise BenchError(f"authorize answer wrong: {sorted(answer)}")
    form = {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": REDIRECT_URI,
            "client_id": target.client_id, "client_secret": target.client_secret, "code_verifier": code_verifier}
    token = await _timed(tally, "token", client.post("/oauth2/token", data=form))
    _expect(token, 200, "code exchange")
    body = token.json()
    await verifier.check(body["id_token"], nonce, user.user_id)
    tally.verified_id_tokens += 1
    user.refresh_token = body.get("refresh_token")


async def refresh(client: Client, target: Target, verifier: Verifier, user: BenchUser,
                  tally: Tally) -> None:
    """One refresh_token grant; the refresh token rotates, so the new one replaces the old."""
    if not user.refresh_token:
        raise BenchError("no refresh token to use")
    form = {"grant_type": "refresh_token", "refresh_token": user.refresh_token,
            "client_id": target.client_id, "client_secret": target.client_secret}
    answer = await _timed(tally, REFRESH_STEP, client.post("/oauth2/token", data=form))
    _expect(answer, 200, "refresh")
    body = answer.json()
    if not body.get("refresh_token") or body["refresh_token"] == user.refresh_token:
        raise BenchError("the refresh token did not rotate")
    user.refresh_token = body["refresh_token"]
    if "id_token" in body:
        await verifier.check(body["id_token"], None, user.user_id)
        tally.verified_id_tokens += 1


async def http_floor(client: Client, target: Target, verifier: Verifier, user: BenchUser,
                     tally: Tally) -> None:
    """GET /oauth2/jwks: no database, keys cached in the worker. What any request costs the server at least
    (HTTP parsing, routing, middleware, one thread-pool hand-off, a small JSON response)."""
    answer = await _timed(tally, "jwks", client.get("/oauth2/jwks"))
    _expect(answer, 200, "jwks")


Operation = Callable[[Client, Target, Verifier, BenchUser, Tally], Awaitable[None]]


async def run_window(client: Client, target: Target, verifier: Verifier, users: list[BenchUser],
                     operation: Operation, concurrency: int, seconds: float, rate: float | None = None) -> Tally:
    """`concurrency` virtual users repeat `operation` for `seconds`; with `rate`, starts are paced to that
    many per second (open loop, so latency at a given load is measured, not the load the server allows).

    A user is never used by two virtual users at once: its authenticator's counter must only grow."""
    tally = Tally()
    idle: asyncio.Queue[BenchUser] = asyncio.Queue()
    for user in users:
        idle.put_nowait(user)
    deadline = time.perf_counter() + seconds
    pace = {"next": time.perf_counter()}

    async def virtual_user() -> None:
        while True:
            if rate:
                slot = max(time.perf_counter(), pace["next"])
                pace["next"] = slot + 1.0 / rate
                if slot >= deadline:
                    return
                await asyncio.sleep(slot - time.perf_counter())
            if time.perf_counter() >= deadline:
                return
            user = await idle.get()
            try:
                await operation(client, target, verifier, user, tally)
                tally.completed += 1
            except (BenchError, WireError, KeyError, ValueError, JoseError) as exc:
                tally.error(f"{type(exc).__name__}: {exc}")
            finally:
                idle.put_nowait(user)

    await asyncio.gather(*(virtual_user() for _ in range(concurrency)))
    return tally


# -- provisioning through Graph --------------------------------------------------------------------
async def app_token(client: Client, app_id: str, secret: str) -> str:
    answer = await client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": app_id, "client_secret": secret})
    _expect(answer, 200, "client credentials")
    return str(answer.json()["access_token"])


async def provision_one(client: Client, token: str, origin: str, upn: str, tally: Tally) -> BenchUser:
    """POST /users, creationOptions, the authenticator's answer, POST fido2Methods."""
    headers = {"authorization": f"Bearer {token}"}
    created = await _timed(tally, "create_user", client.post("/v1.0/users", headers=headers, json={
        "userPrincipalName": upn, "displayName": upn.split("@")[0], "accountEnabled": True}))
    _expect(created, 201, "create user")
    user_id = created.json()["id"]
    path = f"/v1.0/users/{user_id}/authentication/fido2Methods"
    options = await _timed(tally, "creation_options", client.get(f"{path}/creationOptions", headers=headers))
    _expect(options, 200, "creationOptions")
    authenticator = SoftAuthenticator()
    credential = authenticator.create(options.json()["publicKey"], origin)
    response = credential["response"]
    body = {"@odata.type": FIDO2_TYPE, "displayName": "Bench passkey", "publicKeyCredential": {
        "id": credential["id"],
        "response": {"clientDataJSON": response["clientDataJSON"], "attestationObject": response["attestationObject"]},
        "clientExtensionResults": credential["clientExtensionResults"],
    }}
    stored = await _timed(tally, "register_passkey", client.post(path, headers=headers, json=body))
    _expect(stored, 201, "POST fido2Methods")
    return BenchUser(upn=upn, user_id=user_id, authenticator=authenticator)


async def provision(client: Client, token: str, origin: str, count: int, concurrency: int,
                    prefix: str) -> tuple[list[BenchUser], Tally]:
    tally = Tally()
    users: list[BenchUser] = []
    names: asyncio.Queue[str] = asyncio.Queue()
    for i in range(count):
        names.put_nowait(f"{prefix}{i:06d}@bench.example")

    async def worker() -> None:
        while not names.empty():
            upn = names.get_nowait()
            try:
                users.append(await provision_one(client, token, origin, upn, tally))
                tally.completed += 1
                if count >= 1000 and tally.completed % (count // 10) == 0:
                    print(f"    {tally.completed} of {count} provisioned", flush=True)
            except (BenchError, WireError, KeyError, ValueError) as exc:
                tally.error(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return users, tally


def new_client(base_url: str, connections: int) -> Client:
    """Connections open as virtual users need them (one each at most, like a browser) and stay open."""
    return Client(base_url)
