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


class MethodMode(StrEnum):
    """Graph's `authenticationMethodModes` that Passgate can produce: what one sign-in step proved.

    Authentication strengths are sets of combinations of these (`"password,softwareOath"`)."""

    PASSWORD = "password"
    SOFTWARE_OATH = "softwareOath"
    FIDO2 = "fido2"
    TAP_ONE_TIME = "temporaryAccessPassOneTime"
    TAP_MULTI_USE = "temporaryAccessPassMultiUse"


@dataclass(frozen=True, slots=True)
class PasskeyEvidence:
    """The verified facts of the passkey a session signed in with (for strengths that name models or facts)."""

    aaguid: str
    attested: bool  # the attestation chained to a trust anchor at registration
    device_bound: bool  # not backup eligible: the key cannot leave the authenticator


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a sign-in session has proven so far: the modes it satisfied, when, and with which passkey.

    Built by the session layer from a stored session; read by core/strengths.py and core/access.py."""

    methods: frozenset[MethodMode]
    auth_time: datetime
    passkey: PasskeyEvidence | None = None
