"""Helpers for tests that read or copy a simulated home (import as `from homes import ...`: a
module of its own, because `conftest` is ambiguous once test folders have conftest files)."""

from __future__ import annotations

from pathlib import Path


def warehouse_rows(settings, sql: str, params=None) -> list[tuple]:
    """Rows of a query (with `params` for its `?`s) on HOME/warehouse.duckdb, opened read-only."""
    from justice import warehouse

    con = warehouse.connect(settings, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def copy_home(settings, dest: Path):
    """A copy of a home's truth, lake, warehouse and linkage models (enough to re-link and to
    build), as Settings."""
    import shutil

    from justice.settings import Settings

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(settings.home / "warehouse.duckdb", dest / "warehouse.duckdb")
    shutil.copytree(settings.home / "linkage", dest / "linkage")
    shutil.copytree(settings.home / "truth", dest / "truth")
    shutil.copytree(settings.home / "lake", dest / "lake")
    return Settings(home=dest)
