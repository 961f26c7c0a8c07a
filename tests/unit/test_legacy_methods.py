"""Password and TOTP rules (core/legacy_methods.py): table tests, and properties for every input."""

from __future__ import annotations

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from passgate.core import errors
from passgate.core import legacy_methods as lm
from passgate.core.errors import PassgateError
from passgate.core.policy import ALL_USERS, Member, Target
from passgate.core.values import MethodMode
from passgate.signin.oath import matching_step

GROUP = "11111111-1111-1111-1111-111111111111"
OTHER = "22222222-2222-2222-2222-222222222222"


@pytest.mark.parametrize(
    ("policy", "member", "allowed"),
    [
        (lm.MethodPolicy(), Member("u"), False),  # disabled by default
        (lm.MethodPolicy(enabled=True), Member("u"), True),
        (lm.MethodPolicy(True, (Target(GROUP),)), Member("u", frozenset({GROUP})), True),
        (lm.MethodPolicy(True, (Target(GROUP),)), Member("u", frozenset({OTHER})), False),
        (lm.MethodPolicy(True, (Target(ALL_USERS),), (Target(GROUP),)), Member("u", frozenset({GROUP})), False),
        (lm.MethodPolicy(True, (Target("u", "user"),)), Member("u"), True),
        (lm.MethodPolicy(True, ()), Member("u"), False),
    ],
)
def test_who_a_method_configuration_allows(policy: lm.MethodPolicy, member: Member, allowed: bool) -> None:
    assert policy.allows(member) is allowed


@given(st.lists(st.sampled_from([GROUP, OTHER, ALL_USERS]), max_size=3),
       st.lists(st.sampled_from([GROUP, OTHER, ALL_USERS]), max_size=3),
       st.frozensets(st.sampled_from([GROUP, OTHER])))
def test_exclusion_always_wins(include: list[str], exclude: list[str], groups: frozenset[str]) -> None:
    member = Member("u", groups)
    policy = lm.MethodPolicy(True, tuple(map(Target, include)), tuple(map(Target, exclude)))
    if any(member.matches(Target(t)) for t in exclude):
        assert not policy.allows(member)
    assert policy.allows(member) == (
        any(member.matches(Target(t)) for t in include) and not any(member.matches(Target(t)) for t in exclude)
    )
    assert not lm.MethodPolicy(False, policy.include_targets, policy.exclude_targets).allows(member)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 12"),
        ("x" * 257, "at most 256"),
        (" leading space ok?", "spaces"),
        ("tab\tinside-password", "control"),
        ("password1234", "common"),
        ("aaaaaaaaaaaaaaa", "common"),
        ("my-ada.lovelace-2026", "username"),
    ],
)
def test_new_passwords_refused_with_a_reason(password: str, problem: str) -> None:
    found = lm.password_problem(password, "ada.lovelace@example.com")
    assert found is not None and problem in found
    with pytest.raises(PassgateError) as raised:
        lm.check_new_password(password, "ada.lovelace@example.com")
    assert raised.value.code is errors.PASSWORD_TOO_WEAK and problem in raised.value.message


def test_a_good_password_passes() -> None:
    assert lm.password_problem("correct horse battery staple", "ada@example.com") is None
    lm.check_new_password("correct horse battery staple", "ada@example.com")


@given(st.text(min_size=0, max_size=300))
def test_password_rules_never_crash_and_enforce_length(password: str) -> None:
    problem = lm.password_problem(password, "ada@example.com")
    if len(password) < lm.MIN_PASSWORD_LENGTH or len(password) > lm.MAX_PASSWORD_LENGTH:
        assert problem is not None


@given(st.floats(min_value=0, max_value=2**40, allow_nan=False))
def test_steps_tried_are_now_and_one_either_side(moment: float) -> None:
    steps = lm.steps_to_try(moment)
    now = lm.time_step(moment)
    assert steps[0] == now and sorted(steps) == [now - 1, now, now + 1]


@given(st.integers(0, 2**40), st.one_of(st.none(), st.integers(0, 2**40)))
def test_a_step_is_accepted_only_after_the_last_accepted(step: int, last: int | None) -> None:
    fresh = lm.step_is_fresh(step, last)
    assert fresh == (last is None or step > last)
    if fresh:
        assert not lm.step_is_fresh(step, step)  # once accepted, never again


@pytest.mark.parametrize(("code", "ok"), [("123456", True), ("12345", False), ("1234567", False),
                                          ("12345a", False), ("١٢٣٤٥٦", False)])
def test_code_shape(code: str, ok: bool) -> None:
    assert lm.is_code_shaped(code) is ok


def test_amr_per_rfc_8176() -> None:
    assert lm.amr_of(frozenset({MethodMode.PASSWORD})) == ["pwd"]
    assert lm.amr_of(frozenset({MethodMode.PASSWORD, MethodMode.SOFTWARE_OATH})) == ["pwd", "otp", "mfa"]


@given(st.integers(10**8, 4 * 10**9), st.integers(-3, 3))
def test_a_code_matches_its_own_step_within_one_step_of_now(moment: int, offset: int) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    step = lm.time_step(moment) + offset
    code = pyotp.TOTP(secret).generate_otp(step)
    found = matching_step(secret, code, moment)
    if abs(offset) <= lm.STEP_WINDOW:
        assert found == step
    else:  # another step in the window could share the code only by a 1-in-a-million coincidence
        assert found is None or found != step
    assert matching_step(secret, code[:5], moment) is None
