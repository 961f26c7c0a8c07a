"""App registrations and their secrets as sign-ins and the OIDC endpoints read them: cached per process until
any app or secret changes (config_cache). Changing an app goes through the real row
(`graph.applications.get_app`), never through these."""

from __future__ import annotations

import copy
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, make_transient_to_detached

from . import config_cache
from .tables import App, AppSecret


def _snapshot(row: App | None) -> App | None:
    """A detached copy of every column: never added to a session, so nothing a caller's session does (flush,
    expiry, rollback) reaches it, and App has no relationship that could lazy-load. Callers only read it."""
    if row is None:
        return None
    snapshot = App(**{c.key: copy.deepcopy(getattr(row, c.key)) for c in App.__mapper__.column_attrs})
    make_transient_to_detached(snapshot)
    return snapshot


def by_client_id(session: Session, client_id: str) -> App | None:
    """The registration whose appId (OAuth client_id) this is."""
    return config_cache.cached(
        session, ("app", client_id), lambda s: _snapshot(s.scalar(select(App).where(App.app_id == client_id)))
    )


def secrets_of(session: Session, app_pk: str) -> tuple[tuple[str, datetime | None], ...]:
    """(SHA-256 hash, expiry) of each of the app's client secrets."""
    return config_cache.cached(session, ("app secrets", app_pk), lambda s: tuple(
        (row.secret_hash, row.expires_at) for row in s.scalars(select(AppSecret).where(AppSecret.app_id == app_pk))
    ))
