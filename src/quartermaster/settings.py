"""One settings object, read from `QM_*` environment variables and an optional TOML file.

Precedence, highest first: arguments given in code, environment variables, the TOML file named
by `QM_CONFIG` (default `qm.toml` in the working directory, when present), built-in defaults.
Configuration that cannot work stops start-up with a message that says what to fix.
"""

from __future__ import annotations

import os
import re
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from quartermaster.domain.holds import DEFAULT_HOLD_TTL_S
from quartermaster.domain.pricing import PriceList

MIN_SECRET_LENGTH = 32
WEAK_SECRETS = frozenset({"changeme", "secret", "password", "change-me", "development"})
DEFAULT_POSTGRES_PORT = 5432
SECRET_FILE_NAME = "secret_key"  # noqa: S105 - a file name, not a secret


class ConfigurationError(Exception):
    """The configuration cannot work; the message says what to change."""


def _config_file() -> Path:
    return Path(os.environ.get("QM_CONFIG", "qm.toml"))


class Settings(BaseSettings):
    """Every knob of a Quartermaster process; each is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="QM_", extra="forbid")

    data_dir: Path = Field(default=Path("data"), description="Where SQLite and local state live.")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means SQLite in the data directory."
    )
    database_replica_url: str = Field(
        default="",
        description="A hot standby the org metrics pages and exports read from; empty means "
        "the primary (docs/deploy.md).",
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Signs sessions and CSRF tokens; at least 32 characters."
    )
    demo: bool = Field(default=False, description="Demo mode: generates a secret if none is set.")
    host: str = Field(default="127.0.0.1", description="Address `qm serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `qm serve` listens on.")
    workers: int = Field(default=1, ge=1, le=64, description="Server processes for `qm serve`.")
    log_level: str = Field(default="info", description="uvicorn log level.")
    keepalive_s: int = Field(
        default=75,
        ge=1,
        le=3600,
        description="How long `qm serve` keeps an idle client connection open, in seconds; "
        "longer than any client or proxy in front keeps one (docs/deploy.md).",
    )
    db_pool_size: int = Field(default=10, ge=1, le=200, description="Connections per process.")
    db_pgbouncer: bool = Field(
        default=False,
        description="The database URL is PgBouncer in transaction mode: no cached prepared "
        "statements, each named uniquely (docs/deploy.md).",
    )
    hold_ttl_s: int = Field(
        default=DEFAULT_HOLD_TTL_S,
        ge=1,
        le=86400,
        description="Deadline of a metered call's hold, in seconds.",
    )
    sweep_interval_s: float = Field(
        default=30.0, gt=0, le=3600, description="How often each process expires dead holds."
    )
    session_ttl_s: int = Field(default=12 * 3600, ge=60, description="Longest a session lives.")
    session_idle_s: int = Field(default=3600, ge=60, description="Idle time that ends a session.")
    cookie_secure: bool | None = Field(
        default=None, description="Send cookies over HTTPS only; default on, off in demo mode."
    )
    upstreams_file: Path | None = Field(
        default=None, description="TOML file with [upstreams.NAME] tables (docs/providers.md)."
    )
    payments: Literal["manual", "offline"] | None = Field(
        default=None,
        description="How individuals pay: manual (operators record payments) or offline "
        "(approves every charge; demos and tests). Default: offline in demo mode, else manual.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses/CIDRs whose client-certificate headers (CAC) are believed.",
    )
    price_inference_bundle_monthly: Decimal = Field(
        default=Decimal("90.00"), ge=0, description="List price of 2M inference tokens a month."
    )
    price_inference_bundle_yearly: Decimal = Field(
        default=Decimal("990.00"), ge=0, description="List price of 2M inference tokens a year."
    )
    price_training_bundle_monthly: Decimal = Field(
        default=Decimal("45.00"), ge=0, description="List price of 1M training tokens a month."
    )
    price_training_bundle_yearly: Decimal = Field(
        default=Decimal("495.00"), ge=0, description="List price of 1M training tokens a year."
    )
    currency: str = Field(default="USD", description="Currency of the list prices (ISO code).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        levels = {"critical", "error", "warning", "info", "debug", "trace"}
        if value.lower() not in levels:
            raise ValueError(f"log_level must be one of {sorted(levels)}")
        return value.lower()

    @property
    def payment_provider(self) -> str:
        return self.payments or ("offline" if self.demo else "manual")

    @property
    def secure_cookies(self) -> bool:
        return (not self.demo) if self.cookie_secure is None else self.cookie_secure

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an embedded SQLite file in the data directory."""
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'quartermaster.db').resolve()}"

    @property
    def resolved_replica_url(self) -> str | None:
        """The metrics replica's URL, if one is set; only PostgreSQL has standbys."""
        if not self.database_replica_url:
            return None
        url = normalize_database_url(self.database_replica_url)
        if not url.startswith("postgresql"):
            raise ConfigurationError(
                "QM_DATABASE_REPLICA_URL must name a PostgreSQL hot standby of QM_DATABASE_URL;"
                " leave it empty to read metrics from the primary"
            )
        return url

    def prices(self) -> PriceList:
        """The list prices purchases default to (an operator may record another price)."""
        return PriceList(
            self.price_inference_bundle_monthly,
            self.price_inference_bundle_yearly,
            self.price_training_bundle_monthly,
            self.price_training_bundle_yearly,
            self.currency.upper(),
        )

    def secret(self) -> str:
        """The secret key, checked; in demo mode one is generated once and kept in data_dir."""
        if self.secret_key is not None:
            value = self.secret_key.get_secret_value()
            check_secret_strength(value)
            return value
        if not self.demo:
            raise ConfigurationError(
                "QM_SECRET_KEY is not set. Generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'` and export it, "
                "or set QM_DEMO=1 for a local demo."
            )
        return _demo_secret(self.data_dir)


def check_secret_strength(value: str) -> None:
    """Refuse secrets that are short or well known: they would let anyone forge sessions."""
    if len(value) < MIN_SECRET_LENGTH or value.lower() in WEAK_SECRETS or len(set(value)) < 8:
        raise ConfigurationError(
            f"QM_SECRET_KEY is too weak: use at least {MIN_SECRET_LENGTH} random characters, "
            "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
        )


def normalize_database_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, sqlite://) and pick the async drivers."""
    for prefix, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return _hosts_as_query(driver + url[len(prefix) :])
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return _hosts_as_query(url)
    raise ConfigurationError(
        f"QM_DATABASE_URL must be a PostgreSQL or SQLite URL, got {url.split('://')[0]}://..."
    )


def _hosts_as_query(url: str) -> str:
    """libpq's list of hosts (`postgresql://u@db1:5432,db2:5432/qm?target_session_attrs=...`),
    which SQLAlchemy cannot parse, in SQLAlchemy's form (`postgresql+asyncpg://u@/qm?host=db1:5432
    &host=db2:5432&...`); asyncpg tries them in order. Each host gets a port (5432 if none), as
    SQLAlchemy's multi-host form requires. Any other URL is returned as it is."""
    scheme, _, rest = url.partition("://")
    authority, _, tail = rest.partition("/")
    user, at, hosts = authority.rpartition("@")
    if "," not in hosts:
        return url
    database, _, query = tail.partition("?")
    listed = "&".join(f"host={_with_port(host)}" for host in hosts.split(","))
    return f"{scheme}://{user}{at}/{database}?{listed}{'&' if query else ''}{query}"


def _with_port(host: str) -> str:
    return host if re.search(r":\d+$", host) else f"{host}:{DEFAULT_POSTGRES_PORT}"


def _demo_secret(data_dir: Path) -> str:
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def load_settings(**overrides: Any) -> Settings:
    """Read settings, turning validation errors into one readable ConfigurationError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from exc
