"""Password and TOTP (softwareOath): who may use them, what a new password must be, which time-steps a code
may match, and what a sign-in with them proves.

They exist so that authentication strengths mean something and organisations can migrate; neither is ever
phishing-resistant, so what they prove never includes `fido2`.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import errors
from .errors import PassgateError
from .policy import ALL_USERS, Member, Target
from .values import MethodMode

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256  # argon2 takes any length; a bound keeps one request's hashing cost bounded
TIME_STEP_SECONDS = 30
CODE_DIGITS = 6
# One step either side of now: a code typed as it changes, or a clock a little off, still works.
STEP_WINDOW = 1

# A few of the most common passwords that pass the length rule; the full breach lists are a later step.
_COMMON = frozenset({
    "password1234", "123456789012", "qwertyuiop12", "passwordpassword", "iloveyou1234", "administrator",
    "welcome12345", "letmein12345", "changeme1234", "qwertyuiopasdf", "1234567890ab", "abcdefghijkl",
})


@dataclass(frozen=True, slots=True)
class MethodPolicy:
    """A method configuration that has only a state and targets (Password, SoftwareOath)."""

    enabled: bool = False
    include_targets: tuple[Target, ...] = (Target(ALL_USERS),)
    exclude_targets: tuple[Target, ...] = ()

    def allows(self, member: Member) -> bool:
        """Enabled, the user included, and not excluded (exclusion wins, as in Entra)."""
        if not self.enabled or any(member.matches(t) for t in self.exclude_targets):
            return False
        return any(member.matches(t) for t in self.include_targets)


def password_problem(password: str, user_principal_name: str) -> str | None:
    """Why a new password is refused, in words a person can act on; None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"It must be at least {MIN_PASSWORD_LENGTH} characters long."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"It must be at most {MAX_PASSWORD_LENGTH} characters long."
    if password.strip() != password or not password.isprintable():
        return "It cannot start or end with spaces or contain control characters."
    lowered = password.lower()
    if lowered in _COMMON or len(set(lowered)) < 4:
        return "It is one of the most common passwords, which attackers try first."
    name = user_principal_name.split("@")[0].lower()
    if len(name) >= 3 and name in lowered:
        return "It contains your username."
    return None


def check_new_password(password: str, user_principal_name: str) -> None:
    problem = password_problem(password, user_principal_name)
    if problem is not None:
        raise PassgateError(errors.PASSWORD_TOO_WEAK, problem)


def time_step(unix_seconds: float) -> int:
    """RFC 6238's counter T for a moment."""
    return int(unix_seconds // TIME_STEP_SECONDS)


def steps_to_try(unix_seconds: float) -> tuple[int, ...]:
    """The counters a code typed now may belong to, most likely first."""
    now = time_step(unix_seconds)
    return (now, *(now + d for k in range(1, STEP_WINDOW + 1) for d in (-k, k)))


def step_is_fresh(step: int, last_accepted: int | None) -> bool:
    """A time-step is accepted at most once, and never one older than the last accepted (RFC 6238 §5.2)."""
    return last_accepted is None or step > last_accepted


def is_code_shaped(code: str) -> bool:
    return len(code) == CODE_DIGITS and code.isascii() and code.isdigit()


def amr_of(modes: frozenset[MethodMode]) -> list[str]:
    """RFC 8176 values for a password sign-in, with or without a TOTP code."""
    amr = []
    if MethodMode.PASSWORD in modes:
        amr.append("pwd")
    if MethodMode.SOFTWARE_OATH in modes:
        amr.append("otp")
    if len(amr) > 1:
        amr.append("mfa")
    return amr
