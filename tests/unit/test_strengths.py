"""Table and property tests of authentication strengths (core/strengths.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passgate.core import errors
from passgate.core.errors import PassgateError
from passgate.core.strengths import (
    ALL_MODES,
    BUILT_INS,
    MULTIFACTOR_AUTHENTICATION,
    PASSWORDLESS_MFA,
    PHISHING_RESISTANT_MFA,
    CombinationConfiguration,
    PasskeyRequirements,
    PolicyType,
    RegisteredMethods,
    Strength,
    StrengthResult,
    could_satisfy,
    evaluate,
    format_combination,
    parse_combination,
    parse_combinations,
    satisfies,
)
from passgate.core.values import Evidence, MethodMode, PasskeyEvidence

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
YUBIKEY = "ee882879-721c-4913-9775-3dfcce97072a"
ICLOUD = "fbfc3007-154e-4ecc-8c0b-6e020557d7bd"
ATTESTED_KEY = PasskeyEvidence(YUBIKEY, attested=True, device_bound=True)
SYNCED_KEY = PasskeyEvidence(ICLOUD, attested=False, device_bound=False)
UNATTESTED_BOUND = PasskeyEvidence(YUBIKEY, attested=False, device_bound=True)
M = MethodMode


def ev(*modes: MethodMode, passkey: PasskeyEvidence | None = None) -> Evidence:
    return Evidence(frozenset(modes), NOW, passkey)


def custom(*combinations: str, aaguids: tuple[str, ...] | None = None,
           requirements: PasskeyRequirements = PasskeyRequirements()) -> Strength:
    configs = () if aaguids is None else (CombinationConfiguration("c1", frozenset(aaguids)),)
    return Strength("s1", "Custom", parse_combinations(combinations), PolicyType.CUSTOM, "",
                    configs, requirements)


SEED_003 = custom("fido2", "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse")
ATTESTED_BOUND = custom("fido2", requirements=PasskeyRequirements(True, True))


def test_built_ins_have_entra_ids_names_and_combinations() -> None:
    assert list(BUILT_INS) == ["00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-000000000003",
                               "00000000-0000-0000-0000-000000000004"]
    assert [s.display_name for s in BUILT_INS.values()] == [
        "Multifactor authentication", "Passwordless MFA", "Phishing resistant MFA"]
    assert [format_combination(c) for c in PHISHING_RESISTANT_MFA.combinations] == [
        "windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"]
    assert len(MULTIFACTOR_AUTHENTICATION.combinations) == 19
    assert len(PASSWORDLESS_MFA.combinations) == 4
    assert all(s.policy_type is PolicyType.BUILT_IN and s.requirements_satisfied == "mfa" for s in BUILT_INS.values())


@pytest.mark.parametrize(("strength", "evidence", "expected"), [
    (PHISHING_RESISTANT_MFA, ev(M.FIDO2, passkey=SYNCED_KEY), True),  # synced passkeys count as fido2
    (PHISHING_RESISTANT_MFA, ev(M.PASSWORD, M.SOFTWARE_OATH), False),
    (PHISHING_RESISTANT_MFA, ev(M.TAP_ONE_TIME), False),
    (MULTIFACTOR_AUTHENTICATION, ev(M.PASSWORD, M.SOFTWARE_OATH), True),
    (MULTIFACTOR_AUTHENTICATION, ev(M.PASSWORD), False),
    (MULTIFACTOR_AUTHENTICATION, ev(M.SOFTWARE_OATH), False),
    (MULTIFACTOR_AUTHENTICATION, ev(M.TAP_MULTI_USE), True),
    (PASSWORDLESS_MFA, ev(M.TAP_ONE_TIME), False),
    (SEED_003, ev(M.TAP_ONE_TIME), True),
    (custom("temporaryAccessPassOneTime"), ev(M.TAP_MULTI_USE), False),  # one-time and multi-use are distinct
    (custom("temporaryAccessPassMultiUse"), ev(M.TAP_ONE_TIME), False),
    (custom("fido2", aaguids=(YUBIKEY,)), ev(M.FIDO2, passkey=ATTESTED_KEY), True),
    (custom("fido2", aaguids=(YUBIKEY,)), ev(M.FIDO2, passkey=SYNCED_KEY), False),
    (custom("fido2", aaguids=(YUBIKEY,)), ev(M.FIDO2), False),  # a fido2 claim without passkey facts proves nothing
    (ATTESTED_BOUND, ev(M.FIDO2, passkey=ATTESTED_KEY), True),
    (ATTESTED_BOUND, ev(M.FIDO2, passkey=UNATTESTED_BOUND), False),
    (ATTESTED_BOUND, ev(M.FIDO2, passkey=SYNCED_KEY), False),
    (custom("fido2", requirements=PasskeyRequirements(require_device_bound=True)),
     ev(M.FIDO2, passkey=UNATTESTED_BOUND), True),
    (custom("fido2", requirements=PasskeyRequirements(require_attested=True)), ev(M.FIDO2, passkey=SYNCED_KEY), False),
])
def test_satisfies(strength: Strength, evidence: Evidence, expected: bool) -> None:
    assert satisfies(strength, evidence) is expected
    assert (evaluate(strength, evidence, RegisteredMethods()).result is StrengthResult.SATISFIED) is expected


@pytest.mark.parametrize(("strength", "evidence", "registered", "result", "challenges"), [
    # password + TOTP user steps up to their passkey for phishing-resistant MFA
    (PHISHING_RESISTANT_MFA, ev(M.PASSWORD, M.SOFTWARE_OATH),
     RegisteredMethods(frozenset({M.PASSWORD, M.SOFTWARE_OATH}), (SYNCED_KEY,)),
     StrengthResult.SINGLE_CHALLENGE_REQUIRED, [{M.FIDO2}]),
    # ... but with no passkey, must register one
    (PHISHING_RESISTANT_MFA, ev(M.PASSWORD, M.SOFTWARE_OATH), RegisteredMethods(frozenset({M.PASSWORD})),
     StrengthResult.SINGLE_REGISTRATION_REQUIRED, []),
    # password only, MFA: TOTP is the one challenge left
    (MULTIFACTOR_AUTHENTICATION, ev(M.PASSWORD), RegisteredMethods(frozenset({M.PASSWORD, M.SOFTWARE_OATH})),
     StrengthResult.SINGLE_CHALLENGE_REQUIRED, [{M.SOFTWARE_OATH}]),
    # nothing yet, only password + TOTP registered: two challenges
    (MULTIFACTOR_AUTHENTICATION, None, RegisteredMethods(frozenset({M.PASSWORD, M.SOFTWARE_OATH})),
     StrengthResult.MULTIPLE_CHALLENGES_REQUIRED, [{M.PASSWORD, M.SOFTWARE_OATH}]),
    # only a passkey of a model the configuration refuses
    (custom("fido2", aaguids=(YUBIKEY,)), ev(M.PASSWORD), RegisteredMethods(frozenset({M.PASSWORD}), (SYNCED_KEY,)),
     StrengthResult.CANNOT_SATISFY_DUE_TO_COMBINATION_CONFIGURATION, []),
    # a strength of modes Passgate cannot produce or register
    (custom("sms", "windowsHelloForBusiness"), ev(M.PASSWORD), RegisteredMethods(frozenset({M.PASSWORD})),
     StrengthResult.CANNOT_SATISFY, []),
    # the seed-003 strength for a new user holding only a one-time pass
    (SEED_003, None, RegisteredMethods(frozenset({M.TAP_ONE_TIME})),
     StrengthResult.SINGLE_CHALLENGE_REQUIRED, [{M.TAP_ONE_TIME}]),
])
def test_outcomes_say_what_is_left(strength: Strength, evidence: Evidence | None, registered: RegisteredMethods,
                                   result: StrengthResult, challenges: list[set[MethodMode]]) -> None:
    outcome = evaluate(strength, evidence, registered)
    assert outcome.result is result
    assert [set(c) for c in outcome.challenges] == challenges


def test_step_up_offers_only_passkeys_the_strength_admits() -> None:
    strength = custom("fido2", aaguids=(YUBIKEY,))
    outcome = evaluate(strength, ev(M.PASSWORD), RegisteredMethods(frozenset({M.PASSWORD}), (SYNCED_KEY, ATTESTED_KEY)))
    assert outcome.result is StrengthResult.SINGLE_CHALLENGE_REQUIRED and outcome.passkeys == (ATTESTED_KEY,)


def test_registration_is_offered_only_for_registrable_modes() -> None:
    nothing = RegisteredMethods()
    assert evaluate(PHISHING_RESISTANT_MFA, None, nothing, frozenset()).result is StrengthResult.CANNOT_SATISFY
    outcome = evaluate(MULTIFACTOR_AUTHENTICATION, None, nothing)
    assert outcome.result is StrengthResult.SINGLE_REGISTRATION_REQUIRED
    assert frozenset({M.FIDO2}) in outcome.registrations
    assert not could_satisfy(PHISHING_RESISTANT_MFA, nothing)
    assert could_satisfy(PHISHING_RESISTANT_MFA, RegisteredMethods(passkeys=(SYNCED_KEY,)))


@pytest.mark.parametrize("text", ["", "fido", "password,", "password,password", "Fido2", "fido2;sms"])
def test_bad_combinations_are_refused(text: str) -> None:
    with pytest.raises(PassgateError) as caught:
        parse_combination(text)
    assert caught.value.code is errors.STRENGTH_COMBINATION_INVALID


def test_combination_lists_need_one_and_no_repeats() -> None:
    with pytest.raises(PassgateError):
        parse_combinations([])
    with pytest.raises(PassgateError):
        parse_combinations(["password,sms", "sms, password"])
    assert format_combination(parse_combination("sms, password")) == "password,sms"


def test_requirements_satisfied_is_mfa_only_when_every_combination_is() -> None:
    assert custom("fido2", "password,softwareOath").requirements_satisfied == "mfa"
    assert custom("fido2", "password").requirements_satisfied == "none"


modes = st.sets(st.sampled_from(list(MethodMode)), max_size=5)
passkeys = st.builds(PasskeyEvidence, st.sampled_from([YUBIKEY, ICLOUD]), st.booleans(), st.booleans())
combinations = st.lists(
    st.sets(st.sampled_from(ALL_MODES), min_size=1, max_size=3).map(frozenset), min_size=1, max_size=4, unique=True)


@given(combinations, modes, st.none() | passkeys, st.booleans(), st.booleans())
def test_more_evidence_never_hurts(combos: list[frozenset[str]], proven: set[MethodMode],
                                   passkey: PasskeyEvidence | None, attested: bool, bound: bool) -> None:
    strength = Strength("p", "P", tuple(combos), passkey_requirements=PasskeyRequirements(attested, bound))
    base = Evidence(frozenset(proven), NOW, passkey)
    if satisfies(strength, base):
        for extra in MethodMode:
            assert satisfies(strength, Evidence(frozenset(proven | {extra}), NOW, passkey))


@given(combinations, modes, st.lists(passkeys, max_size=3))
def test_a_challenge_offered_then_done_satisfies(combos: list[frozenset[str]], registered: set[MethodMode],
                                                 keys: list[PasskeyEvidence]) -> None:
    """Doing any step-up the engine offers satisfies the strength: the offer is never a dead end."""
    strength = Strength("p", "P", tuple(combos))
    outcome = evaluate(strength, None, RegisteredMethods(frozenset(registered), tuple(keys)))
    for challenge in outcome.challenges:
        passkey = outcome.passkeys[0] if M.FIDO2 in challenge else None
        assert satisfies(strength, Evidence(frozenset(challenge), NOW, passkey))
        assert challenge <= registered | ({M.FIDO2} if outcome.passkeys else set())


@given(st.sets(st.sampled_from([YUBIKEY, ICLOUD, "00000000-0000-0000-0000-00000000000a"]), min_size=1), passkeys)
def test_aaguid_configuration_admits_exactly_the_listed_models(allowed: set[str], passkey: PasskeyEvidence) -> None:
    strength = custom("fido2", aaguids=tuple(allowed))
    assert satisfies(strength, ev(M.FIDO2, passkey=passkey)) is (passkey.aaguid in allowed)
