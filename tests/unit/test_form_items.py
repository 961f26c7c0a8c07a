"""form_items: a token or authorize request's form, parsed without python-multipart when urlencoded, must give
exactly what Starlette's request.form() gives, and refuse what it refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request

from passgate.web.deps import form_items

URLENCODED = "application/x-www-form-urlencoded"
T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """On a thread of its own: after the Chromium tests, Playwright's event loop runs in pytest's thread, where
    asyncio.run cannot start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _request(body: bytes, content_type: str | None) -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        more, sent = not sent, True
        return {"type": "http.request", "body": body if more else b"", "more_body": False}

    headers = [(b"content-type", content_type.encode())] if content_type is not None else []
    return Request({"type": "http", "method": "POST", "path": "/oauth2/token", "query_string": b"",
                    "headers": headers, "app": object()}, receive)


def _ours(body: bytes, content_type: str | None = URLENCODED) -> list[tuple[str, str]]:
    return _run(form_items(_request(body, content_type)))


def _starlettes(body: bytes, content_type: str | None = URLENCODED) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        form = await _request(body, content_type).form()
        return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]

    return _run(read())


@pytest.mark.parametrize("body", [
    b"", b"a", b"a=", b"=b", b"=", b"&&", b"&a=1&", b"a=1&&b=2", b"a=1&b",
    b"scope=openid&scope=profile&scope=", b"a=b=c", b"a==b", b"a=1;b=2",
    b"redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb%3Fx%3D1%26y%3D2", b"a+b=c+d", b"a%2Bb=c%2bd", b"a%3D1=2",
    b"a=%C3%A9", b"a=%E9", b"a=\xc3\xa9", b"a=\xe9", b"a=%zz", b"a=%2", b"a=%e9%", b"%=%", b"a=%00", b"a=\n",
])
def test_urlencoded_bodies_give_what_starlette_gives(body: bytes) -> None:
    assert _ours(body) == _starlettes(body)


def test_repeated_empty_and_encoded_values() -> None:
    assert _ours(b"code=abc&scope=openid+email&scope=&state=%2F%3F%26%3D&nonce=") == [
        ("code", "abc"), ("scope", "openid email"), ("scope", ""), ("state", "/?&="), ("nonce", "")]


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded; charset=utf-8", "Application/X-WWW-Form-Urlencoded"])
def test_content_type_is_matched_as_starlette_matches_it(content_type: str) -> None:
    assert _ours(b"a=1&b=2", content_type) == _starlettes(b"a=1&b=2", content_type) == [("a", "1"), ("b", "2")]


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain", "application/x-www-form"])
def test_other_content_types_give_no_fields(content_type: str | None) -> None:
    assert _ours(b"a=1&b=2", content_type) == _starlettes(b"a=1&b=2", content_type) == []


def test_multipart_bodies_still_parse_without_their_files() -> None:
    body = (b"--XX\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n"
            b"--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n")
    content_type = "multipart/form-data; boundary=XX"
    assert _ours(body, content_type) == _starlettes(body, content_type) == [("grant_type", "client_credentials")]


def test_a_thousand_fields_parse_and_one_more_is_refused_as_before() -> None:
    allowed = b"&".join(b"f%d=%d" % (i, i) for i in range(1000))
    assert _ours(allowed) == _starlettes(allowed)
    too_many = allowed + b"&last=1"
    with pytest.raises(HTTPException) as ours:
        _ours(too_many)
    with pytest.raises(HTTPException) as theirs:
        _starlettes(too_many)
    assert (ours.value.status_code, ours.value.detail) == (theirs.value.status_code, theirs.value.detail) == (
        400, "Too many fields. Maximum number of fields is 1000.")


def test_a_field_over_starlettes_size_limit_is_refused_as_before() -> None:
    huge = b"a=" + b"x" * (1024 * 1024 + 1)
    with pytest.raises(HTTPException) as ours:
        _ours(huge)
    assert ours.value.status_code == 400 and "maximum size" in str(ours.value.detail)


def test_large_bodies_below_the_limits_give_what_starlette_gives() -> None:
    body = b"a=" + b"%41" * 30000 + b"&b=" + b"y" * 10000
    assert _ours(body) == _starlettes(body)
