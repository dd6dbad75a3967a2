"""JUSTICE_DUCKDB_MEMORY: a memory limit for DuckDB in the linkage and dbt steps and the serving
warehouse, with a spill folder under HOME, so a step sharing the machine spills instead of being
killed; a value that is not an amount is a clear error."""

from __future__ import annotations

import pytest

from justice import warehouse
from justice.engine.duckdb import DuckDBEngine
from justice.errors import ConfigError
from justice.link.store import open_warehouse
from justice.settings import Settings


def _limit(con) -> tuple[str, str]:
    return tuple(con.execute("select current_setting('memory_limit'), current_setting('temp_directory')")
                 .fetchall()[0])


def test_the_limit_and_spill_folder_apply_to_linkage_and_the_warehouse(tmp_path, monkeypatch):
    monkeypatch.setenv("JUSTICE_DUCKDB_MEMORY", "300 mb")
    settings = Settings.from_env(home=tmp_path)
    assert settings.duckdb_memory == "300MB"
    con = warehouse.connect(settings)
    limit, spill = _limit(con)
    con.close()
    assert limit.endswith("MiB") and 280 <= float(limit.split()[0]) <= 300  # 300 MB as DuckDB shows it
    assert spill == str(tmp_path / "duckdb-spill") and (tmp_path / "duckdb-spill").is_dir()
    linking = open_warehouse(settings)  # the in-memory database linkage attaches the warehouse to
    assert _limit(linking) == (limit, spill)
    linking.close()
    profile = DuckDBEngine(settings).dbt_profile()
    assert profile["settings"] == {"memory_limit": "300MB", "temp_directory": spill}


def test_without_it_duckdb_keeps_its_own_default(tmp_path):
    settings = Settings(home=tmp_path)
    assert warehouse.memory_settings(settings) == {} and "settings" not in DuckDBEngine(settings).dbt_profile()
    con = warehouse.connect(settings)
    limit, _ = _limit(con)
    con.close()
    assert "GiB" in limit  # 80% of this machine's memory


@pytest.mark.parametrize("value", ["lots", "6", "GB", "-1GB", "6 GB; drop table x"])
def test_a_value_that_is_not_an_amount_is_refused(tmp_path, value):
    with pytest.raises(ConfigError, match="JUSTICE_DUCKDB_MEMORY"):
        Settings(home=tmp_path, duckdb_memory=value)
