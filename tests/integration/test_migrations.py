"""Migrations upgrade a database that already holds data, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from passgate.store.db import MIGRATIONS, Database
from tests.conftest import empty_tables


def _alembic(db: Database, target: str, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, target)


def test_upgrade_keeps_existing_passkeys(db: Database) -> None:
    empty_tables(db)
    _alembic(db, "0001", down=True)
    try:
        now = datetime.now(UTC)
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO users (id, user_principal_name, display_name, account_enabled, webauthn_handle,"
                " created_at) VALUES ('u1', 'old@example.com', 'Old', true, :h, :now)"), {"h": b"h" * 32, "now": now})
            conn.execute(text(
                "INSERT INTO passkeys (id, user_id, credential_id, public_key, sign_count, display_name, aaguid,"
                " attestation_format, attestation_level, backup_eligible, backup_state, transports, created_at)"
                " VALUES ('p1', 'u1', :c, :k, 0, 'Key', '00000000-0000-0000-0000-000000000000', 'none',"
                " 'notAttested', false, false, '[]', :now)"), {"c": b"c" * 16, "k": b"k" * 77, "now": now})
    finally:
        db.migrate()
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT attestation_certificates, unusable_reason FROM passkeys")).one()
    assert row[1] is None and row[0] in ("[]", [])
    empty_tables(db)


def test_upgrade_to_0003_keeps_apps_and_secrets_as_confidential_clients(db: Database) -> None:
    """Schema 0003 (OpenID Connect): existing apps get empty redirect URI lists and stay confidential;
    the downgrade drops the new tables and columns again."""
    from passgate.store.tables import App, AppSecret

    empty_tables(db)
    _alembic(db, "0002", down=True)
    try:
        now = datetime.now(UTC)
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO apps (id, app_id, display_name, permissions, created_at)"
                              " VALUES ('a1', 'app-1', 'Automation', '[\"User.Read.All\"]', :now)"), {"now": now})
            conn.execute(text("INSERT INTO app_secrets (id, app_id, secret_hash, hint, created_at)"
                              " VALUES ('s1', 'a1', :h, 'abc', :now)"), {"h": "0" * 64, "now": now})
    finally:
        db.migrate()
    with db.transaction() as s:
        app = s.get(App, "a1")
        assert app is not None and app.permissions == ["User.Read.All"]
        assert (app.web_redirect_uris, app.spa_redirect_uris, app.public_client_redirect_uris,
                app.post_logout_redirect_uris) == ([], [], [], [])
        assert app.is_fallback_public_client is False and app.logout_url is None
        secret = s.get(AppSecret, "s1")
        assert secret is not None and secret.display_name is None
    empty_tables(db)
    _alembic(db, "0002", down=True)
    db.migrate()


def test_upgrade_to_0004_keeps_apps_secrets_and_sign_ins_in_flight(db: Database) -> None:
    """Schema 0004 (OIDC logout): a plain ADD COLUMN on apps, so an app's secrets, codes and token families
    survive on SQLite too (a table copy would cascade-delete them); existing apps have no back-channel URI."""
    from passgate.store.tables import App, AppSecret, AuthorizationCode, OAuthGrant, PendingAuthorization

    empty_tables(db)
    _alembic(db, "0003", down=True)
    try:
        now = datetime.now(UTC)
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO users (id, user_principal_name, display_name, account_enabled, webauthn_handle,"
                " created_at) VALUES ('u1', 'old@example.com', 'Old', true, :h, :now)"), {"h": b"h" * 32, "now": now})
            conn.execute(text("INSERT INTO apps (id, app_id, display_name, permissions, created_at, web_redirect_uris,"
                              " logout_url) VALUES ('a1', 'app-1', 'Wiki', '[]', :now,"
                              " '[\"https://wiki.example/cb\"]', 'https://wiki.example/bye')"), {"now": now})
            conn.execute(text("INSERT INTO app_secrets (id, app_id, secret_hash, hint, created_at)"
                              " VALUES ('s1', 'a1', :h, 'abc', :now)"), {"h": "0" * 64, "now": now})
            conn.execute(text(
                "INSERT INTO oauth_codes (code_hash, app_id, user_id, session_id, redirect_uri, scope, nonce,"
                " code_challenge, code_challenge_method, auth_time, acr, amr, created_at, expires_at) VALUES"
                " (:h, 'a1', 'u1', 'sid-1', 'https://wiki.example/cb', 'openid', 'n', 'c', 'S256', :now, 'phr',"
                " '[]', :now, :now)"), {"h": "1" * 64, "now": now})
            conn.execute(text(
                "INSERT INTO oauth_grants (id, app_id, user_id, session_id, scope, auth_time, acr, amr, created_at,"
                " expires_at) VALUES ('g1', 'a1', 'u1', 'sid-1', 'openid', :now, 'phr', '[]', :now, :now)"),
                {"now": now})
    finally:
        db.migrate()
    with db.transaction() as s:
        app = s.get(App, "a1")
        assert app is not None and app.backchannel_logout_uri is None
        assert app.logout_url == "https://wiki.example/bye" and app.web_redirect_uris == ["https://wiki.example/cb"]
        assert s.get(AppSecret, "s1") is not None and s.get(OAuthGrant, "g1") is not None
        assert s.get(AuthorizationCode, "1" * 64) is not None
        assert s.query(PendingAuthorization).count() == 0
    # Down and up again: the downgrade removes exactly what 0004 added, and keeps the rest.
    _alembic(db, "0003", down=True)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM app_secrets")).scalar() == 1
    db.migrate()
    empty_tables(db)


def test_upgrade_to_0005_keeps_sign_ins_and_reads_them_as_before(db: Database) -> None:
    """Schema 0005 (sign-in log details): existing entries become interactive, single-factor, with no
    Conditional Access applied and no stored steps (the reader derives one); the downgrade drops it all."""
    from passgate.logs.writer import derived_step
    from passgate.store.tables import SignIn

    empty_tables(db)
    _alembic(db, "0003", down=True)
    try:
        now = datetime.now(UTC)
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO sign_ins (id, created_at, user_id, user_principal_name, correlation_id, error_code,"
                " authentication_method, details) VALUES ('s1', :now, 'u1', 'old@example.com', 'c1', 0, 'Passkey',"
                " '{}')"), {"now": now})
    finally:
        db.migrate()
    with db.transaction() as s:
        entry = s.get(SignIn, "s1")
        assert entry is not None
        assert (entry.conditional_access_status, entry.applied_policies, entry.authentication_details,
                entry.authentication_requirement, entry.is_interactive, entry.session_id) == (
            "notApplied", [], [], "singleFactorAuthentication", True, None)
        assert derived_step(entry)["succeeded"] is True
    empty_tables(db)
    _alembic(db, "0003", down=True)
    with db.engine.connect() as conn:
        columns = {row[1] for row in conn.execute(text("SELECT 0, column_name FROM information_schema.columns "
                                                       "WHERE table_name = 'sign_ins'"))} if (
            db.engine.dialect.name == "postgresql") else {row[1] for row in conn.execute(
                text("PRAGMA table_info(sign_ins)"))}
    assert "conditional_access_status" not in columns and "authentication_method" in columns
    db.migrate()


def test_upgrade_to_0006_backfills_what_each_session_proved(db: Database) -> None:
    """Schema 0006 (legacy methods): existing sessions get auth_methods from how they signed in (a pass
    session is one-time when the user's pass is); the downgrade drops the new tables and column again."""
    from passgate.store.tables import BrowserSession

    empty_tables(db)
    _alembic(db, "0003", down=True)
    try:
        now = datetime.now(UTC)
        with db.engine.begin() as conn:
            for uid, handle in (("u1", b"a" * 32), ("u2", b"b" * 32), ("u3", b"c" * 32)):
                conn.execute(text(
                    "INSERT INTO users (id, user_principal_name, display_name, account_enabled, webauthn_handle,"
                    " created_at) VALUES (:id, :upn, 'U', true, :h, :now)"),
                    {"id": uid, "upn": f"{uid}@example.com", "h": handle, "now": now})
            conn.execute(text(
                "INSERT INTO temporary_access_passes (id, user_id, pass_hash, created_at, start_at, lifetime_minutes,"
                " is_usable_once) VALUES ('t2', 'u2', 'x', :now, :now, 60, true)"), {"now": now})
            for sid, uid, method in (("s1", "u1", "passkey"), ("s2", "u2", "temporaryAccessPass"),
                                     ("s3", "u3", "temporaryAccessPass")):
                conn.execute(text(
                    "INSERT INTO sessions (id, token_hash, user_id, auth_time, expires_at, method, amr)"
                    " VALUES (:id, :th, :uid, :now, :now, :m, '[]')"),
                    {"id": sid, "th": sid * 20, "uid": uid, "now": now, "m": method})
    finally:
        db.migrate()
    with db.transaction() as s:
        proved = {sid: s.get(BrowserSession, sid).auth_methods for sid in ("s1", "s2", "s3")}  # type: ignore[union-attr]
    assert proved == {"s1": ["fido2"], "s2": ["temporaryAccessPassOneTime"], "s3": ["temporaryAccessPassMultiUse"]}
    empty_tables(db)
    _alembic(db, "0003", down=True)
    with db.engine.connect() as conn:
        assert "auth_methods" not in {c["name"] for c in inspect(conn).get_columns("sessions")}
    db.migrate()


def test_0007_adds_the_conditional_access_tables_and_drops_them_on_downgrade(db: Database) -> None:
    """Schema 0007 (strengths, Conditional Access, named locations): plain CREATE TABLEs over existing data."""
    from sqlalchemy import inspect

    from passgate.store.tables import AuthenticationStrength, ConditionalAccessPolicy, NamedLocation

    new_tables = {"authentication_strengths", "conditional_access_policies", "named_locations"}
    empty_tables(db)
    now = datetime.now(UTC)
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO groups (id, display_name, mail_nickname, security_enabled, created_at)"
                          " VALUES ('g1', 'Sales', 'sales', true, :now)"), {"now": now})
    _alembic(db, "0003", down=True)
    try:
        assert not new_tables & set(inspect(db.engine).get_table_names())
    finally:
        db.migrate()
    assert new_tables <= set(inspect(db.engine).get_table_names())
    with db.transaction() as s:
        s.add(AuthenticationStrength(id="s1", display_name="Custom", description="", allowed_combinations=["fido2"],
                                     combination_configurations=[], passkey_requirements=None, created_at=now,
                                     modified_at=now))
        s.add(ConditionalAccessPolicy(id="p1", display_name="P", state="disabled", document={"a": 1}, created_at=now,
                                      modified_at=now))
        s.add(NamedLocation(id="l1", display_name="L", document={"ipRanges": []}, created_at=now, modified_at=now))
    with db.transaction() as s:
        strength = s.get(AuthenticationStrength, "s1")
        assert strength is not None and strength.allowed_combinations == ["fido2"]
        assert s.get(ConditionalAccessPolicy, "p1") is not None and s.get(NamedLocation, "l1") is not None
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT display_name FROM groups")).scalar_one() == "Sales"
    empty_tables(db)


def test_0008_adds_the_configuration_version_row_and_drops_it_on_downgrade(db: Database) -> None:
    """Schema 0008: one row, created with the table; a table created again starts above the old counter, so a
    running process never takes the new numbers for the ones it cached values under."""
    from sqlalchemy import inspect

    with db.engine.connect() as conn:
        before = conn.execute(text("SELECT version FROM config_version")).scalar_one()
    _alembic(db, "0007", down=True)
    try:
        assert "config_version" not in set(inspect(db.engine).get_table_names())
    finally:
        db.migrate()
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, version FROM config_version")).all()
    assert len(rows) == 1 and rows[0][0] == 1 and rows[0][1] > before
