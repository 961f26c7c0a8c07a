"""Table and property tests of the passkey policy decision (core/policy.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from passgate.core import errors
from passgate.core.policy import (
    ALL_USERS,
    DEFAULT_PROFILE_ID,
    Ceremony,
    Fido2Policy,
    KeyRestrictions,
    Member,
    PasskeyFacts,
    PasskeyProfile,
    PasskeyType,
    Target,
    attestation_preference,
    decide,
)

ADMINS, SALES, CONTRACTORS = "a" * 8 + "-0000-0000-0000-000000000001", "5" * 8 + "-0000-0000-0000-000000000002", (
    "c" * 8 + "-0000-0000-0000-000000000003")
YUBIKEY = "ee882879-721c-4913-9775-3dfcce97072a"
AUTHENTICATOR_IOS = "90a3ccdf-635c-4729-a248-9b709135078f"
DEVICE = PasskeyType.DEVICE_BOUND
SYNCED = PasskeyType.SYNCED

DEFAULT = PasskeyProfile(DEFAULT_PROFILE_ID, "Default passkey profile")
ADMIN_PROFILE = PasskeyProfile("11111111-1111-1111-1111-111111111111", "Admins", frozenset({DEVICE}), True)
BLOCK_AUTH = PasskeyProfile(
    "22222222-2222-2222-2222-222222222222", "No Authenticator",
    key_restrictions=KeyRestrictions(True, "block", frozenset({AUTHENTICATOR_IOS})),
)
ONLY_YUBIKEY = PasskeyProfile(
    "33333333-3333-3333-3333-333333333333", "YubiKeys only", frozenset({DEVICE}),
    key_restrictions=KeyRestrictions(True, "allow", frozenset({YUBIKEY})),
)

POLICY = Fido2Policy(
    profiles=(DEFAULT, ADMIN_PROFILE, BLOCK_AUTH, ONLY_YUBIKEY),
    include_targets=(
        Target(ADMINS, allowed_profiles=(ADMIN_PROFILE.id,)),
        Target(SALES, allowed_profiles=(DEFAULT.id,)),
        Target(CONTRACTORS, allowed_profiles=(BLOCK_AUTH.id, ONLY_YUBIKEY.id)),
    ),
)


def member(*groups: str) -> Member:
    return Member("u-1", frozenset(groups))


def facts(kind: PasskeyType = DEVICE, aaguid: str = YUBIKEY, attested: bool = False) -> PasskeyFacts:
    return PasskeyFacts(aaguid, kind, attested)


def test_admins_need_an_attested_device_bound_passkey_to_register() -> None:
    refused = decide(POLICY, member(ADMINS), facts(SYNCED), Ceremony.REGISTRATION, self_service=True)
    assert not refused.allowed and refused.refusal is errors.PASSKEY_TYPE_NOT_ALLOWED
    assert "Admins" in refused.explanation and "synced" in refused.explanation
    unattested = decide(POLICY, member(ADMINS), facts(DEVICE), Ceremony.REGISTRATION)
    assert unattested.refusal is errors.ATTESTATION_REQUIRED
    ok = decide(POLICY, member(ADMINS), facts(DEVICE, attested=True), Ceremony.REGISTRATION)
    assert ok.allowed and ok.profile is ADMIN_PROFILE


def test_attestation_is_registration_only_but_type_is_checked_at_every_sign_in() -> None:
    assert decide(POLICY, member(ADMINS), facts(DEVICE, attested=False), Ceremony.SIGN_IN).allowed
    assert decide(POLICY, member(ADMINS), facts(SYNCED), Ceremony.SIGN_IN).refusal is errors.PASSKEY_TYPE_NOT_ALLOWED


def test_any_profile_in_scope_suffices() -> None:
    # Sales may register synced passkeys; a user in Admins and Sales too (either profile is enough).
    assert decide(POLICY, member(SALES), facts(SYNCED), Ceremony.REGISTRATION).allowed
    both = decide(POLICY, member(ADMINS, SALES), facts(SYNCED), Ceremony.REGISTRATION)
    assert both.allowed and both.profile is DEFAULT


def test_allow_and_block_lists() -> None:
    yubikey = decide(POLICY, member(CONTRACTORS), facts(DEVICE, YUBIKEY), Ceremony.SIGN_IN)
    assert yubikey.allowed
    blocked = decide(POLICY, member(CONTRACTORS), facts(DEVICE, AUTHENTICATOR_IOS), Ceremony.SIGN_IN)
    assert not blocked.allowed and blocked.refusal is errors.PASSKEY_MODEL_NOT_ALLOWED
    assert AUTHENTICATOR_IOS in blocked.explanation
    # Synced passkeys of another model pass the block list profile.
    assert decide(POLICY, member(CONTRACTORS), facts(SYNCED, "0" * 8 + "-1111-2222-3333-444444444444"),
                  Ceremony.SIGN_IN).allowed


def test_exclusion_wins_and_unlisted_users_are_out() -> None:
    excluding = Fido2Policy(
        profiles=POLICY.profiles,
        include_targets=(Target(ALL_USERS, allowed_profiles=(DEFAULT.id,)),),
        exclude_targets=(Target(CONTRACTORS),),
    )
    refused = decide(excluding, member(CONTRACTORS, SALES), facts(), Ceremony.SIGN_IN)
    assert refused.refusal is errors.FIDO2_NOT_ENABLED_FOR_USER
    assert decide(POLICY, member(), facts(), Ceremony.SIGN_IN).refusal is errors.FIDO2_NOT_ENABLED_FOR_USER


def test_method_disabled_and_self_service_off() -> None:
    off = Fido2Policy(enabled=False)
    assert decide(off, member(), facts(), Ceremony.SIGN_IN).refusal is errors.FIDO2_DISABLED
    no_self = Fido2Policy(self_service_allowed=False)
    assert decide(no_self, member(), facts(), Ceremony.REGISTRATION, self_service=True).refusal is (
        errors.SELF_SERVICE_REGISTRATION_NOT_ALLOWED)
    # An administrator's provisioning and every sign-in are unaffected by the self-service switch.
    assert decide(no_self, member(), facts(), Ceremony.REGISTRATION, self_service=False).allowed
    assert decide(no_self, member(), facts(), Ceremony.SIGN_IN).allowed


def test_target_without_profiles_uses_the_default_and_attestation_preference_follows_scope() -> None:
    legacy = Fido2Policy(include_targets=(Target(ALL_USERS),))
    assert decide(legacy, member(), facts(SYNCED), Ceremony.REGISTRATION).profile == DEFAULT
    assert attestation_preference(POLICY, member(ADMINS)) == "direct"
    assert attestation_preference(POLICY, member(SALES)) == "none"


def test_configuration_ids_and_aaguids_match_case_insensitively() -> None:
    assert POLICY.profile(ADMIN_PROFILE.id.upper()) is ADMIN_PROFILE
    assert ONLY_YUBIKEY.key_restrictions.admits(YUBIKEY.upper())


kinds = st.sampled_from([DEVICE, SYNCED])
aaguids = st.sampled_from([YUBIKEY, AUTHENTICATOR_IOS, "00000000-0000-0000-0000-000000000000"])
profiles_st = st.builds(
    PasskeyProfile,
    id=st.uuids().map(str),
    name=st.text(min_size=1, max_size=8),
    passkey_types=st.frozensets(kinds),
    attestation_enforced=st.booleans(),
    key_restrictions=st.builds(KeyRestrictions, st.booleans(), st.sampled_from(["allow", "block"]),
                               st.frozensets(aaguids)),
)


@given(st.lists(profiles_st, min_size=1, max_size=4), kinds, aaguids, st.booleans(), st.sampled_from(list(Ceremony)))
def test_allowed_exactly_when_some_profile_in_scope_is_fully_satisfied(
    profiles: list[PasskeyProfile], kind: PasskeyType, aaguid: str, attested: bool, ceremony: Ceremony
) -> None:
    policy = Fido2Policy(profiles=tuple(profiles),
                         include_targets=(Target(SALES, allowed_profiles=tuple(p.id for p in profiles)),))
    f = PasskeyFacts(aaguid, kind, attested)
    decision = decide(policy, member(SALES), f, ceremony)

    def satisfied(p: PasskeyProfile) -> bool:
        attest_ok = ceremony is Ceremony.SIGN_IN or not p.attestation_enforced or attested
        return kind in p.passkey_types and p.key_restrictions.admits(aaguid) and attest_ok

    assert decision.allowed == any(satisfied(p) for p in profiles)
    if decision.allowed:
        assert decision.profile is not None and satisfied(decision.profile)
    else:
        assert decision.refusal is not None and decision.reasons
    # Exclusion always wins, whatever the profiles say.
    excluded = Fido2Policy(profiles=policy.profiles, include_targets=policy.include_targets,
                           exclude_targets=(Target(SALES),))
    assert not decide(excluded, member(SALES), f, ceremony).allowed


@given(st.lists(profiles_st, min_size=1, max_size=3), kinds, aaguids)
def test_whatever_may_sign_in_unattested_may_still_sign_in_once_attested(
    profiles: list[PasskeyProfile], kind: PasskeyType, aaguid: str
) -> None:
    policy = Fido2Policy(profiles=tuple(profiles),
                         include_targets=(Target(ALL_USERS, allowed_profiles=tuple(p.id for p in profiles)),))
    unattested = decide(policy, member(), PasskeyFacts(aaguid, kind, False), Ceremony.SIGN_IN).allowed
    attested = decide(policy, member(), PasskeyFacts(aaguid, kind, True), Ceremony.SIGN_IN).allowed
    assert unattested == attested


def test_impact_names_users_who_lose_passkeys_and_admin_lock_out() -> None:
    from passgate.core.policy import Holder, impact, locks_out_admins

    everyone = Fido2Policy()
    device_only = Fido2Policy(profiles=(PasskeyProfile(DEFAULT_PROFILE_ID, "Default passkey profile",
                                                       frozenset({DEVICE})),))
    synced_only_admin = Holder(Member("admin"), (("p1", facts(SYNCED)),), is_global_admin=True)
    mixed = Holder(Member("mixed"), (("p2", facts(SYNCED)), ("p3", facts(DEVICE))))
    losses = impact(everyone, device_only, [synced_only_admin, mixed])
    assert [(x.user_id, x.lost, x.loses_every_passkey) for x in losses] == [
        ("admin", ("p1",), True), ("mixed", ("p2",), False)]
    assert locks_out_admins(everyone, device_only, [synced_only_admin, mixed])
    second_admin = Holder(Member("admin2"), (("p4", facts(DEVICE)),), is_global_admin=True)
    assert not locks_out_admins(everyone, device_only, [synced_only_admin, second_admin])
    # No administrator could sign in with a passkey before: nothing to lose, nothing to refuse.
    assert not locks_out_admins(device_only, device_only, [synced_only_admin])


def test_registration_hints_point_device_bound_only_users_to_security_keys() -> None:
    from passgate.core.policy import registration_hints

    assert registration_hints(POLICY, member(ADMINS)) == ("security-key",)
    assert registration_hints(POLICY, member(SALES)) == ()
    assert registration_hints(POLICY, member(ADMINS, SALES)) == ()
    assert registration_hints(POLICY, member()) == ()


targets_st = st.sampled_from([Target(ALL_USERS), Target("u-1", "user"), Target("u-2", "user"), Target(SALES)])


@given(st.lists(targets_st, max_size=3), st.lists(targets_st, max_size=2), kinds)
def test_a_policy_that_names_no_group_decides_the_same_whatever_the_groups(
    include: list[Target], exclude: list[Target], kind: PasskeyType
) -> None:
    # A sign-in skips reading the user's groups when the policy names none (passkeys.enforcement.member).
    policy = Fido2Policy(include_targets=tuple(include), exclude_targets=tuple(exclude))
    assert policy.names_groups == any(t.id == SALES for t in (*include, *exclude))
    if not policy.names_groups:
        with_groups = decide(policy, member(SALES, ADMINS), facts(kind), Ceremony.SIGN_IN)
        assert with_groups == decide(policy, member(), facts(kind), Ceremony.SIGN_IN)
