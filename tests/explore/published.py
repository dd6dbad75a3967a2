"""A small published home for the explorer's tests: data tool files made as `justice build`
makes them (the marts' shapes, protected by publish.protect_export with threshold 10), a
manifest, and a person-level file the explorer must never serve.

Every figure is known: ``RECEIPTS`` gives each court's receipts, so a test can say which cells
disclosure control hid and what a total would have revealed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from justice.transform.publish import exports, protect_export

THRESHOLD = 10
QUARTERS = ["2024Q1", "2024Q2", "2024Q3", "2024Q4"]
QUARTER_START = {q: dt.date(2024, 1 + 3 * i, 1) for i, q in enumerate(QUARTERS)}
QUARTER_END = {q: dt.date(2024, 3 * (i + 1), 28) for i, q in enumerate(QUARTERS)}
COURTS = {  # code: (court type, region, name, case types)
    "C1": ("crown", "London", "Alpha Crown Court", ("trial", "appeal")),
    "C2": ("crown", "Wales", "Beta Crown Court", ("trial", "appeal")),
    "M1": ("magistrates", "London", "Gamma Magistrates", ("summary", "either_way")),
    "M2": ("magistrates", "Wales", "Delta Magistrates", ("summary", "either_way")),
}
# (quarter, court, case type) -> receipts; the small ones are suppressed.
RECEIPTS = {}
for qi, q in enumerate(QUARTERS):
    for ci, (code, (_, _, _, cases)) in enumerate(COURTS.items()):
        for ki, case in enumerate(cases):
            RECEIPTS[(q, code, case)] = 40 + 10 * qi + 7 * ci + 3 * ki
RECEIPTS[("2024Q2", "C1", "appeal")] = 4  # primary suppression
RECEIPTS[("2024Q3", "M2", "summary")] = 0  # zeros are published
PERSON_SECRET = "a1b2c3d4e5f60718"


def _write(data: Path, name: str, table: pa.Table) -> None:
    pq.write_table(table, data / f"{name}.parquet")
    pacsv.write_csv(table, data / f"{name}.csv")


def publish_sample(home: Path) -> Path:
    """Write the sample published files under home/reports/data; return the data folder."""
    data = home / "reports" / "data"
    data.mkdir(parents=True, exist_ok=True)
    specs = exports()
    files = {}

    rows = []
    for (q, code, case), receipts in RECEIPTS.items():
        court_type, region, court_name, _ = COURTS[code]
        rows.append({"quarter": q, "quarter_start": QUARTER_START[q], "quarter_end": QUARTER_END[q],
                     "court_type": court_type, "case_type": case, "region": region,
                     "court_code": code, "court_name": court_name, "receipts": receipts,
                     "disposals": receipts + 5})
    tables = {"court_receipts_disposals": pa.Table.from_pylist(rows)}

    rows = []
    for qi, q in enumerate(QUARTERS):
        for court_type, cases in (("crown", ("trial", "appeal")), ("magistrates", ("summary", "either_way"))):
            for ki, case in enumerate(cases):
                open_cases = 100 + 20 * qi + 30 * ki
                older = 12 + qi if court_type == "crown" else 0
                rows.append({"quarter": q, "quarter_end": QUARTER_END[q], "court_type": court_type,
                             "case_type": case, "open_cases": open_cases,
                             "median_age_days": 50.0 + qi + ki, "mean_age_days": 60.5 + qi,
                             "open_a_year_or_more": older,
                             "share_open_a_year_or_more": older / open_cases})
    tables["court_open_caseload"] = pa.Table.from_pylist(rows)

    rows = []
    for qi, q in enumerate(QUARTERS):
        groups = [("all", "all", 300 + qi), ("sex", "F", 60 + qi), ("sex", "M", 240)]
        for breakdown, value, offenders in groups:
            reoffenders = offenders // 4
            if (q, value) == ("2024Q4", "F"):
                reoffenders = 7  # suppressed, so the rate hides with it
            rows.append({"cohort_quarter": q, "cohort_quarter_start": QUARTER_START[q],
                         "breakdown": breakdown, "breakdown_value": value, "offenders": offenders,
                         "reoffenders": reoffenders, "reoffences": reoffenders * 3,
                         "rate": reoffenders / offenders, "reoffences_per_reoffender": 3.0})
    tables["proven_reoffending"] = pa.Table.from_pylist(rows)

    for name, table in tables.items():
        protected = protect_export(table, specs[name], threshold=THRESHOLD)
        _write(data, name, protected)
        files[name] = {"title": specs[name].title, "rows": protected.num_rows, "person_level": False,
                       "suppressed_cells": {c: sum(protected.column(f"{c}_suppressed").to_pylist())
                                            for c in specs[name].counts},
                       "columns": protected.column_names}

    # A person-level file, and a stray file: neither may ever be served.
    cohort = pa.table({"person_pseudonym": [PERSON_SECRET], "cohort_quarter": ["2024Q1"],
                       "offence_group": ["04 Theft offences"], "reoffences": [2]})
    _write(data, "proven_reoffending_cohort", cohort)
    files["proven_reoffending_cohort"] = {"title": specs["proven_reoffending_cohort"].title,
                                          "rows": 1, "person_level": True, "suppressed_cells": {},
                                          "columns": cohort.column_names}
    _write(data, "unlisted", cohort)
    (data / "manifest.json").write_text(json.dumps(
        {"published_at": "2026-12-01T09:30:00+00:00", "threshold": THRESHOLD, "files": files}))
    return data
