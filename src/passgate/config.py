"""Settings, read from PASSGATE_* environment variables (and an optional env file), validated at start."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url


class ConfigurationError(Exception):
    """Raised with a message that names the setting at fault."""


def _is_localhost(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PASSGATE_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str = ""
    rp_id: str = "localhost"
    rp_name: str = "Passgate"
    # Filled from the port at start when empty: http://localhost:PORT
    origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    issuer: str = ""
    port: int = 8000
    session_minutes: int = 8 * 60
    challenge_seconds: int = 300
    access_token_minutes: int = 60
    # OpenID Connect: authorization codes live briefly; a refresh token lasts this long unused (rotated on use).
    authorization_code_seconds: int = 120
    refresh_token_minutes: int = 14 * 24 * 60
    # Wrong Temporary Access Pass attempts tolerated in the window, per user and per client IP.
    tap_failures_per_user: int = 5
    tap_failures_per_ip: int = 20
    tap_failure_window_minutes: int = 15
    # Sign-in ceremonies (authorize, passkey options and assertion, the code exchange) commit on PostgreSQL without
    # waiting for their write-ahead log to reach the disk: a crash of PostgreSQL or its machine can lose the last
    # ~0.6 s of them (the user signs in again; their log entries are lost with them), nothing else. True waits,
    # as every other transaction does (README, "Durability of sign-ins").
    durable_sign_ins: bool = False
    # Set only by tests that need http:// behind a proxy-less set-up; cookies are Secure otherwise.
    secure_cookies: bool | None = None

    @field_validator("origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("rp_id")
    @classmethod
    def _check_rp_id(cls, value: str) -> str:
        value = value.strip().lower()
        if not value or "/" in value or ":" in value or " " in value:
            raise ValueError("must be a bare host name such as 'login.example.com' (no scheme, port or path)")
        return value

    @field_validator("session_minutes", "challenge_seconds", "access_token_minutes", "authorization_code_seconds",
                     "refresh_token_minutes", "port")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be a positive number")
        return value

    @model_validator(mode="after")
    def _fill_and_check(self) -> Settings:
        if not self.origins:
            self.origins = [f"http://localhost:{self.port}"]
        for origin in self.origins:
            parts = urlsplit(origin)
            host = parts.hostname or ""
            if parts.scheme not in ("https", "http") or not host or parts.path not in ("", "/"):
                raise ValueError(
                    f"PASSGATE_ORIGINS: {origin!r} is not an origin; write it as scheme://host[:port]"
                )
            if parts.scheme == "http" and not _is_localhost(host):
                raise ValueError(f"PASSGATE_ORIGINS: {origin!r} must use https (http is only for localhost)")
            if host != self.rp_id and not host.endswith("." + self.rp_id):
                raise ValueError(
                    f"PASSGATE_ORIGINS: {origin!r} is not on PASSGATE_RP_ID {self.rp_id!r}; "
                    "each origin's host must be the RP ID or a subdomain of it"
                )
        self.origins = [o.rstrip("/") for o in self.origins]
        if not self.issuer:
            self.issuer = self.origins[0]
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'passgate.db').as_posix()}"
        try:
            url = make_url(self.database_url)
        except Exception as exc:
            raise ValueError(f"PASSGATE_DATABASE_URL: cannot be read as a database URL ({exc})") from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("PASSGATE_DATABASE_URL: only sqlite:/// and postgresql:// URLs are supported")
        if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
            self.database_url = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return self

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.origins[0].startswith("https://")


def load_settings(env_file: str | None = None, **overrides: object) -> Settings:
    """Build settings or raise ConfigurationError naming the PASSGATE_* variable at fault."""
    env_file = env_file or os.environ.get("PASSGATE_CONFIG_FILE") or None
    if env_file and not Path(env_file).is_file():
        raise ConfigurationError(f"PASSGATE_CONFIG_FILE: {env_file} does not exist")
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            name = f"PASSGATE_{loc.upper()}: " if loc else ""
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(msg if msg.startswith("PASSGATE_") else f"{name}{msg}")
        raise ConfigurationError("Invalid configuration: " + "; ".join(lines)) from None
