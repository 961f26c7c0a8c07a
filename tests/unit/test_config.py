import pytest

from passgate.config import ConfigurationError, load_settings


def test_defaults_follow_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PASSGATE_ORIGINS", "PASSGATE_ISSUER", "PASSGATE_DATABASE_URL", "PASSGATE_RP_ID"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings(port=9100, data_dir="/srv/pg")
    assert s.origins == ["http://localhost:9100"]
    assert s.issuer == "http://localhost:9100"
    assert s.database_url == "sqlite:////srv/pg/passgate.db"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PASSGATE_ORIGINS": "http://login.example.com"}, "PASSGATE_ORIGINS"),
        ({"PASSGATE_ORIGINS": "https://other.example.org", "PASSGATE_RP_ID": "example.com"}, "PASSGATE_ORIGINS"),
        ({"PASSGATE_RP_ID": "https://example.com"}, "PASSGATE_RP_ID"),
        ({"PASSGATE_DATABASE_URL": "mysql://x/y"}, "PASSGATE_DATABASE_URL"),
        ({"PASSGATE_SESSION_MINUTES": "soon"}, "PASSGATE_SESSION_MINUTES"),
    ],
)
def test_invalid_configuration_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], names: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert names in str(caught.value)


def test_https_origin_on_subdomain_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSGATE_RP_ID", "example.com")
    monkeypatch.setenv("PASSGATE_ORIGINS", "https://login.example.com,https://example.com")
    s = load_settings()
    assert s.origins == ["https://login.example.com", "https://example.com"]
    assert s.cookies_secure


def test_optional_file_is_read_and_a_missing_one_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in ("PASSGATE_ORIGINS", "PASSGATE_RP_ID", "PASSGATE_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    conf = tmp_path / "passgate.env"
    conf.write_text("PASSGATE_RP_ID=example.com\nPASSGATE_ORIGINS=https://id.example.com\n")
    monkeypatch.setenv("PASSGATE_CONFIG_FILE", str(conf))
    s = load_settings()
    assert (s.rp_id, s.origins, s.issuer) == ("example.com", ["https://id.example.com"], "https://id.example.com")
    monkeypatch.setenv("PASSGATE_CONFIG_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(ConfigurationError, match="PASSGATE_CONFIG_FILE"):
        load_settings()


@pytest.mark.parametrize(("value", "durable"), [(None, False), ("true", True), ("false", False)])
def test_the_app_tells_its_database_whether_sign_ins_must_wait_for_the_disk(
    monkeypatch: pytest.MonkeyPatch, tmp_path, value: str | None, durable: bool
) -> None:
    from passgate.app import create_app

    for name in ("PASSGATE_DURABLE_SIGN_INS", "PASSGATE_CONFIG_FILE", "PASSGATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    if value is not None:
        monkeypatch.setenv("PASSGATE_DURABLE_SIGN_INS", value)
    app = create_app(load_settings(data_dir=str(tmp_path)))
    assert app.state.services.db.durable_ceremonies is durable
    app.state.services.db.dispose()
