"""Interventions: participant lists that programme providers fill in as Excel workbooks.

Files in the system folder: one ``.xlsx`` per provider, programme and span of programme start
years, named ``<provider-slug>__<programme-slug>__<years>.xlsx`` where ``<years>`` is ``YYYY``
or ``YYYY-YYYY`` (e.g. ``pathways-partnership__thinking-skills-programme__2016.xlsx``,
``clearwater-recovery__drug-recovery-pathway__2014-2025.xlsx``). Each file is meant as one
Justice Data Lab request, which needs at least 60 participants: a provider-programme's start
years are taken in order and merged until a file holds at least 60 participations, and a
remainder under 60 joins the last file. A programme with fewer than 60 participations in all
gets one file anyway.

Each workbook has one sheet, ``Participants``, laid out as a person would:

* row 1: ``Participant list – <programme>`` (bold); row 2: ``Provider: <provider>``;
  row 3: blank;
* row 4: the header ``First name | Surname | Date of birth | Gender | Programme start date |
  PNC (if known) | Prison number (if known)``;
* rows 5 onwards: one participant per row, in order of programme start date.

Cells: names in mixed case as typed (mostly Title case, some UPPER or lower case). Date of birth
mostly a real Excel date (``dd/mm/yyyy`` format), about one in eight typed as text in one of
``03/07/1985``, ``3 July 1985``, ``1985-07-03``, ``03-Jul-1985``, and blank when unknown. Gender
in the provider's own style (``Male``/``Female``, ``M``/``F`` or ``male``/``female``).
Programme start date is always an Excel date. PNC on about 30% of rows and prison number on
about 20%; there is no reliable identifier. Workbook properties (created date) derive from the
simulation end date, so the bytes are the same on every run.

Person-bearing record: the participant row. ``record_id`` = ``<file name>:<row>``, the 1-based
sheet row (the first participant is ``...xlsx:5``); the answer key has one row per participant
row. Identity mess from ``messy_identity`` (PNC and prison number only, case kept), plus:

* ``duplicate_row`` - a participation entered twice (its own identity draw), on a row near the
  first; the second entry is labelled, and such rows are the ``duplicate_row`` share of rows.
* ``invalid_date`` - date of birth typed as text that is not a date (``31/04/1985``,
  ``30/02/1985``, or day and month swapped into month 13-31).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import xlsxwriter

from justice.sim.legacy.identity import messy_identity, person_rows
from justice.sim.legacy.magistrates import identity_options, other_person_ids
from justice.sim.legacy.probation import impossible_dates

SYSTEM = "interventions"
SHEET = "Participants"
HEADER = ("First name", "Surname", "Date of birth", "Gender", "Programme start date",
          "PNC (if known)", "Prison number (if known)")
HEADER_ROW = 4  # 1-based sheet row of the header
FIRST_DATA_ROW = HEADER_ROW + 1
MIN_PARTICIPANTS = 60  # a Justice Data Lab request needs at least this many people
PNC_SHARE, PRISON_SHARE = 0.30, 0.20  # rows where the provider knows the id
TEXT_DOB_SHARE = 0.12
UPPER_SHARE, LOWER_SHARE = 0.06, 0.03
GENDER_STYLES = ({"M": "Male", "F": "Female"}, {"M": "M", "F": "F"},
                 {"M": "male", "F": "female"})
EXCEL_EPOCH = 25_569  # Excel serial of 1970-01-01
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


def slug(text: str) -> str:
    """Lower-case file-name form of a provider or programme name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def year_spans(years: np.ndarray, counts: np.ndarray, minimum: int = MIN_PARTICIPANTS
               ) -> list[list[int]]:
    """Consecutive start years merged until each span has ``minimum`` rows (the last absorbs
    any remainder)."""
    spans: list[list[int]] = []
    current: list[int] = []
    n = 0
    for year, count in zip(years.tolist(), counts.tolist()):
        current.append(year)
        n += count
        if n >= minimum:
            spans.append(current)
            current, n = [], 0
    if current:
        if spans:
            spans[-1].extend(current)
        else:
            spans.append(current)
    return spans


def _text_dob(y: int, m: int, d: int, style: int) -> str:
    if style == 0:
        return f"{d:02d}/{m:02d}/{y}"
    if style == 1:
        return f"{d} {MONTHS[m - 1]} {y}"
    if style == 2:
        return f"{y}-{m:02d}-{d:02d}"
    return f"{d:02d}-{MONTHS[m - 1][:3]}-{y}"


def _recase(values: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> list:
    return [None if v is None else v.upper() if up else v.lower() if lo else v
            for v, up, lo in zip(values, upper, lower)]


def emit(tables: dict, rng: np.random.Generator, rates: dict, out: Path, params) -> pa.Table:
    """Write the providers' participant workbooks; return the answer-key rows."""
    out = Path(out)
    iv = tables["interventions"]
    n = len(iv["person_id"])
    start = iv["start_date"]
    year = start.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970

    # ---- which file each participation goes in -------------------------------------------
    pairs = sorted(set(zip(iv["provider"].tolist(), iv["programme"].tolist())))
    pair_of = {p: i for i, p in enumerate(pairs)}
    pair = np.array([pair_of[p] for p in zip(iv["provider"], iv["programme"])], dtype=np.int64)
    file_of = np.zeros(n, dtype=np.int64)
    names: list[str] = []
    file_pair: list[int] = []
    for k, (provider, programme) in enumerate(pairs):
        mine = pair == k
        years, counts = np.unique(year[mine], return_counts=True)
        for span in year_spans(years, counts):
            label = str(span[0]) if len(span) == 1 else f"{span[0]}-{span[-1]}"
            file_of[mine & np.isin(year, span)] = len(names)
            names.append(f"{slug(provider)}__{slug(programme)}__{label}.xlsx")
            file_pair.append(k)

    # ---- duplicate entries, then sheet order --------------------------------------------
    r = rates["duplicate_row"]
    p_dup = 1.0 if r >= 0.5 else r / (1.0 - r)  # so duplicates are share r of all rows
    src = np.concatenate([np.arange(n), np.flatnonzero(rng.random(n) < p_dup)])
    is_dup = np.arange(len(src)) >= n
    order = np.lexsort((rng.random(len(src)), start[src], file_of[src]))
    src, is_dup = src[order], is_dup[order]
    m = len(src)
    row_file = file_of[src]
    first = np.r_[True, row_file[1:] != row_file[:-1]] if m else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    sheet_row = np.arange(m) - np.repeat(starts, np.diff(np.r_[starts, m])) + FIRST_DATA_ROW

    # ---- identity: the provider knows few identifiers; then the usual mess -------------
    rows = person_rows(tables, iv["person_id"][src])
    for col, share in (("pnc_id", PNC_SHARE / max(1.0 - rates["pnc_missing"], 1e-9)),
                       ("prison_number", PRISON_SHARE)):
        known = np.fromiter((v is not None for v in rows[col]), bool, m)
        keep = min(1.0, share / max(known.mean(), 1e-9)) if m else 1.0
        rows[col] = np.where(rng.random(m) < keep, rows[col], None).astype(object)
    idn, labels = messy_identity(rng, rows, rates, surname_pool=tables["persons"]["surname"],
                                 ids=("pnc_id", "prison_number"), upper_case=False,
                                 with_postcode=False,
                                 **identity_options(tables, SYSTEM, start[src]))
    labels = labels.astype(object)
    labels[is_dup] = [",".join(sorted({*filter(None, x.split(",")), "duplicate_row"}))
                      for x in labels[is_dup]]

    # ---- dates of birth: Excel dates, text, impossible text, blank -----------------------
    dob = idn["dob"]
    has_dob = ~np.isnat(dob)
    dob_days = np.where(has_dob, dob.astype("datetime64[D]").astype(np.int64), 0)
    d = dob.astype("datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    mo = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dd = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    bad = (rng.random(m) < rates["invalid_date"]) & has_dob
    as_text = has_dob & ~bad & (rng.random(m) < TEXT_DOB_SHARE)
    style = rng.integers(0, 4, m)
    by, bm, bd = impossible_dates(rng, y[bad], mo[bad], dd[bad])
    dob_cell: list = [float(x + EXCEL_EPOCH) for x in dob_days.tolist()]
    for i in np.flatnonzero(~has_dob):
        dob_cell[i] = None
    for i in np.flatnonzero(as_text):
        dob_cell[i] = _text_dob(int(y[i]), int(mo[i]), int(dd[i]), int(style[i]))
    for i, yy, mm, day in zip(np.flatnonzero(bad), by.tolist(), bm.tolist(), bd.tolist()):
        dob_cell[i] = f"{day:02d}/{mm:02d}/{yy}"
    labels[bad] = [",".join(sorted({*filter(None, x.split(",")), "invalid_date"}))
                   for x in labels[bad]]

    # ---- names as typed; gender in the provider's style ---------------------------------
    u = rng.random(m)
    upper, lower = u < UPPER_SHARE, (u >= UPPER_SHARE) & (u < UPPER_SHARE + LOWER_SHARE)
    fore = _recase(idn["forename"], upper, lower)
    sur = _recase(idn["surname"], upper, lower)
    style_of_file = np.array([k % len(GENDER_STYLES) for k in file_pair], dtype=np.int64)
    gender_style = style_of_file[row_file] if m else np.zeros(0, np.int64)
    gender = [GENDER_STYLES[s].get(g) for s, g in zip(gender_style.tolist(), idn["sex"])]
    start_cell = (start[src] + EXCEL_EPOCH).astype(float).tolist()
    pnc, prison = idn["pnc_id"].tolist(), idn["prison_number"].tolist()

    # ---- write ---------------------------------------------------------------------------
    created = dt.datetime.combine(params.end, dt.time(17, 30))
    bounds = np.searchsorted(row_file, np.arange(len(names) + 1))
    for k, name in enumerate(names):
        provider, programme = pairs[file_pair[k]]
        wb = xlsxwriter.Workbook(str(out / name), {"in_memory": True})
        wb.set_properties({"title": f"Participant list - {programme}", "author": provider,
                           "company": provider, "created": created})
        bold = wb.add_format({"bold": True})
        title = wb.add_format({"bold": True, "font_size": 14})
        date = wb.add_format({"num_format": "dd/mm/yyyy"})
        ws = wb.add_worksheet(SHEET)
        ws.write_string(0, 0, f"Participant list \u2013 {programme}", title)
        ws.write_string(1, 0, f"Provider: {provider}")
        for c, text in enumerate(HEADER):
            ws.write_string(HEADER_ROW - 1, c, text, bold)
        ws.set_column(0, 1, 16)
        ws.set_column(2, 4, 20)
        ws.set_column(5, 6, 24)
        ws.freeze_panes(HEADER_ROW, 0)
        for i in range(bounds[k], bounds[k + 1]):
            row = int(sheet_row[i]) - 1
            if fore[i] is not None:
                ws.write_string(row, 0, fore[i])
            if sur[i] is not None:
                ws.write_string(row, 1, sur[i])
            cell = dob_cell[i]
            if isinstance(cell, float):
                ws.write_number(row, 2, cell, date)
            elif cell is not None:
                ws.write_string(row, 2, cell)
            if gender[i] is not None:
                ws.write_string(row, 3, gender[i])
            ws.write_number(row, 4, start_cell[i], date)
            if pnc[i] is not None:
                ws.write_string(row, 5, pnc[i])
            if prison[i] is not None:
                ws.write_string(row, 6, prison[i])
        wb.close()

    record_id = [f"{names[f]}:{r}" for f, r in zip(row_file.tolist(), sheet_row.tolist())]
    return pa.table({
        "system": pa.array([SYSTEM] * m, pa.string()),
        "record_id": pa.array(record_id, pa.string()),
        "person_id": pa.array(iv["person_id"][src], pa.string()),
        "mess": pa.array(labels, pa.string()),
        "other_person_id": pa.array(other_person_ids(tables, idn), pa.string()),
    })
