"""The query engines, in one place: DuckDB (embedded, the default) and Spark (scale-out).

Every step that queries data at scale (ingest's staging, link, build, docs) asks
`engine_for(settings)` for its engine and calls it; engine differences (connecting, the lake's
raw views, reading and writing tables, how dbt and Splink are configured) live only in the
engine's own module, as Splink keeps them in its database APIs. The DuckDB warehouse file
(`justice.warehouse`) is the serving store every reader (publish, the explorer, the web app)
uses; on Spark the built tables are copied into it after each step (`Engine.serve`).

    engine = engine_for(settings)          # JUSTICE_ENGINE / justice --engine
    tables = engine.refresh_raw_views(specs)
    engine.run_dbt(project, "build", "--select", "path:models/staging")
"""

from __future__ import annotations

from justice.engine.base import Engine, LinkageSQL
from justice.errors import ConfigError
from justice.settings import ENGINES, Settings


def engine_for(settings: Settings) -> Engine:
    """The engine the settings name (JUSTICE_ENGINE, `justice --engine`)."""
    if settings.engine == "duckdb":
        from justice.engine.duckdb import DuckDBEngine

        return DuckDBEngine(settings)
    if settings.engine == "spark":
        from justice.engine.spark import SparkEngine

        return SparkEngine(settings)
    raise ConfigError(f"engine {settings.engine!r}: choose one of {', '.join(ENGINES)} (JUSTICE_ENGINE)")


def linkage_sql_by_engine() -> dict[str, LinkageSQL]:
    """How each engine writes linkage's SQL, by Splink's name for its dialect (a trained model
    keeps its conditions in every one, so a model trained on one engine scores on another)."""
    from justice.engine.spark import SparkLinkageSQL

    return {sql.splink_dialect: sql for sql in (LinkageSQL(), SparkLinkageSQL())}


__all__ = ["Engine", "LinkageSQL", "engine_for", "linkage_sql_by_engine"]
