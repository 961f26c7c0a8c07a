"""Damaged input at every ceremony endpoint: always a 4xx with a stable code, never a 500, nothing stored.

The sign-in endpoint logs a damaged credential as a failed sign-in (that is the one row it may add);
everything else must stay exactly as it was. Hand-picked cases first, then hypothesis.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.softauthn import SoftAuthenticator, b64url, b64url_decode
from passgate.core import errors
from passgate.core.errors import ErrorCode, catalogue
from passgate.store.db import Database
from tests.integration.test_signin_support import (
    enrol,
    error_of,
    refused_attempt,
    request_options,
    sign_ins,
    signed_in_as,
    snapshot,
)

ORIGIN = "http://localhost:8443"
EVIL = "http://evil.localhost:8443"
CODES = {c.name: c for c in catalogue()}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

NOT_JSON_OBJECTS = [
    b"not json",
    b"{\"username\": ",
    b"[]",
    b"[{\"username\": \"a@example.com\"}]",
    b"\"a@example.com\"",
    b"null",
    b"42",
    b"\xff\xfe\x00garbage",
    b"[" * 100_000 + b"]" * 100_000,
]

ENDPOINTS = [
    "/api/signin/identify",
    "/api/signin/passkey/options",
    "/api/signin/passkey",
    "/api/signin/tap",
    "/api/me/passkeys/options",
    "/api/me/passkeys",
]


def raw_post(client: Any, path: str, content: bytes) -> Any:
    return client.post(path, content=content, headers={"content-type": "application/json"})


def stable_4xx(response: Any) -> ErrorCode:
    """A 4xx whose body is the error shape with a code from the catalogue."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    error = response.json()["error"]
    code = CODES[error["code"]]
    assert error["innerError"]["passgateCode"] == code.number
    return code


def unchanged(db: Database, send: Callable[[], Any], *, logged: int = 0) -> ErrorCode:
    """Send; expect a stable 4xx, nothing stored, and at most `logged` new sign-in log entries with its code."""
    before, log_before = snapshot(db), len(sign_ins(db))
    code = stable_4xx(send())
    assert snapshot(db) == before
    added = sign_ins(db)[log_before:]
    assert len(added) <= logged
    assert all(entry.error_code == code.number for entry in added)
    return code


# -- the request body --------------------------------------------------------------------------
@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_body_that_is_not_a_json_object_is_refused_everywhere(client: Any, db: Database, path: str) -> None:
    signed_in_as(client, db, "ann@example.com")  # so that /api/me/... get as far as the body
    for content in NOT_JSON_OBJECTS:
        assert unchanged(db, lambda c=content: raw_post(client, path, c)) is errors.MALFORMED_JSON


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/api/signin/identify", {}, errors.INVALID_REQUEST),
        ("/api/signin/identify", {"username": 5}, errors.INVALID_REQUEST),
        ("/api/signin/identify", {"username": ["a@example.com"]}, errors.INVALID_REQUEST),
        ("/api/signin/identify", {"username": "   "}, errors.INVALID_REQUEST),
        ("/api/signin/identify", {"username": "a" * 600}, errors.INVALID_REQUEST),
        ("/api/signin/passkey/options", {"username": 5}, errors.INVALID_REQUEST),
        ("/api/signin/passkey/options", {"username": {"$ne": ""}}, errors.INVALID_REQUEST),
        ("/api/signin/passkey/options", {"username": ""}, errors.INVALID_REQUEST),
        ("/api/signin/tap", {}, errors.INVALID_REQUEST),
        ("/api/signin/tap", {"username": "ann@example.com"}, errors.INVALID_REQUEST),
        ("/api/signin/tap", {"temporaryAccessPass": "ABCDEFGH"}, errors.INVALID_REQUEST),
        ("/api/signin/tap", {"username": "ann@example.com", "temporaryAccessPass": 12345678}, errors.INVALID_REQUEST),
        ("/api/signin/tap", {"username": True, "temporaryAccessPass": "ABCDEFGH"}, errors.INVALID_REQUEST),
        ("/api/signin/tap", {"username": "ann@example.com", "temporaryAccessPass": None}, errors.INVALID_REQUEST),
        ("/api/me/passkeys", {}, errors.MALFORMED_CREDENTIAL),
        ("/api/me/passkeys", {"credential": None}, errors.MALFORMED_CREDENTIAL),
        ("/api/me/passkeys", {"credential": 5}, errors.MALFORMED_CREDENTIAL),
        ("/api/me/passkeys", {"credential": "{not json"}, errors.MALFORMED_CREDENTIAL),
        ("/api/me/passkeys", {"credential": ["id"]}, errors.MALFORMED_CREDENTIAL),
        ("/api/me/passkeys", {"credential": {}}, errors.MALFORMED_CREDENTIAL),
        ("/api/me/passkeys", {"credential": {}, "displayName": 5}, errors.INVALID_REQUEST),
    ],
)
def test_missing_fields_and_wrong_types_are_refused(
    client: Any, db: Database, path: str, body: dict[str, Any], code: ErrorCode
) -> None:
    signed_in_as(client, db, "ann@example.com")
    assert unchanged(db, lambda: client.post(path, json=body)) is code


@pytest.mark.parametrize(
    "credential", [None, 5, "{not json", "[1]", ["id"], {}, {"id": "AAAA"}, "[" * 50_000 + "]" * 50_000]
)
def test_a_credential_that_is_not_one_is_refused_and_logged(client: Any, db: Database, credential: Any) -> None:
    refused_attempt(
        db, lambda: client.post("/api/signin/passkey", json={"credential": credential}),
        errors.MALFORMED_CREDENTIAL, "Passkey",
    )


# -- each member of an authentication credential -----------------------------------------------
BAD_BASE64URL = ["!!!!", "a", "abcde", "ab$c", "ab+/", "a b c", "é", "AAAA====", "=AAA"]
WRONG_TYPES = [5, 1.5, True, [], {}, ["AAAA"], {"id": "AAAA"}]


def set_member(credential: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(credential))
    target = copy["response"] if path.startswith("response.") else copy
    name = path.removeprefix("response.")
    if value is _DELETE:
        target.pop(name, None)
    else:
        target[name] = value
    return copy


_DELETE = object()
ASSERTION_MEMBERS = ["id", "rawId", "response.clientDataJSON", "response.authenticatorData", "response.signature",
                     "response.userHandle"]


@pytest.fixture
def assertion(client: Any, db: Database) -> dict[str, Any]:
    """A genuine usernameless assertion for a fresh challenge (nothing posted yet)."""
    _, authenticator, _ = enrol(client, db, "ann@example.com")
    return authenticator.get(request_options(client), ORIGIN)


@pytest.mark.parametrize("member", ASSERTION_MEMBERS)
def test_every_member_of_an_assertion_is_checked(
    client: Any, db: Database, assertion: dict[str, Any], member: str
) -> None:
    def send(value: Any) -> Callable[[], Any]:
        return lambda: client.post("/api/signin/passkey", json={"credential": set_member(assertion, member, value)})

    for value in [*BAD_BASE64URL, *WRONG_TYPES]:
        assert unchanged(db, send(value), logged=1) is errors.MALFORMED_CREDENTIAL, value
    if member != "response.userHandle":  # a userHandle may be left out (non-discoverable credentials)
        assert unchanged(db, send(_DELETE), logged=1) is errors.MALFORMED_CREDENTIAL
    # The genuine one still works afterwards: none of the refusals used the challenge up.
    assert client.post("/api/signin/passkey", json={"credential": assertion}).status_code == 200


@pytest.mark.parametrize(
    ("client_data", "code"),
    [
        (b"not json", errors.MALFORMED_CREDENTIAL),
        (b"[]", errors.MALFORMED_CREDENTIAL),
        (b"{}", errors.MALFORMED_CREDENTIAL),
        (b"\xff\xfe\xfd", errors.MALFORMED_CREDENTIAL),
        (b"[" * 100_000, errors.MALFORMED_CREDENTIAL),
        (b'{"type":"webauthn.get","origin":"http://localhost:8443"}', errors.MALFORMED_CREDENTIAL),
        (b'{"type":"webauthn.get","challenge":"AAAA"}', errors.MALFORMED_CREDENTIAL),
        (b'{"type":"webauthn.get","challenge":"AAAA","origin":"http://localhost:8443"}', errors.CHALLENGE_NOT_FOUND),
        (b'{"type":"webauthn.get","challenge":5,"origin":"http://localhost:8443"}', errors.MALFORMED_CREDENTIAL),
        (b'{"type":"webauthn.get","challenge":"AAAA","origin":["http://localhost:8443"]}', errors.ORIGIN_NOT_ALLOWED),
        (b'{"type":7,"challenge":"AAAA","origin":"http://localhost:8443"}', errors.MALFORMED_CREDENTIAL),
    ],
)
def test_garbage_client_data_is_refused(
    client: Any, db: Database, assertion: dict[str, Any], client_data: bytes, code: ErrorCode
) -> None:
    damaged = set_member(assertion, "response.clientDataJSON", b64url(client_data))
    send = lambda: client.post("/api/signin/passkey", json={"credential": damaged})  # noqa: E731
    assert unchanged(db, send, logged=1) is code


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:36],  # shorter than rpIdHash + flags + counter
        lambda data: b"",
        lambda data: data + b"\x00",  # left-over bytes
        lambda data: data[:32] + bytes([data[32] | 0x40]) + data[33:],  # says attested data follows; none does
        lambda data: data[:32] + bytes([data[32] | 0x80]) + data[33:] + b"\xff",  # extensions that are no CBOR
        lambda data: data[:32] + bytes([data[32] | 0x40]) + data[33:] + b"\x00" * 18 + b"\xa1",  # truncated key
    ],
    ids=["short", "empty", "trailing", "at-without-data", "ed-garbage", "at-truncated"],
)
def test_garbage_authenticator_data_is_refused(
    client: Any, db: Database, assertion: dict[str, Any], damage: Callable[[bytes], bytes]
) -> None:
    data = damage(b64url_decode(assertion["response"]["authenticatorData"]))
    damaged = set_member(assertion, "response.authenticatorData", b64url(data))
    send = lambda: client.post("/api/signin/passkey", json={"credential": damaged})  # noqa: E731
    assert unchanged(db, send, logged=1) is errors.MALFORMED_CREDENTIAL


@FUZZ
@given(
    member=st.sampled_from(ASSERTION_MEMBERS),
    value=st.one_of(
        st.binary(max_size=300).map(b64url),
        st.text(max_size=50),
        st.integers(),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    ),
)
def test_random_values_in_an_assertion_never_break_anything(
    client: Any, db: Database, assertion: dict[str, Any], member: str, value: Any
) -> None:
    damaged = set_member(assertion, member, value)
    unchanged(db, lambda: client.post("/api/signin/passkey", json={"credential": damaged}), logged=1)


@FUZZ
@given(data=st.binary(min_size=37, max_size=200))
def test_random_authenticator_data_never_breaks_anything(
    client: Any, db: Database, assertion: dict[str, Any], data: bytes
) -> None:
    # Keep the RP ID hash so that the parser, not the first comparison, meets the random bytes.
    data = b64url_decode(assertion["response"]["authenticatorData"])[:32] + data[32:]
    damaged = set_member(assertion, "response.authenticatorData", b64url(data))
    unchanged(db, lambda: client.post("/api/signin/passkey", json={"credential": damaged}), logged=1)


# -- each member of a registration credential --------------------------------------------------
REGISTRATION_MEMBERS = ["id", "rawId", "response.clientDataJSON", "response.attestationObject"]


@pytest.fixture
def attestation(client: Any, db: Database) -> dict[str, Any]:
    """A signed-in user and a genuine registration response for a fresh challenge (nothing posted yet)."""
    signed_in_as(client, db, "bea@example.com")
    return SoftAuthenticator().create(client.post("/api/me/passkeys/options").json(), ORIGIN)


def post_registration(client: Any, credential: Any) -> Any:
    return client.post("/api/me/passkeys", json={"credential": credential, "displayName": "Key"})


@pytest.mark.parametrize("member", REGISTRATION_MEMBERS)
def test_every_member_of_a_registration_is_checked(
    client: Any, db: Database, attestation: dict[str, Any], member: str
) -> None:
    for value in [*BAD_BASE64URL, *WRONG_TYPES, _DELETE]:
        damaged = set_member(attestation, member, value)
        assert unchanged(db, lambda d=damaged: post_registration(client, d)) is errors.MALFORMED_CREDENTIAL, value
    assert post_registration(client, attestation).status_code == 201


def attestation_object(credential: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = cbor2.loads(b64url_decode(credential["response"]["attestationObject"]))
    return decoded


def with_object(credential: dict[str, Any], raw: bytes) -> dict[str, Any]:
    return set_member(credential, "response.attestationObject", b64url(raw))


def auth_data_with_key(data: bytes, cose: Any) -> bytes:
    """Replace the COSE key that ends the attested credential data."""
    id_length = int.from_bytes(data[53:55], "big")
    return data[: 55 + id_length] + cbor2.dumps(cose)


Damage = Callable[[dict[str, Any], bytes], bytes]  # (decoded attestationObject, its bytes) -> new bytes


def members(**changes: Any) -> Damage:
    return lambda obj, raw: cbor2.dumps({**obj, **changes})


def auth_data(cut: Callable[[bytes], bytes]) -> Damage:
    return lambda obj, raw: cbor2.dumps({**obj, "authData": cut(obj["authData"])})


def key(cose: Any) -> Damage:
    """Put another COSE key (or a function making one) into the attested credential data."""
    return auth_data(lambda data: auth_data_with_key(data, cose() if callable(cose) else cose))


def p384() -> dict[int, Any]:
    """A real P-384 point labelled ES256 (which means P-256)."""
    numbers = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    return {1: 2, 3: -7, -1: 2, -2: numbers.x.to_bytes(48, "big"), -3: numbers.y.to_bytes(48, "big")}


MALFORMED, INVALID = errors.MALFORMED_CREDENTIAL, errors.REGISTRATION_INVALID
CBOR_DAMAGE: list[tuple[str, Damage, ErrorCode]] = [
    ("truncated", lambda obj, raw: raw[: len(raw) // 2], MALFORMED),
    ("one-byte", lambda obj, raw: raw[:1], MALFORMED),
    ("garbage", lambda obj, raw: b"\xff\x00\x13\x37" * 10, MALFORMED),
    ("trailing", lambda obj, raw: raw + b"\x00", MALFORMED),
    ("array", lambda obj, raw: cbor2.dumps([obj["fmt"], obj["authData"]]), MALFORMED),
    ("no-fmt", lambda obj, raw: cbor2.dumps({"attStmt": {}, "authData": obj["authData"]}), MALFORMED),
    ("no-authdata", lambda obj, raw: cbor2.dumps({"fmt": "none", "attStmt": {}}), MALFORMED),
    # Duplicate map keys (py_webauthn issue #265): refused, never "last one wins".
    ("duplicate-keys", lambda obj, raw: b"\xa4" + raw[1:] + cbor2.dumps("fmt") + cbor2.dumps("packed"), MALFORMED),
    ("fmt-int", members(fmt=1), MALFORMED),
    ("fmt-bytes", members(fmt=b"none"), MALFORMED),
    ("authdata-text", members(authData="x" * 40), MALFORMED),
    ("attstmt-int", members(attStmt=5), MALFORMED),
    ("attstmt-text", members(attStmt="sig"), MALFORMED),
    ("authdata-short", auth_data(lambda data: data[:20]), MALFORMED),
    ("key-not-cbor", auth_data(lambda data: data[:-77] + b"\xff\xfe"), MALFORMED),
    ("fmt-unknown", members(fmt="made-up"), INVALID),
    ("none-with-statement", members(attStmt={"sig": b"x"}), INVALID),
    ("packed-empty", members(fmt="packed"), INVALID),
    ("no-attested-data", auth_data(lambda data: data[:32] + b"\x05" + b"\0" * 4), INVALID),
    ("key-off-curve", key({1: 2, 3: -7, -1: 1, -2: b"\x01" * 32, -3: b"\x02" * 32}), INVALID),
    ("key-short", key({1: 2, 3: -7, -1: 1, -2: b"\x01", -3: b"\x02"}), INVALID),
    ("key-p384-as-es256", key(p384), INVALID),
    ("key-es384", key({1: 2, 3: -35, -1: 2, -2: b"\x01" * 48, -3: b"\x02" * 48}), INVALID),
    ("key-missing-members", key({1: 2}), INVALID),
    ("key-is-a-list", key([1, 2, 3]), INVALID),
    ("key-rsa-tiny", key({1: 3, 3: -257, -1: b"\x05", -2: b"\x03"}), INVALID),
    ("key-okp-wrong-length", key({1: 1, 3: -8, -1: 6, -2: b"\x01" * 31}), INVALID),
]


@pytest.mark.parametrize(("damage", "code"), [(d, c) for _, d, c in CBOR_DAMAGE], ids=[n for n, _, _ in CBOR_DAMAGE])
def test_damaged_attestation_objects_are_refused(
    client: Any, db: Database, attestation: dict[str, Any], damage: Damage, code: ErrorCode
) -> None:
    raw = b64url_decode(attestation["response"]["attestationObject"])
    damaged = with_object(attestation, damage(attestation_object(attestation), raw))
    assert unchanged(db, lambda: post_registration(client, damaged)) is code
    assert post_registration(client, attestation).status_code == 201  # the challenge is still there


@pytest.mark.parametrize(
    "client_data",
    [b"not json", b"[]", b"{}", b"\xff\xfe", b"{" * 100_000, b'{"type":"webauthn.create","challenge":"AAAA"}'],
)
def test_garbage_client_data_in_a_registration_is_refused(
    client: Any, db: Database, attestation: dict[str, Any], client_data: bytes
) -> None:
    damaged = set_member(attestation, "response.clientDataJSON", b64url(client_data))
    assert unchanged(db, lambda: post_registration(client, damaged)) is errors.MALFORMED_CREDENTIAL


CBOR_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=80) | st.text(max_size=10) | st.floats(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.integers() | st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(
    fmt=st.one_of(st.just("none"), st.just("packed"), CBOR_VALUES),
    statement=st.one_of(st.just({}), CBOR_VALUES),
    cose=CBOR_VALUES,
    flags=st.integers(0, 255),
)
def test_random_attestation_objects_never_break_anything(
    client: Any, db: Database, attestation: dict[str, Any], fmt: Any, statement: Any, cose: Any, flags: int
) -> None:
    data = attestation_object(attestation)["authData"]
    data = auth_data_with_key(data[:32] + bytes([flags]) + data[33:], cose)
    raw = cbor2.dumps({"fmt": fmt, "attStmt": statement, "authData": data})
    unchanged(db, lambda: post_registration(client, with_object(attestation, raw)))


@FUZZ
@given(member=st.sampled_from(REGISTRATION_MEMBERS), data=st.binary(max_size=400))
def test_random_bytes_in_a_registration_never_break_anything(
    client: Any, db: Database, attestation: dict[str, Any], member: str, data: bytes
) -> None:
    unchanged(db, lambda: post_registration(client, set_member(attestation, member, b64url(data))))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=15,
)


@FUZZ
@given(
    path=st.sampled_from(["/api/signin/identify", "/api/signin/tap", "/api/signin/passkey", "/api/me/passkeys"]),
    body=st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries({"username": JSON_VALUES, "temporaryAccessPass": JSON_VALUES}),
        st.fixed_dictionaries({"credential": JSON_VALUES, "displayName": JSON_VALUES}),
        st.binary(max_size=100),
    ),
)
def test_random_bodies_never_break_anything(client: Any, db: Database, path: str, body: Any) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    unchanged(db, lambda: raw_post(client, path, content), logged=1)


# -- requests from other sites -----------------------------------------------------------------
STATE_CHANGING = [
    ("POST", "/api/signin/identify", {"username": "ann@example.com"}),
    ("POST", "/api/signin/passkey/options", {}),
    ("POST", "/api/signin/passkey", {"credential": {}}),
    ("POST", "/api/signin/tap", {"username": "ann@example.com", "temporaryAccessPass": "x"}),
    ("POST", "/api/signout", None),
    ("POST", "/api/me/passkeys/options", None),
    ("POST", "/api/me/passkeys", {"credential": {}}),
    ("PATCH", "/api/me/passkeys/{id}", {"displayName": "evil"}),
    ("DELETE", "/api/me/passkeys/{id}", None),
]


CROSS_SITE = [
    {"origin": EVIL},
    {"origin": "null"},
    {"origin": "https://localhost:8443"},  # another scheme is another origin
    {"sec-fetch-site": "cross-site"},  # no Origin, but the browser says where it came from
]


def send_from(client: Any, headers: dict[str, str], method: str, url: str, body: Any) -> Any:
    """Send with exactly these headers in place of the client's usual Origin."""
    usual = client.headers.pop("origin")
    try:
        return client.request(method, url, json=body, headers=headers)
    finally:
        client.headers["origin"] = usual


@pytest.mark.parametrize(("method", "path", "body"), STATE_CHANGING, ids=[f"{m} {p}" for m, p, _ in STATE_CHANGING])
def test_requests_from_another_site_are_refused(
    client: Any, db: Database, method: str, path: str, body: Any
) -> None:
    _, authenticator, passkey = enrol(client, db, "ann@example.com")
    signed = client.post("/api/signin/passkey", json={"credential": authenticator.get(request_options(client), ORIGIN)})
    assert signed.status_code == 200
    url = path.replace("{id}", passkey["id"])
    for headers in CROSS_SITE:
        refused_attempt(db, lambda h=headers: send_from(client, h, method, url, body), errors.FORBIDDEN_ORIGIN, None)
    assert client.get("/api/me").status_code == 200  # the session survived every attempt


def test_same_site_requests_without_an_origin_are_accepted(client: Any, db: Database) -> None:
    """Native apps send no Origin and no Sec-Fetch-Site; a browser's same-origin fetch may omit Origin."""
    for headers in ({}, {"sec-fetch-site": "same-origin"}):
        response = send_from(client, headers, "POST", "/api/signin/passkey/options", {})
        assert response.status_code == 200, response.text


def test_error_bodies_carry_the_request_id(client: Any) -> None:
    given_id = "3f2c7a1e-0000-4000-8000-000000000001"
    response = client.post("/api/signin/identify", content=b"nope", headers={"client-request-id": given_id})
    error = error_of(response, errors.MALFORMED_JSON)
    assert error["innerError"]["request-id"] == response.headers["request-id"] == given_id


@pytest.mark.parametrize("text", ["a\u0000@b.example", "\ud800@b.example"])
@pytest.mark.parametrize(("path", "extra"), [
    ("/api/signin/identify", {}),
    ("/api/signin/passkey/options", {}),
    ("/api/signin/tap", {"temporaryAccessPass": "ABCDEFGH"}),
])
def test_text_no_database_can_store_is_refused(client: Any, db: Database, path: str, extra: dict[str, str],
                                               text: str) -> None:
    # PostgreSQL refuses NUL in text and no UTF-8 column holds a lone surrogate: a 400, never a 500.
    body = json.dumps({"username": text, **extra}).encode()
    answer = raw_post(client, path, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == errors.INVALID_REQUEST.name
