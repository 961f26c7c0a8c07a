"""Table and property tests of what a live sign-in does with a Conditional Access decision (core/access.py):
the step-up offer and the log's authenticationRequirement."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from passgate.core.access import (
    Control,
    Outcome,
    PolicyState,
    StepUpOffer,
    evaluate,
    requires_multifactor,
    step_up_offer,
)
from passgate.core.strengths import (
    MULTIFACTOR_AUTHENTICATION,
    PHISHING_RESISTANT_MFA,
    CombinationConfiguration,
    PolicyType,
    RegisteredMethods,
    Strength,
    parse_combinations,
)
from passgate.core.values import MethodMode, PasskeyEvidence
from tests.unit.test_access import KEY, SYNCED, policy, sign_in, strength_policy

M = MethodMode
ALL_REGISTERED = RegisteredMethods(frozenset({M.PASSWORD, M.SOFTWARE_OATH, M.TAP_MULTI_USE}), (KEY, SYNCED))
ONLY_KEY_MODEL = Strength("k", "Only the attested key's model", parse_combinations(["fido2"]), PolicyType.CUSTOM, "",
                          (CombinationConfiguration("c", frozenset({KEY.aaguid})),))


def test_password_and_code_needing_phishing_resistant_mfa_is_offered_only_passkeys() -> None:
    decision = evaluate([strength_policy(PHISHING_RESISTANT_MFA)],
                        sign_in(M.PASSWORD, M.SOFTWARE_OATH, registered=ALL_REGISTERED))
    assert decision.outcome is Outcome.STEP_UP
    assert step_up_offer(decision) == StepUpOffer(frozenset({M.FIDO2}), frozenset({KEY, SYNCED}))


def test_a_model_restriction_narrows_the_passkeys_offered() -> None:
    decision = evaluate([strength_policy(ONLY_KEY_MODEL)], sign_in(M.PASSWORD, registered=ALL_REGISTERED))
    assert step_up_offer(decision) == StepUpOffer(frozenset({M.FIDO2}), frozenset({KEY}))


def test_several_requirements_are_met_by_what_they_have_in_common() -> None:
    mfa = policy("A mfa")
    passkey = strength_policy(ONLY_KEY_MODEL, name="B key")  # type: ignore[arg-type]
    decision = evaluate([mfa, passkey], sign_in(M.PASSWORD, registered=ALL_REGISTERED))
    assert len(decision.requirements) == 2
    assert step_up_offer(decision) == StepUpOffer(frozenset({M.FIDO2}), frozenset({KEY}))


def test_mfa_for_a_password_session_offers_the_code_a_pass_or_a_passkey() -> None:
    decision = evaluate([policy()], sign_in(M.PASSWORD, registered=ALL_REGISTERED))
    offer = step_up_offer(decision)
    assert offer.modes == {M.SOFTWARE_OATH, M.TAP_MULTI_USE, M.FIDO2} and offer.passkeys == {KEY, SYNCED}


def test_no_requirement_no_offer() -> None:
    decision = evaluate([], sign_in(M.PASSWORD))
    assert step_up_offer(decision) == StepUpOffer(frozenset(), frozenset())


def test_authentication_requirement() -> None:
    s = sign_in(M.FIDO2, passkey=KEY, registered=ALL_REGISTERED)
    assert requires_multifactor(evaluate([policy()], s))  # met, and still a multi-factor requirement
    assert requires_multifactor(evaluate([strength_policy(PHISHING_RESISTANT_MFA)], s))
    assert not requires_multifactor(evaluate([policy(controls=frozenset({Control.BLOCK}))], s))
    assert not requires_multifactor(evaluate([policy(state=PolicyState.REPORT_ONLY)], s))
    assert not requires_multifactor(evaluate([], s))


strengths_st = st.sampled_from([MULTIFACTOR_AUTHENTICATION, PHISHING_RESISTANT_MFA, ONLY_KEY_MODEL])
modes_st = st.frozensets(st.sampled_from([M.PASSWORD, M.SOFTWARE_OATH, M.TAP_ONE_TIME, M.TAP_MULTI_USE]))
passkeys_st = st.lists(st.sampled_from([KEY, SYNCED, PasskeyEvidence("99999999-0000-0000-0000-000000000000", False,
                                                                     True)]), max_size=3, unique=True)


@given(st.lists(strengths_st, min_size=1, max_size=3), modes_st, modes_st, passkeys_st)
def test_every_offer_comes_from_the_decision_and_a_step_up_has_one(
        chosen: list[Strength], proven: frozenset[MethodMode], registered: frozenset[MethodMode],
        passkeys: list[PasskeyEvidence]) -> None:
    policies = [strength_policy(s, name=f"P{i}") for i, s in enumerate(chosen)]  # type: ignore[arg-type]
    decision = evaluate(policies, sign_in(*proven, registered=RegisteredMethods(registered, tuple(passkeys))))
    offer = step_up_offer(decision)
    challenged = {m for r in decision.requirements for o in r.alternatives for c in o.challenges for m in c}
    assert offer.modes <= challenged
    # Only registered passkeys, each counting for every strength that asks for fido2.
    assert offer.passkeys <= set(passkeys)
    for requirement in decision.requirements:
        fido2 = [o for o in requirement.alternatives if any(M.FIDO2 in c for c in o.challenges)]
        if fido2 and M.FIDO2 in offer.modes:
            assert all(any(o.strength.admits_passkey(p) for o in fido2) for p in offer.passkeys)
    if decision.outcome is Outcome.STEP_UP:
        assert offer.modes, "a step-up always offers something to do"
