"""Value types shared by the core."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class UsabilityReason(StrEnum):
    """Graph's `methodUsabilityReason` values for a Temporary Access Pass."""

    ENABLED_BY_POLICY = "EnabledByPolicy"
    DISABLED_BY_POLICY = "DisabledByPolicy"
    EXPIRED = "Expired"
    NOT_YET_VALID = "NotYetValid"
    ONE_TIME_USED = "OneTimeUsed"


@dataclass(frozen=True, slots=True)
class TapPolicy:
    """The TemporaryAccessPass method configuration (Graph defaults)."""

    enabled: bool = True
    default_lifetime_minutes: int = 60
    minimum_lifetime_minutes: int = 60
    maximum_lifetime_minutes: int = 480
    default_length: int = 8
    is_usable_once: bool = False


@dataclass(frozen=True, slots=True)
class TapState:
    """What the core needs to know about one stored pass."""

    start: datetime
    lifetime_minutes: int
    is_usable_once: bool
    used_at: datetime | None
