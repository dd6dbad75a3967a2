"""What an engine does for the pipeline. One subclass per engine (duckdb.py, spark.py); nothing
outside this package asks which engine it is running on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Self

import duckdb
import pyarrow as pa

from justice.settings import Settings

Progress = Callable[[str, int, int], None]


class SQLDialect(ABC):
    """The SQL that differs by engine in the staging models generated from source specs
    (justice.transform.staging); each engine's module has its own."""

    name: str = ""

    checked_as_table: bool = False
    """Whether the `__checked` staging models (every raw row typed and checked) are tables rather
    than views: an engine that recomputes a view in each query reading it parses every raw row
    again for the staged, latest and quarantine views, their tests, linkage's records, the copy
    and core (DuckDB and Spark both say so)."""

    @abstractmethod
    def literal(self, text: str) -> str:
        """A string literal holding `text`."""

    @abstractmethod
    def parse_timestamp(self, value: str, formats: tuple[str, ...]) -> str:
        """The timestamp `value` holds in the first of `formats` (strftime style, as the specs
        write them) it matches, else null. ValueError names a format the engine cannot read."""

    @abstractmethod
    def as_date(self, timestamp: str) -> str:
        """The date of a timestamp expression."""

    @abstractmethod
    def full_match(self, text: str, pattern: str) -> str:
        """Whether the whole of text `text` matches the regular expression `pattern` (written
        without backslashes, the one syntax both engines' regular expressions read alike)."""

    @abstractmethod
    def failure(self, rule: str, field: str, reason: str) -> str:
        """One broken rule (rule, field, reason SQL) as a struct."""

    @abstractmethod
    def failures(self, items: list[str]) -> str:
        """The broken rules of a row: the non-null items (each a struct or null)."""

    @abstractmethod
    def count(self, failures: str) -> str:
        """How many rules a list of failures holds."""

    @abstractmethod
    def first_rule(self, failures: str) -> str:
        """The rule of the first failure."""

    @abstractmethod
    def reasons(self, failures: str) -> str:
        """Every reason of the list, joined by '; '."""


class LinkageSQL:
    """How linkage's SQL reads on an engine. The model spec (link/model.yaml) writes the levels
    Splink's library lacks, and the blocking rules, in DuckDB's dialect; each engine translates
    them, and `splink_dialect` names the dialect Splink's own comparison levels are made for."""

    splink_dialect: str = "duckdb"

    def translate(self, sql: str) -> str:
        """`sql`, a condition in DuckDB's dialect, as this engine reads it."""
        return sql


class Engine(ABC):
    """A query engine over the lake and the tables the steps build."""

    name: str = ""
    sql_dialect: SQLDialect
    """How the staging SQL generated from source specs is written for this engine."""
    linkage_sql: LinkageSQL = LinkageSQL()
    """How linkage's comparison and blocking SQL is written for this engine."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release what the engine holds (connections, a session)."""

    @abstractmethod
    def refresh_raw_views(self, specs: Iterable) -> list[str]:
        """(Re)create `raw.<table>` over every landed table (files of completed loads only) and
        `audit.loads`; return the raw tables."""

    @abstractmethod
    def dbt_profile(self) -> dict:
        """The dbt profile target (one entry of profiles.yml `outputs`) for this engine."""

    @abstractmethod
    def run_dbt(self, project: Path, *args: str, progress: Progress | None = None) -> None:
        """Run `dbt <args>` on the working project; raise TransformError naming failed nodes."""

    @abstractmethod
    def tables(self, schema: str) -> list[str]:
        """Tables and views in `schema` (empty when the schema does not exist)."""

    def has_table(self, schema: str, name: str | None = None) -> bool:
        """Whether `schema`.`name` exists (any table of `schema` when name is None)."""
        names = self.tables(schema)
        return bool(names) if name is None else name in names

    @abstractmethod
    def read_table(self, schema: str, name: str) -> pa.Table:
        """The whole of `schema`.`name` as Arrow (for comparison and small tables)."""

    @abstractmethod
    def write_table(self, schema: str, name: str, data: pa.Table) -> None:
        """Create or replace `schema`.`name` with `data`."""

    def load_from_warehouse(self, schema: str, names: Iterable[str]) -> list[str]:
        """Copy tables a step wrote in the serving warehouse into the engine (the reverse of
        `serve`); return those copied. An engine whose tables live there copies nothing."""
        return []

    def serve(self, schemas: Iterable[str]) -> list[str]:
        """Copy the tables of `schemas` into the serving warehouse (HOME/warehouse.duckdb) that
        publish, the explorer and the web app read; return the tables copied. An engine whose
        tables already live there copies nothing."""
        return []

    # Linkage (justice.link) scores pairs with Splink on the engine. Its input tables are
    # standardised in the serving warehouse, attached to an in-memory DuckDB (`con`, see
    # justice.link.store), and its results (pairs above the model's keep weight) come back there.

    @abstractmethod
    def splink_api(self, con: duckdb.DuckDBPyConnection):
        """Splink's database API for this engine (`con`: linkage's DuckDB connection)."""

    @abstractmethod
    def splink_input(self, db_api, con: duckdb.DuckDBPyConnection, name: str, query: str,
                     table_name: str | None = None):
        """The rows of `query` (DuckDB SQL over `con`) as a Splink input table named `name`
        (`table_name`: Splink's name for it, generated when None)."""

    @abstractmethod
    def splink_output(self, frame, con: duckdb.DuckDBPyConnection, table: str) -> None:
        """Create or replace `table` in `con` with the rows of Splink's result `frame`, then drop
        `frame` from the engine."""

    def drop_linkage_inputs(self) -> None:
        """Remove what splink_input and Splink's working tables left on the engine (after a
        run). An engine whose working tables live in memory has nothing to remove."""
