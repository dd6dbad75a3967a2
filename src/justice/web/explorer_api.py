"""The explorer's read-only JSON API (no sign-in): the same catalogue and queries as the pages.

- ``GET /api/datasets``: the published datasets;
- ``GET /api/datasets/{dataset}``: one dataset's dimensions (with their values) and measures;
- ``GET /api/datasets/{dataset}/table?measure=...&row=...&col=...&f.<dim>=...&totals=1``: a
  table, in long form (what the page's JSON download holds);
- ``GET /api/openapi.json``: this API's own OpenAPI document (the app's global one stays off);
  ``GET /api/docs``: a page drawn on the server from it (no script, nothing from another site).

A bad query is a 400 with ``{"error": "<what is wrong>"}``; an unknown dataset (person-level
files included: they are not in the catalogue) a 404.
"""

from __future__ import annotations

import json
from functools import cache

from fastapi import APIRouter, Request
from fastapi.openapi.utils import get_openapi
from starlette.responses import JSONResponse, Response

from justice.explore import Dataset, QueryError, downloads, parse_query, run_query
from justice.explore.table import kept_table
from justice.web.explorer import catalogue_of, in_turn, kept_dataset_query, page

router = APIRouter()

API_TITLE = "Justice statistics API"
API_VERSION = "1"
API_DESCRIPTION = (
    "Read-only access to the published, disclosure-controlled justice data tool files. A table "
    "query takes `measure` (one or more), `row` and `col` (dimensions), `f.<dimension>` "
    "(values to keep) and `totals=1`. Withheld figures have a null value and a GSS symbol: "
    "`[c]` confidential, `[x]` not available, `[z]` not applicable.")

_TABLE_PARAMETERS = [
    {"name": "measure", "in": "query", "required": False, "style": "form", "explode": True,
     "schema": {"type": "array", "items": {"type": "string"}},
     "description": "A measure to show (repeat for more); none: the dataset's default table."},
    {"name": "row", "in": "query", "required": False, "style": "form", "explode": True,
     "schema": {"type": "array", "items": {"type": "string"}},
     "description": "A dimension to put in the rows (repeat for more)."},
    {"name": "col", "in": "query", "required": False, "style": "form", "explode": True,
     "schema": {"type": "array", "items": {"type": "string"}},
     "description": "A dimension to put in the columns (repeat for more)."},
    {"name": "totals", "in": "query", "required": False, "schema": {"type": "string", "enum": ["0", "1"]},
     "description": "1 adds a total row and column."},
    {"name": "f.{dimension}", "in": "query", "required": False, "style": "form", "explode": True,
     "schema": {"type": "array", "items": {"type": "string"}},
     "description": "Keep only these values of a dimension, e.g. `f.court_type=crown` "
                    "(repeat for more values)."},
]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _summary(ds: Dataset) -> dict:
    return {"name": ds.name, "title": ds.title, "topic": ds.topic, "description": ds.description,
            "model": ds.model, "coverage": ds.coverage, "published_at": ds.published_at,
            "rows": ds.rows, "url": f"/api/datasets/{ds.name}"}


@router.get("/api/datasets", summary="The published datasets")
@in_turn
def api_datasets(request: Request) -> JSONResponse:
    """Every dataset the explorer serves, with where it comes from and when it was built."""
    catalogue = catalogue_of(request)
    return JSONResponse({"published_at": catalogue.published_at,
                         "datasets": [_summary(ds) for ds in catalogue.datasets.values()]})


@router.get("/api/datasets/{name}", summary="A dataset's dimensions and measures")
@in_turn
def api_dataset(request: Request, name: str) -> JSONResponse:
    """A dataset's dimensions with their values, its measures with their definitions, and its
    default table query."""
    ds = catalogue_of(request).get(name)
    if ds is None:
        return _error(404, f"no published dataset {name[:40]!r}: see /api/datasets")
    return JSONResponse({
        **_summary(ds), "threshold": ds.threshold, "time_dimension": ds.time,
        "dimensions": [{"name": d, "description": ds.column_descriptions.get(d, ""),
                        "values": list(ds.values[d])} for d in ds.dims],
        "measures": [{"name": m.name, "kind": m.kind, "percent": m.percent,
                      "description": m.description,
                      "not_additive_over": sorted(ds.not_additive.get(m.name, ()))}
                     for m in ds.measures.values()],
        "default_query": ds.default_query,
        "table_url": f"/api/datasets/{ds.name}/table?{ds.default_query}"})


def _kept_table_json(request: Request, name: str) -> Response | None:
    """The JSON of a table kept with it (see `api_table`), or None."""
    found = kept_dataset_query(request, name)
    table = kept_table(*found) if found is not None else None
    body = table.memo.get("api-json") if table is not None else None
    return None if body is None else Response(body, media_type="application/json")


@router.get("/api/datasets/{name}/table", summary="A table of a dataset",
            openapi_extra={"parameters": _TABLE_PARAMETERS})
@in_turn(quick=_kept_table_json)
def api_table(request: Request, name: str) -> Response:
    """The table the query asks for, one record per cell (dimension values, measure, value,
    symbol), with the source, dimensions and footnotes."""
    ds = catalogue_of(request).get(name)
    if ds is None:
        return _error(404, f"no published dataset {name[:40]!r}: see /api/datasets")
    try:
        table = run_query(ds, parse_query(ds, request.query_params.multi_items()))
    except QueryError as exc:
        return _error(400, str(exc))
    if "api-json" not in table.memo:
        table.memo["api-json"] = json.dumps(downloads.as_json(table), separators=(",", ":")).encode()
    return Response(table.memo["api-json"], media_type="application/json")


@cache
def openapi_document() -> dict:
    """This API's OpenAPI document (its routes only)."""
    routes = [r for r in router.routes if getattr(r, "path", "").startswith("/api/datasets")]
    return get_openapi(title=API_TITLE, version=API_VERSION, description=API_DESCRIPTION,
                       routes=routes)


@router.get("/api/openapi.json", include_in_schema=False)
def api_openapi() -> JSONResponse:
    """The OpenAPI document."""
    return JSONResponse(openapi_document())


@router.get("/api/docs", include_in_schema=False)
@in_turn
def api_docs(request: Request) -> Response:
    """The API's documentation, drawn from its OpenAPI document."""
    doc = openapi_document()
    operations = [{"path": path, "method": method.upper(), **op}
                  for path, item in doc["paths"].items() for method, op in item.items()]
    example = next(iter(catalogue_of(request).datasets.values()), None)
    return page(request, "explorer/api_docs.html", {"doc": doc, "operations": operations,
                                                     "example": example})
