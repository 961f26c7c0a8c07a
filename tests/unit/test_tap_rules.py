"""The Temporary Access Pass rules (core/tap.py) and who may manage whose methods (core/roles.py).

Table tests pin the cases a person would check by hand; hypothesis checks that the rules hold for
every policy, time and count.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from passgate.core import errors, tap
from passgate.core import roles as r
from passgate.core.errors import ErrorCode, PassgateError
from passgate.core.values import TapPolicy, TapState, UsabilityReason

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

times = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
policies = st.builds(
    TapPolicy,
    enabled=st.booleans(),
    default_lifetime_minutes=st.integers(1, 50_000),
    minimum_lifetime_minutes=st.integers(1, 50_000),
    maximum_lifetime_minutes=st.integers(1, 50_000),
    default_length=st.integers(0, 100),
    is_usable_once=st.booleans(),
)
states = st.builds(
    TapState,
    start=times,
    lifetime_minutes=st.integers(tap.LIFETIME_FLOOR_MINUTES, tap.LIFETIME_CEILING_MINUTES),
    is_usable_once=st.booleans(),
    used_at=st.none() | times,
)


def refusal(call: object) -> ErrorCode:
    assert callable(call)
    with pytest.raises(PassgateError) as caught:
        call()
    return caught.value.code


# -- resolve_request -------------------------------------------------------------------------
def test_defaults_come_from_the_policy() -> None:
    request = tap.resolve_request(TapPolicy(), NOW)
    assert request == tap.TapRequest(start=NOW, lifetime_minutes=60, is_usable_once=False, length=8)
    once = tap.resolve_request(TapPolicy(is_usable_once=True, default_lifetime_minutes=120, default_length=12), NOW)
    assert (once.lifetime_minutes, once.is_usable_once, once.length) == (120, True, 12)


def test_a_later_start_is_kept() -> None:
    assert tap.resolve_request(TapPolicy(), NOW, start=NOW + HOUR).start == NOW + HOUR


@pytest.mark.parametrize(
    ("policy", "lifetime", "allowed"),
    [
        (TapPolicy(), 59, False),
        (TapPolicy(), 60, True),
        (TapPolicy(), 480, True),
        (TapPolicy(), 481, False),
        (TapPolicy(), 0, False),
        (TapPolicy(), -60, False),
        # Graph's hard bounds win over a policy that asks for less or more.
        (TapPolicy(minimum_lifetime_minutes=1, default_lifetime_minutes=5), 9, False),
        (TapPolicy(minimum_lifetime_minutes=1, default_lifetime_minutes=5), 10, True),
        (TapPolicy(maximum_lifetime_minutes=99_999), 43_200, True),
        (TapPolicy(maximum_lifetime_minutes=99_999), 43_201, False),
    ],
)
def test_lifetime_bounds(policy: TapPolicy, lifetime: int, allowed: bool) -> None:
    if allowed:
        assert tap.resolve_request(policy, NOW, lifetime_minutes=lifetime).lifetime_minutes == lifetime
    else:
        code = refusal(lambda: tap.resolve_request(policy, NOW, lifetime_minutes=lifetime))
        assert code is errors.TAP_LIFETIME_OUT_OF_RANGE


def test_a_default_outside_the_bounds_is_refused_too() -> None:
    policy = TapPolicy(default_lifetime_minutes=5, minimum_lifetime_minutes=1)
    assert refusal(lambda: tap.resolve_request(policy, NOW)) is errors.TAP_LIFETIME_OUT_OF_RANGE


@pytest.mark.parametrize(
    ("policy_once", "asked", "result"),
    [(False, None, False), (False, False, False), (False, True, True), (True, None, True), (True, True, True)],
)
def test_one_time_passes(policy_once: bool, asked: bool | None, result: bool) -> None:
    request = tap.resolve_request(TapPolicy(is_usable_once=policy_once), NOW, is_usable_once=asked)
    assert request.is_usable_once is result


def test_a_multi_use_pass_is_refused_when_the_policy_allows_only_one_time_passes() -> None:
    code = refusal(lambda: tap.resolve_request(TapPolicy(is_usable_once=True), NOW, is_usable_once=False))
    assert code is errors.TAP_MULTI_USE_NOT_ALLOWED


@pytest.mark.parametrize(("asked", "length"), [(0, 8), (7, 8), (8, 8), (20, 20), (48, 48), (49, 48), (1000, 48)])
def test_length_is_kept_within_8_and_48(asked: int, length: int) -> None:
    assert tap.resolve_request(TapPolicy(default_length=asked), NOW).length == length


@given(policy=policies, lifetime=st.none() | st.integers(-100, 60_000), once=st.none() | st.booleans(), now=times)
def test_an_issued_pass_always_keeps_every_bound(
    policy: TapPolicy, lifetime: int | None, once: bool | None, now: datetime
) -> None:
    low = max(tap.LIFETIME_FLOOR_MINUTES, policy.minimum_lifetime_minutes)
    high = min(tap.LIFETIME_CEILING_MINUTES, policy.maximum_lifetime_minutes)
    wanted = policy.default_lifetime_minutes if lifetime is None else lifetime
    try:
        request = tap.resolve_request(policy, now, None, lifetime, once)
    except PassgateError as exc:
        lifetime_ok = low <= wanted <= high
        assert exc.code is (errors.TAP_MULTI_USE_NOT_ALLOWED if lifetime_ok else errors.TAP_LIFETIME_OUT_OF_RANGE)
        if exc.code is errors.TAP_MULTI_USE_NOT_ALLOWED:
            assert policy.is_usable_once and once is False
        return
    assert low <= request.lifetime_minutes <= high
    assert request.lifetime_minutes == wanted
    assert tap.LIFETIME_FLOOR_MINUTES <= request.lifetime_minutes <= tap.LIFETIME_CEILING_MINUTES
    assert tap.LENGTH_FLOOR <= request.length <= tap.LENGTH_CEILING
    assert request.is_usable_once or not policy.is_usable_once
    assert request.start == now


# -- usability and check_sign_in ---------------------------------------------------------------
ONE_TIME = TapState(start=NOW, lifetime_minutes=60, is_usable_once=True, used_at=None)
MULTI_USE = replace(ONE_TIME, is_usable_once=False)
REASONS = [
    # (state, policy, at, reason)
    (ONE_TIME, TapPolicy(), NOW, UsabilityReason.ENABLED_BY_POLICY),
    (ONE_TIME, TapPolicy(), NOW + 59 * timedelta(minutes=1), UsabilityReason.ENABLED_BY_POLICY),
    (ONE_TIME, TapPolicy(), NOW + HOUR - timedelta(microseconds=1), UsabilityReason.ENABLED_BY_POLICY),
    (ONE_TIME, TapPolicy(), NOW + HOUR, UsabilityReason.EXPIRED),
    (ONE_TIME, TapPolicy(), NOW + 30 * HOUR, UsabilityReason.EXPIRED),
    (ONE_TIME, TapPolicy(), NOW - timedelta(microseconds=1), UsabilityReason.NOT_YET_VALID),
    (replace(ONE_TIME, used_at=NOW), TapPolicy(), NOW, UsabilityReason.ONE_TIME_USED),
    (replace(ONE_TIME, used_at=NOW), TapPolicy(), NOW + 2 * HOUR, UsabilityReason.ONE_TIME_USED),
    (replace(MULTI_USE, used_at=NOW), TapPolicy(), NOW + timedelta(minutes=5), UsabilityReason.ENABLED_BY_POLICY),
    (ONE_TIME, TapPolicy(enabled=False), NOW, UsabilityReason.DISABLED_BY_POLICY),
    (MULTI_USE, TapPolicy(is_usable_once=True), NOW, UsabilityReason.DISABLED_BY_POLICY),
    (MULTI_USE, TapPolicy(is_usable_once=True), NOW + 2 * HOUR, UsabilityReason.DISABLED_BY_POLICY),
    (ONE_TIME, TapPolicy(is_usable_once=True), NOW, UsabilityReason.ENABLED_BY_POLICY),
]


@pytest.mark.parametrize(("state", "policy", "at", "reason"), REASONS)
def test_usability_reasons(state: TapState, policy: TapPolicy, at: datetime, reason: UsabilityReason) -> None:
    assert tap.usability(state, policy, at) is reason


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (UsabilityReason.EXPIRED, errors.TAP_EXPIRED),
        (UsabilityReason.NOT_YET_VALID, errors.TAP_NOT_YET_VALID),
        (UsabilityReason.ONE_TIME_USED, errors.TAP_ALREADY_USED),
        (UsabilityReason.DISABLED_BY_POLICY, errors.TAP_DISABLED_BY_POLICY),
    ],
)
def test_each_refusal_has_its_own_code(reason: UsabilityReason, code: ErrorCode) -> None:
    (state, policy, at, _), *_ = [case for case in REASONS if case[3] is reason]
    assert refusal(lambda: tap.check_sign_in(state, policy, at)) is code
    # None of them is the wrong-pass code, which would count towards the lock-out.
    assert code is not errors.TAP_INVALID


@given(state=states, policy=policies, now=times)
def test_check_sign_in_refuses_exactly_the_unusable(state: TapState, policy: TapPolicy, now: datetime) -> None:
    reason = tap.usability(state, policy, now)
    if reason is UsabilityReason.ENABLED_BY_POLICY:
        tap.check_sign_in(state, policy, now)
        assert policy.enabled and state.start <= now < tap.expires_at(state)
        assert not (state.is_usable_once and state.used_at is not None)
        assert state.is_usable_once or not policy.is_usable_once
    else:
        assert isinstance(refusal(lambda: tap.check_sign_in(state, policy, now)), ErrorCode)


# -- session_end -------------------------------------------------------------------------------
def test_a_multi_use_pass_session_ends_with_the_pass_or_the_usual_end() -> None:
    assert tap.session_end(MULTI_USE, NOW, NOW + 8 * HOUR) == NOW + HOUR
    assert tap.session_end(MULTI_USE, NOW, NOW + timedelta(minutes=30)) == NOW + timedelta(minutes=30)


def test_a_one_time_pass_leaves_ten_minutes_or_what_remains_of_the_pass() -> None:
    long = replace(ONE_TIME, lifetime_minutes=480)
    assert tap.session_end(long, NOW, NOW + 8 * HOUR) == NOW + timedelta(minutes=10)
    assert tap.session_end(ONE_TIME, NOW + timedelta(minutes=55), NOW + 9 * HOUR) == NOW + HOUR


@given(state=states, offset=st.integers(0, 43_200 * 60), usual=st.integers(1, 100_000))
def test_a_pass_session_never_outlives_the_pass(state: TapState, offset: int, usual: int) -> None:
    now = state.start + timedelta(seconds=offset)  # a sign-in happens while the pass is valid
    assume(now < tap.expires_at(state))
    usual_end = now + timedelta(minutes=usual)
    end = tap.session_end(state, now, usual_end)
    assert end <= tap.expires_at(state)
    assert end <= usual_end
    if state.is_usable_once:
        assert end <= now + timedelta(minutes=10)
        assert end == min(usual_end, tap.expires_at(state), now + tap.ONE_TIME_SESSION)
    else:
        assert end == min(usual_end, tap.expires_at(state))
    assert end > now


# -- rate_limited ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("user", "ip", "limited"),
    [(0, 0, False), (4, 19, False), (5, 0, True), (0, 20, True), (5, 20, True), (100, 0, True), (4, 20, True)],
)
def test_rate_limits(user: int, ip: int, limited: bool) -> None:
    assert tap.rate_limited(user, ip, per_user=5, per_ip=20) is limited


@given(
    user=st.integers(0, 1000), ip=st.integers(0, 1000), per_user=st.integers(1, 100), per_ip=st.integers(1, 100)
)
def test_rate_limits_are_monotone(user: int, ip: int, per_user: int, per_ip: int) -> None:
    limited = tap.rate_limited(user, ip, per_user, per_ip)
    assert limited == (user >= per_user or ip >= per_ip)
    if limited:  # one more failure never lifts the limit
        assert tap.rate_limited(user + 1, ip, per_user, per_ip)
        assert tap.rate_limited(user, ip + 1, per_user, per_ip)


# -- who may manage whose methods ----------------------------------------------------------------
ADMIN_ROLES = [
    r.GLOBAL_ADMINISTRATOR,
    r.PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
    r.AUTHENTICATION_POLICY_ADMINISTRATOR,
    r.CONDITIONAL_ACCESS_ADMINISTRATOR,
    r.SECURITY_ADMINISTRATOR,
]
NO_METHOD_RIGHTS = [
    r.AUTHENTICATION_POLICY_ADMINISTRATOR,
    r.CONDITIONAL_ACCESS_ADMINISTRATOR,
    r.HELPDESK_ADMINISTRATOR,
    r.GLOBAL_READER,
    r.SECURITY_READER,
    r.REPORTS_READER,
]
role_sets = st.frozensets(st.sampled_from(sorted(r.ROLES)), max_size=4)


@pytest.mark.parametrize("actor", [r.GLOBAL_ADMINISTRATOR, r.PRIVILEGED_AUTHENTICATION_ADMINISTRATOR])
@pytest.mark.parametrize("target", [frozenset(), *[frozenset({role}) for role in ADMIN_ROLES]])
def test_privileged_roles_manage_everyone_else(actor: str, target: frozenset[str]) -> None:
    assert r.may_manage_methods("a", frozenset({actor}), "b", target)


@pytest.mark.parametrize("target_role", ADMIN_ROLES)
def test_an_authentication_administrator_cannot_act_on_admins(target_role: str) -> None:
    actor = frozenset({r.AUTHENTICATION_ADMINISTRATOR})
    assert not r.may_manage_methods("a", actor, "b", frozenset({target_role}))
    assert not r.may_manage_methods("a", actor, "b", frozenset({target_role, r.REPORTS_READER}))


@pytest.mark.parametrize("target", [frozenset(), frozenset({r.REPORTS_READER}), frozenset({r.HELPDESK_ADMINISTRATOR})])
def test_an_authentication_administrator_helps_non_admins(target: frozenset[str]) -> None:
    assert r.may_manage_methods("a", frozenset({r.AUTHENTICATION_ADMINISTRATOR}), "b", target)


@pytest.mark.parametrize("actor_role", NO_METHOD_RIGHTS)
def test_other_roles_manage_nobody(actor_role: str) -> None:
    assert not r.may_manage_methods("a", frozenset({actor_role}), "b", frozenset())
    assert not r.may_manage_methods("a", frozenset(), "b", frozenset())


@given(roles=role_sets, target_roles=role_sets)
def test_nobody_manages_their_own_methods(roles: frozenset[str], target_roles: frozenset[str]) -> None:
    assert not r.may_manage_methods("same", roles, "same", target_roles)


@given(target_roles=role_sets, extra=st.sampled_from(ADMIN_ROLES))
def test_an_admin_role_never_makes_a_target_easier_to_manage(target_roles: frozenset[str], extra: str) -> None:
    actor = frozenset({r.AUTHENTICATION_ADMINISTRATOR})
    assert not r.may_manage_methods("a", actor, "b", target_roles | {extra})
    # And whatever an Authentication Administrator may do, a Privileged one may do too.
    if r.may_manage_methods("a", actor, "b", target_roles):
        assert r.may_manage_methods("a", frozenset({r.PRIVILEGED_AUTHENTICATION_ADMINISTRATOR}), "b", target_roles)
