"""Directory roles with Entra's template ids, and who may manage whose authentication methods."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Role:
    template_id: str
    display_name: str
    description: str


GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_AUTHENTICATION_ADMINISTRATOR = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13"
AUTHENTICATION_ADMINISTRATOR = "c4e39bd9-1100-46d3-8c65-fb160da0071f"
AUTHENTICATION_POLICY_ADMINISTRATOR = "0526716b-113d-4c15-b2c8-68e3c22b9f80"
CONDITIONAL_ACCESS_ADMINISTRATOR = "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9"
SECURITY_ADMINISTRATOR = "194ae4cb-b126-40b2-bd5b-6091b380977d"
HELPDESK_ADMINISTRATOR = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
SECURITY_READER = "5d6b6bb7-de71-4623-b4af-96380a352509"
REPORTS_READER = "4a5d8f65-41da-4de4-8968-e035b65339cf"

ROLES: dict[str, Role] = {
    r.template_id: r
    for r in (
        Role(GLOBAL_ADMINISTRATOR, "Global Administrator", "Can manage all aspects of Passgate."),
        Role(
            PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            "Privileged Authentication Administrator",
            "Can manage authentication methods, including Temporary Access Passes, for every user.",
        ),
        Role(
            AUTHENTICATION_ADMINISTRATOR,
            "Authentication Administrator",
            "Can manage authentication methods of users who hold no administrator role.",
        ),
        Role(
            AUTHENTICATION_POLICY_ADMINISTRATOR,
            "Authentication Policy Administrator",
            "Can configure the authentication methods policy and passkey profiles.",
        ),
        Role(
            CONDITIONAL_ACCESS_ADMINISTRATOR,
            "Conditional Access Administrator",
            "Can manage Conditional Access policies and authentication strengths.",
        ),
        Role(SECURITY_ADMINISTRATOR, "Security Administrator", "Can manage security settings."),
        Role(HELPDESK_ADMINISTRATOR, "Helpdesk Administrator", "Can help non-administrators."),
        Role(GLOBAL_READER, "Global Reader", "Can read everything a Global Administrator can, change nothing."),
        Role(SECURITY_READER, "Security Reader", "Can read security information, logs and reports."),
        Role(REPORTS_READER, "Reports Reader", "Can read sign-in and usage reports."),
    )
}

# Roles whose holders an Authentication Administrator may still help (Entra's "some roles").
_LOW_PRIVILEGE = frozenset({GLOBAL_READER, REPORTS_READER, SECURITY_READER, HELPDESK_ADMINISTRATOR})


def may_manage_methods(
    actor_id: str, actor_roles: frozenset[str], target_id: str, target_roles: frozenset[str]
) -> bool:
    """Whether a signed-in administrator may issue a pass to, or remove a method of, the target."""
    if actor_id == target_id:
        return False
    if GLOBAL_ADMINISTRATOR in actor_roles or PRIVILEGED_AUTHENTICATION_ADMINISTRATOR in actor_roles:
        return True
    if AUTHENTICATION_ADMINISTRATOR in actor_roles:
        return target_roles <= _LOW_PRIVILEGE
    return False
