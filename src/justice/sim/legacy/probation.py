"""Probation (an nDelius-style mainframe export): monthly fixed-block EBCDIC offender-event files.

Files in the system folder:

* ``probation.cpy`` - the COBOL copybook of the record layout (a copy of the one shipped in
  ``justice/sim/legacy/probation.cpy``); decode the data with
  ``justice.sources.copybook.parse_copybook`` + ``decode_records``.
* ``DELIUS.EXTRACT.DYYMM.DAT`` - one file per calendar month of the window, ``YY`` the two-digit
  year and ``MM`` the month (``DELIUS.EXTRACT.D1401.DAT`` is January 2014). A file is written for
  every month, empty when nothing changed. Records are fixed-block (RECFM=FB), 250 bytes each,
  EBCDIC code page 037, with no newlines or other delimiters: a file's length is always a whole
  number of records. Within a file records are sorted by CRN, then event number.

Record ``DELIUS-EVENT-RECORD`` (one per offender event created or changed in the month):

=====================  =====================  ===============================================
field                  picture                content
=====================  =====================  ===============================================
RECORD-TYPE            X(2)                   always ``EV``
CRN                    X(7)                   case reference number, letter + 6 digits
EVENT-NUMBER           9(3)                   1, 2, ... per CRN in order of start date
SURNAME                X(35)                  upper case
FORENAMES              X(35)                  forename and middle name, upper case
DATE-OF-BIRTH          9(8)                   YYYYMMDD; 00000000 when not recorded
SEX                    X(1)                   M / F
PNC-ID                 X(13)                  ``YYYY/NNNNNNNC`` or blank
CRO-NUMBER             X(10)                  ``NNNNNN/YYC`` or blank (often)
SUPERVISION-TYPE       X(3)                   ``CO`` community order, ``SSO`` suspended
                                              sentence order, ``LIC`` licence
START-DATE             9(8)                   YYYYMMDD
PLANNED-END-DATE       9(8)                   YYYYMMDD
TERMINATION-DATE       9(8)                   YYYYMMDD once terminated by the extract date
TERMINATION-REASON     X(2)                   ``CM`` completed, ``CB`` completed after breach
                                              action, ``LE`` licence expired; blank if open
BREACH-DATE            9(8)                   YYYYMMDD of a breach by the extract date
REGION-CODE            X(3)                   LDN SEA SWE MID NEA NWE WAL
PDU-CODE               X(6)                   probation delivery unit, region code + ``Pnn``
ORDER-LENGTH-MONTHS    S9(3) zoned            planned length in months
UPW-HOURS-ORDERED      S9(5)V9 COMP-3         unpaid work hours ordered (0 if none)
OGRS-SCORE             S9(3)V99 COMP-3        OGRS-style 2-year reoffending score, 0-99.99
LAST-UPDATED-DATE      9(8)                   YYYYMMDD of the change that produced the record
EXTRACT-DATE           9(8)                   YYYYMMDD, last day of the file's month
ETHNIC-ORIGIN          X(2)                   ethnicity, a 2011 census code (W1, B2, ...) or
                                              NS not stated; taken from the old FILLER
FILLER                 X(62)                  spaces
=====================  =====================  ===============================================

An event (a community order, suspended sentence order or licence) gets a record in the month it
starts, the month of any breach and the month it terminates, each showing the event as at the
extract date; the first month's file also loads every event that started before the window and
was still running. So one event appears in up to three files, and the latest record for a CRN +
event number supersedes earlier ones.

Person-bearing key: the CRN. The answer key has one row per distinct CRN in the files,
``record_id`` = the CRN. A CRN's records all carry the same identity, drawn once per CRN with
``messy_identity`` (upper-case names, PNC and CRO only), except as noted for late corrections.

ETHNIC-ORIGIN is held on the offender, so a CRN's records share one code: the person's usual
code, NS or another code at the rates of ``reference/ethnicity_codes.yaml`` (unlabelled, as in
the prison; see ``justice.sim.legacy.ethnicity``).

Row-level mess, labelled in the answer key:

* ``duplicate_row`` - a person registered twice: a second CRN (its own identity draw) holds
  some of the person's events (a person with one event has it entered under both CRNs). The
  second CRN's answer-key row is labelled; the share of such CRNs is the ``duplicate_row`` rate.
* ``invalid_date`` - DATE-OF-BIRTH keyed as an impossible date (``19850231``, ``19850431``, or
  day and month swapped into month 13-31 such as ``19852507``). Dates are otherwise valid, or
  zero where not recorded (``dob_missing``).
* ``late_correction`` - the CRN's early records carry a mistyped surname; a later month's file
  repeats the CRN's first event with the corrected name (LAST-UPDATED-DATE in that month) and all
  later records carry it too. The label marks the CRN; the name mess in its other labels is the
  corrected one.
* ``whitespace`` counts only leading or doubled inner spaces in SURNAME: trailing spaces vanish
  in a fixed-width field. ``encoding_error`` names keep their mis-decoded characters where code
  page 037 has them; characters it lacks are written as ``?``.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa

from justice import identifiers
from justice.errors import SimulationError
from justice.sim import mess
from justice.sim.arrays import rank_within_runs
from justice.sim.courts import NONE
from justice.sim.legacy import ethnicity
from justice.sim.legacy.identity import messy_identity, person_rows
from justice.sim.legacy.magistrates import identity_options, other_person_ids
from justice.sources.copybook import Copybook, encode_records, parse_copybook

SYSTEM = "probation"
COPYBOOK_NAME = "probation.cpy"
FILE_TEMPLATE = "DELIUS.EXTRACT.D{yy:02d}{mm:02d}.DAT"
FILE_GLOB = "DELIUS.EXTRACT.D????.DAT"

SUPERVISION_CODES = {"community_order": "CO", "suspended_sentence_order": "SSO", "licence": "LIC"}
REGION_CODES = {"London": "LDN", "South East": "SEA", "South West": "SWE", "Midlands": "MID",
                "North East": "NEA", "North West": "NWE", "Wales": "WAL"}
PDUS_PER_REGION = 4
UPW_SHARE = 0.45  # community and suspended orders with an unpaid work requirement
OGRS_RATE = 0.8  # OGRS = 100 * (1 - exp(-OGRS_RATE * risk_score)); median risk ~0.56 -> ~36
DAYS_PER_MONTH = 30.4375


def copybook_text() -> str:
    """The copybook shipped with the package (the same text is copied beside the data)."""
    return resources.files("justice.sim.legacy").joinpath(COPYBOOK_NAME).read_text("ascii")


def load_copybook() -> Copybook:
    """The parsed probation record layout."""
    return parse_copybook(copybook_text(), source=COPYBOOK_NAME)


def file_name(month: int) -> str:
    """The extract file name of ``month`` (months since January 1970)."""
    return FILE_TEMPLATE.format(yy=(1970 + month // 12) % 100, mm=month % 12 + 1)


# --------------------------------------------------------------------------------------------
# Date helpers (int64 day numbers since 1970-01-01)
# --------------------------------------------------------------------------------------------


def _day(date) -> int:
    return int(np.datetime64(date, "D").astype(np.int64))


def _month_of(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _month_start(months: np.ndarray) -> np.ndarray:
    return np.asarray(months).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    month = m.astype(np.int64) % 12 + 1
    day = (d - m.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, day


def _yyyymmdd(days: np.ndarray) -> np.ndarray:
    """YYYYMMDD integers; 0 for the NONE sentinel."""
    days = np.asarray(days, dtype=np.int64)
    ok = days != NONE
    out = np.zeros(len(days), dtype=np.int64)
    y, m, d = _ymd(days[ok])
    out[ok] = y * 10_000 + m * 100 + d
    return out


def impossible_dates(rng: np.random.Generator, year: np.ndarray, month: np.ndarray,
                     day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keying errors that give a date which does not exist, as (year, month, day).

    A day past the month's end (31 April, 30 or 31 February) or, for a day over 12, day and
    month swapped (25 July -> month 25). Shared by the probation and interventions emitters.
    """
    month, day = month.copy(), day.copy()
    thirty = np.isin(month, [4, 6, 9, 11])
    day = np.where(thirty, 31, day)
    swap = ~thirty & (month != 2) & (day > 12)
    month, day = np.where(swap, day, month), np.where(swap, month, day)
    feb = ~thirty & ~swap
    day = np.where(feb, 30 + (rng.random(len(day)) < 0.5), day)
    month = np.where(feb, 2, month)
    return year, month, day


# --------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------


def _ebcdic(values: np.ndarray, length: int) -> np.ndarray:
    """Values cut to the field length, characters code page 037 lacks written as '?'."""
    out = np.empty(len(values), dtype=object)
    out[:] = [None if v is None else (v if v.isascii() else "".join(
        c if ord(c) < 256 else "?" for c in v))[:length] for v in values]
    return out


def _add_label(labels: np.ndarray, mask: np.ndarray, kind: str) -> None:
    for i in np.flatnonzero(mask):
        labels[i] = ",".join(sorted({*filter(None, labels[i].split(",")), kind}))


def _drop_label(labels: np.ndarray, mask: np.ndarray, kind: str) -> None:
    for i in np.flatnonzero(mask):
        labels[i] = ",".join(k for k in labels[i].split(",") if k and k != kind)


def _visible_whitespace(surnames: np.ndarray, labels: np.ndarray) -> None:
    """Drop the whitespace label where only trailing spaces were added (a fixed field pads)."""
    marked = np.flatnonzero(np.fromiter(("whitespace" in x for x in labels), bool, len(labels)))
    hidden = [i for i in marked
              if not (surnames[i].startswith(" ") or "  " in surnames[i].rstrip())]
    mask = np.zeros(len(labels), dtype=bool)
    mask[hidden] = True
    _drop_label(labels, mask, "whitespace")


def _fresh_crns(rng: np.random.Generator, n: int, taken: np.ndarray) -> np.ndarray:
    """``n`` new CRNs that no person already holds (for duplicate registrations)."""
    if n == 0:
        return np.empty(0, dtype=object)
    candidates = identifiers.make_crns(rng, n + n // 5 + 16)
    fresh = candidates[~np.isin(candidates.astype("U7"), taken.astype("U7"))]
    if len(fresh) < n:
        raise SimulationError(f"probation: could not draw {n} unused CRNs for duplicate "
                              "registrations; the CRN space is nearly full")
    return fresh[:n]


def _integer_layout(book: Copybook) -> Copybook:
    """The copybook with every implied decimal point dropped.

    Packed and zoned bytes do not depend on the scale (the point is implied), so encoding the
    unscaled integers with scale 0 writes exactly the bytes the real layout decodes, vectorised.
    """
    fields = tuple(dataclasses.replace(f, scale=0) for f in book.fields)
    return Copybook(book.record_name, fields, book.record_length, book.source)




# --------------------------------------------------------------------------------------------
# The emitter
# --------------------------------------------------------------------------------------------


def emit(tables: dict, rng: np.random.Generator, rates: dict, out: Path, params) -> pa.Table:
    """Write the monthly probation extracts and the copybook; return the answer-key rows."""
    out = Path(out)
    book = load_copybook()
    (out / COPYBOOK_NAME).write_text(copybook_text(), encoding="ascii")
    sup, persons = tables["supervision"], tables["persons"]
    w0, w1 = _day(params.start), _day(params.end)
    first_month, last_month = int(_month_of(np.array([w0]))[0]), int(_month_of(np.array([w1]))[0])

    # ---- events per person, and the CRNs they are recorded under --------------------------
    n_ev = len(sup["supervision_id"])
    pidx = np.searchsorted(persons["person_id"], sup["person_id"])
    ev = np.lexsort((np.arange(n_ev), sup["start_date"], pidx))  # by person, then start
    people, first_pos, counts = np.unique(pidx[ev], return_index=True, return_counts=True)
    n_people = len(people)
    owner = np.repeat(np.arange(n_people), counts)  # person (index into people) of ev[i]
    rank = np.arange(n_ev) - first_pos[owner]
    count = counts[owner]
    main_crn = persons["crn"][people]
    if any(c is None for c in main_crn):
        raise SimulationError("probation: a person under supervision has no CRN in persons")

    r = rates["duplicate_row"]
    p_dup = 1.0 if r >= 0.5 else r / (1.0 - r)  # so duplicates are share r of all CRNs
    dup = rng.random(n_people) < p_dup
    n_dup = int(dup.sum())
    dup_crn_of = np.full(n_people, -1, dtype=np.int64)
    dup_crn_of[dup] = n_people + np.arange(n_dup)
    crn = np.concatenate([main_crn, _fresh_crns(rng, n_dup, main_crn)]).astype(object)
    crn_person = np.concatenate([people, people[dup]])
    n_crn = len(crn)
    is_dup = np.r_[np.zeros(n_people, bool), np.ones(n_dup, bool)]

    u = rng.random(n_ev)
    on_dup = dup[owner]
    moved = on_dup & (count >= 2) & (rank > 0) & ((rank == count - 1) | (u < 0.5))
    copied = on_dup & (count == 1)
    inst_event = np.concatenate([ev, ev[copied]])
    inst_crn = np.concatenate([np.where(moved, dup_crn_of[owner], owner),
                               dup_crn_of[owner][copied]])
    n_inst = len(inst_event)
    start = sup["start_date"][inst_event]
    by_crn = np.lexsort((inst_event, start, inst_crn))
    event_number = np.empty(n_inst, dtype=np.int64)
    event_number[by_crn] = rank_within_runs(inst_crn[by_crn]) + 1

    # ---- identity, once per CRN -------------------------------------------------------------
    rows = person_rows(tables, persons["person_id"][crn_person])
    # A CRN's identity is the one given when it was first registered (its first event).
    never = np.iinfo(np.int64).max
    crn_start = np.full(n_crn, never, dtype=np.int64)
    np.minimum.at(crn_start, inst_crn, np.where(start == NONE, never, start))
    crn_start[crn_start == never] = NONE
    idn, labels = messy_identity(rng, rows, rates, surname_pool=persons["surname"],
                                 ids=("pnc_id", "cro_number"), upper_case=True,
                                 with_postcode=False,
                                 **identity_options(tables, SYSTEM, crn_start))
    labels = labels.astype(object)
    _add_label(labels, is_dup, "duplicate_row")
    dob = idn["dob"]
    has_dob = ~np.isnat(dob)
    dob_days = np.where(has_dob, dob.astype("datetime64[D]").astype(np.int64), NONE)
    dob_int = _yyyymmdd(dob_days)
    bad = (rng.random(n_crn) < rates["invalid_date"]) & has_dob
    y, m, d = impossible_dates(rng, *_ymd(dob_days[bad]))
    dob_int[bad] = y * 10_000 + m * 100 + d
    _add_label(labels, bad, "invalid_date")

    surname = _ebcdic(idn["surname"], 35)
    forenames = np.array([None if f is None else (f if mid is None else f"{f} {mid}")
                          for f, mid in zip(idn["forename"], idn["middle_name"])], dtype=object)
    forenames = _ebcdic(forenames, 35)
    _visible_whitespace(surname, labels)

    # ---- change records: (instance, month, last-updated day) --------------------------------
    breach, end = sup["breach_date"][inst_event], sup["end_date"][inst_event]
    days = np.stack([start, breach, end])
    valid = (days != NONE) & (days <= w1)
    days = np.maximum(days, w0)
    rec_inst = np.broadcast_to(np.arange(n_inst), days.shape)[valid]
    rec_day = days[valid]
    rec_month = _month_of(rec_day)

    # ---- late corrections -----------------------------------------------------------------
    order = np.lexsort((event_number[rec_inst], rec_month, inst_crn[rec_inst]))
    crn_sorted = inst_crn[rec_inst][order]
    firsts = order[np.r_[True, crn_sorted[1:] != crn_sorted[:-1]]] if len(order) else order
    present = np.zeros(n_crn, dtype=bool)
    present[inst_crn[rec_inst[firsts]]] = True
    crn_first_inst = np.zeros(n_crn, dtype=np.int64)
    crn_first_month = np.full(n_crn, last_month, dtype=np.int64)
    crn_first_inst[inst_crn[rec_inst[firsts]]] = rec_inst[firsts]
    crn_first_month[inst_crn[rec_inst[firsts]]] = rec_month[firsts]
    eligible = present & (crn_first_month < last_month)
    wanted = eligible & (rng.random(n_crn) < rates["late_correction"])
    wrong_surname, corrected = mess.typo(rng, surname, wanted)
    wrong_surname = _ebcdic(wrong_surname, 35)
    _add_label(labels, corrected, "late_correction")
    span = last_month - crn_first_month
    corr_month = crn_first_month + 1 + np.floor(rng.random(n_crn) * span).astype(np.int64)
    corr_month = np.where(corrected, np.minimum(corr_month, last_month), last_month + 1)
    month_begin = _month_start(corr_month)
    month_end = np.minimum(_month_start(corr_month + 1) - 1, w1)
    corr_day = month_begin + np.floor(rng.random(n_crn) * (month_end - month_begin + 1)).astype(
        np.int64)
    fix = np.flatnonzero(corrected)
    rec_inst = np.concatenate([rec_inst, crn_first_inst[fix]])
    rec_month = np.concatenate([rec_month, corr_month[fix]])
    rec_day = np.concatenate([rec_day, corr_day[fix]])
    # One record per event and month: the latest change in the month.
    order = np.lexsort((rec_day, rec_month, rec_inst))
    rec_inst, rec_month, rec_day = rec_inst[order], rec_month[order], rec_day[order]
    last = np.ones(len(rec_inst), dtype=bool)
    last[:-1] = (rec_inst[1:] != rec_inst[:-1]) | (rec_month[1:] != rec_month[:-1])
    rec_inst, rec_month, rec_day = rec_inst[last], rec_month[last], rec_day[last]

    # ---- record fields ---------------------------------------------------------------------
    rec_crn = inst_crn[rec_inst]
    rec_ev = inst_event[rec_inst]
    crn_key = np.argsort(np.argsort(crn.astype("U7"), kind="stable"), kind="stable")
    order = np.lexsort((event_number[rec_inst], crn_key[rec_crn], rec_month))
    rec_inst, rec_month, rec_day = rec_inst[order], rec_month[order], rec_day[order]
    rec_crn, rec_ev = rec_crn[order], rec_ev[order]
    n_rec = len(rec_inst)
    asof = np.minimum(_month_start(rec_month + 1) - 1, w1)

    stype = sup["supervision_type"][rec_ev]
    e_start, e_plan = sup["start_date"][rec_ev], sup["planned_end_date"][rec_ev]
    e_end, e_breach = sup["end_date"][rec_ev], sup["breach_date"][rec_ev]
    ended = (e_end != NONE) & (e_end <= asof)
    breached = (e_breach != NONE) & (e_breach <= asof)
    reason = np.where(stype == "licence", "LE", np.where(e_breach != NONE, "CB", "CM"))
    reason = np.where(ended, reason, None).astype(object)
    code = np.array([SUPERVISION_CODES[t] for t in stype], dtype=object)

    # Per source event: unpaid work hours (7.5-hour days) and the region's delivery unit.
    ev_type = sup["supervision_type"]
    upw = np.where((ev_type != "licence") & (rng.random(n_ev) < UPW_SHARE),
                   rng.integers(6, 41, n_ev) * 75, 0)  # tenths of an hour: 45.0 - 300.0
    region = np.array([REGION_CODES.get(x, "UNK") for x in sup["region"]], dtype=object)
    pdu_no = rng.integers(1, PDUS_PER_REGION + 1, n_ev)
    pdu = np.array([f"{a}P{b:02d}" for a, b in zip(region, pdu_no)], dtype=object)
    months = np.round((sup["planned_end_date"] - sup["start_date"]) / DAYS_PER_MONTH)
    months = np.clip(months, 0, 999).astype(np.int64)
    risk = persons["risk_score"][crn_person]
    ogrs = np.clip(np.round(10_000 * (1 - np.exp(-OGRS_RATE * risk))), 0, 9_999).astype(np.int64)

    pre = corrected[rec_crn] & (rec_month < corr_month[rec_crn])
    # Ethnicity is held on the offender (the CRN), so all of a CRN's records carry one code;
    # a person's second CRN is recorded afresh, as a prison row is (see ethnicity.py).
    race = ethnicity.recorded_codes(persons["person_id"][crn_person],
                                    persons["ethnicity"][crn_person],
                                    ethnicity.text_keys(crn, "probation"))
    columns = {
        "record_type": np.full(n_rec, "EV", dtype=object),
        "crn": crn[rec_crn],
        "event_number": event_number[rec_inst],
        "surname": np.where(pre, wrong_surname[rec_crn], surname[rec_crn]),
        "forenames": forenames[rec_crn],
        "date_of_birth": dob_int[rec_crn],
        "sex": idn["sex"][rec_crn],
        "pnc_id": idn["pnc_id"][rec_crn],
        "cro_number": idn["cro_number"][rec_crn],
        "supervision_type": code,
        "start_date": _yyyymmdd(e_start),
        "planned_end_date": _yyyymmdd(e_plan),
        "termination_date": _yyyymmdd(np.where(ended, e_end, NONE)),
        "termination_reason": reason,
        "breach_date": _yyyymmdd(np.where(breached, e_breach, NONE)),
        "region_code": region[rec_ev],
        "pdu_code": pdu[rec_ev],
        "order_length_months": months[rec_ev],
        "upw_hours_ordered": upw[rec_ev],
        "ogrs_score": ogrs[rec_crn],
        "last_updated_date": _yyyymmdd(rec_day),
        "extract_date": _yyyymmdd(asof),
        "ethnic_origin": race[rec_crn],
    }
    blob = memoryview(encode_records(_integer_layout(book), columns))
    length = book.record_length
    bounds = np.searchsorted(rec_month, np.arange(first_month, last_month + 2))
    for k, month in enumerate(range(first_month, last_month + 1)):
        (out / file_name(month)).write_bytes(blob[bounds[k] * length:bounds[k + 1] * length])

    keep = np.zeros(n_crn, dtype=bool)
    keep[rec_crn] = True
    return pa.table({
        "system": pa.array(np.full(int(keep.sum()), SYSTEM, dtype=object), pa.string()),
        "record_id": pa.array(crn[keep], pa.string()),
        "person_id": pa.array(persons["person_id"][crn_person[keep]], pa.string()),
        "mess": pa.array(labels[keep], pa.string()),
        "other_person_id": pa.array(other_person_ids(tables, idn)[keep], pa.string()),
    })
