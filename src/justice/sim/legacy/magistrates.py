"""Magistrates' courts case system (modelled on HMCTS Libra): daily CSV result files.

Layout
------
``magistrates/YYYY-MM/libra_YYYYMMDD.csv``: one file per day on which at least one case was
created or changed (the real system sends a file every day; the files are grouped into monthly
folders so no folder holds more than 31). Files are Windows-1252 (``cp1252``) text with CRLF
line ends, a header line, comma separated, minimal double-quote quoting. A character that
Windows-1252 cannot hold (such as U+FFFD left by an earlier mis-decoding) is written as ``?``,
as a lossy export would. Dates are ``dd/mm/yyyy``; names are UPPER CASE.

One row per defendant-offence. A case's rows are written to the file of every day the case
record was created or changed:

* the day the case is received (its first listing): identity and offence columns, outcome
  columns empty, ``Next Hearing Date`` the next listing;
* the day it is completed: the same rows again in full, with plea, verdict and disposal
  filled. A case completed at its first hearing appears once, already completed;
* for a record corrected later (``late_correction``) the day of the correction: the rows
  re-sent with the corrected name or date of birth. Earlier files keep the wrong value.

The latest row for a (``Defendant ID``, ``Off Seq``) is the current state of that offence.

Keys
----
``Defendant ID`` (``D`` + 9 digits) is the person-bearing record key: the system keeps one
defendant record per case, so a person with five cases has five defendant ids. ``Case No.``
is ``LB`` + court code + a 7-digit serial numbered in order of receipt within the court; cases
brought by a written charge or Single Justice Procedure notice (the one-off summary cases,
``sim/one_offs.py``) are numbered at each court in a block of their own from 5000001. Neither
is the simulator's own case id.

The one-off summary cases (speeding, no insurance, TV licence and the like, most of the
magistrates' records) are written after the careers' cases, a year of receipts at a time, into
the same daily files: one offence each, no PNC ID or CRO number (not recordable), the charge date
the day the notice was issued, and a defendant convicted in absence (the notice not answered)
has an empty plea and the verdict ``GUILTY``. Their people have per-record identity mess only
(they have one record each: no aliases, borrowed identities or consistent false dates of birth). ``PNC ID`` is given only for cases with a recordable offence
(and then often missing); ``CRO No`` sometimes.

Columns (header spelled exactly so, quirks included: ``Postcode`` has a trailing space)::

    Case No., Court Code, COURT_NAME, Defendant ID, Defendant Surname, DEF_FORENAME (forename and
    middle names), D.O.B, Sex (M/F), Postcode , PNC ID, CRO No, Off Seq, Offence Code,
    Offence Wording, Offence Date, Charge Date, First Hearing Date, Plea (G/NG), Verdict,
    Disposal, Fine Amount (pounds, 2 dp), Custody Length, Custody Unit (D days / M months),
    Next Hearing Date

Mess (answer-key labels)
------------------------
Identity mess from :func:`justice.sim.legacy.identity.messy_identity` on each defendant
record; ``duplicate_row`` (one of the record's lines written twice in the same file);
``invalid_date`` (one date field of one line is an impossible date such as ``31/02/2019`` or
``00/00/0000``); ``late_correction`` (see above); ``whitespace`` and ``encoding_error`` on
the surname.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from justice.errors import SimulationError
from justice.sim import mess, one_offs
from justice.sim import reference as ref
from justice.sim.arrays import composite, group_starts, sorted_unique
from justice.sim.courts import NONE
from justice.sim.legacy.identity import messy_identity, person_rows

SYSTEM = "magistrates"
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
HEADER = [
    "Case No.", "Court Code", "COURT_NAME", "Defendant ID", "Defendant Surname", "DEF_FORENAME",
    "D.O.B", "Sex", "Postcode ", "PNC ID", "CRO No", "Off Seq", "Offence Code",
    "Offence Wording", "Offence Date", "Charge Date", "First Hearing Date", "Plea", "Verdict",
    "Disposal", "Fine Amount", "Custody Length", "Custody Unit", "Next Hearing Date",
]  # fmt: skip
_COL = {name: i for i, name in enumerate(HEADER)}
# Rows formatted at once; bounds memory at a million persons.
CHUNK_ROWS = 250_000
# A late correction arrives 1..MAX_CORRECTION_DAYS days after the record first appears.
MAX_CORRECTION_DAYS = 60
# Impossible (day, month) pairs keyed into free-text date fields.
_BAD_DAY_MONTH = ((31, 2), (30, 2), (31, 4), (31, 6), (31, 9), (31, 11), (32, 1), (0, 0))
_ID_MULT = 2_654_435_761  # a prime: i -> i * _ID_MULT mod span is a bijection for our spans

_DISPOSAL_TEXT = {
    "fine": "FINE",
    "discharge": "CONDITIONAL DISCHARGE",
    "community_order": "COMMUNITY ORDER",
    "suspended_sentence": "SUSPENDED SENTENCE ORDER",
    "custody": "IMPRISONMENT",
    "no_separate_penalty": "NO SEPARATE PENALTY",
    "caution": "",
}


# --------------------------------------------------------------------------------------------
# Helpers shared with the other legacy emitters (crown.py imports these)
# --------------------------------------------------------------------------------------------


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01 of a date."""
    return d.toordinal() - EPOCH_ORDINAL


def format_days(days: np.ndarray, fmt: str) -> np.ndarray:
    """Day numbers as strings in strftime format ``fmt``; NONE (or NaT as int64) -> ""."""
    days = np.asarray(days, dtype=np.int64)
    uniq, inv = np.unique(days, return_inverse=True)
    strs = np.array(
        ["" if u == NONE else dt.date.fromordinal(u + EPOCH_ORDINAL).strftime(fmt)
         for u in uniq.tolist()] + [""],
        dtype=object,
    )[:-1]
    return strs[inv.reshape(-1)] if days.size else np.zeros(0, dtype=object)


def dob_days(dob: np.ndarray) -> np.ndarray:
    """datetime64[D] dates of birth (NaT = missing) as day numbers with the NONE sentinel."""
    out = np.asarray(dob, dtype="datetime64[D]").astype(np.int64)
    out[np.isnat(np.asarray(dob, dtype="datetime64[D]"))] = NONE
    return out


def scrambled_numbers(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """``n`` distinct numbers in [low, high) that look random: a bijection of 0..n-1."""
    return scrambled(np.arange(n, dtype=np.int64), int(rng.integers(0, high - low)), low, high)


def scrambled(positions: np.ndarray, offset: int, low: int, high: int) -> np.ndarray:
    """The numbers in [low, high) of `positions` under one scrambling (`offset`, drawn once):
    distinct positions below ``high - low`` give distinct numbers."""
    span = high - low
    if len(positions) and int(np.max(positions)) >= span:
        raise ValueError(f"cannot make {int(np.max(positions)) + 1} distinct numbers in a span of {span}")
    return (np.asarray(positions, np.int64) * _ID_MULT + offset) % span + low








def record_events(
    rng: np.random.Generator,
    rec: np.ndarray,
    day: np.ndarray,
    n_records: int,
    start: int,
    end: int,
    late_rate: float,
) -> dict[str, np.ndarray]:
    """The days each record is written (created/changed) inside the window, plus corrections.

    ``rec``/``day``: candidate events (may repeat, may fall outside [start, end]). A share
    ``late_rate`` of the records that appear before the last day get a late correction
    1..MAX_CORRECTION_DAYS days after their first appearance (capped at ``end``); events
    before the correction carry the wrong identity (``wrong``).
    Returns arrays sorted by (record, day): ``rec``, ``day``, ``wrong``; and per record
    ``kept`` (appears at all), ``late`` (late-corrected) and ``correction_day``.
    """
    rec, day = np.asarray(rec, np.int64), np.asarray(day, np.int64)
    ok = (day != NONE) & (day >= start) & (day <= end)
    keys = sorted_unique(composite(rec[ok], day[ok]))
    ev_rec = keys >> 32
    first = np.full(n_records, NONE, dtype=np.int64)
    kept = np.zeros(n_records, bool)
    kept[ev_rec] = True
    # keys are sorted, so the first key of a record holds its first day
    starts = np.searchsorted(ev_rec, np.arange(n_records))
    first[kept] = (keys[starts[kept]] & ((1 << 32) - 1)) - (1 << 31)
    chosen = rng.random(n_records) < late_rate
    delay = rng.integers(1, MAX_CORRECTION_DAYS + 1, n_records)
    late = chosen & kept & (first < end)
    corr = np.full(n_records, NONE, dtype=np.int64)
    corr[late] = np.minimum(first[late] + delay[late], end)
    extra = np.flatnonzero(late)
    keys = sorted_unique(np.concatenate([keys, composite(extra, corr[extra])]))
    ev_rec = keys >> 32
    ev_day = (keys & ((1 << 32) - 1)) - (1 << 31)
    wrong = late[ev_rec] & (ev_day < corr[ev_rec])
    return {"rec": ev_rec, "day": ev_day, "wrong": wrong, "kept": kept, "late": late,
            "correction_day": corr}


def wrong_identity(
    rng: np.random.Generator, surname: np.ndarray, dob: np.ndarray, late: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The first, wrong version of late-corrected records: a surname typo or a shifted dob."""
    use_dob = (rng.random(len(late)) < 0.4) & late & ~np.isnat(dob)
    new_dob, _ = mess.dob_shift(rng, dob, use_dob)
    new_sur, _ = mess.typo(rng, surname, late & ~use_dob)
    return new_sur, new_dob


def pick_rows(
    rng: np.random.Generator, row_rec: np.ndarray, n_records: int, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """One row for each of a share ``rate`` of the records that have rows.

    Returns (per-record mask of chosen records, chosen row indices)."""
    chosen = rng.random(n_records) < rate
    u = rng.random(n_records)
    order = np.argsort(row_rec, kind="stable")
    starts, counts = group_starts(row_rec[order], n_records)
    chosen &= counts > 0
    pick = starts + np.floor(u * counts).astype(np.int64)
    return chosen, order[pick[chosen]]


def bad_dates(rng: np.random.Generator, years: np.ndarray, iso: bool) -> np.ndarray:
    """Impossible dates in the given years: ``31/02/yyyy`` (or ISO ``yyyy-02-31``) style."""
    k = rng.integers(0, len(_BAD_DAY_MONTH), len(years))
    out = []
    for y, j in zip(np.asarray(years).tolist(), k.tolist(), strict=True):
        d, m = _BAD_DAY_MONTH[j]
        y = 0 if (d, m) == (0, 0) else y
        out.append(f"{y:04d}-{m:02d}-{d:02d}" if iso else f"{d:02d}/{m:02d}/{y:04d}")
    return np.array(out + [""], dtype=object)[:-1]


def year_of(days: np.ndarray) -> np.ndarray:
    """Calendar year of day numbers (NONE -> 1970, only used where a year is needed)."""
    d = np.where(np.asarray(days) == NONE, 0, days).astype("datetime64[D]")
    return d.astype("datetime64[Y]").astype(np.int64) + 1970


def add_labels(labels: np.ndarray, kind: str, mask: np.ndarray) -> np.ndarray:
    """Labels with ``kind`` added (sorted, comma-separated) where ``mask``."""
    out = labels.copy()
    for i in np.flatnonzero(mask).tolist():
        out[i] = ",".join(sorted(set(filter(None, out[i].split(","))) | {kind}))
    return out


def drop_labels(labels: np.ndarray, kinds: set[str], mask: np.ndarray) -> np.ndarray:
    """Labels with ``kinds`` removed where ``mask``."""
    out = labels.copy()
    for i in np.flatnonzero(mask).tolist():
        if out[i]:
            out[i] = ",".join(k for k in out[i].split(",") if k not in kinds)
    return out


def answer_key(system: str, record_id: np.ndarray, person_id: np.ndarray,
               labels: np.ndarray, other_person_id: np.ndarray | None = None) -> pa.Table:
    """The answer-key rows of one system, sorted by record id; `other_person_id` is the person
    whose identity or identifier a record carries by mistake or deceit (None if none)."""
    order = np.argsort(np.asarray(record_id, dtype=str), kind="stable")
    other = (np.full(len(order), None, dtype=object) if other_person_id is None
             else np.asarray(other_person_id, dtype=object))
    return pa.table({
        "system": pa.array([system] * len(order), pa.string()),
        "record_id": pa.array(np.asarray(record_id, dtype=object)[order].tolist(), pa.string()),
        "person_id": pa.array(np.asarray(person_id, dtype=object)[order].tolist(), pa.string()),
        "mess": pa.array(np.asarray(labels, dtype=object)[order].tolist(), pa.string()),
        "other_person_id": pa.array(other[order].tolist(), pa.string()),
    })


def other_person_ids(tables: dict, messy: dict) -> np.ndarray:
    """Person ids of `messy["_other_person"]` (persons rows, -1 for none) as an object array."""
    other = messy["_other_person"]
    pid = tables["persons"]["person_id"]
    return np.where(other >= 0, pid[np.maximum(other, 0)], None).astype(object)


def identity_options(tables: dict, system: str, record_day: np.ndarray) -> dict:
    """The keyword arguments that switch on person-level mess in `messy_identity`."""
    return {"traits": tables.get("_traits"), "persons": tables["persons"], "system": system,
            "record_day": record_day}


def lookup(keys: np.ndarray, table_keys: np.ndarray) -> np.ndarray:
    """Position of each of ``keys`` (str, None allowed) in ``table_keys``; -1 if absent."""
    pos = {k: i for i, k in enumerate(np.asarray(table_keys, dtype=object).tolist())}
    pos.pop(None, None)
    keys = np.asarray(keys, dtype=object)
    return np.fromiter((pos.get(k, -1) for k in keys.tolist()), np.int64, len(keys))


def text(values: np.ndarray) -> np.ndarray:
    """None -> "" in an object array."""
    out = np.asarray(values, dtype=object).copy()
    out[np.equal(out, None)] = ""
    return out


def custody_terms(tables: dict, offs: dict, case_ids: np.ndarray) -> np.ndarray:
    """Custody months per offence; a suspended sentence's term comes from its case disposal."""
    months = offs["custody_months"].astype(float).copy()
    d = tables["disposals"]
    sso = d["disposal_type"] == "suspended_sentence"
    pos = lookup(case_ids, d["case_id"][sso])
    need = (offs["disposal"] == "suspended_sentence") & np.isnan(months) & (pos >= 0)
    months[need] = d["custody_months"][sso][pos[need]]
    return months


def quote(values: np.ndarray) -> np.ndarray:
    """CSV minimal quoting, as the csv module does: quote a field holding , " CR or LF."""
    out = np.asarray(values, dtype=object).copy()
    for i, v in enumerate(out.tolist()):
        if "," in v or '"' in v or "\r" in v or "\n" in v:
            out[i] = '"' + v.replace('"', '""') + '"'
    return out


def join_cols(cols: list[np.ndarray]) -> np.ndarray:
    """Element-wise ``",".join`` of equal-length object arrays of str."""
    joined = [",".join(t) for t in zip(*(np.asarray(c, dtype=object).tolist() for c in cols),
                                        strict=True)]
    return np.array(joined + [""], dtype=object)[:-1]


def month_folder(out: Path, day: int) -> tuple[Path, str]:
    d = dt.date.fromordinal(day + EPOCH_ORDINAL)
    folder = out / f"{d.year:04d}-{d.month:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder, f"{d.year:04d}{d.month:02d}{d.day:02d}"


def day_chunks(days: np.ndarray, max_items: int) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
    """Split a day-sorted array into chunks of whole days: (start, end, [(day, a, b), ...])."""
    if not len(days):
        return []
    cuts = np.flatnonzero(np.diff(days)) + 1
    bounds = np.concatenate([[0], cuts, [len(days)]]).tolist()
    chunks, cur, cur_start = [], [], 0
    for a, b in itertools.pairwise(bounds):
        if cur and b - cur_start > max_items:
            chunks.append((cur_start, a, cur))
            cur, cur_start = [], a
        cur.append((int(days[a]), a, b))
    chunks.append((cur_start, len(days), cur))
    return chunks


# --------------------------------------------------------------------------------------------
# The magistrates' extract
# --------------------------------------------------------------------------------------------


def _outcome_columns(rng, offs, case_outcome, months):
    """Per offence: plea, verdict, disposal, fine, custody length and unit once completed."""
    n = len(offs["offence_id"])
    proven = offs["proven"].astype(bool)
    disposal = offs["disposal"]
    oc = case_outcome
    plea = np.full(n, "", dtype=object)
    verdict = np.full(n, "", dtype=object)
    guilty_plea = (oc == "convicted_guilty_plea") | (oc == "committed_for_sentence")
    tried = (oc == "convicted_at_trial") | (oc == "acquitted")
    plea[guilty_plea & proven] = "G"
    plea[(guilty_plea & ~proven) | tried] = "NG"
    verdict[(oc == "convicted_guilty_plea") & proven] = "GUILTY"
    verdict[(oc == "convicted_guilty_plea") & ~proven] = "WITHDRAWN"
    verdict[(oc == "convicted_at_trial") & proven] = "GUILTY"
    # A notice not answered: proved in the defendant's absence, with no plea (one-off cases).
    verdict[(oc == "convicted_in_absence") & proven] = "GUILTY"
    verdict[(oc == "convicted_at_trial") & ~proven] = "DISMISSED"
    verdict[oc == "acquitted"] = "DISMISSED"
    verdict[oc == "withdrawn"] = "WITHDRAWN"
    verdict[oc == "sent_to_crown"] = "SENT TO CROWN COURT"
    verdict[(oc == "committed_for_sentence") & proven] = "COMMITTED FOR SENTENCE"
    verdict[(oc == "committed_for_sentence") & ~proven] = "WITHDRAWN"
    sentenced_here = ((oc == "convicted_guilty_plea") | (oc == "convicted_at_trial")
                      | (oc == "convicted_in_absence")) & proven
    disp = np.array([_DISPOSAL_TEXT.get(d, "") if isinstance(d, str) else "" for d in disposal]
                    + [""], dtype=object)[:-1]
    disp[~sentenced_here] = ""
    # Fines are not in the truth tables: a typical magistrates' fine, to the nearest 5 pounds.
    amount = np.maximum(20, np.round(180 * np.exp(rng.normal(0, 0.7, n)) / 5) * 5)
    fine = np.full(n, "", dtype=object)
    is_fine = sentenced_here & (disposal == "fine")
    fine[is_fine] = np.array([f"{a:.2f}" for a in amount[is_fine].tolist()] + [""],
                             dtype=object)[:-1]
    has_len = sentenced_here & ((disposal == "custody") | (disposal == "suspended_sentence")) \
        & ~np.isnan(months)
    whole = np.abs(months - np.round(months)) < 0.01
    length = np.full(n, "", dtype=object)
    unit = np.full(n, "", dtype=object)
    as_m = has_len & whole
    as_d = has_len & ~whole
    length[as_m] = np.round(months[as_m]).astype(np.int64).astype(str).astype(object)
    unit[as_m] = "M"
    length[as_d] = np.round(months[as_d] * 30.4375).astype(np.int64).astype(str).astype(object)
    unit[as_d] = "D"
    return plea, verdict, disp, fine, length, unit


def cases_in_receipt_order(tables: dict, court_type: str) -> dict[str, np.ndarray]:
    """One court type's truth cases, in order of receipt (then of the truth table)."""
    cc = tables["court_cases"]
    sel = np.flatnonzero(cc["court_type"] == court_type)
    order = sel[np.lexsort((sel, cc["receipt_date"][sel]))]
    return {k: v[order] for k, v in cc.items()}


# Defendant ids are ``D`` and a number from this range, a scrambled bijection of the records'
# positions (careers' cases first, then the one-off summary cases), so none repeats.
DEF_ID_LOW, DEF_ID_HIGH = 100_000_000, 1_000_000_000
# Cases brought by a written charge or Single Justice Procedure notice (the one-off summary
# cases) are numbered at each court in a block of their own, from this serial.
POSTAL_SERIAL_FROM = 5_000_001


def _serials(court_code: np.ndarray, first: dict[str, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each record's serial within its court, in the given order, and its rank by (court,
    order). Serials run from 1 or, with `first`, from `first[court]` (POSTAL_SERIAL_FROM for a
    court not in it yet), and `first` is moved past the ones given."""
    n = len(court_code)
    by_court = np.lexsort((np.arange(n), court_code))
    codes_sorted = court_code[by_court]
    c_starts = np.flatnonzero(np.r_[True, codes_sorted[1:] != codes_sorted[:-1]]) if n else np.zeros(0, np.int64)
    c_first = np.repeat(c_starts, np.diff(np.r_[c_starts, n]))
    serial = np.empty(n, np.int64)
    serial[by_court] = np.arange(n) - c_first + 1
    if first is not None:
        codes, counts = np.unique(court_code, return_counts=True)
        base = {c: first.get(c, POSTAL_SERIAL_FROM) for c in codes.tolist()}
        serial += np.array([base[c] for c in court_code.tolist()], dtype=np.int64) - 1
        for c, k in zip(codes.tolist(), counts.tolist(), strict=True):
            first[c] = base[c] + k
    rank = np.empty(n, np.int64)
    rank[by_court] = np.arange(n)
    return serial, rank


def emit(tables: dict, rng: np.random.Generator, rates: dict, out: Path, params) -> pa.Table:
    """Write the daily Libra CSV files under ``out``; return the answer key (one row per
    defendant id). The careers' cases first, then the one-off summary cases (sim/one_offs.py)
    a year of receipts at a time, appended to the same daily files."""
    out = Path(out)
    start, end = day_number(params.start), day_number(params.end)
    # Records (defendant-in-case) in order of receipt, then of the truth table.
    case = cases_in_receipt_order(tables, "magistrates")
    n = len(case["case_id"])
    serial, rank = _serials(case["court_code"].astype(str))
    id_offset = int(rng.integers(0, DEF_ID_HIGH - DEF_ID_LOW))
    key = _write_cases(tables, case, serial, rank, _def_ids(np.arange(n), id_offset), rng, rates, out,
                       start, end, append=False)
    del case, serial, rank
    one_off = tables.get("one_off_cases")
    # Held in memory, or (simulate_to, at scale) only in truth's one_off_cases.parquet, read back
    # a year at a time so that they are not held beside the careers' extract.
    on_disk = isinstance(one_off, Path)
    if on_disk:
        receipts = pq.read_table(one_off, columns=["receipt_date"]).column(0).cast(pa.int32()).to_numpy()
    elif one_off is not None:
        receipts = one_off["receipt_date"]
    if one_off is None or not len(receipts):
        return key
    keys = [key]
    years = year_of(receipts)
    next_serial: dict[str, int] = {}
    for year in np.unique(years).tolist():
        lo, hi = (int(x) for x in np.searchsorted(years, [year, year + 1]))  # sorted by receipt
        if on_disk:
            part, first = one_offs.read_truth(one_off, int(receipts[lo]), int(receipts[hi - 1]) + 1), lo
            if len(part["case_id"]) != hi - lo:
                raise SimulationError(f"{one_off}: {len(part['case_id'])} one-off cases received in {year}, "
                                      f"{hi - lo} expected: the file is not in order of receipt, as "
                                      "the truth writer writes it")
        else:
            part, first = one_off, 0
        sub = _one_off_world(tables, part, lo, hi, first)
        del part
        case = cases_in_receipt_order(sub, "magistrates")
        serial, rank = _serials(case["court_code"].astype(str), next_serial)
        def_id = _def_ids(n + np.arange(lo, hi), id_offset)
        keys.append(_write_cases(sub, case, serial, rank, def_id, rng, rates, out, start, end, append=True))
    return pa.concat_tables(keys)


def _def_ids(positions: np.ndarray, offset: int) -> np.ndarray:
    """``D`` and nine digits for records at `positions` (distinct positions, distinct ids)."""
    return np.char.add("D", scrambled(positions, offset, DEF_ID_LOW, DEF_ID_HIGH).astype(str)).astype(object)


def _one_off_world(tables: dict, one_off: dict, lo: int, hi: int, first: int = 0) -> dict:
    """The one-off summary cases lo..hi-1 (`one_off`'s row 0 being case `first`) as the truth
    tables `_write_cases` reads: their people (identity only: no identifiers, no person-level
    traits, so per-record mess only), cases, offences and hearings, and the courts."""
    rows = one_offs.truth_rows(one_off, lo, hi, first)
    persons = dict(rows["persons"])
    k = len(persons["person_id"])
    for col in ("pnc_id", "cro_number", "prison_number", "crn"):
        persons[col] = np.full(k, None, dtype=object)
    cases = dict(rows["court_cases"])
    cases["related_case_id"] = np.full(len(cases["case_id"]), None, dtype=object)
    return {"persons": persons, "court_cases": cases, "offences": rows["offences"],
            "hearings": rows["hearings"], "disposals": rows["disposals"], "courts": tables["courts"]}


def _write_cases(tables: dict, case: dict, serial: np.ndarray, rank: np.ndarray, def_id: np.ndarray,
                 rng: np.random.Generator, rates: dict, out: Path, start: int, end: int, *,
                 append: bool) -> pa.Table:
    """Write the Libra lines of `case` (magistrates' truth cases in order of receipt) into the
    daily files, appending to a day's file when `append` and it exists; return the answer key."""
    cc = tables["court_cases"]
    n = len(case["case_id"])
    receipt, completion = case["receipt_date"], case["completion_date"]
    court_code = case["court_code"].astype(str)
    case_no = np.char.add(np.char.add("LB", court_code),
                          np.char.zfill(serial.astype(str), 7)).astype(object)
    courts = tables["courts"]
    court_name = dict(zip(courts["court_code"].tolist(), courts["court_name"].tolist(),
                          strict=True))
    court_name_col = np.array([court_name[c].upper() for c in court_code.tolist()] + [""],
                              dtype=object)[:-1]

    # Offences of these cases, grouped by record.
    offs_t = tables["offences"]
    o_rec = lookup(offs_t["case_id"], case["case_id"])
    o_sel = np.flatnonzero(o_rec >= 0)
    o_sel = o_sel[np.lexsort((o_sel, o_rec[o_sel]))]
    offs = {k: v[o_sel] for k, v in offs_t.items()}
    o_rec = o_rec[o_sel]
    o_starts, o_counts = group_starts(o_rec, n)
    off_seq = (np.arange(len(o_rec)) - o_starts[o_rec] + 1).astype(str).astype(object)
    off_ref = ref.offences()
    wording_of = dict(zip(off_ref.code.tolist(), off_ref.description.tolist(), strict=True))
    wording = np.array([wording_of.get(c, "") for c in offs["offence_code"].tolist()] + [""],
                       dtype=object)[:-1]
    recordable = np.zeros(n, bool)
    recordable[o_rec[offs["recordable"].astype(bool)]] = True
    plea, verdict, disp, fine, cust_len, cust_unit = _outcome_columns(
        rng, offs, case["outcome"][o_rec], custody_terms(tables, offs, offs["case_id"]))

    # Identity of each record, as this system holds it.
    rows = person_rows(tables, case["person_id"])
    messy, labels = messy_identity(rng, rows, rates, surname_pool=tables["persons"]["surname"],
                                   ids=("pnc_id", "cro_number"), upper_case=True,
                                   **identity_options(tables, SYSTEM, receipt))
    # Only cases with a recordable offence carry police identifiers at all.
    for col in ("pnc_id", "cro_number"):
        messy[col] = np.where(recordable, messy[col], None)
    labels = drop_labels(labels, {"pnc_missing", "pnc_bad_check", "cro_missing"}, ~recordable)

    # When each record is written: receipt, completion, late correction.
    ev = record_events(rng, np.r_[np.arange(n), np.arange(n)], np.r_[receipt, completion],
                       n, start, end, rates["late_correction"])
    late = ev["late"]
    labels = add_labels(labels, "late_correction", late)
    wrong_sur, wrong_dob = wrong_identity(rng, messy["surname"], messy["dob"], late)

    surname = text(messy["surname"])
    forenames = np.array([" ".join(x for x in (f, m) if x) for f, m in
                          zip(messy["forename"].tolist(), messy["middle_name"].tolist(),
                              strict=True)] + [""], dtype=object)[:-1]
    dob_s = format_days(dob_days(messy["dob"]), "%d/%m/%Y")
    w_dob_s = format_days(dob_days(wrong_dob), "%d/%m/%Y")
    w_sur = text(wrong_sur)
    sex = text(messy["sex"])
    postcode = text(messy["postcode"])
    pnc, cro = text(messy["pnc_id"]), text(messy["cro_number"])
    first_hearing = format_days(receipt, "%d/%m/%Y")
    off_date_s = format_days(offs["offence_date"], "%d/%m/%Y")
    charge_s = format_days(offs["charge_date"], "%d/%m/%Y")

    # Next listing: the next hearing after the day, or the Crown Court date once sent there.
    h = tables["hearings"]
    h_rec = lookup(h["case_id"], case["case_id"])
    hk = np.sort(composite(h_rec[h_rec >= 0], h["hearing_date"][h_rec >= 0]))
    # (an appeal's related case is the case appealed against, not one sent up)
    crown = np.flatnonzero((cc["court_type"] == "crown") & (cc["case_type"] != "appeal"))
    crown_of = lookup(cc["related_case_id"][crown], case["case_id"])
    crown_date = np.full(n, NONE, dtype=np.int64)
    ok = crown_of >= 0
    crown_date[crown_of[ok]] = cc["receipt_date"][crown][ok]
    ev_rec, ev_day = ev["rec"], ev["day"]
    done = (completion[ev_rec] != NONE) & (completion[ev_rec] <= ev_day)
    query = composite(ev_rec, ev_day + 1)
    pos = np.minimum(np.searchsorted(hk, query), max(len(hk) - 1, 0))
    nxt_h = np.full(len(ev_rec), NONE, dtype=np.int64)
    if len(hk):
        same = ((hk[pos] >> 32) == ev_rec) & (hk[pos] >= query)
        nxt_h[same] = ((hk[pos] & ((1 << 32) - 1)) - (1 << 31))[same]
    open_next = np.where((nxt_h == NONE) & (completion[ev_rec] != NONE), completion[ev_rec], nxt_h)
    ev_next = np.where(done, crown_date[ev_rec], open_next)

    # Rows: every event of a record times its offences.
    per_ev = o_counts[ev_rec]
    row_ev = np.repeat(np.arange(len(ev_rec)), per_ev)
    row_off = o_starts[ev_rec][row_ev] + (np.arange(len(row_ev)) - np.repeat(
        np.cumsum(per_ev) - per_ev, per_ev))
    row_rec = ev_rec[row_ev]

    # Row-level mess.
    dup_rec, dup_rows = pick_rows(rng, row_rec, n, rates["duplicate_row"])
    labels = add_labels(labels, "duplicate_row", dup_rec)
    bad_rec, bad_rows = pick_rows(rng, row_rec, n, rates["invalid_date"])
    labels = add_labels(labels, "invalid_date", bad_rec)
    field = rng.integers(0, 3, len(bad_rows))  # 0 dob, 1 offence date, 2 charge date
    b_rec, b_off = row_rec[bad_rows], row_off[bad_rows]
    b_wrong = ev["wrong"][row_ev[bad_rows]]
    dob_now = np.where(b_wrong, dob_days(wrong_dob)[b_rec], dob_days(messy["dob"])[b_rec])
    field[(field == 0) & (dob_now == NONE)] = 1
    field[(field == 2) & (offs["charge_date"][b_off] == NONE)] = 1
    src = np.select([field == 0, field == 2], [dob_now, offs["charge_date"][b_off]],
                    offs["offence_date"][b_off])
    bad_val = bad_dates(rng, year_of(src), iso=False)
    bad_col = np.array([_COL["D.O.B"], _COL["Offence Date"], _COL["Charge Date"]])[field]

    # Output order: by day, then case number, then offence; duplicates written twice in a row.
    row_day = ev_day[row_ev]
    perm = np.lexsort((row_off, rank[row_rec], row_day))
    dup = np.zeros(len(row_rec), np.int64)
    dup[dup_rows] = 1
    out_rows = np.repeat(perm, 1 + dup[perm])
    bad_of_row = np.full(len(row_rec), -1, np.int64)
    bad_of_row[bad_rows] = np.arange(len(bad_rows))

    # Lines are assembled from pre-joined segments: record part (right and wrong identity),
    # offence part, outcome part, next date. Text that may hold a comma or quote is quoted.
    court_q, wording_q = quote(court_name_col), quote(wording)
    rec_cols = [case_no, court_code.astype(object), court_q, def_id, quote(surname),
                quote(forenames), dob_s, sex, quote(postcode), quote(pnc), quote(cro)]
    rec_part = join_cols(rec_cols)
    rec_part_w = rec_part.copy()  # the wrong identity, for late-corrected records only
    rec_part_w[late] = join_cols([c[late] for c in rec_cols[:4]] + [quote(w_sur[late])]
                                 + [rec_cols[5][late], w_dob_s[late]]
                                 + [c[late] for c in rec_cols[7:]])
    off_part = join_cols([off_seq, offs["offence_code"], wording_q, off_date_s, charge_s])
    outcome_part = join_cols([plea, verdict, disp, fine, cust_len, cust_unit])
    no_outcome = "," * 5

    def fields(row: int) -> list[str]:
        """The 24 field values of construction row ``row`` (for the rare edited lines)."""
        r, o, e = row_rec[row], row_off[row], row_ev[row]
        wrong, comp = ev["wrong"][e], done[e]
        vals = [case_no[r], court_code[r], court_name_col[r], def_id[r],
                w_sur[r] if wrong else surname[r], forenames[r],
                w_dob_s[r] if wrong else dob_s[r], sex[r], postcode[r], pnc[r], cro[r],
                off_seq[o], offs["offence_code"][o], wording[o], off_date_s[o], charge_s[o],
                first_hearing[r]]
        vals += [c[o] if comp else "" for c in (plea, verdict, disp, fine, cust_len, cust_unit)]
        vals.append(format_days(ev_next[e:e + 1], "%d/%m/%Y")[0])
        return vals

    rp, rpw, op = rec_part.tolist(), rec_part_w.tolist(), off_part.tolist()
    fh, oc = first_hearing.tolist(), outcome_part.tolist()
    header_line = ",".join(quote(np.array(HEADER, dtype=object)).tolist()) + "\r\n"
    for s, e, days in day_chunks(row_day[out_rows], CHUNK_ROWS):
        idx = out_rows[s:e]
        r, o, ev_i = row_rec[idx], row_off[idx], row_ev[idx]
        wrong, comp = ev["wrong"][ev_i], done[ev_i]
        nxt = format_days(ev_next[ev_i], "%d/%m/%Y").tolist()
        lines = [
            f"{rpw[ri] if w else rp[ri]},{op[oi]},{fh[ri]},{oc[oi] if c else no_outcome},{x}\r\n"
            for ri, oi, w, c, x in zip(r.tolist(), o.tolist(), wrong.tolist(), comp.tolist(), nxt,
                                       strict=True)
        ]
        for j in np.flatnonzero(bad_of_row[idx] >= 0).tolist():
            b = bad_of_row[idx[j]]
            vals = fields(int(idx[j]))
            vals[bad_col[b]] = bad_val[b]
            lines[j] = ",".join(quote(np.array(vals, dtype=object)).tolist()) + "\r\n"
        for day, a, b in days:
            folder, stamp = month_folder(out, day)
            path = folder / f"libra_{stamp}.csv"
            more = append and path.exists()
            with open(path, "a" if more else "w", encoding="cp1252", errors="replace",
                      newline="") as f:
                f.write(("" if more else header_line) + "".join(lines[a - s:b - s]))

    kept = ev["kept"]
    return answer_key(SYSTEM, def_id[kept], case["person_id"][kept], labels[kept],
                      other_person_ids(tables, messy)[kept])
