"""Temporary Access Pass rules: bounds on issue, usability, and how long its session may last."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from . import errors
from .errors import PassgateError
from .values import TapPolicy, TapState, UsabilityReason

# Graph's hard bounds, whatever the policy says.
LIFETIME_FLOOR_MINUTES = 10
LIFETIME_CEILING_MINUTES = 43200
LENGTH_FLOOR = 8
LENGTH_CEILING = 48
# A one-time pass leaves this long to register a passwordless method (Entra's rule).
ONE_TIME_SESSION = timedelta(minutes=10)
# Letters and digits a person can read aloud without confusing them (no 0/O, 1/l/I).
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


@dataclass(frozen=True, slots=True)
class TapRequest:
    """A pass as it will be issued, after defaults are filled in."""

    start: datetime
    lifetime_minutes: int
    is_usable_once: bool
    length: int


def resolve_request(
    policy: TapPolicy,
    now: datetime,
    start: datetime | None = None,
    lifetime_minutes: int | None = None,
    is_usable_once: bool | None = None,
) -> TapRequest:
    """Apply the policy's defaults and bounds to an issue request, or refuse it."""
    lifetime = policy.default_lifetime_minutes if lifetime_minutes is None else lifetime_minutes
    low = max(LIFETIME_FLOOR_MINUTES, policy.minimum_lifetime_minutes)
    high = min(LIFETIME_CEILING_MINUTES, policy.maximum_lifetime_minutes)
    if not low <= lifetime <= high:
        raise PassgateError(
            errors.TAP_LIFETIME_OUT_OF_RANGE,
            f"lifetimeInMinutes must be between {low} and {high}; {lifetime} was asked for.",
        )
    once = policy.is_usable_once if is_usable_once is None else is_usable_once
    if policy.is_usable_once and not once:
        raise PassgateError(errors.TAP_MULTI_USE_NOT_ALLOWED)
    length = min(max(policy.default_length, LENGTH_FLOOR), LENGTH_CEILING)
    return TapRequest(start=start or now, lifetime_minutes=lifetime, is_usable_once=once, length=length)


def expires_at(state: TapState) -> datetime:
    return state.start + timedelta(minutes=state.lifetime_minutes)


def usability(state: TapState, policy: TapPolicy, now: datetime) -> UsabilityReason:
    """Graph's `methodUsabilityReason`; the pass is usable only with ENABLED_BY_POLICY."""
    if not policy.enabled:
        return UsabilityReason.DISABLED_BY_POLICY
    if state.is_usable_once and state.used_at is not None:
        return UsabilityReason.ONE_TIME_USED
    # A multi-use pass left over from before the policy became one-time-only is refused, as in Entra.
    if policy.is_usable_once and not state.is_usable_once:
        return UsabilityReason.DISABLED_BY_POLICY
    if now < state.start:
        return UsabilityReason.NOT_YET_VALID
    if now >= expires_at(state):
        return UsabilityReason.EXPIRED
    return UsabilityReason.ENABLED_BY_POLICY


_REFUSALS = {
    # Not TAP_INVALID: the pass was right, and a wrong-pass refusal would count towards the lock-out.
    UsabilityReason.DISABLED_BY_POLICY: errors.TAP_DISABLED_BY_POLICY,
    UsabilityReason.ONE_TIME_USED: errors.TAP_ALREADY_USED,
    UsabilityReason.NOT_YET_VALID: errors.TAP_NOT_YET_VALID,
    UsabilityReason.EXPIRED: errors.TAP_EXPIRED,
}


def check_sign_in(state: TapState, policy: TapPolicy, now: datetime) -> None:
    """Refuse a sign-in with a pass that matched but cannot be used now."""
    reason = usability(state, policy, now)
    if reason is not UsabilityReason.ENABLED_BY_POLICY:
        raise PassgateError(_REFUSALS[reason])


def session_end(state: TapState, now: datetime, usual_end: datetime) -> datetime:
    """A session from a pass never outlives the pass; a one-time pass leaves ten minutes."""
    end = min(usual_end, expires_at(state))
    if state.is_usable_once:
        end = min(end, now + ONE_TIME_SESSION)
    return end


def rate_limited(failures_for_user: int, failures_for_ip: int, per_user: int, per_ip: int) -> bool:
    """Whether wrong-pass attempts in the window have reached either limit."""
    return failures_for_user >= per_user or failures_for_ip >= per_ip
