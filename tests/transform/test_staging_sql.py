"""The staging SQL generated from a spec, per engine: date formats translated for Spark, and the
same typed rows, quarantine reasons and latest versions on DuckDB and on Spark."""

from __future__ import annotations

import re

import duckdb
import pytest

from justice.engine.base import SQLDialect
from justice.engine.duckdb import DuckDBSQL
from justice.engine.spark import SparkSQL, spark_datetime_pattern
from justice.errors import ConfigError
from justice.sources.spec import parse_spec
from justice.transform.staging import checked_sql, latest_sql, quarantined_sql, staged_sql

SPEC = parse_spec({"system": "court", "format": "csv", "files": "*.csv", "tables": [
    {"name": "cases", "record_key": ["case_ref"], "cursor_field": "updated_at", "fields": [
        {"source": "Case Ref", "name": "case_ref", "required": True},
        {"source": "Received", "name": "received", "type": "date",
         "format": ["%Y-%m-%d", "%d/%m/%Y", "%d %B %Y", "%d-%b-%Y"]},
        {"source": "Listed", "name": "listed", "type": "date", "format": "%Y%m%d",
         "null_values": ["00000000"]},
        {"source": "Updated", "name": "updated_at", "type": "datetime", "format": "%Y-%m-%d %H:%M:%S"},
        {"source": "Defendant's count", "name": "defendants", "type": "integer"},
        {"source": "Fine", "name": "fine", "type": "decimal"},
        {"source": "Bail", "name": "on_bail", "type": "boolean"}]}]}, "court.yaml")

COLUMNS = ("case_ref", "received", "listed", "updated_at", "defendants", "fine", "on_bail", "_system",
           "_table", "_file", "_locator", "_load_id", "_extracted_at")

RAW = [
    # every field good, dates in each of the received formats
    ("C1", "2020-03-05", "20200306", "2020-03-07 10:11:12", "2", "12.5", "Y"),
    ("C2", "5/3/2020", "00000000", "2020-03-07 10:11:13", " 3 ", "0", "no"),
    ("C3", "05 March 2020", "", "", "", "", ""),
    ("C4", "05-Sep-2020", "20200230", "2020-13-01 00:00:00", "three", "1,5", "maybe"),
    # a later version of C1, and a row missing its required key, with a quote in a value
    ("C1", "2020-03-05", "20200306", "2020-03-08 09:00:00", "4", "12.5", "TRUE"),
    (" ", "not a date", "2020", "2020-03-07", "1", "x", "1"),
    ("C5", "it's 5/3/2020", "20200306", "2020-03-07 10:11:12", "1", "1", "N"),
    # a five-digit year: null on both (Spark's try_to_timestamp would raise on it unguarded)
    ("C6", "05/03/20200", "20200306", "2020-03-07 10:11:12", "1", "1", "N"),
    # numbers that are not plain digits: DuckDB's cast alone reads '1.5' as 2, '1_000' as 1000,
    # '0x10' as 16 and '1e3' as 1000 where Spark's gives null; both must quarantine them
    ("C7", "2020-03-05", "20200306", "2020-03-07 10:11:12", "1.5", "1_000", "Y"),
    ("C8", "2020-03-05", "20200306", "2020-03-07 10:11:12", "0x10", "1e3", "Y"),
    ("C9", "2020-03-05", "20200306", "2020-03-07 10:11:12", "1_000", "0x10", "Y"),
    # a sign, leading zeros, a point with no digits before it: plain numbers still
    ("D1", "2020-03-05", "20200306", "2020-03-07 10:11:12", "+007", "-.5", "N"),
]


def test_spec_date_formats_translate_to_spark_datetime_patterns():
    assert spark_datetime_pattern("%d/%m/%Y") == "d/M/y"
    assert spark_datetime_pattern("%Y-%m-%d %H:%M:%S") == "y-M-d H:m:s"
    # digits running into digits need fixed widths, or Spark cannot tell where the year ends
    assert spark_datetime_pattern("%Y%m%d") == "yyyyMMdd"
    assert spark_datetime_pattern("%Y%m%d %H:%M") == "yyyyMMdd H:m"
    assert spark_datetime_pattern("%d %B %Y") == "d MMMM y"
    assert spark_datetime_pattern("%d-%b-%Y") == "d-MMM-y"
    # letters and quotes in the format are literal text, quoted in the pattern
    assert spark_datetime_pattern("%Y-%m-%dT%H:%M") == "y-M-d'T'H:m"
    assert spark_datetime_pattern("on %d o'clock") == "'on 'd' o''clock'"
    assert spark_datetime_pattern("100%% %d") == "100% d"


def test_a_format_spark_cannot_parse_the_same_way_is_a_clear_error_naming_spec_and_field():
    with pytest.raises(ValueError, match=r"%y has no Spark equivalent here \(usable: %Y %m %d"):
        spark_datetime_pattern("%d/%m/%y")
    with pytest.raises(ValueError, match="ends with a lone %"):
        spark_datetime_pattern("%d/%m/%Y %")
    spec = parse_spec({"system": "old", "format": "csv", "files": "*.csv", "tables": [
        {"name": "rows", "fields": [{"source": "When", "name": "seen_on", "type": "date",
                                     "format": "%d/%m/%y"}]}]}, "specs/old.yaml")
    with pytest.raises(ConfigError, match=r"specs/old.yaml: field seen_on \(When\): format '%d/%m/%y': "
                                          r"%y has no Spark equivalent.*staging on spark cannot parse it"):
        checked_sql(spec, spec.tables[0], dialect=SparkSQL())
    assert "try_strptime(" in checked_sql(spec, spec.tables[0])  # DuckDB reads %y itself


def test_spark_literals_escape_quotes_and_backslashes():
    # Spark reads 'a''b' as two literals joined ('ab') and backslashes as escapes.
    assert SparkSQL().literal("Defendant's \\d") == "'Defendant\\'s \\\\d'"
    assert DuckDBSQL().literal("Defendant's \\d") == "'Defendant''s \\d'"


def test_checked_models_are_tables_on_both_engines():
    # A view re-runs its query on every read: the raw rows would be parsed again by each model,
    # test, copy and linkage query reading the checked rows.
    table = SPEC.tables[0]
    assert "{{ config(materialized='table') }}" in checked_sql(SPEC, table, dialect=SparkSQL())
    assert "{{ config(materialized='table') }}" in checked_sql(SPEC, table, dialect=DuckDBSQL())


def _render(sql: str, tables: dict[str, str]) -> str:
    """The generated model with dbt's source() and ref() replaced by the test's relation names."""
    sql = re.sub(r"\{\{ config\(.*\) \}\}\n", "", sql)  # how dbt materializes it
    return re.sub(r"\{\{ (?:source\('raw', |ref\()'([a-z_]+)'\) \}\}", lambda m: tables[m.group(1)], sql)


def _models(dialect: SQLDialect) -> list[tuple[str, str]]:
    """(view name, SQL) of the checked, staged, latest and quarantine models, in build order."""
    table = SPEC.tables[0]
    names = {"court__cases": "raw_cases", "court__cases__checked": "checked", "court__cases__latest": "latest"}
    names["court__cases"] = "raw_cases"
    checked = _render(checked_sql(SPEC, table, dialect=dialect), names)
    names["court__cases"] = "staged"  # ref('court__cases') in latest is the staged model
    return [("checked", checked),
            ("staged", _render(staged_sql(SPEC, table, dialect=dialect), names)),
            ("latest", _render(latest_sql(SPEC, table), names)),
            ("quarantined", _render(quarantined_sql(SPEC, table, dialect=dialect), names))]


def _raw_rows():
    return [(*row, "court", "cases", "cases.csv", f"line {i}", "1.5", "2020-04-01")
            for i, row in enumerate(RAW, start=1)]


QUERIES = {
    "staged": "select case_ref, received, listed, updated_at, defendants, fine, on_bail from staged "
              "order by case_ref, updated_at",
    "latest": "select case_ref, updated_at, defendants from latest order by case_ref",
    "quarantined": "select _locator, rule, reason, failures from quarantined order by _locator",
}


def _on_duckdb() -> dict[str, list[tuple]]:
    con = duckdb.connect()
    con.execute(f"create table raw_cases ({', '.join(c + ' varchar' for c in COLUMNS)})")
    con.executemany(f"insert into raw_cases values ({', '.join('?' * len(COLUMNS))})", _raw_rows())
    for name, sql in _models(DuckDBSQL()):
        con.execute(f"create view {name} as {sql}")
    return {name: con.execute(query).fetchall() for name, query in QUERIES.items()}


def test_generated_staging_types_rows_and_quarantines_with_reasons_on_duckdb():
    import datetime as dt
    from decimal import Decimal

    got = _on_duckdb()
    assert got["staged"] == [
        ("C1", dt.date(2020, 3, 5), dt.date(2020, 3, 6), dt.datetime(2020, 3, 7, 10, 11, 12), 2,
         Decimal("12.5000"), True),
        ("C1", dt.date(2020, 3, 5), dt.date(2020, 3, 6), dt.datetime(2020, 3, 8, 9), 4, Decimal("12.5000"), True),
        ("C2", dt.date(2020, 3, 5), None, dt.datetime(2020, 3, 7, 10, 11, 13), 3, Decimal("0.0000"), False),
        ("C3", dt.date(2020, 3, 5), None, None, None, None, None),
        ("D1", dt.date(2020, 3, 5), dt.date(2020, 3, 6), dt.datetime(2020, 3, 7, 10, 11, 12), 7,
         Decimal("-0.5000"), False),
    ]
    assert got["latest"] == [("C1", dt.datetime(2020, 3, 8, 9), 4), ("C2", dt.datetime(2020, 3, 7, 10, 11, 13), 3),
                             ("C3", None, None), ("D1", dt.datetime(2020, 3, 7, 10, 11, 12), 7)]
    reasons = {locator: (rule, reason) for locator, rule, reason, _ in got["quarantined"]}
    assert reasons["line 4"] == ("invalid_date", ("Listed '20200230' is not a date in %Y%m%d form; "
                                 "Updated '2020-13-01 00:00:00' is not a date and time in %Y-%m-%d %H:%M:%S "
                                 "form; Defendant's count 'three' is not a whole number; Fine '1,5' is not a "
                                 "number; Bail 'maybe' is not yes or no"))
    # the first broken rule is the first field's; every reason is kept
    assert reasons["line 6"] == ("missing_required", ("Case Ref is required but empty; Received 'not a date' is "
                                 "not a date in %Y-%m-%d or %d/%m/%Y or %d %B %Y or %d-%b-%Y form; Listed '2020' "
                                 "is not a date in %Y%m%d form; Updated '2020-03-07' is not a date and time in "
                                 "%Y-%m-%d %H:%M:%S form; Fine 'x' is not a number"))
    assert reasons["line 8"] == ("invalid_date", ("Received '05/03/20200' is not a date in %Y-%m-%d or "
                                 "%d/%m/%Y or %d %B %Y or %d-%b-%Y form"))
    assert reasons["line 7"] == ("invalid_date", ("Received 'it's 5/3/2020' is not a date in %Y-%m-%d or "
                                 "%d/%m/%Y or %d %B %Y or %d-%b-%Y form"))
    assert reasons["line 9"] == ("invalid_integer", ("Defendant's count '1.5' is not a whole number; "
                                                    "Fine '1_000' is not a number"))
    assert reasons["line 10"] == ("invalid_integer", ("Defendant's count '0x10' is not a whole number; "
                                                     "Fine '1e3' is not a number"))
    assert reasons["line 11"] == ("invalid_integer", ("Defendant's count '1_000' is not a whole number; "
                                                     "Fine '0x10' is not a number"))


@pytest.mark.spark
def test_generated_staging_gives_the_same_rows_on_spark_as_on_duckdb(tmp_path):
    from justice.engine import spark as spark_engine
    from justice.settings import Settings

    settings = Settings(home=tmp_path, engine="spark", spark_master="local[1]")
    spark = spark_engine.session(settings)
    try:
        spark.createDataFrame(_raw_rows(), list(COLUMNS)).createOrReplaceTempView("raw_cases")
        for name, sql in _models(SparkSQL()):
            spark.sql(f"create or replace temp view {name} as {sql}")
        got = {name: [tuple(r) for r in spark.sql(query).collect()] for name, query in QUERIES.items()}
    finally:
        spark_engine.stop()
    assert got == _on_duckdb()
