"""The authentication methods policy for passkeys: may this passkey be registered or used by this user?

Entra's semantics: the method must be enabled and the user included and not excluded (exclusion
wins); the passkey must fully satisfy at least one passkey profile the user is in scope of. Key
restrictions and passkey type are checked at registration and at every sign-in; attestation only
at registration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from . import errors
from .errors import ErrorCode

ALL_USERS = "all_users"
DEFAULT_PROFILE_ID = "00000000-0000-0000-0000-000000000001"


class PasskeyType(StrEnum):
    DEVICE_BOUND = "deviceBound"
    SYNCED = "synced"


class Ceremony(StrEnum):
    REGISTRATION = "registration"
    SIGN_IN = "signIn"


@dataclass(frozen=True, slots=True)
class KeyRestrictions:
    is_enforced: bool = False
    enforcement_type: str = "block"  # "allow" | "block"
    aaguids: frozenset[str] = frozenset()

    def admits(self, aaguid: str) -> bool:
        if not self.is_enforced:
            return True
        listed = aaguid.lower() in self.aaguids
        return listed if self.enforcement_type == "allow" else not listed


@dataclass(frozen=True, slots=True)
class PasskeyProfile:
    id: str
    name: str
    passkey_types: frozenset[PasskeyType] = frozenset({PasskeyType.DEVICE_BOUND, PasskeyType.SYNCED})
    attestation_enforced: bool = False  # Graph: attestationEnforcement "registrationOnly"
    key_restrictions: KeyRestrictions = KeyRestrictions()


@dataclass(frozen=True, slots=True)
class Target:
    id: str  # ALL_USERS, a group id, or a user id
    target_type: str = "group"  # "group" | "user"
    is_registration_required: bool = False
    allowed_profiles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Fido2Policy:
    enabled: bool = True
    self_service_allowed: bool = True
    profiles: tuple[PasskeyProfile, ...] = (PasskeyProfile(DEFAULT_PROFILE_ID, "Default passkey profile"),)
    include_targets: tuple[Target, ...] = (Target(ALL_USERS, allowed_profiles=(DEFAULT_PROFILE_ID,)),)
    exclude_targets: tuple[Target, ...] = ()

    def profile(self, profile_id: str) -> PasskeyProfile | None:
        return next((p for p in self.profiles if p.id == profile_id.lower()), None)

    @property
    def names_groups(self) -> bool:
        """Whether a member's groups can change a decision: some target is a group (not all users, not a user)."""
        targets = (*self.include_targets, *self.exclude_targets)
        return any(t.id != ALL_USERS and t.target_type != "user" for t in targets)


@dataclass(frozen=True, slots=True)
class Member:
    """The user as the policy sees them."""

    user_id: str
    group_ids: frozenset[str] = frozenset()

    def matches(self, target: Target) -> bool:
        if target.id == ALL_USERS:
            return True
        if target.target_type == "user":
            return target.id == self.user_id
        return target.id in self.group_ids


@dataclass(frozen=True, slots=True)
class PasskeyFacts:
    aaguid: str
    passkey_type: PasskeyType
    attested: bool  # attestation verified to a trust anchor (registration only)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    profile: PasskeyProfile | None = None
    refusal: ErrorCode | None = None
    reasons: tuple[str, ...] = field(default=())

    @property
    def explanation(self) -> str:
        return " ".join(self.reasons)


def scope(policy: Fido2Policy, member: Member) -> tuple[Decision | None, tuple[PasskeyProfile, ...]]:
    """The profiles the member is in scope of, or the refusal when passkeys are not for them."""
    if not policy.enabled:
        return Decision(False, refusal=errors.FIDO2_DISABLED, reasons=("Passkey (FIDO2) is disabled.",)), ()
    if any(member.matches(t) for t in policy.exclude_targets):
        return Decision(False, refusal=errors.FIDO2_NOT_ENABLED_FOR_USER,
                        reasons=("The user is in an excluded group.",)), ()
    targets = [t for t in policy.include_targets if member.matches(t)]
    if not targets:
        return Decision(False, refusal=errors.FIDO2_NOT_ENABLED_FOR_USER,
                        reasons=("The user is in no included group.",)), ()
    seen: dict[str, PasskeyProfile] = {}
    for target in targets:
        # A target that names no profile uses the default one (Entra before opting in to profiles).
        for profile_id in target.allowed_profiles or (DEFAULT_PROFILE_ID,):
            profile = policy.profile(profile_id)
            if profile is not None:
                seen.setdefault(profile.id, profile)
    return None, tuple(seen.values())


def _failures(profile: PasskeyProfile, facts: PasskeyFacts, ceremony: Ceremony) -> list[tuple[ErrorCode, str]]:
    out: list[tuple[ErrorCode, str]] = []
    if facts.passkey_type not in profile.passkey_types:
        allowed = " or ".join(sorted(t.value for t in profile.passkey_types)) or "none"
        out.append((errors.PASSKEY_TYPE_NOT_ALLOWED,
                    f"profile '{profile.name}' allows {allowed} passkeys, not {facts.passkey_type.value}"))
    if not profile.key_restrictions.admits(facts.aaguid):
        verb = "does not allow" if profile.key_restrictions.enforcement_type == "allow" else "blocks"
        out.append((errors.PASSKEY_MODEL_NOT_ALLOWED, f"profile '{profile.name}' {verb} AAGUID {facts.aaguid}"))
    if ceremony is Ceremony.REGISTRATION and profile.attestation_enforced and not facts.attested:
        out.append((errors.ATTESTATION_REQUIRED, f"profile '{profile.name}' requires verified attestation"))
    return out


# When no profile is satisfied, the refusal names the rule a person can most easily act on.
_PRIORITY = (errors.PASSKEY_TYPE_NOT_ALLOWED, errors.PASSKEY_MODEL_NOT_ALLOWED, errors.ATTESTATION_REQUIRED)


def decide(
    policy: Fido2Policy, member: Member, facts: PasskeyFacts, ceremony: Ceremony, self_service: bool = False
) -> Decision:
    refused, profiles = scope(policy, member)
    if refused is not None:
        return refused
    if ceremony is Ceremony.REGISTRATION and self_service and not policy.self_service_allowed:
        return Decision(False, refusal=errors.SELF_SERVICE_REGISTRATION_NOT_ALLOWED,
                        reasons=("Self-service set-up is turned off.",))
    all_failures: list[tuple[ErrorCode, str]] = []
    for profile in profiles:
        failures = _failures(profile, facts, ceremony)
        if not failures:
            return Decision(True, profile=profile)
        all_failures.extend(failures)
    if not all_failures:
        return Decision(False, refusal=errors.FIDO2_NOT_ENABLED_FOR_USER,
                        reasons=("No passkey profile applies to the user.",))
    codes = {code for code, _ in all_failures}
    refusal = next(code for code in _PRIORITY if code in codes)
    return Decision(False, refusal=refusal, reasons=tuple(f"{text[0].upper()}{text[1:]}." for _, text in all_failures))


def registration_hints(policy: Fido2Policy, member: Member) -> tuple[str, ...]:
    """WebAuthn hints: when no profile in scope admits synced passkeys, start the browser on a security key."""
    _, profiles = scope(policy, member)
    if profiles and not any(PasskeyType.SYNCED in p.passkey_types for p in profiles):
        return ("security-key",)
    return ()


def attestation_preference(policy: Fido2Policy, member: Member) -> str:
    """Ask for `direct` attestation when any profile in scope enforces it."""
    _, profiles = scope(policy, member)
    return "direct" if any(p.attestation_enforced for p in profiles) else "none"


@dataclass(frozen=True, slots=True)
class Holder:
    """A user and their stored passkeys, as the impact preview sees them."""

    member: Member
    passkeys: tuple[tuple[str, PasskeyFacts], ...]  # (passkey id, facts)
    is_global_admin: bool = False


@dataclass(frozen=True, slots=True)
class Loss:
    user_id: str
    lost: tuple[str, ...]  # passkey ids usable now and not under the proposal
    kept: int  # passkeys still usable under the proposal

    @property
    def loses_every_passkey(self) -> bool:
        return self.kept == 0


def usable(policy: Fido2Policy, holder: Holder) -> set[str]:
    return {pid for pid, f in holder.passkeys if decide(policy, holder.member, f, Ceremony.SIGN_IN).allowed}


def impact(current: Fido2Policy, proposed: Fido2Policy, holders: list[Holder]) -> list[Loss]:
    """Who would lose which passkeys if `proposed` replaced `current` (sign-in rules only)."""
    out = []
    for holder in holders:
        now, then = usable(current, holder), usable(proposed, holder)
        lost = tuple(sorted(now - then))
        if lost:
            out.append(Loss(holder.member.user_id, lost, len(then)))
    return out


def locks_out_admins(current: Fido2Policy, proposed: Fido2Policy, holders: list[Holder]) -> bool:
    """True when some Global Administrator can sign in with a passkey now and none could afterwards."""
    admins = [h for h in holders if h.is_global_admin]
    return any(usable(current, h) for h in admins) and not any(usable(proposed, h) for h in admins)
