"""Settings, read once at start-up from `CREDITLINE_*` environment variables.

Only configuration chooses between the embedded default (SQLite file under `data_dir`,
in-process state) and production (PostgreSQL, Redis). Nothing reads the environment
anywhere else; `bootstrap` receives a `Settings` and builds the adapters from it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CREDITLINE_", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Where the embedded default keeps its files.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file in data_dir."
    )
    redis_url: str | None = Field(None, description="Redis for online state; default: in-process.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    keep_alive_seconds: int = Field(
        5,
        ge=1,
        le=3600,
        description="How long `serve` keeps an idle HTTP connection open; raise it to "
        "match a gateway's or load balancer's connection pool.",
    )
    encryption_key: SecretStr | None = Field(
        None, description="Base64 of 32 random bytes; default: a key file in data_dir."
    )
    log_level: str = "INFO"
    log_json: bool = True
    notice_version: str = Field(
        "2026-01", description="Version of the privacy notice customers consent under."
    )
    idempotency_lease_seconds: int = Field(60, ge=1)
    http_threads: int = Field(
        8,
        ge=0,
        le=256,
        description="Threads per server process for blocking request work (database "
        "transactions); the connection pool is sized to match. 0: the hot write routes "
        "(decisions, draws, repayments) run inline on the event loop, one at a time per "
        "process; scale with more processes (see `api.blocking`).",
    )
    opentelemetry: bool = Field(
        False,
        description="FastAPI's native OpenTelemetry instrumentation (traces, metrics and "
        "logs to the globally configured providers). Off, a request skips its checks; "
        "Prometheus metrics at /metrics do not depend on it.",
    )
    policy_dir: Path = Field(
        Path(__file__).resolve().parents[2] / "policies" / "v2",
        description="The credit policy in force (JDM tables and parameters).",
    )
    initial_business_date: date | None = Field(
        None, description="Business date of a new database; default: today in China time."
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_driver(cls, value: str | None) -> str | None:
        # psycopg 3 is the driver we ship; plain postgresql:// URLs mean it.
        if value and value.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'creditline.db').resolve()}"

    @property
    def models_dir(self) -> Path:
        """The model registry (artefact folders and the champion/challenger roles)."""
        return self.data_dir / "models"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "keys" / "data-encryption.key"
