"""Named configuration documents kept in the settings table (method configurations and the like)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..core.values import TapPolicy
from .tables import Setting

TAP_CONFIGURATION = "TemporaryAccessPass"


def load_tap_policy(session: Session) -> TapPolicy:
    row = session.get(Setting, TAP_CONFIGURATION)
    if row is None:
        return TapPolicy()
    v = row.value
    return TapPolicy(
        enabled=v.get("state", "enabled") == "enabled",
        default_lifetime_minutes=int(v.get("defaultLifetimeInMinutes", 60)),
        minimum_lifetime_minutes=int(v.get("minimumLifetimeInMinutes", 60)),
        maximum_lifetime_minutes=int(v.get("maximumLifetimeInMinutes", 480)),
        default_length=int(v.get("defaultLength", 8)),
        is_usable_once=bool(v.get("isUsableOnce", False)),
    )
