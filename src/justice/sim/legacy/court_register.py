"""Court register (modelled on the HMCTS court and tribunal register): one CSV of every court.

No case system carries a court's HMCTS region; statistics by region come from this register,
joined on the court code the case systems do carry (Libra's ``Court Code``, XHIBIT's
``CourtCode``).

Layout
------
``court_register/court_register_YYYYMMDD.csv``, dated the simulation's end date: the register
as extracted that day. UTF-8 text, ``\\n`` line ends, a header line, comma separated, minimal
double-quote quoting. One row per court, in court code order::

    Court Code, Court Name, Court Type, HMCTS Region, Open Date, Close Date

``Court Code`` as the case systems write it (``B01000`` for a magistrates' court, ``400`` for
the Crown Court); ``Court Type`` is ``magistrates`` or ``crown``; ``HMCTS Region`` is one of the
world's regions, spelled exactly as in ``truth/courts.parquet``. ``Open Date`` (``dd/mm/yyyy``)
is before the window (no court opens or closes in the simulated world), so ``Close Date`` is
empty.

Mess
----
The register holds no people, so it has no answer-key rows. Its only mess is ``whitespace``: a
share of court names (the level's ``whitespace`` rate) carry trailing spaces, as fixed-width
register fields pad them. Codes, types, regions and dates are exact.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa

from justice.sim.legacy.magistrates import day_number, format_days

SYSTEM = "court_register"
HEADER = ("Court Code", "Court Name", "Court Type", "HMCTS Region", "Open Date", "Close Date")
# Courts opened between this date and a year before the window: all long-established.
EARLIEST_OPENING = dt.date(1950, 1, 1)


def emit(tables: dict, rng: np.random.Generator, rates: dict, out: Path, params) -> pa.Table:
    """Write the register extract; return its (empty) answer-key rows."""
    courts = tables["courts"]
    order = np.argsort(courts["court_code"].astype(str), kind="stable")
    code, name, kind, region = (np.asarray(courts[c], dtype=object)[order]
                                for c in ("court_code", "court_name", "court_type", "region"))
    n = len(code)
    latest_opening = day_number(params.start) - 365
    opened = format_days(rng.integers(day_number(EARLIEST_OPENING), latest_opening + 1, n), "%d/%m/%Y")
    padded = rng.random(n) < rates["whitespace"]
    pad = np.where(rng.random(n) < 0.3, "  ", " ")
    name = np.array([s + p if m else s for s, p, m in zip(name, pad, padded)], dtype=object)

    path = Path(out) / f"court_register_{params.end:%Y%m%d}.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(zip(code, name, kind, region, opened, [""] * n))
    empty = pa.array([], pa.string())
    return pa.table({"system": empty, "record_id": empty, "person_id": empty, "mess": empty})
