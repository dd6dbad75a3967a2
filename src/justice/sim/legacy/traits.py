"""What a person brings to every record of theirs: how chaotic their life is, the identities they
give, the surname they take, the addresses they live at.

Real register errors are not independent per record: a person with a chaotic life is misrecorded
everywhere, a person who gives a false date of birth to one system gives it every time, a woman
who marries is recorded under the new surname from then on, and people move. These traits are
drawn once per person (their own random stream, so no system's extract depends on another's),
and every emitter's `messy_identity` reads them. `truth/identity/identity_traits.parquet` and
`truth/identity/addresses.parquet` hold them as the answer key.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from justice.sim.courts import NONE

Columns = dict[str, np.ndarray]
# Spread (sd of log) of the per-person chaos multiplier on record error rates. ASSUMPTION: no
# published figure; chosen so that the messiest tenth of people have over twice the typical
# error rate, as Wang et al.'s concentration of duplicate records among repeat suspects suggests.
CHAOS_SIGMA = 0.6
# Share of that spread explained by the person's propensity to offend (chaotic lives and
# offending go together). ASSUMPTION.
CHAOS_FROM_RISK = 0.5
# Per-record rates are capped so that a very chaotic person still has some clean records.
MAX_RECORD_RATE = 0.9
# Moves of address a year. ASSUMPTION: about one move every five years for people in contact
# with the justice system (private renters move about every 2-4 years, English Housing Survey),
# more for chaotic lives through the chaos multiplier.
MOVES_PER_YEAR = 0.2
MAX_MOVES = 12
SYSTEM_CODES = ("magistrates", "crown", "prison", "probation", "interventions")
# Kinds of mess that put another real person's identity or identifier on a record.
OTHER_PERSON_KINDS = frozenset({"borrowed_identity", "pnc_wrong_person", "cro_wrong_person",
                                "prison_number_reused"})


@dataclass
class Traits:
    """Per-person identity traits, aligned with `persons` (row i is persons row i)."""

    chaos: np.ndarray              # float multiplier, mean 1
    surname_change_day: np.ndarray  # day number from which the new surname is used, NONE if none
    new_surname: np.ndarray        # object
    false_dob_system: np.ndarray   # object: the system given a false DOB, None
    false_dob: np.ndarray          # int64 day number or NONE
    borrowed_from: np.ndarray      # int64 persons row whose identity is given sometimes, -1
    alias_forename: np.ndarray     # object: the invented identity used repeatedly, None
    alias_surname: np.ndarray
    alias_dob: np.ndarray          # int64 or NONE
    move_person: np.ndarray        # address history: persons row, from day, postcode
    move_day: np.ndarray
    move_postcode: np.ndarray

    def rate(self, pos: np.ndarray, rate: float) -> np.ndarray:
        """Per-record probability: `rate` scaled by each record's person's chaos, capped."""
        return np.minimum(rate * self.chaos[pos], MAX_RECORD_RATE)

    def postcode_at(self, pos: np.ndarray, day: np.ndarray, postcode: np.ndarray) -> np.ndarray:
        """The postcode each person lived at on `day` (their first one before any move)."""
        out = np.asarray(postcode, dtype=object).copy()
        if not len(self.move_person) or not len(pos):
            return out
        key = self.move_person.astype(np.int64) * (1 << 32) + self.move_day + (1 << 31)
        q = pos.astype(np.int64) * (1 << 32) + np.asarray(day, np.int64) + (1 << 31)
        j = np.searchsorted(key, q, side="right") - 1
        hit = (j >= 0) & (self.move_person[np.maximum(j, 0)] == pos) & (np.asarray(day) != NONE)
        out[hit] = self.move_postcode[j[hit]]
        return out


def make_traits(rng: np.random.Generator, tables: dict[str, Columns], rates: dict[str, float],
                start: int, end: int) -> Traits:
    """Draw every person's identity traits (rates: one level of mess_levels.yaml)."""
    persons = tables["persons"]
    n = len(persons["person_id"])
    log_risk = np.log(np.maximum(persons["risk_score"].astype(float), 1e-9))
    z = (log_risk - log_risk.mean()) / (log_risk.std() or 1.0)
    x = CHAOS_SIGMA * (np.sqrt(CHAOS_FROM_RISK) * z
                       + np.sqrt(1 - CHAOS_FROM_RISK) * rng.standard_normal(n))
    chaos = np.exp(x)
    # Mean 1 over records, not people: people with chaotic lives have more records, and the
    # rates in mess_levels.yaml are per record.
    records = np.ones(n)
    for name in ("court_cases", "custody_spells", "supervision"):
        if name in tables:
            records += np.bincount(np.searchsorted(persons["person_id"], tables[name]["person_id"]),
                                   minlength=n)[:n]
    chaos /= np.average(chaos, weights=records)

    def person_rate(r: float) -> np.ndarray:
        return np.minimum(r * chaos, MAX_RECORD_RATE)

    sex = persons["sex"]
    dob = persons["dob"].astype(np.int64)
    # Surname changes from a date, mostly women (marriage, divorce, deed poll).
    p_change = np.where(sex == "F", rates["surname_change_f"], rates["surname_change_m"])
    change = rng.random(n) < p_change
    change_day = np.full(n, NONE, dtype=np.int64)
    change_day[change] = rng.integers(start, end + 1, int(change.sum()))
    surnames = persons["surname"]
    pick = rng.integers(0, n, n)
    new_surname = np.where(change, surnames[pick], None).astype(object)
    same = change & (new_surname == surnames)
    new_surname[same] = surnames[(pick[same] + 1) % n]
    change &= new_surname != surnames
    change_day[~change] = NONE
    new_surname[~change] = None

    # A false date of birth given consistently to one system.
    false = rng.random(n) < person_rate(rates["false_dob_person"])
    systems = np.array(SYSTEM_CODES, dtype=object)
    false_system = np.where(false, systems[rng.integers(0, len(systems), n)], None).astype(object)
    years = rng.integers(1, 6, n) * np.where(rng.random(n) < 0.5, -1, 1)
    false_dob = np.where(false & (dob != NONE), dob + years * 365 + rng.integers(-40, 41, n), NONE)
    false_system[false_dob == NONE] = None

    # A relative's or associate's identity (another real person of the same sex), sometimes.
    borrow = rng.random(n) < person_rate(rates["borrowed_identity_person"])
    borrowed_from = np.full(n, -1, dtype=np.int64)
    for s in ("M", "F"):
        pool = np.flatnonzero(sex == s)
        who = np.flatnonzero(borrow & (sex == s))
        if len(pool) > 1 and len(who):
            other = pool[rng.integers(0, len(pool), len(who))]
            other = np.where(other == who, pool[(np.searchsorted(pool, other) + 1) % len(pool)],
                             other)
            borrowed_from[who] = other

    # An invented identity used repeatedly (the alias a prisoner gives, in every system).
    p_alias = 1.0 - np.exp(-rates["alias_count"] * chaos)
    has_alias = rng.random(n) < p_alias
    alias_fore = np.where(has_alias, persons["forename"][rng.integers(0, n, n)], None)
    alias_sur = np.where(has_alias, surnames[rng.integers(0, n, n)], None)
    shift = rng.integers(-3 * 365, 3 * 365, n)
    alias_dob = np.where(has_alias & (dob != NONE), dob + shift, NONE)

    # Address histories: moves at a Poisson rate from the person's first contact on.
    entry = np.maximum(dob + 10 * 365, start - 5 * 365)
    years_span = np.maximum(end - entry, 0) / 365.25
    k = np.minimum(rng.poisson(MOVES_PER_YEAR * chaos * years_span), MAX_MOVES)
    move_person = np.repeat(np.arange(n), k)
    move_day = entry[move_person] + (rng.random(len(move_person))
                                     * (end - entry[move_person])).astype(np.int64)
    pc_pool = np.unique(np.asarray([p for p in persons["postcode"] if p is not None],
                                   dtype=object))
    move_postcode = pc_pool[rng.integers(0, len(pc_pool), len(move_person))]
    order = np.lexsort((move_day, move_person))
    return Traits(chaos=chaos, surname_change_day=change_day, new_surname=new_surname,
                  false_dob_system=false_system, false_dob=false_dob.astype(np.int64),
                  borrowed_from=borrowed_from, alias_forename=alias_fore.astype(object),
                  alias_surname=alias_sur.astype(object), alias_dob=alias_dob.astype(np.int64),
                  move_person=move_person[order], move_day=move_day[order],
                  move_postcode=move_postcode[order])


def _dates(days: np.ndarray) -> pa.Array:
    days = np.asarray(days, np.int64)
    return pa.array(np.where(days == NONE, 0, days).astype(np.int32), pa.date32(),
                    mask=days == NONE)


def traits_tables(traits: Traits, persons: Columns) -> dict[str, pa.Table]:
    """The answer-key tables: identity_traits (one row per person) and addresses (one row per
    address a person lived at, the first from before the window)."""
    pid = persons["person_id"]
    other = np.where(traits.borrowed_from >= 0, pid[np.maximum(traits.borrowed_from, 0)], None)
    traits_t = pa.table({
        "person_id": pa.array(pid.tolist(), pa.string()),
        "chaos": pa.array(traits.chaos),
        "surname_change_date": _dates(traits.surname_change_day),
        "new_surname": pa.array(traits.new_surname.tolist(), pa.string()),
        "false_dob_system": pa.array(traits.false_dob_system.tolist(), pa.string()),
        "false_dob": _dates(traits.false_dob),
        "borrows_identity_of": pa.array(other.tolist(), pa.string()),
        "alias_forename": pa.array(traits.alias_forename.tolist(), pa.string()),
        "alias_surname": pa.array(traits.alias_surname.tolist(), pa.string()),
        "alias_dob": _dates(traits.alias_dob),
    })
    n = len(pid)
    first = np.full(n, NONE, dtype=np.int64)
    person = np.r_[np.arange(n), traits.move_person]
    day = np.r_[first, traits.move_day]
    pc = np.r_[persons["postcode"].astype(object), traits.move_postcode.astype(object)]
    order = np.lexsort((day, person))
    addresses = pa.table({
        "person_id": pa.array(pid[person[order]].tolist(), pa.string()),
        "from_date": _dates(day[order]),
        "postcode": pa.array(pc[order].tolist(), pa.string()),
    })
    return {"identity_traits": traits_t, "addresses": addresses}
