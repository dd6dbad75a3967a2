"""How a person's identity looks in one legacy system's record: the truth, with that system's mess.

Every emitter calls `messy_identity` for its person-bearing records, so the kinds and rates of
error are the same everywhere and each record's applied mess is known for the answer key.

With `traits` (justice.sim.legacy.traits, drawn once per person) the mess is correlated within a
person: every per-record rate is scaled by the person's chaos, a person who borrows a relative's
identity or uses an invented one does so on some of their records in every system, a false date
of birth goes to one system every time, a surname change holds on every record from its date,
and the postcode is the address the person lived at on the record's day. Without traits (the live
feed) records get the per-record kinds only.
"""

from __future__ import annotations

import numpy as np

from justice import identifiers
from justice.sim import mess
from justice.sim.courts import NONE
from justice.sim.legacy.traits import Traits

Columns = dict[str, np.ndarray]
IDENTITY_FIELDS = ("forename", "middle_name", "surname", "sex", "dob", "postcode",
                   "pnc_id", "cro_number", "prison_number", "crn")
# Share of a deceiver's records that carry the borrowed identity, and of an alias user's records
# held under the alias. ASSUMPTION: Wang et al. found deception on a minority of a suspect's
# records; most records still carry the true identity (fingerprints and custody photos catch it).
BORROWED_RECORD_SHARE = 0.3
ALIAS_RECORD_SHARE = 0.15
# Share of identifier typos whose check letter was re-keyed to fit (a system that validates the
# check letter rejects the typo, and a clerk who "fixes" the letter makes it valid). ASSUMPTION.
CHECK_REFIT_SHARE = 0.25
# How systems write "no fixed abode" in a postcode field (as seen in court and police extracts).
NFA_FORMS = ("NFA", "N.F.A.", "NO FIXED ABODE", "NFA NFA", "ZZ99 3VZ")


def person_rows(tables: dict[str, Columns], person_ids: np.ndarray) -> Columns:
    """The true identity fields of each person in `person_ids` (which may repeat); `_pos` is each
    person's row in `persons` (for their traits)."""
    persons = tables["persons"]
    pos = np.searchsorted(persons["person_id"], person_ids)
    out = {f: persons[f][pos].copy() for f in IDENTITY_FIELDS}
    out["person_id"] = np.asarray(person_ids, dtype=object)
    out["_pos"] = pos
    return out


def _dob_as_datetime(days: np.ndarray) -> np.ndarray:
    out = np.full(len(days), np.datetime64("NaT"), dtype="datetime64[D]")
    ok = days != NONE
    out[ok] = days[ok].astype("datetime64[D]")
    return out


def _refit_check(values: np.ndarray, mask: np.ndarray, kind: str) -> np.ndarray:
    """Copy of `values` with the check letter of ids at `mask` recomputed to fit their digits."""
    out = values.copy()
    for i in np.flatnonzero(mask).tolist():
        s = out[i]
        if kind == "pnc":
            m = identifiers.PNC_RE.match(s)
            if m:
                out[i] = s[:-1] + identifiers.pnc_check_char(int(m[1]), int(m[2]))
        else:
            m = identifiers.CRO_RE.match(s)
            if m:
                out[i] = s[:-1] + identifiers.cro_check_char(int(m[2]), int(m[1]))
    return out


def _swap_ids(rng: np.random.Generator, values: np.ndarray, mask: np.ndarray,
              pool_ids: np.ndarray, pool_person: np.ndarray, pos: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Another real person's id keyed in place of the record's own (where it had one)."""
    out = values.copy()
    other = np.full(len(values), -1, dtype=np.int64)
    idx = np.flatnonzero(mask & np.array([v is not None for v in values], bool))
    if not len(idx) or len(pool_ids) < 2:
        return out, np.zeros(len(values), bool), other
    pick = rng.integers(0, len(pool_ids), len(idx))
    clash = pool_person[pick] == pos[idx]
    pick[clash] = (pick[clash] + 1) % len(pool_ids)
    out[idx] = pool_ids[pick]
    other[idx] = pool_person[pick]
    applied = np.zeros(len(values), bool)
    applied[idx] = True
    return out, applied, other


def messy_identity(rng: np.random.Generator, rows: Columns, rates: dict[str, float], *,
                   surname_pool: np.ndarray, ids: tuple[str, ...] = ("pnc_id", "cro_number"),
                   upper_case: bool = False, traits: Traits | None = None,
                   system: str | None = None, record_day: np.ndarray | None = None,
                   persons: Columns | None = None, with_postcode: bool = True
                   ) -> tuple[Columns, np.ndarray]:
    """Apply name, date-of-birth, identifier, address and formatting mess to identity rows.

    Returns the messy rows (dob as datetime64[D] with NaT for missing) and, per row, the
    comma-separated sorted list of mess kinds actually applied ("" when clean). Identifier
    columns not named in `ids` are blanked: a system only holds the identifiers it knows. The
    rows also gain `_other_person`: the persons row whose identity or identifier a record
    carries by mistake or deceit (-1 if none).

    `traits`, `persons` (the truth table), `system` and `record_day` (day numbers) switch on the
    person-level mess; without them only per-record kinds apply. `with_postcode=False` for a
    system that holds no address (no address kinds are drawn or labelled).
    """
    n = len(rows["person_id"])
    labels: list[list[str]] = [[] for _ in range(n)]
    out = dict(rows)
    personal = traits is not None and persons is not None and "_pos" in rows
    pos = rows["_pos"] if personal else np.zeros(n, np.int64)
    day = (np.asarray(record_day, np.int64) if record_day is not None
           else np.full(n, NONE, np.int64))
    other = np.full(n, -1, dtype=np.int64)

    def note(kind: str, mask: np.ndarray) -> None:
        for i in np.flatnonzero(mask):
            labels[i].append(kind)

    # mess_levels.yaml's rates are per record of each system, but chaotic lives are not spread
    # evenly over the systems (prisoners are messier than most defendants): the chaos multiplier
    # is rescaled to average 1 over this system's records, so each system keeps its own rate and
    # the messier people in it still carry more of its errors.
    system_scale = 1.0 / float(np.mean(traits.chaos[pos])) if personal and n else 1.0

    def p(kind: str) -> np.ndarray:
        """Per-record probability of `kind`, scaled by the person's chaos when known."""
        return (traits.rate(pos, rates[kind] * system_scale) if personal
                else np.full(n, rates[kind]))

    def draw(kind: str) -> np.ndarray:
        return rng.random(n) < p(kind)

    fore, mid, sur = out["forename"].copy(), out["middle_name"].copy(), out["surname"].copy()
    sex, dob_days = out["sex"].copy(), out["dob"].copy()
    postcode = out["postcode"].copy()

    # ---- who the record says it is: own identity, surname from a date, alias, borrowed -------
    if personal:
        changed = (traits.surname_change_day[pos] != NONE) & (day != NONE) & (
            day >= traits.surname_change_day[pos])
        sur[changed] = traits.new_surname[pos[changed]]
        note("surname_change", changed)
        if with_postcode:
            postcode = traits.postcode_at(pos, np.where(day == NONE, 0, day), postcode)
            note("address_moved", (day != NONE) & np.array(
                [a != b for a, b in zip(postcode, out["postcode"], strict=True)], bool))
        use_alias = (traits.alias_forename[pos] != None) & (
            rng.random(n) < ALIAS_RECORD_SHARE)
        fore[use_alias] = traits.alias_forename[pos[use_alias]]
        sur[use_alias] = traits.alias_surname[pos[use_alias]]
        mid[use_alias] = None
        dob_days[use_alias] = traits.alias_dob[pos[use_alias]]
        note("alias", use_alias)
        borrow = (traits.borrowed_from[pos] >= 0) & ~use_alias & (
            rng.random(n) < BORROWED_RECORD_SHARE)
        src = traits.borrowed_from[pos[borrow]]
        for col, arr in (("forename", fore), ("middle_name", mid), ("surname", sur),
                         ("dob", dob_days)):
            arr[borrow] = persons[col][src]
        other[borrow] = src
        note("borrowed_identity", borrow)
        if system is not None:
            false = (traits.false_dob_system[pos] == system) & ~use_alias & ~borrow
            dob_days[false] = traits.false_dob[pos[false]]
            note("false_dob", false)

    # ---- names ----------------------------------------------------------------------------
    if upper_case:
        # Variant and form rules see the name as the system holds it.
        fore = np.array([v.upper() if isinstance(v, str) else v for v in fore], dtype=object)
        sur = np.array([v.upper() if isinstance(v, str) else v for v in sur], dtype=object)
        mid = np.array([v.upper() if isinstance(v, str) else v for v in mid], dtype=object)
    sur, m = mess.partial_surname(rng, sur, p("surname_partial") > rng.random(n))
    note("surname_partial", m)
    sur, m = mess.mac_form(rng, sur, p("mac_form") > rng.random(n))
    note("mac_form", m)
    which = rng.random(n) < 0.6  # forenames are misspelt more often than surnames
    f2, m1 = mess.respell(rng, fore, (p("name_variant") > rng.random(n)) & which,
                          (p("name_variant_table") > rng.random(n)) & which)
    s2, m2 = mess.respell(rng, sur, (p("name_variant") > rng.random(n)) & ~which,
                          (p("name_variant_table") > rng.random(n)) & ~which)
    fore, sur = f2, s2
    note("name_variant", m1 | m2)
    fore, m = mess.nickname(rng, fore, draw("nickname")); note("nickname", m)
    fore, sur, m = mess.swap_names(rng, fore, sur, draw("name_swap")); note("name_swap", m)
    fm = draw("forename_middle_swap") & np.array([isinstance(v, str) for v in mid], bool)
    fore[fm], mid[fm] = mid[fm], fore[fm].copy()
    note("forename_middle_swap", fm)
    has_mid = np.array([isinstance(v, str) for v in mid], bool)
    gone = draw("middle_missing") & has_mid
    mid[gone] = None
    note("middle_missing", gone)
    wrong_mid = draw("middle_wrong") & ~gone
    if wrong_mid.any():
        pick = rng.integers(0, len(surname_pool), int(wrong_mid.sum()))
        donors = persons["forename"] if persons is not None else fore
        new_mid = donors[pick % len(donors)]
        mid[wrong_mid] = [v.upper() if upper_case and isinstance(v, str) else v for v in new_mid]
        note("middle_wrong", wrong_mid & (mid != out["middle_name"]))
    fore, m = mess.initial_only(rng, fore, draw("initials_only")); note("initials_only", m)
    which = rng.random(n) < 0.5
    f2, m1 = mess.typo(rng, fore, which & draw("name_typo"))
    s2, m2 = mess.typo(rng, sur, (~which) & draw("name_typo"))
    fore, sur = f2, s2
    note("name_typo", m1 | m2)
    flip = draw("sex_wrong") & np.isin(sex, ["M", "F"])
    sex = sex.copy()
    sex[flip] = np.where(sex[flip] == "M", "F", "M")
    note("sex_wrong", flip)

    # ---- dates of birth --------------------------------------------------------------------
    dob = _dob_as_datetime(dob_days)
    dob, m = mess.dob_day_month_swap(rng, dob, p("dob_day_month_swap")
                                     > rng.random(n)); note("dob_day_month_swap", m)
    dob, m = mess.dob_first_of_january(rng, dob, p("dob_first_jan")
                                       > rng.random(n)); note("dob_first_jan", m)
    dob, m = mess.dob_shift(rng, dob, p("dob_shift") > rng.random(n)); note("dob_shift", m)
    dob, m = mess.blank(rng, dob, p("dob_missing") > rng.random(n)); note("dob_missing", m)

    # ---- identifiers -------------------------------------------------------------------------
    for col in ("pnc_id", "cro_number", "prison_number", "crn"):
        if col not in ids:
            out[col] = np.full(n, None, dtype=object)
    for col, short in (("pnc_id", "pnc"), ("cro_number", "cro")):
        if col not in ids:
            continue
        vals, m = mess.blank(rng, out[col], p(f"{short}_missing") > rng.random(n))
        note(f"{short}_missing", m)
        vals, m = mess.id_digit_typo(rng, vals, p(f"{short}_digit_typo") > rng.random(n))
        refit = m & (rng.random(n) < CHECK_REFIT_SHARE)
        vals = _refit_check(vals, refit, short)
        note(f"{short}_digit_typo", m)
        if personal:
            has = np.flatnonzero(np.array([v is not None for v in persons[col]], bool))
            vals, m, who = _swap_ids(rng, vals, draw(f"{short}_wrong_person"),
                                     persons[col][has], has, pos)
            other[m] = who[m]
            note(f"{short}_wrong_person", m)
        if short == "pnc":
            vals, m = mess.bad_check_char(rng, vals, p("pnc_bad_check") > rng.random(n))
            note("pnc_bad_check", m)
        out[col] = vals

    # ---- address ------------------------------------------------------------------------------
    if not with_postcode:
        postcode = np.full(n, None, dtype=object)
    has_pc = np.array([isinstance(v, str) for v in postcode], bool)
    postcode, m = mess.postcode_typo(rng, postcode, p("postcode_typo") > rng.random(n))
    note("postcode_typo", m)
    nfa = draw("no_fixed_abode") & has_pc
    forms = np.array(NFA_FORMS, dtype=object)
    postcode = postcode.copy()
    postcode[nfa] = forms[rng.integers(0, len(forms), int(nfa.sum()))]
    note("no_fixed_abode", nfa)

    # ---- formatting ---------------------------------------------------------------------------
    sur, m = mess.whitespace(rng, sur, p("whitespace") > rng.random(n)); note("whitespace", m)
    sur, m = mess.mojibake(rng, sur, p("encoding_error") > rng.random(n))
    note("encoding_error", m)
    out.update(forename=fore, middle_name=mid, surname=sur, sex=sex, dob=dob, postcode=postcode)
    out["_other_person"] = other
    return out, np.array([",".join(sorted(set(x))) for x in labels], dtype=object)
