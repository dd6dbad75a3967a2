"""Platform settings, declared as data: each has a name, a default, an environment variable and help.

Example::

    settings = Settings.from_env()          # JUSTICE_HOME=/data/justice justice ...
    settings.warehouse_path               # HOME/warehouse.duckdb: every path under HOME is named here
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from justice.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """One documented setting."""

    name: str
    default: str
    env: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "./justice-home", "JUSTICE_HOME",
            "Folder that holds all state: legacy/ and truth/ (demo), lake/, warehouse.duckdb, reports/."),
    Setting("engine", "duckdb", "JUSTICE_ENGINE",
            "Query engine: duckdb (embedded, the default) or spark (scale-out)."),
    Setting("spark_master", "local[*]", "JUSTICE_SPARK_MASTER",
            "With the spark engine: the Spark master (local[*]: every core of this machine; "
            "spark://host:7077, yarn, k8s://... for a cluster)."),
    Setting("spark_conf", "", "JUSTICE_SPARK_CONF",
            "With the spark engine: a file of extra Spark settings, one `key value` (or "
            "key=value) per line as in spark-defaults.conf (executors, memory, a shared "
            "metastore); empty: none."),
    Setting("prison_db", "", "JUSTICE_PRISON_DB",
            "SQLAlchemy URL of the prison (NOMIS) database the safety service syncs from and "
            "`justice feed` writes to; empty means the SQLite file HOME/legacy/prison/nomis.sqlite."),
    Setting("serving_db", "", "JUSTICE_SERVING_DB",
            "SQLAlchemy URL of the safety service's serving store (users, audit log, synced prison "
            "data); empty means the SQLite file HOME/serving/safety.sqlite (one process). Use "
            "PostgreSQL to run several web workers."),
    Setting("sync_interval", "60", "JUSTICE_SYNC_INTERVAL",
            "Seconds between incremental syncs of the prison database into the serving store."),
    Setting("web_assets", "", "JUSTICE_WEB_ASSETS",
            "Folder holding the npm packages the safety service serves (govuk-frontend, "
            "@ministryofjustice/frontend); empty means node_modules in the source tree (`make setup`)."),
    Setting("secure_cookies", "false", "JUSTICE_SECURE_COOKIES",
            "true: mark the safety service's cookies Secure even when a proxy in front of it speaks "
            "HTTPS and it sees plain HTTP (cookies are Secure anyway on a request made over HTTPS)."),
    Setting("portal_retention_days", "30", "JUSTICE_PORTAL_RETENTION_DAYS",
            "Days the provider portal keeps an uploaded cohort file (encrypted) and its report; "
            "older ones are deleted at start-up and hourly after."),
    Setting("ingest_workers", "0", "JUSTICE_INGEST_WORKERS",
            "Processes that read a system's files when they are big (docs/ingest.md); 0 means one "
            "per core, 1 reads every file in the landing process itself."),
    Setting("duckdb_memory", "", "JUSTICE_DUCKDB_MEMORY",
            "Most memory DuckDB may take in the linkage and dbt steps and the serving warehouse "
            "(e.g. 6GB, 800MB); past it DuckDB spills to HOME/duckdb-spill. Empty: DuckDB's own "
            "limit, 80% of the machine's memory, which does not allow for other processes."),
    Setting("portal_key_file", "", "JUSTICE_PORTAL_KEY_FILE",
            "File holding the key that encrypts the provider portal's uploaded files (made on first "
            "use, permissions 0600); empty means HOME/portal/portal.key. Never in the serving store."),
)

ENGINES = ("duckdb", "spark")
_MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?(KB|MB|GB|TB|KIB|MIB|GIB|TIB)", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Resolved settings for one run of the platform."""

    home: Path
    """Folder that holds all state (see SETTINGS)."""

    engine: str = "duckdb"
    """Query engine name."""

    spark_master: str = "local[*]"
    """The Spark master URL (spark engine)."""

    spark_conf: str = ""
    """A spark-defaults style file of extra Spark settings (spark engine); empty: none."""

    prison_db: str = ""
    """SQLAlchemy URL of the prison database; empty: the SQLite file under HOME/legacy/prison."""

    serving_db: str = ""
    """SQLAlchemy URL of the serving store; empty: the SQLite file HOME/serving/safety.sqlite."""

    sync_interval: float = 60.0
    """Seconds between incremental syncs of the prison database into the serving store."""

    web_assets: str = ""
    """Folder with the npm packages the safety service serves; empty: node_modules in the source tree."""

    secure_cookies: bool = False
    """Mark the safety service's cookies Secure on every response, not only on HTTPS requests."""

    portal_retention_days: int = 30
    """Days the provider portal keeps an uploaded cohort file and its report before deleting them."""

    portal_key_file: str = ""
    """The provider portal's encryption key file; empty: HOME/portal/portal.key."""

    ingest_workers: int = 0
    """Processes reading a system's big files when landing; 0: one per core."""

    duckdb_memory: str = ""
    """DuckDB's memory limit (e.g. 6GB) in the linkage and dbt steps; empty: DuckDB's default."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser())
        try:
            object.__setattr__(self, "sync_interval", float(self.sync_interval))
        except ValueError:
            raise ConfigError(f"sync interval {self.sync_interval!r} is not a number of seconds "
                              "(JUSTICE_SYNC_INTERVAL)") from None
        if not self.sync_interval > 0:
            raise ConfigError(f"sync interval {self.sync_interval} must be more than 0 seconds "
                              "(JUSTICE_SYNC_INTERVAL)")
        if isinstance(self.secure_cookies, str):
            flag = self.secure_cookies.strip().lower()
            if flag not in ("true", "false", "1", "0", "yes", "no", ""):
                raise ConfigError(f"secure cookies {self.secure_cookies!r}: say true or false "
                                  "(JUSTICE_SECURE_COOKIES)")
            object.__setattr__(self, "secure_cookies", flag in ("true", "1", "yes"))
        try:
            object.__setattr__(self, "portal_retention_days", int(self.portal_retention_days))
        except ValueError:
            raise ConfigError(f"portal retention {self.portal_retention_days!r} is not a whole "
                              "number of days (JUSTICE_PORTAL_RETENTION_DAYS)") from None
        if self.portal_retention_days < 1:
            raise ConfigError(f"portal retention {self.portal_retention_days} days: keep files at "
                              "least 1 day (JUSTICE_PORTAL_RETENTION_DAYS)")
        try:
            workers = int(self.ingest_workers)
        except ValueError:
            raise ConfigError(f"ingest workers {self.ingest_workers!r} is not a whole number "
                              "(JUSTICE_INGEST_WORKERS)") from None
        if workers < 0:
            raise ConfigError(f"ingest workers {workers}: give 0 (one per core) or more "
                              "(JUSTICE_INGEST_WORKERS)")
        object.__setattr__(self, "ingest_workers", workers or os.cpu_count() or 1)
        memory = str(self.duckdb_memory or "").strip().replace(" ", "")
        if memory and not _MEMORY.fullmatch(memory):
            raise ConfigError(f"DuckDB memory {self.duckdb_memory!r}: give an amount such as 6GB or "
                              "800MB (JUSTICE_DUCKDB_MEMORY)")
        object.__setattr__(self, "duckdb_memory", memory.upper())
        if self.engine not in ENGINES:
            raise ConfigError(f"engine {self.engine!r}: choose one of {', '.join(ENGINES)} (JUSTICE_ENGINE)")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then environment variables, then explicit overrides (e.g. CLI options)."""
        values: dict[str, object] = {}
        for s in SETTINGS:
            values[s.name] = os.environ.get(s.env, s.default)
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["home"] = Path(str(values["home"])).expanduser()
        return cls(**values)  # type: ignore[arg-type]

    # Every path under HOME is named here, once; the steps ask for them by name.
    @property
    def duckdb_spill_dir(self) -> Path:
        """Where DuckDB spills what does not fit its memory limit (HOME/duckdb-spill)."""
        return self.home / "duckdb-spill"

    @property
    def lake_dir(self) -> Path:
        """The landed extracts (HOME/lake: raw Parquet per system and table, rejects, the ledger)."""
        return self.home / "lake"

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse file the staging, core and mart models are built in."""
        return self.home / "warehouse.duckdb"

    @property
    def transform_dir(self) -> Path:
        """The dbt project written for this home (HOME/transform)."""
        return self.home / "transform"

    @property
    def spark_dir(self) -> Path:
        """The spark engine's state: its metastore (HOME/spark/metastore_db) and table files
        (HOME/spark/warehouse)."""
        return self.home / "spark"

    @property
    def reports_dir(self) -> Path:
        """Everything written for people to read: data tool files, charts, reports, dbt docs."""
        return self.home / "reports"

    @property
    def specs_dir(self) -> Path:
        """Extra source specifications for this home (HOME/specs), read beside the packaged ones."""
        return self.home / "specs"

    @property
    def secrets_dir(self) -> Path:
        """Keys made on first use (the pseudonym key), readable by their owner only."""
        return self.home / "secrets"

    @property
    def legacy_dir(self) -> Path:
        """Where the legacy systems' extracts are read from (the demo writes them here)."""
        return self.home / "legacy"

    @property
    def prison_db_url(self) -> str:
        """The prison database's SQLAlchemy URL (the demo's SQLite file unless set)."""
        return self.prison_db or f"sqlite:///{(self.legacy_dir / 'prison' / 'nomis.sqlite').resolve()}"

    @property
    def serving_db_url(self) -> str:
        """The serving store's SQLAlchemy URL (HOME/serving/safety.sqlite unless set)."""
        return self.serving_db or f"sqlite:///{(self.home / 'serving' / 'safety.sqlite').resolve()}"

    @property
    def portal_key_path(self) -> Path:
        """Where the provider portal's encryption key is kept (HOME/portal/portal.key unless set)."""
        return (Path(self.portal_key_file).expanduser() if self.portal_key_file
                else self.home / "portal" / "portal.key")

    @property
    def truth_dir(self) -> Path:
        """The simulator's answer key (never read by the pipeline)."""
        return self.home / "truth"
