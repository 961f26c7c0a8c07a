"""Who is asking, from where, and when: read once per request and passed down."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Actor:
    """The initiator recorded in the audit log: an app (admin API), a user (pages) or the CLI."""

    kind: str  # "app" | "user" | "system"
    id: str | None = None
    display_name: str | None = None
    user_principal_name: str | None = None


SYSTEM = Actor(kind="system", display_name="passgate command line")


@dataclass(frozen=True, slots=True)
class RequestContext:
    now: datetime = field(default_factory=utcnow)
    ip_address: str | None = None
    user_agent: str | None = None
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    actor: Actor = SYSTEM
