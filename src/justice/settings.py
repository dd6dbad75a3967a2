"""Platform settings, declared as data: each has a name, a default, an environment variable and help.

Example::

    settings = Settings.from_env()          # JUSTICE_HOME=/data/justice justice ...
    settings.home / "warehouse.duckdb"
"""

from __future__ import annotations

import os
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
)

ENGINES = ("duckdb", "spark")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Resolved settings for one run of the platform."""

    home: Path
    """Folder that holds all state (see SETTINGS)."""

    engine: str = "duckdb"
    """Query engine name."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser())
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

    @property
    def legacy_dir(self) -> Path:
        """Where the legacy systems' extracts are read from (the demo writes them here)."""
        return self.home / "legacy"

    @property
    def truth_dir(self) -> Path:
        """The simulator's answer key (never read by the pipeline)."""
        return self.home / "truth"
