"""Request-scoped helpers shared by the adapters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import Request
from python_multipart.multipart import parse_options_header

from ..config import Settings
from ..context import RequestContext, utcnow
from ..oidc.keys import KeyCache
from ..store.db import Database


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    keys: KeyCache


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def _correlation_id(given: str) -> str | None:
    try:
        return str(uuid.UUID(given))
    except ValueError:
        return None


def context_of(request: Request) -> RequestContext:
    given = request.headers.get("client-request-id")
    correlation = _correlation_id(given) if given else None  # most requests carry none: nothing raised for them
    if correlation is None:
        correlation = str(uuid.uuid4())
    return RequestContext(
        now=utcnow(),
        ip_address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        correlation_id=correlation,
    )


async def request_context(request: Request) -> RequestContext:
    """The dependency form of context_of. It is async only so that FastAPI runs it on the event loop: a
    sync dependency is sent to the thread pool, a hand-off that cost more CPU than the function itself."""
    return context_of(request)


URLENCODED = b"application/x-www-form-urlencoded"
# Bodies this small cannot reach request.form()'s limits (1000 fields, 1 MiB a field), so parsing them here
# refuses nothing it would accept; larger ones still go to request.form() and get its refusals.
_PLAIN_FORM_MAX_BYTES = 64 * 1024
_PLAIN_FORM_MAX_SEPARATORS = 999


async def form_items(request: Request) -> list[tuple[str, str]]:
    """The body's form fields in order, as request.form() gives them (uploaded files left out). An urlencoded
    body is parsed with the standard library, which gives the same pairs (both decode %-escapes as UTF-8 and
    other bytes as Latin-1, keep blank values, split on '&' only) at half the CPU of python-multipart's parser."""
    content_type, _ = parse_options_header(request.headers.get("content-type"))
    if content_type == URLENCODED:
        body = await request.body()
        if len(body) <= _PLAIN_FORM_MAX_BYTES and body.count(b"&") <= _PLAIN_FORM_MAX_SEPARATORS:
            return parse_qsl(body.decode("latin-1"), keep_blank_values=True)
    return [(key, value) for key, value in (await request.form()).multi_items() if isinstance(value, str)]
