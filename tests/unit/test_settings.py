from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from quartermaster.settings import ConfigurationError, Settings, load_settings

STRONG = "k3y-" + "aB9xQ2mZ7pL4wR8tY6uE1oI5" * 2


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("QM_SECRET_KEY", "QM_DEMO", "QM_DATABASE_URL", "QM_PORT", "QM_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QM_CONFIG", str(tmp_path / "absent.toml"))


def test_missing_secret_outside_demo_mode_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"QM_SECRET_KEY is not set.*secrets\.token"):
        Settings(data_dir=tmp_path).secret()


@pytest.mark.parametrize("weak", ["short", "changeme", "a" * 40])
def test_weak_secrets_are_refused(weak: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="too weak"):
        Settings(secret_key=weak, data_dir=tmp_path).secret()


def test_demo_mode_generates_one_secret_and_keeps_it(tmp_path: Path) -> None:
    first = Settings(demo=True, data_dir=tmp_path).secret()
    second = Settings(demo=True, data_dir=tmp_path).secret()
    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_environment_overrides_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "qm.toml"
    config.write_text(f'port = 9001\nhost = "192.0.2.7"\nsecret_key = "{STRONG}"\n')
    monkeypatch.setenv("QM_CONFIG", str(config))
    monkeypatch.setenv("QM_PORT", "9002")
    settings = load_settings()
    assert settings.port == 9002
    assert settings.host == "192.0.2.7"
    assert settings.secret() == STRONG


def test_invalid_values_become_one_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QM_PORT", "99999")
    with pytest.raises(ConfigurationError, match="port"):
        load_settings()


def test_database_urls_people_paste_get_async_drivers(tmp_path: Path) -> None:
    pg = Settings(database_url="postgres://u@db:5432/qm", data_dir=tmp_path)
    assert pg.resolved_database_url == "postgresql+asyncpg://u@db:5432/qm"
    default = Settings(data_dir=tmp_path).resolved_database_url
    assert default == f"sqlite+aiosqlite:///{tmp_path.resolve()}/quartermaster.db"
    with pytest.raises(ConfigurationError, match="PostgreSQL or SQLite"):
        _ = Settings(database_url="mysql://x/y", data_dir=tmp_path).resolved_database_url


def test_a_libpq_list_of_hosts_becomes_sqlalchemys_multi_host_form(tmp_path: Path) -> None:
    listed = "postgresql://u:p@db1:5433,db2/qm?target_session_attrs=read-write"
    url = Settings(database_url=listed, data_dir=tmp_path).resolved_database_url
    assert url == (
        "postgresql+asyncpg://u:p@/qm?host=db1:5433&host=db2:5432&target_session_attrs=read-write"
    )
    engine_url = make_url(url)
    assert engine_url.query["host"] == ("db1:5433", "db2:5432")
    assert engine_url.query["target_session_attrs"] == "read-write"
    bare = Settings(database_url="postgres://u@db1,db2/qm", data_dir=tmp_path)
    assert bare.resolved_database_url == "postgresql+asyncpg://u@/qm?host=db1:5432&host=db2:5432"
