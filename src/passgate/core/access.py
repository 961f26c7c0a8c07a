"""Conditional Access: which policies apply to a sign-in, what they require, and what the sign-in log says.

Entra's semantics over plain values. A policy applies when every condition matches (users, the app or
user action, client app type, device platform, location), exclusions winning over inclusions. An
applying enabled policy grants when its controls are met (operator AND: all of them; OR: one); `block`
is never met; `mfa` is the built-in Multifactor authentication strength. Report-only policies are
evaluated and reported, never enforced; disabled ones are reported as notEnabled. The same function
answers a live sign-in (with evidence) and What If (without).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from . import errors, user_agents
from .errors import ErrorCode
from .roles import GLOBAL_ADMINISTRATOR
from .strengths import (
    MULTIFACTOR_AUTHENTICATION,
    SELF_REGISTRABLE,
    RegisteredMethods,
    Strength,
    StrengthOutcome,
)
from .strengths import evaluate as evaluate_strength
from .values import Evidence, MethodMode, PasskeyEvidence

ALL = "All"
NONE = "None"
ALL_TRUSTED = "AllTrusted"
REGISTER_SECURITY_INFO = "urn:user:registersecurityinfo"
USER_ACTIONS = frozenset({REGISTER_SECURITY_INFO})
# The admin API answers as Microsoft Graph, so that a Graph script's policy naming Graph's well-known
# appId covers Passgate's admin API unchanged.
ADMIN_API_APP_ID = "00000003-0000-0000-c000-000000000000"
# The sign-in portal and Security info pages: Entra's well-known appId of "My Signins", for the same reason.
SIGN_IN_PORTAL_APP_ID = "19db86c3-b2b9-44cc-b339-36da233a3be2"
BUILT_IN_APPS = {ADMIN_API_APP_ID: "Passgate admin API (Microsoft Graph)", SIGN_IN_PORTAL_APP_ID: "My Signins"}
# Entra allows five minutes of clock skew for sign-in frequency "every time".
EVERY_TIME_SKEW = timedelta(minutes=5)


class PolicyState(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    REPORT_ONLY = "enabledForReportingButNotEnforced"


class Platform(StrEnum):
    ANDROID = "android"
    IOS = "iOS"
    WINDOWS = "windows"
    WINDOWS_PHONE = "windowsPhone"
    MACOS = "macOS"
    LINUX = "linux"


class ClientAppType(StrEnum):
    BROWSER = "browser"
    MOBILE_APPS_AND_DESKTOP_CLIENTS = "mobileAppsAndDesktopClients"
    EXCHANGE_ACTIVE_SYNC = "exchangeActiveSync"
    EAS_SUPPORTED = "easSupported"
    OTHER = "other"


class Control(StrEnum):
    BLOCK = "block"
    MFA = "mfa"
    AUTHENTICATION_STRENGTH = "authenticationStrength"


class PolicyResult(StrEnum):
    """Graph's appliedConditionalAccessPolicy `result`."""

    SUCCESS = "success"
    FAILURE = "failure"
    NOT_APPLIED = "notApplied"
    NOT_ENABLED = "notEnabled"
    REPORT_ONLY_SUCCESS = "reportOnlySuccess"
    REPORT_ONLY_FAILURE = "reportOnlyFailure"
    REPORT_ONLY_NOT_APPLIED = "reportOnlyNotApplied"
    REPORT_ONLY_INTERRUPTED = "reportOnlyInterrupted"


class Status(StrEnum):
    """Graph's sign-in `conditionalAccessStatus`."""

    SUCCESS = "success"
    FAILURE = "failure"
    NOT_APPLIED = "notApplied"


class Reason(StrEnum):
    """What If's `analysisReasons` flags that Passgate produces."""

    NOT_SET = "notSet"
    USERS = "users"
    APPLICATION = "application"
    USER_ACTIONS = "userActions"
    DEVICE_PLATFORM = "devicePlatform"
    CLIENT_APPS = "clientApps"
    LOCATION = "location"
    EMPTY_POLICY = "emptyPolicy"
    POLICY_NOT_ENABLED = "policyNotEnabled"


class Outcome(StrEnum):
    ALLOW = "allow"
    BLOCK = "block"  # a policy blocks, or requires what the user can neither do nor register
    STEP_UP = "stepUp"  # every unmet requirement can be met by a challenge with registered methods
    REGISTRATION_REQUIRED = "registrationRequired"  # some requirement needs a method registered first
    REAUTHENTICATE = "reauthenticate"  # only sign-in frequency is unmet: a fresh ceremony


# -- policies as values -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NamedLocation:
    id: str
    display_name: str
    ranges: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    trusted: bool = False

    def contains(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == r.version and ip in r for r in self.ranges)


@dataclass(frozen=True, slots=True)
class Users:
    include_users: frozenset[str] = frozenset()
    exclude_users: frozenset[str] = frozenset()
    include_groups: frozenset[str] = frozenset()
    exclude_groups: frozenset[str] = frozenset()
    include_roles: frozenset[str] = frozenset()
    exclude_roles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Applications:
    include_applications: frozenset[str] = frozenset()
    exclude_applications: frozenset[str] = frozenset()
    include_user_actions: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Conditions:
    users: Users = Users()
    applications: Applications = Applications()
    client_app_types: frozenset[str] = frozenset({"all"})
    include_platforms: frozenset[str] | None = None  # None: no platform condition
    exclude_platforms: frozenset[str] = frozenset()
    include_locations: frozenset[str] | None = None  # None: no location condition
    exclude_locations: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Grant:
    operator: str = "OR"  # "AND" | "OR"
    controls: frozenset[Control] = frozenset()
    strength: Strength | None = None  # with Control.AUTHENTICATION_STRENGTH


@dataclass(frozen=True, slots=True)
class SignInFrequency:
    every_time: bool = False
    value: int = 0
    unit: str = "hours"  # "hours" | "days"

    @property
    def period(self) -> timedelta:
        return EVERY_TIME_SKEW if self.every_time else timedelta(**{self.unit: self.value})


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    display_name: str
    state: PolicyState
    conditions: Conditions
    grant: Grant | None = None
    sign_in_frequency: SignInFrequency | None = None


# -- a sign-in as values ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Subject:
    """Who signs in: the user, their groups and role template ids, and what they could sign in with."""

    user_id: str
    group_ids: frozenset[str] = frozenset()
    role_ids: frozenset[str] = frozenset()
    registered: RegisteredMethods = field(default_factory=RegisteredMethods)
    registrable: frozenset[MethodMode] = SELF_REGISTRABLE


@dataclass(frozen=True, slots=True)
class SignIn:
    """The facts of one sign-in (or a What If question). `evidence` is None in What If."""

    subject: Subject
    now: datetime
    app_id: str | None = None
    user_action: str | None = None
    client_app_type: ClientAppType | None = ClientAppType.BROWSER
    platform: Platform | None = None
    ip_address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    evidence: Evidence | None = None


@dataclass(frozen=True, slots=True)
class Requirement:
    """One enforced policy's unmet grant: satisfy any one of `alternatives` (an OR, or one control of an AND)."""

    policy_id: str
    policy_name: str
    alternatives: tuple[StrengthOutcome, ...]


@dataclass(frozen=True, slots=True)
class PolicyEvaluation:
    """One policy's line in the sign-in log (appliedConditionalAccessPolicies[]) and in What If."""

    policy: Policy
    applies: bool
    result: PolicyResult
    reasons: tuple[Reason, ...]
    enforced_grant_controls: tuple[str, ...] = ()
    enforced_session_controls: tuple[str, ...] = ()
    strength: StrengthOutcome | None = None
    blocks: bool = False
    requirements: tuple[Requirement, ...] = ()
    fresh_authentication_required: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    status: Status
    policies: tuple[PolicyEvaluation, ...]
    blocked_by: Policy | None = None
    # Every requirement must be met; within one, any alternative will do.
    requirements: tuple[Requirement, ...] = ()
    fresh_authentication_required: bool = False
    error: ErrorCode | None = field(default=None)


# -- platforms from the User-Agent ------------------------------------------------------------------
def platform_from_user_agent(user_agent: str | None) -> Platform | None:
    """The device platform a User-Agent names (the one parser in core/user_agents.py reads it); None when it
    names none of Entra's platforms."""
    platform = user_agents.describe(user_agent).platform
    return Platform(platform) if platform is not None else None


# -- conditions -----------------------------------------------------------------------------------
def _users_match(users: Users, subject: Subject) -> bool:
    excluded = (
        subject.user_id in users.exclude_users
        or bool(subject.group_ids & users.exclude_groups)
        or bool(subject.role_ids & users.exclude_roles)
    )
    if excluded or NONE in users.include_users:
        return False
    return (
        ALL in users.include_users
        or subject.user_id in users.include_users
        or bool(subject.group_ids & users.include_groups)
        or bool(subject.role_ids & users.include_roles)
    )


def _application_reason(apps: Applications, sign_in: SignIn) -> Reason | None:
    if sign_in.user_action is not None:
        return None if sign_in.user_action in apps.include_user_actions else Reason.USER_ACTIONS
    if not apps.include_applications and apps.include_user_actions:
        return Reason.USER_ACTIONS
    if sign_in.app_id is None or not apps.include_applications or NONE in apps.include_applications:
        return Reason.APPLICATION
    if ALL in apps.exclude_applications or sign_in.app_id in apps.exclude_applications:
        return Reason.APPLICATION
    if ALL in apps.include_applications or sign_in.app_id in apps.include_applications:
        return None
    return Reason.APPLICATION


def _platform_match(conditions: Conditions, platform: Platform | None) -> bool:
    if conditions.include_platforms is None:
        return True
    if platform is not None and (platform in conditions.exclude_platforms or "all" in conditions.exclude_platforms):
        return False
    # An unknown platform is matched only by "all", as in Entra.
    return "all" in conditions.include_platforms or (platform is not None and platform in conditions.include_platforms)


def _in_location(
    entry: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, locations: dict[str, NamedLocation]
) -> bool:
    if entry == ALL:
        return True
    if ip is None:
        return False
    if entry == ALL_TRUSTED:
        return any(loc.trusted and loc.contains(ip) for loc in locations.values())
    location = locations.get(entry)
    return location is not None and location.contains(ip)


def _location_match(conditions: Conditions, sign_in: SignIn, locations: dict[str, NamedLocation]) -> bool:
    if conditions.include_locations is None:
        return True
    if any(_in_location(e, sign_in.ip_address, locations) for e in conditions.exclude_locations):
        return False
    return any(_in_location(e, sign_in.ip_address, locations) for e in conditions.include_locations)


def _client_app_match(conditions: Conditions, client: ClientAppType | None) -> bool:
    types = conditions.client_app_types
    return not types or "all" in types or (client is not None and client in types)


def unmet_conditions(policy: Policy, sign_in: SignIn, locations: dict[str, NamedLocation]) -> tuple[Reason, ...]:
    """The conditions of `policy` this sign-in does not meet (empty: the policy applies)."""
    c = policy.conditions
    reasons: list[Reason] = []
    if not _users_match(c.users, sign_in.subject):
        reasons.append(Reason.USERS)
    app_reason = _application_reason(c.applications, sign_in)
    if app_reason is not None:
        reasons.append(app_reason)
    if not _client_app_match(c, sign_in.client_app_type):
        reasons.append(Reason.CLIENT_APPS)
    if not _platform_match(c, sign_in.platform):
        reasons.append(Reason.DEVICE_PLATFORM)
    if not _location_match(c, sign_in, locations):
        reasons.append(Reason.LOCATION)
    return tuple(reasons)


# -- grant and session controls ---------------------------------------------------------------------
_CONTROL_NAMES = {
    Control.BLOCK: "Block", Control.MFA: "Mfa", Control.AUTHENTICATION_STRENGTH: "RequireAuthenticationStrength",
}


def _strength_of(control: Control, grant: Grant) -> Strength | None:
    if control is Control.MFA:
        return MULTIFACTOR_AUTHENTICATION
    if control is Control.AUTHENTICATION_STRENGTH:
        return grant.strength
    return None


def _grant(policy: Policy, sign_in: SignIn) -> tuple[bool, tuple[Requirement, ...], StrengthOutcome | None]:
    """(blocks, unmet requirements, the strength outcome for the log) of an applying policy's grant."""
    grant = policy.grant
    if grant is None or not grant.controls:
        return False, (), None
    subject = sign_in.subject
    outcomes: dict[Control, StrengthOutcome | None] = {}
    for control in sorted(grant.controls):
        strength = _strength_of(control, grant)
        outcomes[control] = (
            None if strength is None
            else evaluate_strength(strength, sign_in.evidence, subject.registered, subject.registrable)
        )
    shown = next((o for o in outcomes.values() if o is not None), None)
    met = {c: o is not None and o.satisfied for c, o in outcomes.items()}
    if grant.operator == "AND":
        if Control.BLOCK in grant.controls:
            return True, (), shown
        unmet = tuple(
            Requirement(policy.id, policy.display_name, (o,))
            for c, o in outcomes.items() if o is not None and not met[c]
        )
        return False, unmet, shown
    if any(met.values()):
        return False, (), shown
    alternatives = tuple(o for o in outcomes.values() if o is not None)
    if not alternatives:  # OR over block alone
        return True, (), shown
    return False, (Requirement(policy.id, policy.display_name, alternatives),), shown


def _stale(frequency: SignInFrequency | None, sign_in: SignIn) -> bool:
    if frequency is None or sign_in.evidence is None:
        return False
    return sign_in.now - sign_in.evidence.auth_time > frequency.period


def _requirement_hopeless(requirement: Requirement) -> bool:
    return not any(o.reachable for o in requirement.alternatives)


def _requirement_needs_registration(requirement: Requirement) -> bool:
    return not any(o.satisfied or o.challenges for o in requirement.alternatives)


def evaluate_policy(policy: Policy, sign_in: SignIn, locations: dict[str, NamedLocation]) -> PolicyEvaluation:
    reasons = unmet_conditions(policy, sign_in, locations)
    report_only = policy.state is PolicyState.REPORT_ONLY
    if policy.state is PolicyState.DISABLED:
        return PolicyEvaluation(policy, False, PolicyResult.NOT_ENABLED, (*reasons, Reason.POLICY_NOT_ENABLED))
    if reasons:
        result = PolicyResult.REPORT_ONLY_NOT_APPLIED if report_only else PolicyResult.NOT_APPLIED
        return PolicyEvaluation(policy, False, result, reasons)
    grant_controls = tuple(_CONTROL_NAMES[c] for c in sorted(policy.grant.controls)) if policy.grant else ()
    session_controls = ("SignInFrequency",) if policy.sign_in_frequency is not None else ()
    blocks, requirements, shown = _grant(policy, sign_in)
    fresh = _stale(policy.sign_in_frequency, sign_in)
    hopeless = blocks or any(_requirement_hopeless(r) for r in requirements)
    if report_only:
        if hopeless:
            result = PolicyResult.REPORT_ONLY_FAILURE
        elif requirements or fresh:
            result = PolicyResult.REPORT_ONLY_INTERRUPTED
        else:
            result = PolicyResult.REPORT_ONLY_SUCCESS
    else:
        result = PolicyResult.FAILURE if hopeless or requirements or fresh else PolicyResult.SUCCESS
    return PolicyEvaluation(
        policy, True, result, (Reason.NOT_SET,), grant_controls, session_controls, shown,
        blocks, requirements, fresh,
    )


def _order(policies: Iterable[Policy]) -> list[Policy]:
    return sorted(policies, key=lambda p: (p.display_name.lower(), p.id))


def evaluate(policies: Iterable[Policy], sign_in: SignIn, locations: Sequence[NamedLocation] = ()) -> Decision:
    """Every policy against one sign-in: the decision (enforced policies only) and each policy's result."""
    by_id = {loc.id: loc for loc in locations}
    evaluations = tuple(evaluate_policy(p, sign_in, by_id) for p in _order(policies))
    enforced = [e for e in evaluations if e.applies and e.policy.state is PolicyState.ENABLED]
    status = (
        Status.NOT_APPLIED if not enforced
        else Status.SUCCESS if all(e.result is PolicyResult.SUCCESS for e in enforced)
        else Status.FAILURE
    )
    requirements = tuple(r for e in enforced for r in e.requirements)
    fresh = any(e.fresh_authentication_required for e in enforced)
    blocker = next((e for e in enforced if e.blocks), None) or next(
        (e for e in enforced if any(_requirement_hopeless(r) for r in e.requirements)), None
    )
    registering = sign_in.user_action == REGISTER_SECURITY_INFO
    if blocker is not None:
        if blocker.blocks:
            code = errors.SECURITY_INFO_REGISTRATION_BLOCKED if registering else errors.BLOCKED_BY_CONDITIONAL_ACCESS
        else:
            code = errors.STRENGTH_CANNOT_BE_SATISFIED
        return Decision(Outcome.BLOCK, status, evaluations, blocker.policy, requirements, fresh, code)
    if any(_requirement_needs_registration(r) for r in requirements):
        return Decision(Outcome.REGISTRATION_REQUIRED, status, evaluations, None, requirements, fresh,
                        errors.STRONG_AUTHENTICATION_ENROLLMENT_REQUIRED)
    if requirements:
        return Decision(Outcome.STEP_UP, status, evaluations, None, requirements, fresh,
                        errors.STRONG_AUTHENTICATION_REQUIRED)
    if fresh:
        return Decision(Outcome.REAUTHENTICATE, status, evaluations, None, (), True, errors.SIGN_IN_FREQUENCY)
    return Decision(Outcome.ALLOW, status, evaluations)


# -- lock-out protection ------------------------------------------------------------------------------
def _leaves_a_way_in(conditions: Conditions) -> bool:
    """Some sign-in to the admin API escapes the policy whatever the user: a platform, location or client
    app condition that does not cover everything."""
    if conditions.include_platforms is not None and (
        "all" not in conditions.include_platforms or conditions.exclude_platforms
    ):
        return True
    if conditions.include_locations is not None and (
        ALL not in conditions.include_locations or conditions.exclude_locations
    ):
        return True
    return not _client_app_match(conditions, None)


def locks_out(policy: Policy, admins: Iterable[Subject], now: datetime) -> bool:
    """Whether enabling `policy` would keep every Global Administrator out of the admin API: it covers
    them all there under every condition, and blocks or asks for a strength none can meet with the
    methods they have. With no Global Administrator there is nobody to lock out."""
    holders = [a for a in admins if GLOBAL_ADMINISTRATOR in a.role_ids]
    if policy.state is not PolicyState.ENABLED or not holders or _leaves_a_way_in(policy.conditions):
        return False
    for admin in holders:
        sign_in = SignIn(admin, now, app_id=ADMIN_API_APP_ID, client_app_type=None)
        unmet = set(unmet_conditions(policy, sign_in, {})) - {Reason.CLIENT_APPS}
        if unmet:
            return False
        blocks, requirements, _ = _grant(policy, sign_in)
        if not blocks and all(any(o.challenges for o in r.alternatives) for r in requirements):
            return False
    return True


def strength_ids(policy: Policy) -> frozenset[str]:
    grant = policy.grant
    return frozenset({grant.strength.id}) if grant is not None and grant.strength is not None else frozenset()



# -- what a live sign-in does with a decision ---------------------------------------------------------
def requires_multifactor(decision: Decision) -> bool:
    """Graph's authenticationRequirement: multi-factor when an enforced, applying policy asked for mfa or a
    strength, whether the sign-in already met it or not (report-only policies never raise it)."""
    wanted = {Control.MFA, Control.AUTHENTICATION_STRENGTH}
    return any(
        e.applies and e.policy.state is PolicyState.ENABLED and e.policy.grant is not None
        and bool(e.policy.grant.controls & wanted)
        for e in decision.policies
    )


@dataclass(frozen=True, slots=True)
class StepUpOffer:
    """What a step-up ceremony offers: the modes that help meet every requirement at once, and, when fido2 is
    among them, only the registered passkeys that count for every strength asking for fido2."""

    modes: frozenset[MethodMode]
    passkeys: frozenset[PasskeyEvidence]


def step_up_offer(decision: Decision) -> StepUpOffer:
    """Built from the requirements' alternatives: one ceremony should meet them all, so the modes common to
    every requirement are offered (or, when none is common, each requirement's, to be met in turn)."""
    per_requirement: list[frozenset[MethodMode]] = []
    passkey_sets: list[frozenset[PasskeyEvidence]] = []
    for requirement in decision.requirements:
        per_requirement.append(frozenset(m for o in requirement.alternatives for c in o.challenges for m in c))
        fido2 = [frozenset(o.passkeys) for o in requirement.alternatives
                 if any(MethodMode.FIDO2 in c for c in o.challenges)]
        if fido2:
            passkey_sets.append(frozenset().union(*fido2))
    if not per_requirement:
        return StepUpOffer(frozenset(), frozenset())
    modes = frozenset.intersection(*per_requirement) or frozenset().union(*per_requirement)
    passkeys = frozenset.intersection(*passkey_sets) if passkey_sets else frozenset()
    return StepUpOffer(modes, passkeys if MethodMode.FIDO2 in modes else frozenset())
