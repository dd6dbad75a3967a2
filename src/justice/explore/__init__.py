"""The statistics explorer's query layer: tables from the published, disclosure-protected data
tool files (HOME/reports/data), never from the warehouse or a person-level file.

    from justice.explore import load_catalogue, parse_query, run_query
    catalogue = load_catalogue(settings.home / "reports")
    dataset = catalogue.get("proven_reoffending")
    table = run_query(dataset, parse_query(dataset, "measure=rate&row=cohort_quarter"))

`catalogue` decides what may be read, `query` checks a query against its dataset, `table` adds
cells up without revealing suppressed ones (its module doc has the rules), `charts` draws time
series as SVG, `downloads` writes a table as CSV, Parquet or JSON.
"""

from justice.explore.catalogue import Catalogue, Dataset, Measure, load_catalogue
from justice.explore.query import Query, QueryError, parse_query
from justice.explore.table import Cell, Table, run_query

__all__ = ["Catalogue", "Cell", "Dataset", "Measure", "Query", "QueryError", "Table",
           "load_catalogue", "parse_query", "run_query"]
