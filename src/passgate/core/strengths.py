"""Authentication strengths: does what a sign-in proved satisfy a strength, and what is still missing?

A strength is a set of combinations; a combination is a set of method modes that must all have been
proven (`"password,softwareOath"`). One satisfied combination satisfies the strength. The fido2 mode
can be narrowed by combination configurations (allowed AAGUIDs, Entra's) and by Passgate's passkey
requirements (verified attestation, device-bound), so a passkey counts as `fido2` for a strength only
when it meets every narrowing. Modes Passgate cannot produce (sms, windowsHelloForBusiness, ...) may
appear in combinations, as in Entra's built-ins, but can never be proven or registered here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from . import errors
from .errors import PassgateError
from .values import Evidence, MethodMode, PasskeyEvidence

# Graph's authenticationMethodModes, in the flags enum's order (unknownFutureValue is not a mode).
ALL_MODES: tuple[str, ...] = (
    "password", "voice", "hardwareOath", "softwareOath", "sms", "fido2", "windowsHelloForBusiness",
    "microsoftAuthenticatorPush", "deviceBasedPush", "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse",
    "email", "x509CertificateSingleFactor", "x509CertificateMultiFactor", "federatedSingleFactor",
    "federatedMultiFactor", "qrCodePin",
)
# Modes that prove two factors on their own (the single modes of the Multifactor authentication strength).
MULTIFACTOR_MODES = frozenset({
    "windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush",
    "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse", "federatedMultiFactor",
})
# What a user can add on Security info; a Temporary Access Pass is only ever issued by an administrator.
SELF_REGISTRABLE = frozenset({MethodMode.FIDO2, MethodMode.PASSWORD, MethodMode.SOFTWARE_OATH})

Combination = frozenset[str]


class PolicyType(StrEnum):
    BUILT_IN = "builtIn"
    CUSTOM = "custom"


class StrengthResult(StrEnum):
    """Graph's `authenticationStrengthResult` (beta sign-in log)."""

    NOT_SET = "notSet"
    SKIPPED_FOR_PROOF_UP = "skippedForProofUp"
    SATISFIED = "satisfied"
    SINGLE_CHALLENGE_REQUIRED = "singleChallengeRequired"
    MULTIPLE_CHALLENGES_REQUIRED = "multipleChallengesRequired"
    SINGLE_REGISTRATION_REQUIRED = "singleRegistrationRequired"
    MULTIPLE_REGISTRATIONS_REQUIRED = "multipleRegistrationsRequired"
    CANNOT_SATISFY_DUE_TO_COMBINATION_CONFIGURATION = "cannotSatisfyDueToCombinationConfiguration"
    CANNOT_SATISFY = "cannotSatisfy"


@dataclass(frozen=True, slots=True)
class PasskeyRequirements:
    """Passgate's extension (`passgatePasskeyRequirements` on a custom strength): verified passkey facts
    every passkey must have to count as `fido2` for this strength."""

    require_attested: bool = False
    require_device_bound: bool = False

    def met_by(self, passkey: PasskeyEvidence) -> bool:
        attested = passkey.attested or not self.require_attested
        return attested and (passkey.device_bound or not self.require_device_bound)


@dataclass(frozen=True, slots=True)
class CombinationConfiguration:
    """A fido2CombinationConfiguration: the fido2 mode counts only for these authenticator models."""

    id: str
    allowed_aaguids: frozenset[str]
    applies_to: frozenset[str] = frozenset({"fido2"})


@dataclass(frozen=True, slots=True)
class Strength:
    id: str
    display_name: str
    combinations: tuple[Combination, ...]
    policy_type: PolicyType = PolicyType.CUSTOM
    description: str = ""
    configurations: tuple[CombinationConfiguration, ...] = ()
    passkey_requirements: PasskeyRequirements = PasskeyRequirements()

    @property
    def requirements_satisfied(self) -> str:
        """Graph's `requirementsSatisfied`: "mfa" when every combination proves two factors."""
        return "mfa" if self.combinations and all(is_multifactor(c) for c in self.combinations) else "none"

    def admits_passkey(self, passkey: PasskeyEvidence) -> bool:
        """Whether this passkey counts as the fido2 mode for this strength."""
        aaguid = passkey.aaguid.lower()
        return self.passkey_requirements.met_by(passkey) and all(
            aaguid in c.allowed_aaguids for c in self.configurations if "fido2" in c.applies_to
        )


@dataclass(frozen=True, slots=True)
class RegisteredMethods:
    """What a user could sign in with right now: usable non-passkey modes and usable passkeys."""

    modes: frozenset[MethodMode] = frozenset()
    passkeys: tuple[PasskeyEvidence, ...] = ()


@dataclass(frozen=True, slots=True)
class StrengthOutcome:
    """How a sign-in stands against one strength.

    `challenges`: for each combination the user can complete with what is registered, the modes still
    to prove (offer only these in a step-up); `passkeys`: the registered passkeys that count as fido2
    here; `registrations`: for each combination reachable by registering methods, the modes to add."""

    strength: Strength
    result: StrengthResult
    challenges: tuple[frozenset[MethodMode], ...] = ()
    passkeys: tuple[PasskeyEvidence, ...] = ()
    registrations: tuple[frozenset[MethodMode], ...] = ()

    @property
    def satisfied(self) -> bool:
        return self.result is StrengthResult.SATISFIED

    @property
    def reachable(self) -> bool:
        """Satisfied, or reachable by a step-up or by registering a method."""
        return bool(self.satisfied or self.challenges or self.registrations)


# -- the built-ins (reference §5.2) ---------------------------------------------------------------
MFA_ID = "00000000-0000-0000-0000-000000000002"
PASSWORDLESS_MFA_ID = "00000000-0000-0000-0000-000000000003"
PHISHING_RESISTANT_MFA_ID = "00000000-0000-0000-0000-000000000004"
BUILT_IN_DATE = datetime(2021, 12, 1, tzinfo=UTC)


def parse_combination(text: str) -> Combination:
    """`"password,softwareOath"` -> {password, softwareOath}; an unknown or repeated mode is refused."""
    if not isinstance(text, str):
        raise PassgateError(errors.STRENGTH_COMBINATION_INVALID, "Each combination must be a string.")
    parts = [p.strip() for p in text.split(",")]
    unknown = [p for p in parts if p not in ALL_MODES]
    if unknown:
        raise PassgateError(
            errors.STRENGTH_COMBINATION_INVALID,
            f"{unknown[0][:60]!r} in {text[:200]!r} is not an authentication method mode; "
            f"the modes are: {', '.join(ALL_MODES)}.",
        )
    if len(set(parts)) != len(parts):
        raise PassgateError(errors.STRENGTH_COMBINATION_INVALID, f"{text[:200]!r} names a mode twice.")
    return frozenset(parts)


def parse_combinations(items: Iterable[object]) -> tuple[Combination, ...]:
    """A whole `allowedCombinations` list: at least one combination, no duplicates, order kept."""
    out: list[Combination] = []
    for item in items:
        combination = parse_combination(item)  # type: ignore[arg-type]
        if combination in out:
            raise PassgateError(
                errors.STRENGTH_COMBINATION_INVALID,
                f"The combination {format_combination(combination)!r} is listed twice.",
            )
        out.append(combination)
    if not out:
        raise PassgateError(errors.STRENGTH_COMBINATION_INVALID, "A strength needs at least one combination.")
    return tuple(out)


def format_combination(combination: Combination) -> str:
    """Graph's spelling: the modes comma-joined in the enum's order, so equal sets read the same."""
    return ",".join(m for m in ALL_MODES if m in combination)


def is_multifactor(combination: Combination) -> bool:
    return len(combination) >= 2 or bool(combination & MULTIFACTOR_MODES)


def _built_in(strength_id: str, name: str, description: str, combinations: str) -> Strength:
    return Strength(
        strength_id, name, tuple(parse_combination(c) for c in combinations.split(" ")),
        PolicyType.BUILT_IN, description,
    )


MULTIFACTOR_AUTHENTICATION = _built_in(
    MFA_ID, "Multifactor authentication", "Combinations of methods that satisfy strong authentication, such as a "
    "password + SMS",
    "windowsHelloForBusiness fido2 x509CertificateMultiFactor deviceBasedPush temporaryAccessPassOneTime "
    "temporaryAccessPassMultiUse password,microsoftAuthenticatorPush password,softwareOath password,hardwareOath "
    "password,x509CertificateSingleFactor password,x509CertificateMultiFactor password,sms password,voice "
    "federatedMultiFactor microsoftAuthenticatorPush,federatedSingleFactor softwareOath,federatedSingleFactor "
    "hardwareOath,federatedSingleFactor sms,federatedSingleFactor voice,federatedSingleFactor",
)
PASSWORDLESS_MFA = _built_in(
    PASSWORDLESS_MFA_ID, "Passwordless MFA", "Passwordless methods that satisfy strong authentication, such as "
    "Passwordless sign-in with the Microsoft Authenticator",
    "windowsHelloForBusiness fido2 x509CertificateMultiFactor deviceBasedPush",
)
PHISHING_RESISTANT_MFA = _built_in(
    PHISHING_RESISTANT_MFA_ID, "Phishing resistant MFA", "Phishing-resistant, Passwordless methods for the "
    "strongest authentication, such as a FIDO2 security key",
    "windowsHelloForBusiness fido2 x509CertificateMultiFactor",
)
BUILT_INS: dict[str, Strength] = {
    s.id: s for s in (MULTIFACTOR_AUTHENTICATION, PASSWORDLESS_MFA, PHISHING_RESISTANT_MFA)
}


# -- evaluation ----------------------------------------------------------------------------------
def _proven(strength: Strength, evidence: Evidence | None) -> frozenset[str]:
    """The modes the evidence proves *for this strength*: a passkey that fails its narrowing is no fido2."""
    if evidence is None:
        return frozenset()
    modes = {str(m) for m in evidence.methods}
    passkey = evidence.passkey
    if MethodMode.FIDO2 in evidence.methods and (passkey is None or not strength.admits_passkey(passkey)):
        modes.discard("fido2")
    return frozenset(modes)


def satisfies(strength: Strength, evidence: Evidence | None) -> bool:
    proven = _proven(strength, evidence)
    return any(c <= proven for c in strength.combinations)


def evaluate(
    strength: Strength,
    evidence: Evidence | None,
    registered: RegisteredMethods,
    registrable: frozenset[MethodMode] = SELF_REGISTRABLE,
) -> StrengthOutcome:
    """How `evidence` stands against `strength`, and what the user could still do about it.

    `registered` is what the user can sign in with now; `registrable` the modes the methods policy
    lets this user add (a passkey, a password, an authenticator app)."""
    proven = _proven(strength, evidence)
    if any(c <= proven for c in strength.combinations):
        return StrengthOutcome(strength, StrengthResult.SATISFIED)
    passkeys = tuple(p for p in registered.passkeys if strength.admits_passkey(p))
    # fido2 is available only through a passkey this strength admits, whatever `modes` says.
    available = {str(m) for m in registered.modes if m is not MethodMode.FIDO2} | ({"fido2"} if passkeys else set())
    producible = {str(m) for m in MethodMode}
    challenges: list[frozenset[MethodMode]] = []
    registrations: list[frozenset[MethodMode]] = []
    blocked_by_configuration = False
    for combination in strength.combinations:
        missing = combination - proven
        if not missing <= producible:
            continue
        if missing <= available:
            challenges.append(frozenset(MethodMode(m) for m in missing))
            continue
        if "fido2" in missing and registered.passkeys and not passkeys and (missing - {"fido2"}) <= available:
            blocked_by_configuration = True
        to_register = missing - available
        if to_register <= {str(m) for m in registrable}:
            registrations.append(frozenset(MethodMode(m) for m in to_register))
    challenges = _unique(challenges)
    registrations = _unique(registrations)
    if challenges:
        fewest = min(len(c) for c in challenges)
        result = (StrengthResult.SINGLE_CHALLENGE_REQUIRED if fewest == 1
                  else StrengthResult.MULTIPLE_CHALLENGES_REQUIRED)
    elif blocked_by_configuration:
        result = StrengthResult.CANNOT_SATISFY_DUE_TO_COMBINATION_CONFIGURATION
    elif registrations:
        fewest = min(len(r) for r in registrations)
        result = (StrengthResult.SINGLE_REGISTRATION_REQUIRED if fewest == 1
                  else StrengthResult.MULTIPLE_REGISTRATIONS_REQUIRED)
    else:
        result = StrengthResult.CANNOT_SATISFY
    return StrengthOutcome(strength, result, tuple(challenges), passkeys if challenges else (), tuple(registrations))


def _unique(items: list[frozenset[MethodMode]]) -> list[frozenset[MethodMode]]:
    """Drop repeats and any option that asks for more than another option already does."""
    kept = sorted(set(items), key=lambda s: (len(s), sorted(s)))
    return [s for i, s in enumerate(kept) if not any(other < s for other in kept[:i])]


def could_satisfy(strength: Strength, registered: RegisteredMethods) -> bool:
    """Whether the user could satisfy the strength with what is registered, starting from nothing."""
    return evaluate(strength, None, registered, frozenset()).challenges != ()
