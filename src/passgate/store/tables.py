"""Tables. One model for SQLite and PostgreSQL; schema changes go through Alembic migrations."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way out, whatever the backend kept (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Kept lower-case so that lookups are case-insensitive on both databases.
    user_principal_name: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(256))
    mail: Mapped[str | None] = mapped_column(String(320))
    mail_nickname: Mapped[str | None] = mapped_column(String(64))
    account_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # WebAuthn user.id: random, never derived from the UPN, never reused.
    webauthn_handle: Mapped[bytes] = mapped_column(LargeBinary(64), unique=True)
    created_at: Mapped[datetime]


class UserView(Protocol):
    """A user as a sign-in, its log entry and its tokens read it: the loaded `User` or a `UserRef`."""

    @property
    def id(self) -> str: ...
    @property
    def user_principal_name(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def mail(self) -> str | None: ...
    @property
    def account_enabled(self) -> bool: ...
    @property
    def webauthn_handle(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class UserRef:
    """A user read as a plain row (USER_REF_COLUMNS), read-only. On the sign-in hot path a join that loads ORM
    entities costs 150 to 300 µs more CPU on PostgreSQL (100 to 140 on SQLite) than the same columns read with
    `Prepared` into these values (measured per read, in-process)."""

    id: str
    user_principal_name: str
    display_name: str
    mail: str | None
    account_enabled: bool
    webauthn_handle: bytes


# UserRef's columns, in its order, labelled with the table's name: apart from those of any table it is joined to.
USER_REF_COLUMNS = tuple(User.__table__.c[f.name].label(f"users_{f.name}") for f in fields(UserRef))


def user_ref_at(row: Sequence[Any], start: int = 0) -> UserRef | None:
    """The user in a row that selected USER_REF_COLUMNS from `start` on; None when an outer join found none."""
    values = row[start:start + len(USER_REF_COLUMNS)]
    return UserRef(*values) if values[0] is not None else None


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    display_name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(Text)
    mail_nickname: Mapped[str] = mapped_column(String(64))
    security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class GroupMember(Base):
    __tablename__ = "group_members"
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class RoleAssignment(Base):
    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("role_definition_id", "principal_id", "directory_scope_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    role_definition_id: Mapped[str] = mapped_column(String(36), index=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    directory_scope_id: Mapped[str] = mapped_column(String(64), default="/")
    created_at: Mapped[datetime]


class Passkey(Base):
    __tablename__ = "passkeys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    display_name: Mapped[str] = mapped_column(String(256))
    aaguid: Mapped[str] = mapped_column(String(36))
    model: Mapped[str | None] = mapped_column(String(256))
    attestation_format: Mapped[str] = mapped_column(String(32))
    attestation_level: Mapped[str] = mapped_column(String(16), default="notAttested")
    backup_eligible: Mapped[bool] = mapped_column(Boolean)
    backup_state: Mapped[bool] = mapped_column(Boolean)
    transports: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    # Attestation as verified at registration: the anchor it chained to, the SHA-1 thumbprints of its
    # certificates (Graph's attestationCertificates) and the model's MDS status then.
    attestation_trust_anchor: Mapped[str | None] = mapped_column(String(256))
    attestation_certificates: Mapped[list[Any]] = mapped_column(default=list)
    mds_status: Mapped[str | None] = mapped_column(String(64))
    # The profile that admitted it, and why it may no longer be used (set by re-evaluation).
    profile_id: Mapped[str | None] = mapped_column(String(36))
    unusable_code: Mapped[int | None] = mapped_column(Integer)
    unusable_reason: Mapped[str | None] = mapped_column(Text)

    @property
    def passkey_type(self) -> str:
        return "synced" if self.backup_eligible else "deviceBound"


class PasskeyView(Protocol):
    """A passkey as a sign-in checks, describes and logs it: the loaded `Passkey` or a `PasskeyRef`."""

    @property
    def id(self) -> str: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def sign_count(self) -> int: ...
    @property
    def display_name(self) -> str: ...
    @property
    def aaguid(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def attestation_level(self) -> str: ...
    @property
    def backup_eligible(self) -> bool: ...
    @property
    def unusable_code(self) -> int | None: ...
    @property
    def unusable_reason(self) -> str | None: ...
    @property
    def passkey_type(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PasskeyRef:
    """A passkey read as a plain row (PASSKEY_REF_COLUMNS), read-only, for the same reason as `UserRef`; a
    sign-in stores what it changes with `registry.used`."""

    id: str
    public_key: bytes
    sign_count: int
    display_name: str
    aaguid: str
    model: str | None
    attestation_level: str
    backup_eligible: bool
    unusable_code: int | None
    unusable_reason: str | None

    @property
    def passkey_type(self) -> str:
        return "synced" if self.backup_eligible else "deviceBound"


# PasskeyRef's columns, in its order, labelled as USER_REF_COLUMNS are.
PASSKEY_REF_COLUMNS = tuple(Passkey.__table__.c[f.name].label(f"passkeys_{f.name}") for f in fields(PasskeyRef))


def passkey_ref_at(row: Sequence[Any], start: int = 0) -> PasskeyRef | None:
    """The passkey in a row that selected PASSKEY_REF_COLUMNS from `start` on; None when an outer join found none."""
    values = row[start:start + len(PASSKEY_REF_COLUMNS)]
    return PasskeyRef(*values) if values[0] is not None else None


class TemporaryAccessPass(Base):
    __tablename__ = "temporary_access_passes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # One pass per user: issuing a new one replaces the row.
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    pass_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    start_at: Mapped[datetime]
    lifetime_minutes: Mapped[int] = mapped_column(Integer)
    is_usable_once: Mapped[bool] = mapped_column(Boolean)
    used_at: Mapped[datetime | None]


class Challenge(Base):
    """A WebAuthn challenge: single use, expiring, bound to one browser (or one API caller)."""

    __tablename__ = "challenges"
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64), primary_key=True)
    binding: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(36))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class BrowserSession(Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[datetime]
    expires_at: Mapped[datetime]
    # What the sign-in actually was: "passkey" or "temporaryAccessPass", and its amr values.
    method: Mapped[str] = mapped_column(String(32))
    amr: Mapped[list[Any]] = mapped_column(default=list)
    # The Graph authenticationMethodModes the sign-in satisfied (core.values.MethodMode), for strengths.
    auth_methods: Mapped[list[Any]] = mapped_column(default=list)
    passkey_id: Mapped[str | None] = mapped_column(String(36))
    ended_at: Mapped[datetime | None]


class Password(Base):
    """A user's password (argon2id). Graph gives every user's password method the same fixed id."""

    __tablename__ = "passwords"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]  # when it was last set (Graph's createdDateTime)


class SoftwareOathMethod(Base):
    """A TOTP authenticator app (RFC 6238, SHA-1, 6 digits, 30 s)."""

    __tablename__ = "software_oath_methods"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Kept as given (base32): checking a code needs the seed itself, so it cannot be hashed. It is shown once,
    # at registration, and never logged or returned afterwards.
    secret: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(256))
    # The last time-step accepted: a code of that step or an earlier one is a replay.
    last_counter: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class App(Base):
    """An application registration: OIDC client and/or automation client of the admin API."""

    __tablename__ = "apps"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    display_name: Mapped[str] = mapped_column(String(256))
    permissions: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    # OpenID Connect client: exact redirect URIs per platform (Graph's web / spa / publicClient), where
    # RP-initiated logout may return to, and whether the app may use the token endpoint without a secret.
    web_redirect_uris: Mapped[list[Any]] = mapped_column(default=list)
    spa_redirect_uris: Mapped[list[Any]] = mapped_column(default=list)
    public_client_redirect_uris: Mapped[list[Any]] = mapped_column(default=list)
    logout_url: Mapped[str | None] = mapped_column(String(1024))
    post_logout_redirect_uris: Mapped[list[Any]] = mapped_column(default=list)
    is_fallback_public_client: Mapped[bool] = mapped_column(Boolean, default=False)
    # Back-Channel Logout 1.0: where a signed logout token is POSTed when a session the app got tokens
    # from ends (Passgate's extension; Graph has only web.logoutUrl, used as the front-channel URI).
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(1024))


class PendingAuthorization(Base):
    """An authorize request sent to the sign-in page: only a sign-in made after `created_at`, in the same
    browser (agent cookie binding), for the same app, satisfies its prompt=login / max_age; used once."""

    __tablename__ = "oauth_pending_authorizations"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    binding: Mapped[str] = mapped_column(String(64))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class AuthorizationCode(Base):
    """An authorization code (SHA-256 at rest, single use) and what the sign-in behind it was."""

    __tablename__ = "oauth_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(String(36))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    auth_time: Mapped[datetime]
    acr: Mapped[str] = mapped_column(String(64))
    amr: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # The token family the code was exchanged for: revoked if the code comes back.
    grant_id: Mapped[str | None] = mapped_column(String(36))


class OAuthGrant(Base):
    """One token family: everything issued from one authorization code, refresh after refresh."""

    __tablename__ = "oauth_grants"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(String(36), index=True)
    scope: Mapped[str] = mapped_column(Text)
    auth_time: Mapped[datetime]
    acr: Mapped[str] = mapped_column(String(64))
    amr: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    # Nothing from this family lives past this (a Temporary Access Pass session's end, for example).
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))


class RefreshToken(Base):
    """A refresh token (SHA-256 at rest). Each use rotates it; a used one coming back revokes the family."""

    __tablename__ = "oauth_refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class AppSecret(Base):
    __tablename__ = "app_secrets"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    # SHA-256 of a 256-bit random secret: a slow hash adds nothing against a secret that cannot be guessed.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(8))
    display_name: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]


class SigningKey(Base):
    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_jwk: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime]
    # Published from creation; signs from activation; dropped from the JWKS after retirement.
    activates_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


class MdsBlob(Base):
    """FIDO MDS3 BLOBs that passed verification; the one with the highest serial is in force."""

    __tablename__ = "mds_blobs"
    serial: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_update: Mapped[str] = mapped_column(String(10))
    loaded_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(1024))
    blob: Mapped[str] = mapped_column(Text)


class TrustAnchor(Base):
    """An administrator-added attestation root, for in-house authenticators the MDS does not list."""

    __tablename__ = "trust_anchors"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    display_name: Mapped[str] = mapped_column(String(256))
    thumbprint: Mapped[str] = mapped_column(String(64), unique=True)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class ConfigVersion(Base):
    """One row: a counter that every write to the configuration tables moves in its own transaction, so each
    process knows whether its copy of the configuration is still current (store/config_cache.py)."""

    __tablename__ = "config_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class Setting(Base):
    """Small named documents: method configurations and other singletons."""

    __tablename__ = "settings"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column()


_FAILED = text("error_code <> 0")
_NON_INTERACTIVE = text("is_interactive = false")


class SignIn(Base):
    __tablename__ = "sign_ins"
    # Each log filter has an index that ends in the keyset order (created_at, id), so a page is a range
    # scan of at most $top rows, however deep it is; failures (errorCode ne 0, a few percent) and
    # non-interactive entries (beta's signInEventTypes filter) get partial indexes. The (ip_address,
    # created_at) one serves the Temporary Access Pass rate limit.
    __table_args__ = (
        Index("ix_sign_ins_user_time_id", "user_id", "created_at", "id"),
        Index("ix_sign_ins_upn_time_id", "user_principal_name", "created_at", "id"),
        Index("ix_sign_ins_app_time_id", "app_id", "created_at", "id"),
        Index("ix_sign_ins_ip_time", "ip_address", "created_at"),
        Index("ix_sign_ins_error_time_id", "error_code", "created_at", "id"),
        Index("ix_sign_ins_failures_time", "created_at", "id", postgresql_where=_FAILED, sqlite_where=_FAILED),
        Index("ix_sign_ins_non_interactive_time", "created_at", "id",
              postgresql_where=_NON_INTERACTIVE, sqlite_where=_NON_INTERACTIVE),
        Index("ix_sign_ins_time", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[datetime]
    user_id: Mapped[str | None] = mapped_column(String(36))
    user_principal_name: Mapped[str | None] = mapped_column(String(320))
    user_display_name: Mapped[str | None] = mapped_column(String(256))
    app_id: Mapped[str | None] = mapped_column(String(36))
    app_display_name: Mapped[str | None] = mapped_column(String(256))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str] = mapped_column(String(36))
    error_code: Mapped[int] = mapped_column(Integer, default=0)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    authentication_method: Mapped[str | None] = mapped_column(String(64))
    authentication_method_detail: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Graph's signIn beyond the first factor: what Conditional Access did (appliedConditionalAccessPolicy
    # documents, kept as given), each authentication step (authenticationDetail documents), what the
    # sign-in needed, and where it came from.
    conditional_access_status: Mapped[str] = mapped_column(String(16), default="notApplied")
    applied_policies: Mapped[list[Any]] = mapped_column(default=list)
    authentication_details: Mapped[list[Any]] = mapped_column(default=list)
    authentication_requirement: Mapped[str] = mapped_column(String(32), default="singleFactorAuthentication")
    is_interactive: Mapped[bool] = mapped_column(Boolean, default=True)
    client_app_used: Mapped[str | None] = mapped_column(String(64))
    authentication_protocol: Mapped[str | None] = mapped_column(String(32))
    session_id: Mapped[str | None] = mapped_column(String(36))
    resource_id: Mapped[str | None] = mapped_column(String(36))
    resource_display_name: Mapped[str | None] = mapped_column(String(256))
    operating_system: Mapped[str | None] = mapped_column(String(64))
    browser: Mapped[str | None] = mapped_column(String(64))


class DirectoryAudit(Base):
    __tablename__ = "directory_audits"
    __table_args__ = (
        Index("ix_directory_audits_time", "activity_at", "id"),
        Index("ix_directory_audits_category_time", "category", "activity_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    activity_at: Mapped[datetime]
    activity_display_name: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(64))
    operation_type: Mapped[str] = mapped_column(String(32))
    logged_by_service: Mapped[str] = mapped_column(String(64))
    correlation_id: Mapped[str] = mapped_column(String(36))
    result: Mapped[str] = mapped_column(String(16), default="success")
    initiated_by: Mapped[dict[str, Any]] = mapped_column()
    target_resources: Mapped[list[Any]] = mapped_column()
    additional_details: Mapped[list[Any]] = mapped_column(default=list)


class AuthenticationStrength(Base):
    """A custom authentication strength (the built-ins are constants in core/strengths.py)."""

    __tablename__ = "authentication_strengths"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    display_name: Mapped[str] = mapped_column(String(256), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    allowed_combinations: Mapped[list[Any]] = mapped_column()  # Graph spellings, "password,softwareOath"
    combination_configurations: Mapped[list[Any]] = mapped_column(default=list)  # Graph documents
    # Passgate's extension: {"requireAttested": bool, "requireDeviceBound": bool}
    passkey_requirements: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[datetime]
    modified_at: Mapped[datetime]


class ConditionalAccessPolicy(Base):
    """A Conditional Access policy as Graph's document (conditions, grantControls with the strength's id,
    sessionControls), with the columns lists and filters need."""

    __tablename__ = "conditional_access_policies"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    display_name: Mapped[str] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(40))
    document: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime]
    modified_at: Mapped[datetime]


class NamedLocation(Base):
    """A named location as Graph's ipNamedLocation document (ipRanges, isTrusted)."""

    __tablename__ = "named_locations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    display_name: Mapped[str] = mapped_column(String(256))
    document: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime]
    modified_at: Mapped[datetime]
