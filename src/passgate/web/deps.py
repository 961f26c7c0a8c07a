"""Request-scoped helpers shared by the adapters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import Request

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


def context_of(request: Request) -> RequestContext:
    given = request.headers.get("client-request-id", "")
    try:
        correlation = str(uuid.UUID(given))
    except ValueError:
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
