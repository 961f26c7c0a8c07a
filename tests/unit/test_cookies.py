"""Passgate's own cookies are written as Starlette's `set_cookie` writes them, whatever the path taken."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from passgate.web.api import _set_token_cookie


@pytest.mark.parametrize("secure", [True, False])
@pytest.mark.parametrize("max_age", [None, 1, 3600])
@pytest.mark.parametrize("token", ["Zx-_09aQ", "a", "with space", 'quote"d', "semi;colon", ""])
def test_the_header_is_the_one_starlette_writes(token: str, secure: bool, max_age: int | None) -> None:
    expected, written = Response(), Response()
    expected.set_cookie("passgate_session", token, max_age=max_age, httponly=True, samesite="lax", secure=secure,
                        path="/")
    _set_token_cookie(written, "passgate_session", token, secure, max_age)
    assert written.raw_headers == expected.raw_headers
    assert next(v for k, v in written.raw_headers if k == b"set-cookie").count(b"HttpOnly") == 1
