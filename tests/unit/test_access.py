"""Table and property tests of Conditional Access evaluation (core/access.py)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passgate.core import errors
from passgate.core.access import (
    ADMIN_API_APP_ID,
    ALL,
    ALL_TRUSTED,
    NONE,
    REGISTER_SECURITY_INFO,
    SIGN_IN_PORTAL_APP_ID,
    Applications,
    ClientAppType,
    Conditions,
    Control,
    Grant,
    NamedLocation,
    Outcome,
    Platform,
    Policy,
    PolicyResult,
    PolicyState,
    Reason,
    SignIn,
    SignInFrequency,
    Status,
    Subject,
    Users,
    evaluate,
    locks_out,
    platform_from_user_agent,
)
from passgate.core.roles import GLOBAL_ADMINISTRATOR, SECURITY_READER
from passgate.core.strengths import (
    PHISHING_RESISTANT_MFA,
    PasskeyRequirements,
    PolicyType,
    RegisteredMethods,
    Strength,
    StrengthResult,
    parse_combinations,
)
from passgate.core.values import Evidence, MethodMode, PasskeyEvidence

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
APP = "11111111-1111-1111-1111-111111111111"
OTHER_APP = "22222222-2222-2222-2222-222222222222"
ALICE, BOB = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"
SALES, ADMINS = "5a1e5000-0000-0000-0000-000000000001", "ad000000-0000-0000-0000-000000000002"
KEY = PasskeyEvidence("ee882879-721c-4913-9775-3dfcce97072a", attested=True, device_bound=True)
SYNCED = PasskeyEvidence("fbfc3007-154e-4ecc-8c0b-6e020557d7bd", attested=False, device_bound=False)
OFFICE = NamedLocation("10c00000-0000-0000-0000-000000000001", "Office", (
    ipaddress.ip_network("203.0.113.0/24"), ipaddress.ip_network("2001:db8:1::/48")), trusted=True)
BLOCKED_COUNTRY = NamedLocation("10c00000-0000-0000-0000-000000000002", "Somewhere", (
    ipaddress.ip_network("198.51.100.0/24"),), trusted=False)
LOCATIONS = (OFFICE, BLOCKED_COUNTRY)
M = MethodMode

EVERYONE_APP = Conditions(Users(include_users=frozenset({ALL})), Applications(frozenset({APP})))


def policy(name: str = "P", *, state: PolicyState = PolicyState.ENABLED, conditions: Conditions = EVERYONE_APP,
           controls: frozenset[Control] = frozenset({Control.MFA}), operator: str = "OR",
           strength: Strength | None = None, frequency: SignInFrequency | None = None) -> Policy:
    return Policy(f"id-{name}", name, state, conditions, Grant(operator, controls, strength), frequency)


def sign_in(*modes: MethodMode, passkey: PasskeyEvidence | None = None, user: str = ALICE,
            groups: frozenset[str] = frozenset(), roles: frozenset[str] = frozenset(), app: str | None = APP,
            action: str | None = None, ip: str | None = None, platform: Platform | None = None,
            registered: RegisteredMethods | None = None, auth_time: datetime = NOW, what_if: bool = False,
            client: ClientAppType = ClientAppType.BROWSER) -> SignIn:
    evidence = None if what_if else Evidence(frozenset(modes), auth_time, passkey)
    regs = registered if registered is not None else RegisteredMethods(frozenset(modes), (passkey,) if passkey else ())
    return SignIn(Subject(user, groups, roles, regs), NOW, app, action, client, platform,
                  ipaddress.ip_address(ip) if ip else None, evidence)


def strength_policy(strength: Strength, **kw: object) -> Policy:
    return policy(controls=frozenset({Control.AUTHENTICATION_STRENGTH}), strength=strength, **kw)  # type: ignore[arg-type]


# -- users, groups, roles, applications ------------------------------------------------------------
@pytest.mark.parametrize(("users", "applies"), [
    (Users(include_users=frozenset({ALL})), True),
    (Users(include_users=frozenset({NONE})), False),
    (Users(include_users=frozenset({ALICE})), True),
    (Users(include_users=frozenset({BOB})), False),
    (Users(include_groups=frozenset({SALES})), True),
    (Users(include_roles=frozenset({GLOBAL_ADMINISTRATOR})), False),
    (Users(include_roles=frozenset({SECURITY_READER})), True),
    (Users(include_users=frozenset({ALL}), exclude_users=frozenset({ALICE})), False),
    (Users(include_users=frozenset({ALICE}), exclude_groups=frozenset({SALES})), False),  # exclusion wins
    (Users(include_groups=frozenset({SALES}), exclude_roles=frozenset({SECURITY_READER})), False),
    (Users(), False),
])
def test_users_groups_roles(users: Users, applies: bool) -> None:
    p = policy(conditions=Conditions(users, Applications(frozenset({ALL}))))
    s = sign_in(M.PASSWORD, groups=frozenset({SALES}), roles=frozenset({SECURITY_READER}))
    evaluation = evaluate([p], s).policies[0]
    assert evaluation.applies is applies
    assert (Reason.USERS in evaluation.reasons) is not applies


@pytest.mark.parametrize(("apps", "app", "action", "applies"), [
    (Applications(frozenset({ALL})), APP, None, True),
    (Applications(frozenset({ALL})), ADMIN_API_APP_ID, None, True),
    (Applications(frozenset({NONE})), APP, None, False),
    (Applications(frozenset({APP})), OTHER_APP, None, False),
    (Applications(frozenset({ALL}), frozenset({APP})), APP, None, False),
    (Applications(frozenset({ALL}), frozenset({APP})), OTHER_APP, None, True),
    (Applications(include_user_actions=frozenset({REGISTER_SECURITY_INFO})), None, REGISTER_SECURITY_INFO, True),
    (Applications(include_user_actions=frozenset({REGISTER_SECURITY_INFO})), APP, None, False),
    (Applications(frozenset({ALL})), None, REGISTER_SECURITY_INFO, False),
])
def test_applications_and_user_actions(apps: Applications, app: str | None, action: str | None, applies: bool) -> None:
    p = policy(conditions=Conditions(Users(include_users=frozenset({ALL})), apps))
    assert evaluate([p], sign_in(M.PASSWORD, app=app, action=action)).policies[0].applies is applies


# -- platforms, client apps, locations ---------------------------------------------------------------
USER_AGENTS = {
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile "
    "Safari/537.36": Platform.ANDROID,
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1": Platform.IOS,
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0 "
    "Mobile/15E148 Safari/604.1": Platform.IOS,
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36 Edg/124.0.0.0": Platform.WINDOWS,
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Safari/605.1.15": Platform.MACOS,
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0": Platform.LINUX,
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 "
    "Safari/537.36": Platform.LINUX,
    "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063": Platform.WINDOWS_PHONE,
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36": None,
    "curl/8.5.0": None,
    "": None,
}


@pytest.mark.parametrize(("ua", "platform"), USER_AGENTS.items())
def test_platform_from_real_user_agents(ua: str, platform: Platform | None) -> None:
    assert platform_from_user_agent(ua) == platform


@pytest.mark.parametrize(("include", "exclude", "platform", "applies"), [
    ({"android", "iOS"}, set(), Platform.IOS, True),
    ({"android", "iOS"}, set(), Platform.WINDOWS, False),
    ({"all"}, {"windows"}, Platform.WINDOWS, False),
    ({"all"}, {"windows"}, Platform.LINUX, True),
    ({"all"}, set(), None, True),  # an unknown platform is matched by "all" only
    ({"linux"}, set(), None, False),
])
def test_device_platforms(include: set[str], exclude: set[str], platform: Platform | None, applies: bool) -> None:
    p = policy(conditions=Conditions(EVERYONE_APP.users, EVERYONE_APP.applications,
                                     include_platforms=frozenset(include), exclude_platforms=frozenset(exclude)))
    assert evaluate([p], sign_in(M.PASSWORD, platform=platform)).policies[0].applies is applies


@pytest.mark.parametrize(("types", "client", "applies"), [
    ({"all"}, ClientAppType.BROWSER, True),
    ({"browser"}, ClientAppType.BROWSER, True),
    ({"mobileAppsAndDesktopClients"}, ClientAppType.BROWSER, False),
    (set(), ClientAppType.MOBILE_APPS_AND_DESKTOP_CLIENTS, True),
])
def test_client_app_types(types: set[str], client: ClientAppType, applies: bool) -> None:
    p = policy(conditions=Conditions(EVERYONE_APP.users, EVERYONE_APP.applications, frozenset(types)))
    assert evaluate([p], sign_in(M.PASSWORD, client=client)).policies[0].applies is applies


@pytest.mark.parametrize(("include", "exclude", "ip", "applies"), [
    ({ALL}, set(), "192.0.2.1", True),
    ({ALL}, set(), None, True),
    ({ALL}, {ALL_TRUSTED}, "203.0.113.9", False),
    ({ALL}, {ALL_TRUSTED}, "192.0.2.1", True),
    ({ALL}, {ALL_TRUSTED}, "2001:db8:1::5", False),  # IPv6 inside the trusted range
    ({ALL}, {ALL_TRUSTED}, "2001:db8:2::5", True),
    ({ALL}, {ALL_TRUSTED}, "::ffff:203.0.113.9", False),  # IPv4-mapped IPv6 is the IPv4 address
    ({BLOCKED_COUNTRY.id}, set(), "198.51.100.77", True),
    ({BLOCKED_COUNTRY.id}, set(), "198.51.101.1", False),
    ({BLOCKED_COUNTRY.id}, set(), None, False),
    ({ALL_TRUSTED}, set(), "198.51.100.77", False),  # a listed but untrusted range is not AllTrusted
])
def test_locations(include: set[str], exclude: set[str], ip: str | None, applies: bool) -> None:
    p = policy(conditions=Conditions(EVERYONE_APP.users, EVERYONE_APP.applications,
                                     include_locations=frozenset(include), exclude_locations=frozenset(exclude)))
    evaluation = evaluate([p], sign_in(M.PASSWORD, ip=ip), LOCATIONS).policies[0]
    assert evaluation.applies is applies
    assert (Reason.LOCATION in evaluation.reasons) is not applies


# -- grant controls, states, decision --------------------------------------------------------------
def test_block_blocks_with_the_policy_named() -> None:
    p = policy("Block legacy", controls=frozenset({Control.BLOCK}))
    decision = evaluate([p], sign_in(M.FIDO2, passkey=KEY))
    assert decision.outcome is Outcome.BLOCK and decision.blocked_by == p
    assert decision.error is errors.BLOCKED_BY_CONDITIONAL_ACCESS
    assert decision.status is Status.FAILURE and decision.policies[0].result is PolicyResult.FAILURE
    assert decision.policies[0].enforced_grant_controls == ("Block",)


def test_blocking_security_info_registration_has_its_own_code() -> None:
    p = policy(conditions=Conditions(Users(include_users=frozenset({ALL})),
                                     Applications(include_user_actions=frozenset({REGISTER_SECURITY_INFO}))),
               controls=frozenset({Control.BLOCK}))
    decision = evaluate([p], sign_in(M.TAP_ONE_TIME, app=None, action=REGISTER_SECURITY_INFO))
    assert decision.error is errors.SECURITY_INFO_REGISTRATION_BLOCKED


def test_mfa_is_the_built_in_multifactor_strength() -> None:
    p = policy()
    assert evaluate([p], sign_in(M.PASSWORD, M.SOFTWARE_OATH)).outcome is Outcome.ALLOW
    stepped = evaluate([p], sign_in(M.PASSWORD, registered=RegisteredMethods(frozenset({M.PASSWORD, M.SOFTWARE_OATH}))))
    assert stepped.outcome is Outcome.STEP_UP and stepped.error is errors.STRONG_AUTHENTICATION_REQUIRED
    assert stepped.requirements[0].alternatives[0].strength.id == "00000000-0000-0000-0000-000000000002"
    assert stepped.policies[0].strength is not None
    assert stepped.policies[0].strength.result is StrengthResult.SINGLE_CHALLENGE_REQUIRED


def test_phishing_resistant_steps_up_a_password_and_totp_user_to_their_passkey() -> None:
    p = strength_policy(PHISHING_RESISTANT_MFA)
    registered = RegisteredMethods(frozenset({M.PASSWORD, M.SOFTWARE_OATH}), (SYNCED,))
    decision = evaluate([p], sign_in(M.PASSWORD, M.SOFTWARE_OATH, registered=registered))
    assert decision.outcome is Outcome.STEP_UP
    assert decision.requirements[0].alternatives[0].challenges == (frozenset({M.FIDO2}),)
    assert decision.policies[0].enforced_grant_controls == ("RequireAuthenticationStrength",)
    after = evaluate([p], sign_in(M.PASSWORD, M.SOFTWARE_OATH, M.FIDO2, passkey=SYNCED, registered=registered))
    assert after.outcome is Outcome.ALLOW and after.status is Status.SUCCESS


def test_no_passkey_means_registration_required_and_no_way_means_block() -> None:
    p = strength_policy(PHISHING_RESISTANT_MFA)
    decision = evaluate([p], sign_in(M.PASSWORD))
    assert decision.outcome is Outcome.REGISTRATION_REQUIRED
    assert decision.error is errors.STRONG_AUTHENTICATION_ENROLLMENT_REQUIRED
    wrong_model = Strength("s", "Only one model", parse_combinations(["fido2"]), PolicyType.CUSTOM, "",
                           (), PasskeyRequirements(require_attested=True))
    s = SignIn(Subject(ALICE, registered=RegisteredMethods(frozenset({M.PASSWORD}), (SYNCED,)),
                       registrable=frozenset()), NOW, APP, evidence=Evidence(frozenset({M.PASSWORD}), NOW))
    blocked = evaluate([strength_policy(wrong_model)], s)
    assert blocked.outcome is Outcome.BLOCK and blocked.error is errors.STRENGTH_CANNOT_BE_SATISFIED
    assert blocked.policies[0].strength is not None
    assert blocked.policies[0].strength.result is StrengthResult.CANNOT_SATISFY_DUE_TO_COMBINATION_CONFIGURATION


def test_and_needs_every_control_or_needs_one() -> None:
    both = frozenset({Control.BLOCK, Control.MFA})
    user = sign_in(M.PASSWORD, M.SOFTWARE_OATH)
    assert evaluate([policy(controls=both, operator="OR")], user).outcome is Outcome.ALLOW
    assert evaluate([policy(controls=both, operator="AND")], user).outcome is Outcome.BLOCK
    strict = Strength("s", "Passkey", parse_combinations(["fido2"]))
    controls = frozenset({Control.MFA, Control.AUTHENTICATION_STRENGTH})
    and_policy = policy(controls=controls, operator="AND", strength=strict)
    registered = RegisteredMethods(frozenset({M.PASSWORD, M.SOFTWARE_OATH}), (KEY,))
    decision = evaluate([and_policy], sign_in(M.PASSWORD, M.SOFTWARE_OATH, registered=registered))
    assert decision.outcome is Outcome.STEP_UP and len(decision.requirements) == 1
    or_policy = policy(controls=controls, operator="OR", strength=strict)
    assert evaluate([or_policy], sign_in(M.PASSWORD, M.SOFTWARE_OATH)).outcome is Outcome.ALLOW


def test_requirements_of_several_policies_must_all_be_met() -> None:
    mfa = policy("A mfa")
    passkey = strength_policy(PHISHING_RESISTANT_MFA, name="B passkey")  # type: ignore[arg-type]
    registered = RegisteredMethods(frozenset({M.PASSWORD, M.SOFTWARE_OATH}), (KEY,))
    decision = evaluate([passkey, mfa], sign_in(M.PASSWORD, registered=registered))
    assert [r.policy_name for r in decision.requirements] == ["A mfa", "B passkey"]
    done = evaluate([passkey, mfa], sign_in(M.PASSWORD, M.FIDO2, passkey=KEY, registered=registered))
    assert done.outcome is Outcome.ALLOW


@pytest.mark.parametrize(("state", "controls", "modes", "result"), [
    (PolicyState.REPORT_ONLY, {Control.BLOCK}, {M.FIDO2}, PolicyResult.REPORT_ONLY_FAILURE),
    (PolicyState.REPORT_ONLY, {Control.MFA}, {M.FIDO2}, PolicyResult.REPORT_ONLY_SUCCESS),
    (PolicyState.REPORT_ONLY, {Control.MFA}, {M.PASSWORD}, PolicyResult.REPORT_ONLY_INTERRUPTED),
    (PolicyState.DISABLED, {Control.BLOCK}, {M.FIDO2}, PolicyResult.NOT_ENABLED),
    (PolicyState.ENABLED, {Control.MFA}, {M.FIDO2}, PolicyResult.SUCCESS),
])
def test_report_only_and_disabled_are_never_enforced(state: PolicyState, controls: set[Control],
                                                     modes: set[MethodMode], result: PolicyResult) -> None:
    registered = RegisteredMethods(frozenset({M.PASSWORD, M.SOFTWARE_OATH}), (KEY,))
    s = sign_in(*modes, passkey=KEY if M.FIDO2 in modes else None, registered=registered)
    decision = evaluate([policy(state=state, controls=frozenset(controls))], s)
    assert decision.policies[0].result is result
    if state is not PolicyState.ENABLED:
        assert decision.outcome is Outcome.ALLOW and decision.status is Status.NOT_APPLIED


def test_report_only_not_applied() -> None:
    p = policy(state=PolicyState.REPORT_ONLY)
    assert evaluate([p], sign_in(M.PASSWORD, app=OTHER_APP)).policies[0].result is PolicyResult.REPORT_ONLY_NOT_APPLIED
    assert evaluate([policy()], sign_in(M.PASSWORD, app=OTHER_APP)).policies[0].result is PolicyResult.NOT_APPLIED


@pytest.mark.parametrize(("frequency", "age", "fresh"), [
    (SignInFrequency(value=1, unit="hours"), timedelta(minutes=59), False),
    (SignInFrequency(value=1, unit="hours"), timedelta(minutes=61), True),
    (SignInFrequency(value=7, unit="days"), timedelta(days=6), False),
    (SignInFrequency(value=7, unit="days"), timedelta(days=8), True),
    (SignInFrequency(every_time=True), timedelta(minutes=4), False),
    (SignInFrequency(every_time=True), timedelta(minutes=6), True),
])
def test_sign_in_frequency(frequency: SignInFrequency, age: timedelta, fresh: bool) -> None:
    p = policy(controls=frozenset(), frequency=frequency)
    decision = evaluate([p], sign_in(M.FIDO2, passkey=KEY, auth_time=NOW - age))
    assert decision.fresh_authentication_required is fresh
    assert decision.outcome is (Outcome.REAUTHENTICATE if fresh else Outcome.ALLOW)
    assert decision.policies[0].enforced_session_controls == ("SignInFrequency",)
    if fresh:
        assert decision.error is errors.SIGN_IN_FREQUENCY


def test_what_if_reports_applies_and_reasons() -> None:
    p = policy(conditions=Conditions(Users(include_users=frozenset({BOB})), Applications(frozenset({OTHER_APP})),
                                     include_locations=frozenset({OFFICE.id})))
    evaluation = evaluate([p], sign_in(what_if=True, ip="192.0.2.1"), LOCATIONS).policies[0]
    assert evaluation.applies is False
    assert set(evaluation.reasons) == {Reason.USERS, Reason.APPLICATION, Reason.LOCATION}
    disabled = evaluate([policy(state=PolicyState.DISABLED)], sign_in(what_if=True)).policies[0]
    assert Reason.POLICY_NOT_ENABLED in disabled.reasons and not disabled.applies


# -- lock-out -------------------------------------------------------------------------------------
ADMIN = Subject(ALICE, frozenset({ADMINS}), frozenset({GLOBAL_ADMINISTRATOR}),
                RegisteredMethods(frozenset({M.PASSWORD}), (SYNCED,)))
ALL_APPS = Conditions(Users(include_users=frozenset({ALL})), Applications(frozenset({ALL})))


@pytest.mark.parametrize(("p", "locked"), [
    (policy(conditions=ALL_APPS, controls=frozenset({Control.BLOCK})), True),
    (policy(conditions=ALL_APPS, controls=frozenset({Control.BLOCK}), state=PolicyState.REPORT_ONLY), False),
    (policy(conditions=Conditions(Users(include_users=frozenset({ALL}), exclude_groups=frozenset({ADMINS})),
                                  Applications(frozenset({ALL}))), controls=frozenset({Control.BLOCK})), False),
    (policy(conditions=Conditions(ALL_APPS.users, Applications(frozenset({SIGN_IN_PORTAL_APP_ID}))),
            controls=frozenset({Control.BLOCK})), False),
    (policy(conditions=Conditions(ALL_APPS.users, Applications(frozenset({ADMIN_API_APP_ID}))),
            controls=frozenset({Control.BLOCK})), True),
    (policy(conditions=Conditions(ALL_APPS.users, ALL_APPS.applications, include_locations=frozenset({ALL}),
                                  exclude_locations=frozenset({ALL_TRUSTED})), controls=frozenset({Control.BLOCK})),
     False),
    (strength_policy(PHISHING_RESISTANT_MFA, conditions=ALL_APPS), False),  # the admin has a passkey
    (strength_policy(Strength("s", "Key only", parse_combinations(["fido2"]), configurations=(),
                              passkey_requirements=PasskeyRequirements(require_device_bound=True)),
                     conditions=ALL_APPS), True),
])
def test_lockout(p: Policy, locked: bool) -> None:
    assert locks_out(p, [ADMIN, Subject(BOB)], NOW) is locked


def test_no_global_administrator_no_lockout() -> None:
    assert not locks_out(policy(conditions=ALL_APPS, controls=frozenset({Control.BLOCK})), [Subject(BOB)], NOW)


# -- properties ------------------------------------------------------------------------------------
users_st = st.builds(
    Users, *(st.frozensets(st.sampled_from([ALL, NONE, ALICE, BOB, SALES, ADMINS, GLOBAL_ADMINISTRATOR]), max_size=2)
             for _ in range(6)))
apps_st = st.builds(Applications, st.frozensets(st.sampled_from([ALL, NONE, APP, OTHER_APP]), max_size=2),
                    st.frozensets(st.sampled_from([APP, OTHER_APP]), max_size=1))
policies_st = st.builds(
    Policy, st.uuids().map(str), st.text(min_size=1, max_size=5), st.sampled_from(list(PolicyState)),
    st.builds(Conditions, users_st, apps_st),
    st.builds(Grant, st.sampled_from(["AND", "OR"]), st.frozensets(st.sampled_from([Control.BLOCK, Control.MFA]))),
)
evidence_modes = st.frozensets(st.sampled_from(list(MethodMode)))


@given(st.lists(policies_st, max_size=4), evidence_modes, st.frozensets(st.sampled_from([SALES, ADMINS])))
def test_non_enforced_policies_never_change_the_decision(policies: list[Policy], modes: frozenset[MethodMode],
                                                         groups: frozenset[str]) -> None:
    s = sign_in(*modes, passkey=KEY if M.FIDO2 in modes else None, groups=groups)
    enforced = [p for p in policies if p.state is PolicyState.ENABLED]
    full, only_enforced = evaluate(policies, s), evaluate(enforced, s)
    assert (full.outcome, full.status, full.requirements) == (only_enforced.outcome, only_enforced.status,
                                                              only_enforced.requirements)
    assert len(full.policies) == len(policies)


@given(policies_st, evidence_modes)
def test_exclusion_always_wins(p: Policy, modes: frozenset[MethodMode]) -> None:
    users = p.conditions.users
    excluded = Policy(p.id, p.display_name, p.state, Conditions(
        Users(users.include_users | {ALICE}, users.exclude_users | {ALICE}, users.include_groups,
              users.exclude_groups, users.include_roles, users.exclude_roles), p.conditions.applications), p.grant)
    assert not evaluate([excluded], sign_in(*modes)).policies[0].applies


@given(st.lists(policies_st, max_size=4), evidence_modes)
def test_adding_a_policy_never_loosens(policies: list[Policy], modes: frozenset[MethodMode]) -> None:
    """More policies can only ask for more: a sign-in blocked or stepped up stays so."""
    s = sign_in(*modes, passkey=KEY if M.FIDO2 in modes else None)
    before = evaluate(policies[:-1], s).outcome
    after = evaluate(policies, s).outcome
    if before is not Outcome.ALLOW:
        assert after is not Outcome.ALLOW
