"""A table's cells as a download: CSV, Parquet and JSON hold the same records (the table in long
form, one row per cell: its dimension values, the measure, the value, and the GSS symbol where
a value is withheld), so what is downloaded is what the page shows."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from justice.explore.table import Table

FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet",
           "json": "application/json"}


def _arrow(table: Table) -> pa.Table:
    dims = [*table.query.rows, *table.query.cols]
    records = table.records()
    columns = {d: pa.array([r[d] for r in records], pa.string()) for d in dims}
    columns["measure"] = pa.array([r["measure"] for r in records], pa.string())
    columns["value"] = pa.array([None if r["value"] is None else float(r["value"]) for r in records],
                                pa.float64())
    columns["symbol"] = pa.array([r["symbol"] for r in records], pa.string())
    return pa.table(columns)


def source_note(table: Table) -> dict:
    """Where the figures come from: the dataset, its model, the build and the query."""
    ds = table.dataset
    return {"dataset": ds.name, "title": ds.title, "model": ds.model, "published_at": ds.published_at,
            "disclosure_threshold": ds.threshold, "query": table.query.query_string()}


def as_csv(table: Table) -> bytes:
    """The records as CSV (UTF-8, a header row; an empty value where a symbol stands)."""
    out = io.BytesIO()
    pacsv.write_csv(_arrow(table), out)
    return out.getvalue()


def as_parquet(table: Table) -> bytes:
    """The records as Parquet, with the source note in the file's metadata."""
    import json

    data = _arrow(table)
    data = data.replace_schema_metadata({b"justice.source": json.dumps(source_note(table)).encode()})
    out = io.BytesIO()
    pq.write_table(data, out)
    return out.getvalue()


def as_json(table: Table) -> dict:
    """The records with the source note, the dimensions and the footnotes (a JSON document)."""
    return {"source": source_note(table),
            "dimensions": {"rows": list(table.query.rows), "columns": list(table.query.cols)},
            "measures": list(table.query.measures), "footnotes": table.footnotes(),
            "records": table.records()}
