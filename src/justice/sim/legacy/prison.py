"""The prison system (modelled on NOMIS): a relational database with NOMIS-like tables.

Where it goes
    By default a SQLite file ``nomis.sqlite`` in the system's folder (``DIR/legacy/prison/``).
    ``emit(..., db_url="postgresql+psycopg://user@host/db")`` writes to any database SQLAlchemy
    can reach instead, and no SQLite file is made. The NOMIS tables already in the target are
    dropped and re-created, so a re-run replaces the previous build; other tables are untouched.
    The DDL is ``nomis_ddl.sql`` (portable SQL). Names are unquoted: SQLite keeps them upper case,
    PostgreSQL folds them to lower case, and unquoted queries work on both.

Values
    Dates are SQL DATE (``YYYY-MM-DD`` text in SQLite), timestamps SQL TIMESTAMP
    (``YYYY-MM-DD HH:MM:SS`` text in SQLite). Every table has CREATE_DATETIME and
    MODIFY_DATETIME, derived from the simulated event's date and a time of day computed from the
    row's key (07:00-19:00), never from the wall clock: a row is created when its event happens
    and modified when it is closed or corrected (a release, an expiry, a hearing), so
    ``WHERE MODIFY_DATETIME > :last_extract`` extracts incrementally. MODIFY_DATETIME >=
    CREATE_DATETIME always; the identity of a row (its key) never changes.

Tables (parents first; keys and what a row is)
    AGENCY_LOCATIONS            AGY_LOC_ID. Establishments (AGENCY_LOCATION_TYPE INST, e.g. MDI),
                                courts (CRT, the court codes of the court systems) and OUT.
    AGENCY_INTERNAL_LOCATIONS   INTERNAL_LOCATION_ID. Wing > landing > cell hierarchy
                                (INTERNAL_LOCATION_TYPE WING/LAND/CELL, PARENT_INTERNAL_LOCATION_ID),
                                DESCRIPTION like ``MDI-A-1-012``; CAPACITY is 2 per cell (the
                                simulation never puts more than two in a cell), summed upwards.
    OFFENDERS                   OFFENDER_ID (the person-bearing record). OFFENDER_ID_DISPLAY is
                                the prison number (``A1234BC``), shared by a root row and its
                                aliases (and, rarely, reused on another person's root row).
                                Alias rows have ALIAS_OFFENDER_ID = their root row's
                                OFFENDER_ID and carry no bookings. Names upper case, BIRTH_DATE,
                                SEX_CODE M/F, RACE_CODE the ethnicity as recorded at that
                                row's reception (justice.sim.legacy.ethnicity: a 2011 census
                                code such as W1 or B2, NS not stated; a later row may differ).
    OFFENDER_IDENTIFIERS        (OFFENDER_ID, OFFENDER_ID_SEQ). IDENTIFIER_TYPE PNC or CRO, held
                                on root rows only and only when known.
    OFFENDER_BOOKINGS           OFFENDER_BOOK_ID, one per custody spell, under the OFFENDER_ID
                                the person was received under. BOOKING_NO, BOOKING_BEGIN_DATE,
                                BOOKING_END_DATE (null while in custody), ACTIVE_FLAG Y/N,
                                BOOKING_STATUS O/C, IN_OUT_STATUS IN/OUT, AGY_LOC_ID (current
                                establishment, OUT once released), LIVING_UNIT_ID (current cell).
    OFFENDER_EXTERNAL_MOVEMENTS (OFFENDER_BOOK_ID, MOVEMENT_SEQ). MOVEMENT_TYPE ADM (from the
                                court, or OUT for a recall), TRN (between establishments, one row
                                with FROM and TO) and REL (to OUT). MOVEMENT_REASON_CODE: ADM N
                                remand, I sentenced, L recall; TRN NOTR; REL BL (remand ended),
                                CR (sentence or recall served). ACTIVE_FLAG Y on a booking's
                                latest movement.
    OFFENDER_SENTENCES          (OFFENDER_BOOK_ID, SENTENCE_SEQ). The sentence a booking serves
                                (flattened from NOMIS's OFFENDER_SENTENCES and
                                OFFENDER_SENTENCE_TERMS), on every booking for a sentence passed
                                by the window's end (remand then sentenced, sentenced, recall).
                                SENTENCE_CALC_TYPE as NOMIS writes it: ADIMP (standard
                                determinate, Criminal Justice Act 2003), ADIMP_ORA (from 1
                                February 2015, Offender Rehabilitation Act 2014), LASPO_AR and
                                LASPO_DR (extended, automatic or Parole Board release), EDS21
                                (extended, Sentencing Code from 1 December 2020), MLP (mandatory
                                life), DLP (discretionary life), IPP. SENTENCE_CATEGORY 2003 or
                                2020 (the Act), START_DATE the sentence date, TERM_YEARS/MONTHS/
                                DAYS the custodial term (life and IPP: the minimum term),
                                LIFE_SENTENCE_FLAG Y/N, SENTENCE_STATUS A (active) or I (ended:
                                the booking is closed). The live feed (justice.sim.feed) writes
                                no sentences for the receptions it invents.
    BED_ASSIGNMENT_HISTORIES    (OFFENDER_BOOK_ID, BED_ASSIGN_SEQ). LIVING_UNIT_ID (a cell),
                                ASSIGNMENT_DATE, ASSIGNMENT_END_DATE (null while there; the end
                                day is the next assignment's start day), ASSIGNMENT_REASON
                                ADM/TRN/MOVE.
    OFFENDER_ALERTS             (OFFENDER_BOOK_ID, ALERT_SEQ). ROOT_OFFENDER_ID, ALERT_DATE,
                                ALERT_TYPE, ALERT_CODE (reference/alert_codes.csv), ALERT_STATUS
                                ACTIVE/INACTIVE, EXPIRY_DATE, CREATE_USER_ID (the NOMIS user
                                who raised it, e.g. ``JSMITH_GEN``).
    OFFENDER_ASSESSMENTS        (OFFENDER_BOOK_ID, ASSESSMENT_SEQ). CSRA: ASSESSMENT_TYPE,
                                ASSESSMENT_DATE, ASSESSMENT_REASON, REVIEW_SUP_LEVEL_TYPE
                                STANDARD/HIGH, AGY_LOC_ID.
    OFFENDER_NON_ASSOCIATIONS   (OFFENDER_ID, NS_OFFENDER_ID, TYPE_SEQ). OFFENDER_BOOK_ID and
                                NS_OFFENDER_BOOK_ID, NS_REASON_CODE, OFFENDER_ROLE,
                                NS_OFFENDER_ROLE, NS_TYPE CELL/LANDING/WING, EFFECTIVE_DATE,
                                EXPIRY_DATE.
    INCIDENT_CASES              INCIDENT_CASE_ID. INCIDENT_TYPE, INCIDENT_DATE, INCIDENT_TIME,
                                AGY_LOC_ID, INCIDENT_STATUS.
    INCIDENT_CASE_PARTIES       (INCIDENT_CASE_ID, PARTY_SEQ). OFFENDER_BOOK_ID,
                                PARTICIPATION_ROLE SELF_HARMER/PERPETRATOR/VICTIM.
    OIC_HEARINGS                OIC_HEARING_ID. Adjudications, flattened from NOMIS's
                                AGENCY_INCIDENTS/OIC_HEARINGS/OIC_HEARING_RESULTS: OIC_INCIDENT_ID
                                (adjudication number), OFFENDER_BOOK_ID, AGY_LOC_ID,
                                INCIDENT_DATE, HEARING_DATE, CHARGE_DESC, FINDING_CODE,
                                PUNISHMENT_DESC.

Events are attached to the booking (custody spell) the person was in on the event's date.

Mess (answer key: one row per OFFENDERS row, record_id = str(OFFENDER_ID))
    * identity mess of ``messy_identity`` (upper case; PNC and CRO missing at the YAML's rates);
    * alias: Poisson(alias_count) alias rows per person, each a name or birth-date variant of
      the person (labels ``alias`` plus the variant: nickname, surname_change, name_typo or
      dob_shift), pointing at one of the person's root rows;
    * duplicate_row: prison numbers are unreliable across custody spells, so with rate
      duplicate_row a later spell is received under a NEW root row with a new prison number
      (later spells follow the newest root);
    * alias_untied: an alias row whose ALIAS_OFFENDER_ID was never filled (it looks like a root
      row with no bookings and no identifiers);
    * prison_number_reused: a root row under another person's prison number (the answer key's
      other_person_id names that person);
    * the person-level mess of `messy_identity` with traits (alias and borrowed identities,
      surname changes from a date, a false DOB given to the prison every time);
    * ethnicity: RACE_CODE is the person's usual code, or NS (not stated), or another code, per
      row at the rates of reference/ethnicity_codes.yaml (no label: truth/persons holds the
      true ethnicity);
    * late_correction: the row's names were corrected after it was created (MODIFY_DATETIME
      later than CREATE_DATETIME); the stored names are the corrected ones (the names in force
      on the row's day: a surname changed before it stays changed), so name mess that the
      correction removed is not in the label.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from justice import identifiers
from justice.errors import SimulationError
from justice.sim import mess
from justice.sim import reference as ref
from justice.sim.arrays import rank_within_runs
from justice.sim.courts import NONE
from justice.sim.custody import alert_codes
from justice.sim.legacy import ethnicity
from justice.sim.legacy.identity import messy_identity, person_rows
from justice.sim.legacy.magistrates import identity_options
from justice.sim.people import name_pools

SYSTEM = "prison"
DB_FILE = "nomis.sqlite"
CHUNK = 50_000
CELL_CAPACITY = 2
LANDINGS = 4
CELLS_PER_LANDING = 30
FEED_CLOCK = "FEED_CLOCK"  # the live feed's table (justice.sim.feed): where its clock stands
STAFF = 600  # users who raise alerts, across the estate
STAFF_SEED = 20_241_111

# Name mess that a late correction of the names undoes.
NAME_KINDS = frozenset({"name_typo", "nickname", "name_swap", "surname_change", "whitespace",
                        "encoding_error", "name_variant", "mac_form", "surname_partial",
                        "initials_only", "forename_middle_swap", "middle_missing", "middle_wrong"})
ID_KINDS = frozenset({"pnc_missing", "pnc_bad_check", "cro_missing", "pnc_digit_typo",
                      "cro_digit_typo", "pnc_wrong_person", "cro_wrong_person"})
# A record given under another identity is not put right by a clerk correcting a spelling.
DECEIT_KINDS = frozenset({"alias", "borrowed_identity"})
ALIAS_VARIANTS = ("nickname", "surname_change", "name_typo", "dob_shift")
ADMISSION_REASON = {"remand": "N", "sentenced": "I", "recall": "L"}

NEVER = np.iinfo(np.int64).min // 2  # "no parent" for the creation-order rule of _times

Columns = dict[str, np.ndarray]
Table = dict[str, object]  # column name -> numpy array or list, all of one length


# --------------------------------------------------------------------------------------------
# Value helpers
# --------------------------------------------------------------------------------------------


class _Positions:
    """Position of each id in an array of distinct ids (a hash lookup: string ids are slow to
    binary-search)."""

    def __init__(self, ids: np.ndarray) -> None:
        self._pos = {v: i for i, v in enumerate(ids.tolist())}

    def __call__(self, keys: np.ndarray, what: str) -> np.ndarray:
        get = self._pos.get
        pos = np.fromiter((get(k, -1) for k in keys.tolist()), dtype=np.int64, count=len(keys))
        if (pos < 0).any():
            raise SimulationError(f"prison emitter: {what} refers to an unknown id")
        return pos


@functools.cache
def _staff_roster() -> np.ndarray:
    """NOMIS user names of the staff who raise alerts (``JSMITH_GEN``: initial, surname, _GEN).

    Drawn once from the world's name pools with a fixed seed, so every world, and the live
    feed, share one roster and a row's user depends on nothing but its key.
    """
    pools = name_pools()
    rng = np.random.default_rng(STAFF_SEED)
    sex = np.where(rng.random(STAFF) < 0.5, "M", "F")
    names = []
    for s in sex.tolist():
        fore = pools[("White", s)].sample(rng, 1)[0]
        sur = re.sub(r"[^A-Z]", "", pools[("White", "")].sample(rng, 1)[0].upper())
        names.append(f"{fore[0].upper()}{sur[:26]}_GEN")
    return np.array(names, dtype=object)


def alert_raised_by(key: np.ndarray) -> np.ndarray:
    """CREATE_USER_ID of alert rows: a member of staff chosen deterministically from the key."""
    roster = _staff_roster()
    h = np.asarray(key, dtype=np.int64).astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93)
    return roster[((h >> np.uint64(29)) % np.uint64(len(roster))).astype(np.int64)]


def _dates(days: np.ndarray) -> np.ndarray:
    """ISO date strings (object array) of day numbers; NONE becomes None."""
    out = np.full(len(days), None, dtype=object)
    ok = days != NONE
    out[ok] = np.datetime_as_string(days[ok].astype("datetime64[D]")).tolist()
    return out


def _stamp(days: np.ndarray, key: np.ndarray, salt: int) -> np.ndarray:
    """Seconds since 1970 at a deterministic time of day (07:00-19:00) chosen from the key."""
    mix = np.uint64((salt * 0x632BE59BD9B4E019) % 2**64)
    h = key.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + mix
    secs = 7 * 3600 + ((h >> np.uint64(33)) % np.uint64(12 * 3600)).astype(np.int64)
    return days.astype(np.int64) * 86_400 + secs


def _timestamps(seconds: np.ndarray) -> list[str]:
    text = np.datetime_as_string(seconds.astype("datetime64[s]"))
    return np.strings.replace(text, "T", " ").tolist()


def _nullable(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Object array of Python values with None where not `present`."""
    out = values.astype(object)
    out[~present] = None
    return out




def _times(days: np.ndarray, modified_days: np.ndarray, key: np.ndarray, salt: int, *,
           until: int | None = None, after: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CREATE/MODIFY times in seconds: created on `days`, modified on `modified_days`.

    A row is modified only if its modifying day (NONE: none) is on or before `until`, the last
    day of the window when given: a planned expiry after the extract has not happened yet.
    `after` (seconds) is the creation of the row's parent (the offender of a booking, the
    booking of an alert): a child is created at least a minute after its parent, so an
    incremental extract never holds a child without its parent.
    """
    create = _stamp(days, key, salt)
    if after is not None:
        create = np.maximum(create, after + 60)
    changed = modified_days != NONE
    if until is not None:
        changed &= modified_days <= until
    modify = create.copy()
    modify[changed] = np.maximum(_stamp(modified_days[changed], key[changed], salt + 1),
                                 create[changed] + 60)
    return create, modify


def _created_modified(days: np.ndarray, modified_days: np.ndarray, key: np.ndarray, salt: int, *,
                      until: int | None = None,
                      after: np.ndarray | None = None) -> tuple[list[str], list[str]]:
    """CREATE_DATETIME and MODIFY_DATETIME text of :func:`_times`."""
    create, modify = _times(days, modified_days, key, salt, until=until, after=after)
    return _timestamps(create), _timestamps(modify)


# --------------------------------------------------------------------------------------------
# Building the tables
# --------------------------------------------------------------------------------------------


class _Spells:
    """Custody spells sorted by (person, reception), with person positions and lookups."""

    def __init__(self, tables: dict[str, Columns]) -> None:
        sp = tables["custody_spells"]
        self.person_of = _Positions(tables["persons"]["person_id"])
        person = self.person_of(sp["person_id"], "custody_spells.person_id")
        order = np.lexsort((np.arange(len(person)), sp["reception_date"], person))
        self.cols = {k: v[order] for k, v in sp.items()}
        self.person = person[order]
        self.n = len(order)
        self.position = _Positions(self.cols["spell_id"])
        self._base = int(self.cols["reception_date"].min()) if self.n else 0
        self._key = self._keys(self.person, self.cols["reception_date"])

    def _keys(self, person: np.ndarray, day: np.ndarray) -> np.ndarray:
        return (person.astype(np.int64) << 32) + (day.astype(np.int64) - self._base + (1 << 31))

    def at(self, person_ids: np.ndarray, days: np.ndarray) -> np.ndarray:
        """The spell each (person, day) falls in; -1 for a person never in custody.

        That is the latest spell received on or before the day, or the one before it if only
        that one is still open (a few of a person's spells overlap), or the first spell for an
        event dated before any reception.
        """
        person = self.person_of(person_ids, "an event's person_id")
        if self.n == 0:
            return np.full(len(person), -1, dtype=np.int64)
        pos = np.searchsorted(self._key, self._keys(person, days), side="right") - 1
        first = np.searchsorted(self.person, person)
        bad = (pos < 0) | (self.person[np.maximum(pos, 0)] != person)
        pos[bad] = first[bad]
        rec, rel = self.cols["reception_date"], self.cols["release_date"]

        def inside(i: np.ndarray) -> np.ndarray:
            return (rec[i] <= days) & ((rel[i] == NONE) | (days < rel[i]))

        prev = np.maximum(pos - 1, 0)
        back = (pos > 0) & (self.person[prev] == person) & ~inside(pos) & inside(prev)
        pos[back] = prev[back]
        missing = (first >= self.n) | (self.person[np.minimum(first, self.n - 1)] != person)
        pos[missing] = -1
        return pos


def _offenders(rng: np.random.Generator, tables: dict[str, Columns], sp: _Spells,
               rates: dict[str, float], end_day: int) -> tuple[Table, Table, Columns, pa.Table]:
    """OFFENDERS (roots, duplicate roots, aliases), OFFENDER_IDENTIFIERS, per spell the
    OFFENDER_ID received under and its creation time, and the answer key."""
    persons = tables["persons"]
    first = np.r_[True, sp.person[1:] != sp.person[:-1]] if sp.n else np.zeros(0, bool)
    dup = ~first & (rng.random(sp.n) < rates["duplicate_row"])
    new_root = first | dup
    root_of_spell = np.cumsum(new_root) - 1
    root_first_spell = np.flatnonzero(new_root)
    n_root = len(root_first_spell)
    root_nspells = np.diff(np.r_[root_first_spell, sp.n])
    root_person = sp.person[root_first_spell]
    root_day = sp.cols["reception_date"][root_first_spell]
    root_dup = dup[root_first_spell]

    numbers = persons["prison_number"][root_person].copy()
    if root_dup.any():
        numbers[root_dup] = _new_prison_numbers(rng, int(root_dup.sum()), persons["prison_number"])

    # Aliases: Poisson per person, each on one of the person's root rows, recorded at a
    # reception of a spell booked under that root.
    people, person_root_start, person_nroots = np.unique(root_person, return_index=True,
                                                         return_counts=True)
    counts = rng.poisson(rates["alias_count"], len(people))
    alias_of = np.repeat(np.arange(len(people)), counts)
    alias_root = person_root_start[alias_of] + np.floor(
        rng.random(len(alias_of)) * person_nroots[alias_of]).astype(np.int64)
    alias_spell = root_first_spell[alias_root] + np.floor(
        rng.random(len(alias_of)) * root_nspells[alias_root]).astype(np.int64)

    n_alias = len(alias_root)
    person = np.r_[root_person, root_person[alias_root]]
    day = np.r_[root_day, sp.cols["reception_date"][alias_spell]]
    is_alias = np.r_[np.zeros(n_root, bool), np.ones(n_alias, bool)]
    root_ref = np.r_[np.arange(n_root), alias_root]
    # OFFENDER_IDs follow creation order, a root before its aliases received the same day.
    order = np.lexsort((np.arange(len(day)), is_alias, day))
    offender_id = np.empty(len(day), dtype=np.int64)
    offender_id[order] = np.arange(1, len(day) + 1)

    rows = person_rows(tables, persons["person_id"][person])
    alias_kinds = _alias_variants(rng, rows, np.flatnonzero(is_alias), persons["surname"])
    intended_fore = _upper(rows["forename"])
    intended_sur = _upper(rows["surname"])
    intended_mid = _upper(rows["middle_name"])
    options = identity_options(tables, SYSTEM, day)
    messy, labels = messy_identity(rng, rows, rates, surname_pool=persons["surname"],
                                   ids=("pnc_id", "cro_number"), upper_case=True,
                                   with_postcode=False, **options)
    deceit = np.array([bool(DECEIT_KINDS & set(x.split(","))) for x in labels.tolist()], bool)
    # A correction puts right the name in force on the row's day: after a surname change that is
    # the new surname (a clerk does not restore a name the person no longer uses).
    renamed = np.zeros(len(day), bool)
    traits = options["traits"]
    if traits is not None and "_pos" in rows:
        change_day = traits.surname_change_day[rows["_pos"]]
        renamed = (change_day != NONE) & (day >= change_day)
        intended_sur[renamed] = _upper(traits.new_surname[rows["_pos"][renamed]])

    # A prison number issued again, to another person's record (root rows only).
    reused = np.r_[rng.random(n_root) < rates["prison_number_reused"], np.zeros(n_alias, bool)]
    other = messy["_other_person"].copy()
    # The donor is a root row that keeps its own number: were it reissued a number too, the
    # one passed on (a duplicate row's new number) would be on no other row.
    keeps = np.flatnonzero(~reused[:n_root])
    if reused.any() and len(keeps) > 1:
        pick = rng.integers(0, len(keeps), int(reused.sum()))
        donor = keeps[pick]
        clash = root_person[donor] == person[reused]
        donor[clash] = keeps[(pick[clash] + 1) % len(keeps)]
        keep_reuse = root_person[donor] != person[reused]
        idx = np.flatnonzero(reused)
        reused[idx[~keep_reuse]] = False
        numbers[idx[keep_reuse]] = numbers[donor[keep_reuse]]
        other[idx[keep_reuse]] = root_person[donor[keep_reuse]]
    else:
        reused[:] = False
    # Some alias rows were never tied to their main record (ALIAS_OFFENDER_ID left empty).
    untied = is_alias & (rng.random(len(day)) < rates["alias_untied"])

    corrected = (rng.random(len(day)) < rates["late_correction"]) & ~deceit
    delay = rng.integers(1, 366, len(day))
    modified_day = np.where(corrected, np.maximum(np.minimum(day + delay, end_day), day), NONE)
    fore, sur, mid = messy["forename"], messy["surname"], messy["middle_name"]
    fore[corrected], sur[corrected] = intended_fore[corrected], intended_sur[corrected]
    mid[corrected] = intended_mid[corrected]
    dup_row = np.r_[root_dup, np.zeros(n_alias, bool)]
    mess_labels = []
    for i, (lab, variant) in enumerate(zip(labels.tolist(), alias_kinds.tolist(), strict=True)):
        kinds = set(lab.split(",")) - {""}
        if corrected[i]:
            kinds = (kinds - NAME_KINDS) | {"late_correction"} | (
                {"surname_change"} if renamed[i] else set())
        if is_alias[i]:
            # Identifiers are held on the root row only, so an alias row never "misses" one.
            kinds = (kinds - ID_KINDS) | ({"alias", variant} - {""})
            if untied[i]:
                kinds.add("alias_untied")
        if dup_row[i]:
            kinds.add("duplicate_row")
        if reused[i]:
            kinds.add("prison_number_reused")
        mess_labels.append(",".join(sorted(kinds)))

    # An alias is recorded after the root row it belongs to.
    root_created = _stamp(day[:n_root], offender_id[:n_root], salt=1)
    after = np.r_[np.full(n_root, NEVER), root_created[alias_root]]
    created, modified = _times(day, modified_day, offender_id, salt=1, until=end_day, after=after)
    create, modify = _timestamps(created), _timestamps(modified)
    dob = messy["dob"]
    birth = np.full(len(dob), None, dtype=object)
    has_dob = ~np.isnat(dob)
    birth[has_dob] = np.datetime_as_string(dob[has_dob]).tolist()
    offenders = {
        "OFFENDER_ID": offender_id,
        "OFFENDER_ID_DISPLAY": np.r_[numbers, numbers[alias_root]],
        "LAST_NAME": sur, "FIRST_NAME": fore, "MIDDLE_NAME": messy["middle_name"],
        "BIRTH_DATE": birth, "SEX_CODE": messy["sex"],
        "RACE_CODE": ethnicity.recorded_codes(persons["person_id"][person],
                                              persons["ethnicity"][person], offender_id),
        "ALIAS_OFFENDER_ID": _nullable(offender_id[root_ref], is_alias & ~untied),
        "CREATE_DATETIME": create, "MODIFY_DATETIME": modify,
    }
    offenders = {k: np.asarray(v, dtype=object)[order] if isinstance(v, list) else v[order]
                 for k, v in offenders.items()}

    # Identifiers live on root rows, only when the record holds them.
    idents = []
    for kind, col in (("PNC", "pnc_id"), ("CRO", "cro_number")):
        has = np.flatnonzero(~is_alias & np.array([v is not None for v in messy[col]], bool))
        idents.append((kind, has, messy[col][has]))
    id_rows = np.concatenate([h for _, h, _ in idents])
    id_type = np.concatenate([np.full(len(h), k, dtype=object) for k, h, _ in idents])
    id_value = np.concatenate([v for _, _, v in idents])
    id_order = np.lexsort((id_type == "CRO", offender_id[id_rows]))
    id_rows, id_type, id_value = id_rows[id_order], id_type[id_order], id_value[id_order]
    id_owner = offender_id[id_rows]
    id_create, id_modify = _created_modified(day[id_rows], np.full(len(id_rows), NONE),
                                             id_owner * 4 + (id_type == "CRO"), salt=3,
                                             after=created[id_rows])
    identifiers_table = {
        "OFFENDER_ID": id_owner, "OFFENDER_ID_SEQ": rank_within_runs(id_owner) + 1,
        "IDENTIFIER_TYPE": id_type, "IDENTIFIER": id_value,
        "CREATE_DATETIME": id_create, "MODIFY_DATETIME": id_modify,
    }
    answer = pa.table({
        "system": pa.array([SYSTEM] * len(order), pa.string()),
        "record_id": pa.array([str(i) for i in offenders["OFFENDER_ID"].tolist()], pa.string()),
        "person_id": pa.array(persons["person_id"][person[order]].tolist(), pa.string()),
        "mess": pa.array(np.asarray(mess_labels, dtype=object)[order].tolist(), pa.string()),
        "other_person_id": pa.array(
            np.where(other >= 0, persons["person_id"][np.maximum(other, 0)], None)[order].tolist(),
            pa.string()),
    })
    spells = {"offender_id": offender_id[root_of_spell], "offender_created": created[root_of_spell]}
    return offenders, identifiers_table, spells, answer


def _upper(values: np.ndarray) -> np.ndarray:
    return np.array([v.upper() if isinstance(v, str) else v for v in values], dtype=object)


def _alias_variants(rng: np.random.Generator, rows: Columns, idx: np.ndarray,
                    surname_pool: np.ndarray) -> np.ndarray:
    """Turn rows `idx` into aliases (in place): each gets one name or birth-date variant.

    Returns, per row of `rows`, the variant kind applied ("" for rows that are not aliases).
    """
    kinds = np.full(len(rows["person_id"]), "", dtype=object)
    if len(idx) == 0:
        return kinds
    want = rng.integers(0, len(ALIAS_VARIANTS), len(idx))
    fore, sur = rows["forename"][idx], rows["surname"][idx]
    dob_days = rows["dob"][idx]
    dob = np.full(len(idx), np.datetime64("NaT"), dtype="datetime64[D]")
    dob[dob_days != NONE] = dob_days[dob_days != NONE].astype("datetime64[D]")
    done = np.full(len(idx), "", dtype=object)

    fore, m = mess.nickname(rng, fore, want == 0)
    done[m] = "nickname"
    sur, m = mess.surname_change(rng, sur, surname_pool, want == 1)
    done[m] = "surname_change"
    dob, m = mess.dob_shift(rng, dob, want == 3)
    done[m] = "dob_shift"
    # A typo always applies, so it is also the fallback when the wanted variant could not be
    # made (no nickname for the forename, no date of birth to shift).
    typo = done == ""
    on_fore = rng.random(len(idx)) < 0.5
    fore, m1 = mess.typo(rng, fore, typo & on_fore)
    sur, m2 = mess.typo(rng, sur, typo & ~on_fore)
    done[m1 | m2] = "name_typo"

    rows["forename"][idx], rows["surname"][idx] = fore, sur
    days = np.full(len(idx), NONE, dtype=np.int64)
    days[~np.isnat(dob)] = dob[~np.isnat(dob)].astype(np.int64)
    rows["dob"][idx] = days
    kinds[idx] = done
    return kinds


def _new_prison_numbers(rng: np.random.Generator, n: int, existing: np.ndarray) -> np.ndarray:
    """n prison numbers not used by anyone else (issued to people received as someone new)."""
    taken = {v for v in existing.tolist() if v is not None}
    out: list[str] = []
    while len(out) < n:
        for v in identifiers.make_prison_numbers(rng, 2 * (n - len(out)) + 10).tolist():
            if v not in taken and len(out) < n:
                taken.add(v)
                out.append(v)
    return np.array(out, dtype=object)


def _locations(tables: dict[str, Columns], ref_day: int) -> tuple[Table, Table, dict[str, int]]:
    """AGENCY_LOCATIONS, AGENCY_INTERNAL_LOCATIONS and the cell description -> id map."""
    est, courts = tables["establishments"], tables["courts"]
    ids = np.r_[est["establishment_code"], courts["court_code"], ["OUT"]].astype(object)
    desc = np.r_[est["name"], courts["court_name"], ["Outside"]].astype(object)
    kind = np.r_[np.full(len(est["name"]), "INST", object), np.full(len(courts["court_name"]), "CRT", object),
                 ["OUT"]].astype(object)
    order = np.argsort(ids, kind="stable")
    if len(np.unique(ids)) != len(ids):
        raise SimulationError("prison emitter: establishment and court codes overlap")
    n = len(ids)
    create, modify = _created_modified(np.full(n, ref_day), np.full(n, NONE), np.arange(n), salt=5)
    agencies = {"AGY_LOC_ID": ids[order], "DESCRIPTION": desc[order],
                "AGENCY_LOCATION_TYPE": kind[order], "ACTIVE_FLAG": np.full(n, "Y", object),
                "CREATE_DATETIME": create, "MODIFY_DATETIME": modify}

    # Every landing and cell of every wing that the simulation used.
    loc = tables["prison_locations"]
    pairs = sorted({(e, w) for e, w in zip(loc["establishment_code"].tolist(), loc["wing"].tolist())},
                   key=lambda p: (p[0], len(p[1]), p[1]))
    rows: dict[str, list] = {k: [] for k in ("INTERNAL_LOCATION_ID", "AGY_LOC_ID", "INTERNAL_LOCATION_CODE",
                                             "INTERNAL_LOCATION_TYPE", "DESCRIPTION",
                                             "PARENT_INTERNAL_LOCATION_ID", "CAPACITY")}

    def add(agy: str, code: str, kind: str, desc: str, parent: int | None, cap: int) -> int:
        new_id = len(rows["INTERNAL_LOCATION_ID"]) + 1
        for k, v in zip(rows, (new_id, agy, code, kind, desc, parent, cap)):
            rows[k].append(v)
        return new_id

    cell_ids: dict[str, int] = {}
    per_landing = CELLS_PER_LANDING * CELL_CAPACITY
    for agy, wing in pairs:
        wing_id = add(agy, wing, "WING", f"{agy}-{wing}", None, LANDINGS * per_landing)
        for landing in range(1, LANDINGS + 1):
            land_desc = f"{agy}-{wing}-{landing}"
            land_id = add(agy, str(landing), "LAND", land_desc, wing_id, per_landing)
            for cell in range(1, CELLS_PER_LANDING + 1):
                cell_desc = f"{land_desc}-{cell:03d}"
                cell_ids[cell_desc] = add(agy, f"{cell:03d}", "CELL", cell_desc, land_id, CELL_CAPACITY)
    m = len(rows["INTERNAL_LOCATION_ID"])
    key = np.arange(1, m + 1)
    create, modify = _created_modified(np.full(m, ref_day), np.full(m, NONE), key, salt=7)
    internal = {**rows, "ACTIVE_FLAG": ["Y"] * m, "CREATE_DATETIME": create, "MODIFY_DATETIME": modify}
    return agencies, internal, cell_ids


def _last_stay(n_spells: int, stay_spell: np.ndarray) -> np.ndarray:
    """Index of each spell's last stay (stays sorted by spell and start), -1 for none."""
    out = np.full(n_spells, -1, dtype=np.int64)
    last = np.flatnonzero(np.r_[stay_spell[1:] != stay_spell[:-1], True]) if len(stay_spell) else []
    out[stay_spell[last]] = last
    return out


def _transfers(s: Columns, stay_spell: np.ndarray) -> np.ndarray:
    """Stays that began with a move to another establishment within the same spell."""
    same_spell = np.r_[False, stay_spell[1:] == stay_spell[:-1]]
    est = s["establishment_code"]
    changed = np.r_[False, est[1:] != est[:-1]]
    return (s["movement"] == "transfer") & same_spell & changed


def _bookings_and_stays(tables: dict[str, Columns], sp: _Spells, spells: Columns,
                        cell_ids: dict[str, int], end_day: int) -> tuple[Table, Table, Table]:
    """OFFENDER_BOOKINGS, BED_ASSIGNMENT_HISTORIES and OFFENDER_EXTERNAL_MOVEMENTS.

    Adds each spell's booking id and booking creation time to `spells`.
    """
    c = sp.cols
    rec, rel = c["reception_date"], c["release_date"]
    book_id = np.empty(sp.n, dtype=np.int64)
    book_id[np.lexsort((np.arange(sp.n), rec))] = np.arange(1, sp.n + 1)  # in order of reception

    loc = tables["prison_locations"]
    stay_spell = sp.position(loc["spell_id"], "prison_locations.spell_id")
    s_order = np.lexsort((np.arange(len(stay_spell)), loc["start_date"], stay_spell))
    stay_spell = stay_spell[s_order]
    s = {k: v[s_order] for k, v in loc.items()}
    codes, inverse = np.unique(s["location_code"], return_inverse=True)
    unit = np.array([cell_ids[v] for v in codes.tolist()], dtype=np.int64)[inverse]
    last_stay = _last_stay(sp.n, stay_spell)
    has_stay = last_stay >= 0
    last = np.maximum(last_stay, 0)

    active = rel == NONE
    current_est = np.where(has_stay, s["establishment_code"][last], c["establishment_code"]).astype(object)
    last_move = np.where(has_stay, s["start_date"][last], rec)
    # An open booking changes when the person moves; a closed one when they are released.
    modified = np.where(active, np.where(last_move > rec, last_move, NONE), rel)
    created, modified = _times(rec, modified, book_id, salt=11, until=end_day,
                               after=spells["offender_created"])
    spells["book_id"], spells["book_created"] = book_id, created
    booking_no = [booking_number(n) for n in book_id.tolist()]
    bookings = _sorted({
        "OFFENDER_BOOK_ID": book_id, "OFFENDER_ID": spells["offender_id"], "BOOKING_NO": booking_no,
        "BOOKING_BEGIN_DATE": _dates(rec), "BOOKING_END_DATE": _dates(rel),
        "BOOKING_STATUS": np.where(active, "O", "C").astype(object),
        "ACTIVE_FLAG": np.where(active, "Y", "N").astype(object),
        "AGY_LOC_ID": np.where(active, current_est, "OUT").astype(object),
        "LIVING_UNIT_ID": _nullable(np.where(has_stay, unit[last], 0), active & has_stay),
        "IN_OUT_STATUS": np.where(active, "IN", "OUT").astype(object),
        "CREATE_DATETIME": _timestamps(created), "MODIFY_DATETIME": _timestamps(modified),
    }, "OFFENDER_BOOK_ID")

    # Bed assignments: each stay in one cell.
    moved_prison = _transfers(s, stay_spell)
    reason = np.where(s["movement"] == "reception", "ADM",
                      np.where(moved_prison, "TRN", "MOVE")).astype(object)
    seq = rank_within_runs(stay_spell) + 1
    stay_book = book_id[stay_spell]
    created, modified = _times(s["start_date"], s["end_date"], stay_book * 1024 + seq, salt=13,
                               until=end_day, after=spells["book_created"][stay_spell])
    create = _timestamps(created)
    beds = _sorted({
        "OFFENDER_BOOK_ID": stay_book, "BED_ASSIGN_SEQ": seq, "LIVING_UNIT_ID": unit,
        "ASSIGNMENT_DATE": _dates(s["start_date"]), "ASSIGNMENT_DATETIME": create,
        "ASSIGNMENT_REASON": reason, "ASSIGNMENT_END_DATE": _dates(s["end_date"]),
        "CREATE_DATETIME": create, "MODIFY_DATETIME": _timestamps(modified),
    }, "OFFENDER_BOOK_ID", "BED_ASSIGN_SEQ")

    movements = _movements(tables, sp, spells, s, stay_spell, moved_prison)
    return bookings, beds, movements


def _movements(tables: dict[str, Columns], sp: _Spells, spells: Columns, s: Columns,
               stay_spell: np.ndarray, moved_prison: np.ndarray) -> Table:
    """Admissions (from court, or OUT for a recall), transfers and releases of each booking."""
    c = sp.cols
    cases = tables["court_cases"]
    has_case = np.array([v is not None for v in c["case_id"]], dtype=bool)
    court = np.full(sp.n, "OUT", dtype=object)
    court[has_case] = cases["court_code"][
        _Positions(cases["case_id"])(c["case_id"][has_case], "custody_spells.case_id")]
    court[c["reason"] == "recall"] = "OUT"

    trn = np.flatnonzero(moved_prison)
    released = np.flatnonzero(c["release_date"] != NONE)
    last_stay = _last_stay(sp.n, stay_spell)[released]
    rel_from = np.where(last_stay >= 0, s["establishment_code"][np.maximum(last_stay, 0)],
                        c["establishment_code"][released]).astype(object)
    n_adm, n_trn, n_rel = sp.n, len(trn), len(released)
    spell = np.r_[np.arange(sp.n), stay_spell[trn], released]
    day = np.r_[c["reception_date"], s["start_date"][trn], c["release_date"][released]]
    mtype = np.r_[np.full(n_adm, "ADM", object), np.full(n_trn, "TRN", object),
                  np.full(n_rel, "REL", object)]
    rank = np.r_[np.zeros(n_adm, np.int64), np.ones(n_trn, np.int64), np.full(n_rel, 2, np.int64)]
    reason = np.r_[np.array([ADMISSION_REASON[r] for r in c["reason"].tolist()], dtype=object),
                   np.full(n_trn, "NOTR", object),
                   np.where(c["reason"][released] == "remand", "BL", "CR").astype(object)]
    direction = np.r_[np.full(n_adm, "IN", object), np.full(n_trn + n_rel, "OUT", object)]
    from_agy = np.r_[court, s["establishment_code"][trn - 1], rel_from].astype(object)
    to_agy = np.r_[c["establishment_code"], s["establishment_code"][trn],
                   np.full(n_rel, "OUT", object)].astype(object)
    book = spells["book_id"][spell]
    order = np.lexsort((np.arange(len(day)), rank, day, book))
    book, day, spell = book[order], day[order], spell[order]
    seq = rank_within_runs(book) + 1
    latest = np.r_[book[1:] != book[:-1], True] if len(book) else np.zeros(0, bool)
    created, _ = _times(day, np.full(len(day), NONE), book * 1024 + seq, salt=17,
                        after=spells["book_created"][spell])
    stamp = _timestamps(created)
    return {
        "OFFENDER_BOOK_ID": book, "MOVEMENT_SEQ": seq, "MOVEMENT_DATE": _dates(day),
        "MOVEMENT_TIME": stamp, "MOVEMENT_TYPE": mtype[order], "MOVEMENT_REASON_CODE": reason[order],
        "DIRECTION_CODE": direction[order], "FROM_AGY_LOC_ID": from_agy[order],
        "TO_AGY_LOC_ID": to_agy[order], "ACTIVE_FLAG": np.where(latest, "Y", "N").astype(object),
        "CREATE_DATETIME": stamp, "MODIFY_DATETIME": stamp,
    }


ORA_FROM = ref.day_number("2015-02-01")
SENTENCING_CODE_FROM = ref.day_number("2020-12-01")


def sentence_calc_type(sentence_type: np.ndarray, sentence_day: np.ndarray, release_rule: np.ndarray,
                       murder: np.ndarray) -> np.ndarray:
    """NOMIS SENTENCE_CALC_TYPE of each sentence, from the world's sentence type and date."""
    sds = np.where(sentence_day >= ORA_FROM, "ADIMP_ORA", "ADIMP")
    eds = np.where(sentence_day >= SENTENCING_CODE_FROM, "EDS21",
                   np.where(release_rule == "eds_automatic_two_thirds", "LASPO_AR", "LASPO_DR"))
    return np.select([sentence_type == "life", sentence_type == "ipp",
                      sentence_type == "extended_determinate"],
                     [np.where(murder, "MLP", "DLP"), "IPP", eds], sds).astype(object)


def _sentences(tables: dict[str, Columns], sp: _Spells, spells: Columns, end_day: int) -> Table:
    """OFFENDER_SENTENCES: one row for each booking that serves a sentence passed by the end."""
    c = sp.cols
    has = (c["sentence_date"] != NONE) & (c["sentence_date"] <= end_day) & np.array(
        [isinstance(t, str) for t in c["sentence_type"]], dtype=bool)
    idx = np.flatnonzero(has)
    kind = c["sentence_type"][idx]
    day = c["sentence_date"][idx]
    months = np.nan_to_num(c["sentence_months"][idx].astype(float))
    days_total = np.round(months * 30.4375).astype(np.int64)
    years = np.floor(months / 12).astype(np.int64)
    whole_months = np.floor(months - 12 * years).astype(np.int64)
    rest_days = np.maximum(days_total - np.round((12 * years + whole_months) * 30.4375).astype(np.int64), 0)
    # The sentence's release rule is on its disposal (a recall spell does not repeat it).
    d = tables["disposals"]
    custody = (d["disposal_type"] == "custody") & (d["case_id"] != None)
    rule_of = dict(zip(d["case_id"][custody].tolist(), d["release_rule"][custody].tolist(), strict=True))
    rule = np.array([rule_of.get(k) for k in c["case_id"][idx].tolist()], dtype=object)
    off = tables["offences"]
    murder_cases = off["crown_case_id"][(off["offence_code"] == "VA01001") & (off["sentence_type"] == "life")]
    murder = np.isin(c["case_id"][idx], murder_cases[murder_cases != None])
    calc = sentence_calc_type(kind, day, rule, murder)
    book = spells["book_id"][idx]
    closed = (c["release_date"][idx] != NONE) & (c["release_date"][idx] <= end_day)
    # Recorded when the sentence is passed (a recall's when the booking opens).
    recorded = np.maximum(day, c["reception_date"][idx])
    created, modified = _times(recorded, np.where(closed, c["release_date"][idx], NONE), book, salt=41,
                               until=end_day, after=spells["book_created"][idx])
    return _sorted({
        "OFFENDER_BOOK_ID": book, "SENTENCE_SEQ": np.ones(len(idx), dtype=np.int64),
        "SENTENCE_CALC_TYPE": calc,
        "SENTENCE_CATEGORY": np.where(day >= SENTENCING_CODE_FROM, "2020", "2003").astype(object),
        "START_DATE": _dates(day),
        "TERM_YEARS": _nullable(years, years > 0), "TERM_MONTHS": _nullable(whole_months, whole_months > 0),
        "TERM_DAYS": _nullable(rest_days, rest_days > 0),
        "LIFE_SENTENCE_FLAG": np.where(np.isin(kind, ["life", "ipp"]), "Y", "N").astype(object),
        "SENTENCE_STATUS": np.where(closed, "I", "A").astype(object),
        "CREATE_DATETIME": _timestamps(created), "MODIFY_DATETIME": _timestamps(modified),
    }, "OFFENDER_BOOK_ID", "SENTENCE_SEQ")


def booking_number(book_id: int) -> str:
    """BOOKING_NO of a booking: five digits and a letter, from its OFFENDER_BOOK_ID."""
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    return f"{book_id % 90_000 + 10_000}{letters[(book_id // 90_000) % len(letters)]}"


def _sorted(table: Table, *keys: str) -> Table:
    """The table's rows sorted by the given key columns (first key most significant)."""
    order = np.lexsort(tuple(np.asarray(table[k]) for k in reversed(keys)))
    return {k: np.asarray(v, dtype=object)[order] if isinstance(v, list) else v[order]
            for k, v in table.items()}


def _until(cols: Columns, date_col: str, end_day: int) -> Columns:
    """The rows of a truth table dated on or before `end_day`."""
    keep = cols[date_col] <= end_day
    return {k: v[keep] for k, v in cols.items()}


def _life_in_custody(rng: np.random.Generator, tables: dict[str, Columns], sp: _Spells,
                     spells: Columns, end_day: int) -> dict[str, Table]:
    """Alerts, assessments, non-associations, incidents and adjudications, on bookings.

    Each event goes on the booking (spell) the person was in on the event's date.
    """
    out: dict[str, Table] = {}
    book_id, book_created, offender = spells["book_id"], spells["book_created"], spells["offender_id"]
    # The database is as it stood at the end of the window: nothing dated later is in it yet.
    al = _until(tables["alerts"], "start_date", end_day)
    asr = _until(tables["assessments"], "assessment_date", end_day)
    na = _until(tables["non_associations"], "effective_date", end_day)
    inc = _until(tables["incidents"], "incident_date", end_day)
    ip = tables["incident_parties"]
    kept = set(inc["incident_id"].tolist())
    on_kept = np.fromiter((i in kept for i in ip["incident_id"].tolist()), bool, len(ip["incident_id"]))
    ip = {k: v[on_kept] for k, v in ip.items()}
    ad = _until(tables["adjudications"], "charge_date", end_day)
    codes = {row["alert_code"]: row["alert_type"] for row in alert_codes()}

    def events(person_ids: np.ndarray, days: np.ndarray, order_by: np.ndarray | None = None):
        """(kept row indices, their spells) of events on a booking, sorted by booking and day."""
        pos = sp.at(person_ids, days)
        rows = np.flatnonzero(pos >= 0)
        first = book_id[pos[rows]] if order_by is None else order_by[rows]
        rows = rows[np.lexsort((rows, days[rows], first))]
        return rows, pos[rows]

    rows, pos = events(al["person_id"], al["start_date"])
    book, start, end, code = book_id[pos], al["start_date"][rows], al["end_date"][rows], al["alert_code"][rows]
    seq = rank_within_runs(book) + 1
    create, modify = _created_modified(start, end, book * 1024 + seq, salt=19, until=end_day,
                                       after=book_created[pos])
    out["OFFENDER_ALERTS"] = {
        "OFFENDER_BOOK_ID": book, "ALERT_SEQ": seq, "ROOT_OFFENDER_ID": offender[pos],
        "ALERT_DATE": _dates(start),
        "ALERT_TYPE": np.array([codes.get(v, v[:1]) for v in code.tolist()], dtype=object),
        "ALERT_CODE": code, "ALERT_STATUS": np.where((end == NONE) | (end > end_day), "ACTIVE", "INACTIVE").astype(object),
        "EXPIRY_DATE": _dates(end), "CREATE_USER_ID": alert_raised_by(book * 1024 + seq),
        "CREATE_DATETIME": create, "MODIFY_DATETIME": modify,
    }

    rows, pos = events(asr["person_id"], asr["assessment_date"])
    book, day = book_id[pos], asr["assessment_date"][rows]
    seq = rank_within_runs(book) + 1
    create, modify = _created_modified(day, np.full(len(day), NONE), book * 1024 + seq, salt=23,
                                       after=book_created[pos])
    out["OFFENDER_ASSESSMENTS"] = {
        "OFFENDER_BOOK_ID": book, "ASSESSMENT_SEQ": seq,
        "ASSESSMENT_TYPE": asr["assessment_type"][rows], "ASSESSMENT_DATE": _dates(day),
        "ASSESSMENT_REASON": asr["reason"][rows], "REVIEW_SUP_LEVEL_TYPE": asr["level"][rows],
        "ASSESS_STATUS": np.full(len(day), "A", object), "AGY_LOC_ID": asr["establishment_code"][rows],
        "CREATE_DATETIME": create, "MODIFY_DATETIME": modify,
    }

    pos1 = sp.at(na["person_id"], na["effective_date"])
    pos2 = sp.at(na["other_person_id"], na["effective_date"])
    rows = np.flatnonzero((pos1 >= 0) & (pos2 >= 0))
    off, ns_off, eff = offender[pos1[rows]], offender[pos2[rows]], na["effective_date"][rows]
    rows = rows[np.lexsort((rows, eff, ns_off, off))]
    pos1, pos2 = pos1[rows], pos2[rows]
    off, ns_off, eff, exp = offender[pos1], offender[pos2], na["effective_date"][rows], na["expiry_date"][rows]
    pair = off * (int(offender.max(initial=0)) + 1) + ns_off
    seq = rank_within_runs(pair) + 1
    create, modify = _created_modified(eff, exp, pair * 64 + seq, salt=29, until=end_day,
                                       after=np.maximum(book_created[pos1], book_created[pos2]))
    out["OFFENDER_NON_ASSOCIATIONS"] = {
        "OFFENDER_ID": off, "NS_OFFENDER_ID": ns_off, "TYPE_SEQ": seq,
        "OFFENDER_BOOK_ID": book_id[pos1], "NS_OFFENDER_BOOK_ID": book_id[pos2],
        "NS_REASON_CODE": na["reason"][rows], "OFFENDER_ROLE": na["role"][rows],
        "NS_OFFENDER_ROLE": na["other_role"][rows], "NS_TYPE": na["restriction"][rows],
        "EFFECTIVE_DATE": _dates(eff), "EXPIRY_DATE": _dates(exp),
        "CREATE_DATETIME": create, "MODIFY_DATETIME": modify,
    }

    n_inc = len(inc["incident_id"])
    inc_order = np.argsort(inc["incident_id"], kind="stable")
    case_id = np.empty(n_inc, dtype=np.int64)
    case_id[inc_order] = np.arange(1, n_inc + 1)
    closed = np.maximum(np.minimum(inc["incident_date"] + rng.integers(0, 29, n_inc), end_day),
                        inc["incident_date"])
    case_created, case_modified = _times(inc["incident_date"], closed, case_id, salt=31, until=end_day)
    out["INCIDENT_CASES"] = _sorted({
        "INCIDENT_CASE_ID": case_id, "INCIDENT_TYPE": inc["incident_type"],
        "INCIDENT_DATE": _dates(inc["incident_date"]), "INCIDENT_TIME": _timestamps(case_created),
        "AGY_LOC_ID": inc["establishment_code"], "INCIDENT_STATUS": np.full(n_inc, "CLOSE", object),
        "CREATE_DATETIME": _timestamps(case_created), "MODIFY_DATETIME": _timestamps(case_modified),
    }, "INCIDENT_CASE_ID")

    which = _Positions(inc["incident_id"])(ip["incident_id"], "incident_parties.incident_id")
    rows, pos = events(ip["person_id"], inc["incident_date"][which], order_by=case_id[which])
    which = which[rows]
    case = case_id[which]
    seq = rank_within_runs(case) + 1
    create, modify = _created_modified(inc["incident_date"][which], np.full(len(case), NONE), case * 64 + seq,
                                       salt=41, after=np.maximum(case_created[which], book_created[pos]))
    out["INCIDENT_CASE_PARTIES"] = {
        "INCIDENT_CASE_ID": case, "PARTY_SEQ": seq, "OFFENDER_BOOK_ID": book_id[pos],
        "PARTICIPATION_ROLE": ip["role"][rows], "CREATE_DATETIME": create, "MODIFY_DATETIME": modify,
    }

    rows, pos = events(ad["person_id"], ad["charge_date"])
    charge = ad["charge_date"][rows]
    n_ad = len(rows)
    hearing = np.maximum(np.minimum(charge + rng.integers(1, 15, n_ad), end_day), charge)
    incident_no = np.empty(n_ad, dtype=np.int64)
    incident_no[np.lexsort((np.arange(n_ad), charge))] = np.arange(1, n_ad + 1)
    hearing_id = np.empty(n_ad, dtype=np.int64)
    hearing_id[np.lexsort((np.arange(n_ad), hearing))] = np.arange(1, n_ad + 1)
    create, modify = _created_modified(charge, hearing, hearing_id, salt=37, until=end_day,
                                       after=book_created[pos])
    out["OIC_HEARINGS"] = _sorted({
        "OIC_HEARING_ID": hearing_id, "OIC_INCIDENT_ID": incident_no,
        "OFFENDER_BOOK_ID": book_id[pos], "AGY_LOC_ID": ad["establishment_code"][rows],
        "INCIDENT_DATE": _dates(charge), "HEARING_DATE": _dates(hearing),
        "OIC_HEARING_TYPE": np.full(n_ad, "GOV", object), "CHARGE_DESC": ad["charge"][rows],
        "FINDING_CODE": ad["finding"][rows], "PUNISHMENT_DESC": ad["punishment"][rows],
        "CREATE_DATETIME": create, "MODIFY_DATETIME": modify,
    }, "OIC_HEARING_ID")
    return out


def build_tables(tables: dict[str, Columns], rng: np.random.Generator, rates: dict[str, float],
                 params) -> tuple[dict[str, Table], pa.Table]:
    """Every NOMIS table's rows (in load order) and the answer key, from the world's truth."""
    end_day = ref.day_number(params.end)
    sp = _Spells(tables)
    offenders, idents, spells, answer = _offenders(rng, tables, sp, rates, end_day)
    first_day = int(sp.cols["reception_date"].min()) if sp.n else ref.day_number(params.start)
    ref_day = min(first_day, ref.day_number(params.start)) - 1
    agencies, internal, cell_ids = _locations(tables, ref_day)
    bookings, beds, movements = _bookings_and_stays(tables, sp, spells, cell_ids, end_day)
    life = _life_in_custody(rng, tables, sp, spells, end_day)
    sentences = _sentences(tables, sp, spells, end_day)
    out = {
        "AGENCY_LOCATIONS": agencies, "AGENCY_INTERNAL_LOCATIONS": internal,
        "OFFENDERS": offenders, "OFFENDER_IDENTIFIERS": idents, "OFFENDER_BOOKINGS": bookings,
        "OFFENDER_EXTERNAL_MOVEMENTS": movements, "BED_ASSIGNMENT_HISTORIES": beds,
        "OFFENDER_SENTENCES": sentences, **life,
    }
    if list(out) != table_names():
        raise SimulationError("prison emitter: tables out of step with nomis_ddl.sql")
    return out, answer


# --------------------------------------------------------------------------------------------
# Writing the database
# --------------------------------------------------------------------------------------------


def ddl_statements() -> list[str]:
    """The CREATE TABLE statements of ``nomis_ddl.sql``, in load order (parents first)."""
    text = resources.files("justice.sim.legacy").joinpath("nomis_ddl.sql").read_text("utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE) if s.strip()]


def table_names() -> list[str]:
    """NOMIS table names in load order."""
    return [re.match(r"CREATE TABLE (\w+)", s).group(1) for s in ddl_statements()]


def _placeholders(paramstyle: str, n: int) -> str:
    if paramstyle == "qmark":
        return ", ".join("?" * n)
    if paramstyle in ("format", "pyformat"):
        return ", ".join(["%s"] * n)
    if paramstyle == "numeric":
        return ", ".join(f":{i + 1}" for i in range(n))
    if paramstyle == "named":
        return ", ".join(f":p{i}" for i in range(n))
    raise SimulationError(f"prison emitter: unsupported DB-API paramstyle {paramstyle!r}")


def _tune_for_bulk_load(conn: sa.Connection) -> None:
    """Dialect-specific settings for a fast one-off load; the only place dialects differ."""
    if conn.dialect.name == "sqlite":
        # A fresh file built in one go: no rollback journal or fsync is needed, and a crash
        # simply means building again.
        conn.exec_driver_sql("PRAGMA journal_mode=OFF")
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.exec_driver_sql("PRAGMA cache_size=-200000")


def _engine(url: str) -> sa.Engine:
    """An engine for `url`, or a SimulationError that says what is wrong with the URL."""
    try:
        return sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as exc:
        raise SimulationError(
            f"--prison-db {url!r} is not a usable SQLAlchemy URL ({exc}); "
            "expected e.g. sqlite:///nomis.sqlite or postgresql+psycopg://user@host/db") from None


def _shown(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def check_database(url: str) -> None:
    """Fail fast, before any simulating, if the prison database cannot be reached."""
    engine = _engine(url)
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        raise SimulationError(f"--prison-db {_shown(url)}: cannot connect ({exc.__class__.__name__}: "
                              f"{str(exc.orig if getattr(exc, 'orig', None) else exc).strip()})") from None
    finally:
        engine.dispose()


def write_database(url: str, rows: dict[str, Table]) -> None:
    """Create the NOMIS tables at `url` (dropping old ones) and bulk-insert `rows` in one go.

    Everything happens in one transaction, so on a database with transactional DDL (PostgreSQL)
    a failure leaves the previous tables as they were.
    """
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            _tune_for_bulk_load(conn)
            conn.commit()  # end the autobegun transaction of the settings above
            with conn.begin():
                # The live feed's clock belongs to the tables it carried on: a new build starts
                # the feed again from the new world's end.
                for name in (*reversed(table_names()), FEED_CLOCK):
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
                for statement in ddl_statements():
                    conn.exec_driver_sql(statement)
                style = conn.dialect.paramstyle
                for name, table in rows.items():
                    cols = list(table)
                    sql = (f"INSERT INTO {name} ({', '.join(cols)}) "
                           f"VALUES ({_placeholders(style, len(cols))})")
                    values = [v.tolist() if isinstance(v, np.ndarray) else list(v) for v in table.values()]
                    n = len(values[0]) if values else 0
                    for i in range(0, n, CHUNK):
                        chunk = list(zip(*(v[i:i + CHUNK] for v in values)))
                        if style == "named":
                            chunk = [{f"p{j}": x for j, x in enumerate(r)} for r in chunk]
                        conn.exec_driver_sql(sql, chunk)
    except sa.exc.SQLAlchemyError as exc:
        raise SimulationError(f"--prison-db {_shown(url)}: writing the NOMIS tables failed "
                              f"({exc.__class__.__name__}); nothing was committed") from exc
    finally:
        engine.dispose()


def emit(tables: dict, rng: np.random.Generator, rates: dict, out: Path, params, *,
         db_url: str | None = None) -> pa.Table:
    """Write the prison database and return its answer key (one row per OFFENDERS row).

    By default the database is the SQLite file ``out/nomis.sqlite`` (replaced if present). With
    `db_url` (any SQLAlchemy URL, e.g. ``postgresql+psycopg://postgres@localhost/nomis``) the
    tables are written there instead and no SQLite file is made.
    """
    rows, answer = build_tables(tables, rng, rates, params)
    if db_url is None:
        path = Path(out) / DB_FILE
        path.unlink(missing_ok=True)
        db_url = f"sqlite:///{path}"
    write_database(db_url, rows)
    return answer
