"""Life in custody: establishments, cells and cell-sharing, CSRA, alerts, incidents,
non-associations and adjudications, for the custody spells the careers produced.

Cells are allocated stay by stay in time order, so cell-sharing is real (two people in one cell
at one time) and a prisoner assessed as high risk in the Cell Sharing Risk Assessment is never
put in a shared cell.
"""

from __future__ import annotations

import csv
import heapq
from importlib import resources

import numpy as np

from justice.sim import reference as ref
from justice.sim.arrays import KeyedRandom, rank_within_runs
from justice.sim.courts import NONE

Columns = dict[str, np.ndarray]
WINGS = "ABCDEFGH"
# The legacy prison system's alert codes are effective from 1 January 2000 (the code table the
# warehouse seeds from, transform/seeds/alert_codes.csv): no alert is recorded before it.
ALERTS_FROM = ref.day_number("2000-01-01")
LANDINGS = 4
CELLS_PER_LANDING = 30


def alert_codes() -> list[dict]:
    """The alert code reference table (`reference/alert_codes.csv`)."""
    text = resources.files("justice.sim").joinpath("reference", "alert_codes.csv").read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


SECOND_SITES = ("Grange", "Moor", "Park", "Hill", "Heath", "Fields")
"""Names for a second prison in a town (as HMP Wakefield and HMP New Hall near it)."""


def make_establishments(rng: np.random.Generator, n: int, town_names: np.ndarray, w: dict) -> Columns:
    """n establishments with NOMIS-like three-letter agency codes, names and a function."""
    n_female = max(1, round(n * w["custody"]["women_establishment_share"]))
    n_yoi = 1 if n >= 4 else 0
    kind = np.array(["female"] * n_female + ["young_offender"] * n_yoi + ["male_adult"] * (n - n_female - n_yoi),
                    dtype=object)
    codes: list[str] = []
    letters = np.array(list("ABCDEFGHJKLMNPRSTUVWY"))
    while len(codes) < n:
        c = "".join(rng.choice(letters, 2)) + "I"  # real agency ids end in I (e.g. MDI)
        if c not in codes:
            codes.append(c)
    # One town each while the towns last; a big world (1,000,000 people hold about 33 prisons)
    # may need more prisons than it has court towns: those share a town under another name.
    towns = [str(t) for t in town_names] or ["Newtown"]
    places = [towns[i % len(towns)] if i < len(towns) else
              f"{towns[i % len(towns)]} {SECOND_SITES[(i // len(towns) - 1) % len(SECOND_SITES)]}"
              for i in range(n)]
    names = np.array([f"HMP {t}" if k != "young_offender" else f"HMYOI {t}" for t, k in zip(places, kind)],
                     dtype=object)
    return {"establishment_code": np.array(codes, dtype=object), "name": names, "function": kind}


def split_into_stays(spells: Columns, establishments: Columns, w: dict, window_end: int) -> Columns:
    """Cut each custody spell into stays at one establishment and one cell (transfers, moves).

    Draws are keyed by each spell's `draw_key` (arrays.KeyedRandom), so a spell that another
    policy leaves alone keeps its stays and establishments. Stays carry their own `draw_key`.
    """
    cw = w["custody"]
    n = len(spells["spell_id"])
    rng = KeyedRandom(spells["draw_key"], 4)
    end = np.where(spells["release_day"] == NONE, window_end + 1, spells["release_day"])
    years = np.maximum(end - spells["reception_day"], 1) / 365.25
    n_moves = rng.poisson((cw["cell_move_rate_per_year"] + cw["transfer_rate_per_year"]) * years)
    n_moves = np.minimum(n_moves, 60)
    spell_of = np.repeat(np.arange(n), n_moves + 1)
    stay_rng = rng.child(spell_of, rank_within_runs(spell_of))
    # Cut points uniform in the spell, sorted within each spell.
    u = stay_rng.random(len(spell_of))
    first = np.r_[True, spell_of[1:] != spell_of[:-1]]
    u[first] = 0.0
    order = np.lexsort((u, spell_of))
    u = u[order]
    # A spell's establishment and transfers are drawn per stay in time order, so a spell cut
    # short by an earlier release keeps the same start.
    u_est, u_transfer = stay_rng.random(len(spell_of)), stay_rng.random(len(spell_of))
    stay_key = stay_rng.keys
    start = spells["reception_day"][spell_of] + np.floor(u * (end[spell_of] - spells["reception_day"][spell_of])).astype(np.int64)
    stay_end = np.r_[start[1:], 0]
    last = np.r_[spell_of[1:] != spell_of[:-1], True]
    stay_end[last] = end[spell_of[last]]
    keep = stay_end > start
    keep[first] = True
    spell_of, start, stay_end, first = spell_of[keep], start[keep], stay_end[keep], first[keep]
    u_est, u_transfer, stay_key = u_est[keep], u_transfer[keep], stay_key[keep]
    stay_end = np.maximum(stay_end, start + 1)

    # Establishment: chosen at reception by function; a move is a transfer with some chance.
    func = establishments["function"]
    sex = spells["sex"][spell_of]
    young = spells["age"][spell_of] < 21
    want = np.where(sex == "F", "female", np.where(young & np.any(func == "young_offender"), "young_offender",
                                                    "male_adult"))
    est = np.empty(len(spell_of), dtype=np.int64)
    for kind in np.unique(want):
        pool = np.flatnonzero(func == kind)
        if len(pool) == 0:
            pool = np.flatnonzero(func == "male_adult")
        m = want == kind
        est[m] = pool[np.minimum(np.floor(u_est[m] * len(pool)).astype(np.int64), len(pool) - 1)]
    transfer = ~first & (u_transfer < cw["transfer_rate_per_year"] / (
        cw["cell_move_rate_per_year"] + cw["transfer_rate_per_year"]))
    # Carry the establishment forward within a spell unless a transfer happens.
    block = np.cumsum(first | transfer)
    est = est[np.r_[0, np.flatnonzero(np.diff(block)) + 1]][block - 1]
    return {"spell": spell_of, "start_day": start, "end_day": stay_end, "establishment": est,
            "is_reception": first, "is_transfer": transfer, "draw_key": stay_key}


def allocate_cells(rng: np.random.Generator, stays: Columns, csra_high: np.ndarray, n_establishments: int,
                   double_share: float) -> np.ndarray:
    """Give every stay a cell (establishment-local index), honouring single-cell CSRA decisions.

    A greedy sweep in time order per establishment: a stay takes a free bed in a cell with one
    occupant who may share, with probability `double_share`, else an empty cell (a new one is
    opened when none is free), so cells hold at most two people and high-risk people hold a cell
    alone.
    """
    cell = np.full(len(stays["spell"]), -1, dtype=np.int64)
    u = rng.random(len(cell))
    for e in range(n_establishments):
        idx = np.flatnonzero(stays["establishment"] == e)
        idx = idx[np.lexsort((idx, stays["start_day"][idx]))]
        releases: list[tuple[int, int, int]] = []  # (end, cell, stay)
        occupants: dict[int, list[int]] = {}
        empty: list[int] = []
        half: set[int] = set()
        n_cells = 0
        for s in idx:
            t = stays["start_day"][s]
            while releases and releases[0][0] <= t:
                _, c, who = heapq.heappop(releases)
                occupants[c].remove(who)
                if not occupants[c]:
                    half.discard(c)
                    heapq.heappush(empty, c)
                elif not csra_high[occupants[c][0]]:
                    half.add(c)
            # A cell move goes to a different cell: the one just left is not a candidate.
            avoid = -1 if stays["is_reception"][s] or stays["is_transfer"][s] else cell[s - 1]
            c = -1
            if not csra_high[s] and u[s] < double_share:
                c = next((h for h in half if h != avoid), -1)
                if c >= 0:
                    half.discard(c)
            if c < 0:
                skipped = heapq.heappop(empty) if empty and empty[0] == avoid else -1
                if empty:
                    c = heapq.heappop(empty)
                else:
                    c, n_cells = n_cells, n_cells + 1
                    occupants[c] = []
                if skipped >= 0:
                    heapq.heappush(empty, skipped)
                if not csra_high[s]:
                    half.add(c)
            occupants[c].append(s)
            cell[s] = c
            heapq.heappush(releases, (int(stays["end_day"][s]), c, int(s)))
    return cell


def cell_label(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wing, landing, cell number) of establishment-local cell indices."""
    per_wing = LANDINGS * CELLS_PER_LANDING
    wing = np.array(list(WINGS), dtype=object)[(cell // per_wing) % len(WINGS)]
    # Past eight wings, overflow units are named by doubling the letter (AA, BB, ...).
    wing = np.where(cell // per_wing >= len(WINGS), wing + wing, wing)
    landing = (cell % per_wing) // CELLS_PER_LANDING + 1
    number = cell % CELLS_PER_LANDING + 1
    return wing, landing, number


def _events_in_stays(rng: np.random.Generator, stays: Columns, rate_per_year: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events at the given yearly rates during each stay: (stay index, day)."""
    days = stays["end_day"] - stays["start_day"]
    counts = rng.poisson(rate_per_year * days / 365.25)
    stay = np.repeat(np.arange(len(days)), counts)
    day = stays["start_day"][stay] + np.floor(rng.random(len(stay)) * days[stay]).astype(np.int64)
    return stay, day


def _copresent(rng: np.random.Generator, stays: Columns, stay: np.ndarray, day: np.ndarray,
               same_cell_wing: bool = False) -> np.ndarray:
    """For each (stay, day), another stay at the same establishment on that day (or -1)."""
    est = stays["establishment"]
    order = np.lexsort((stays["start_day"], est))
    starts = stays["start_day"][order]
    ests = est[order]
    out = np.full(len(stay), -1, dtype=np.int64)
    lo_est = np.searchsorted(ests, est[stay], side="left")
    hi_est = np.searchsorted(ests, est[stay], side="right")
    for i in range(len(stay)):
        lo = lo_est[i]
        hi = lo + np.searchsorted(starts[lo:hi_est[i]], day[i], side="right")
        if hi <= lo:
            continue
        cand = order[rng.integers(lo, hi, 40)]
        ok = (stays["end_day"][cand] > day[i]) & (stays["person"][cand] != stays["person"][stay[i]])
        if same_cell_wing:
            ok &= stays["wing"][cand] == stays["wing"][stay[i]]
        hit = np.flatnonzero(ok)
        if len(hit):
            out[i] = cand[hit[0]]
    return out


def life_in_custody(rng: np.random.Generator, stays: Columns, persons: Columns, spells: Columns,
                    w: dict, window_end: int) -> dict[str, Columns]:
    """Incidents (with parties), non-associations, alerts, CSRA assessments and adjudications."""
    cw = w["custody"]
    p = stays["person"]
    risk = persons["risk"][p]
    female = persons["sex"][p] == "F"
    age = (stays["start_day"] - persons["dob"][p]) / 365.25
    youth = np.clip((40 - age) / 15, 0.3, 1.8)

    # Self-harm is concentrated: a minority of prisoners (far more women) harm themselves often.
    # Self-harm and assaults draw from streams of their own, so tuning one does not reshuffle
    # the other (a Poisson draw takes a varying number of uniforms).
    sh_rng, assault_rng = rng.spawn(2)
    sh = cw["self_harm"]
    prone = persons["self_harm_prone"][p]
    sh_stay, sh_day = _events_in_stays(sh_rng, stays, np.where(prone, sh["rate_per_year_when_prone"], 0.0))
    violence = np.minimum(risk, 5.0) * youth * np.where(female, 0.6, 1.0)
    violence = violence / max(violence.mean(), 1e-9)
    ap_stay, ap_day = _events_in_stays(assault_rng, stays, cw["assault"]["on_prisoner_per_year"] * violence)
    as_stay, as_day = _events_in_stays(assault_rng, stays, cw["assault"]["on_staff_per_year"] * violence)
    victim = _copresent(rng, stays, ap_stay, ap_day, same_cell_wing=True)
    missing = victim < 0
    victim[missing] = _copresent(rng, stays, ap_stay[missing], ap_day[missing])
    ok = victim >= 0
    ap_stay, ap_day, victim = ap_stay[ok], ap_day[ok], victim[ok]

    inc_type = np.concatenate([np.full(len(sh_stay), "SELF_HARM", object), np.full(len(ap_stay), "ASSAULT_ON_PRISONER", object),
                               np.full(len(as_stay), "ASSAULT_ON_STAFF", object)])
    inc_stay = np.concatenate([sh_stay, ap_stay, as_stay])
    inc_day = np.concatenate([sh_day, ap_day, as_day])
    order = np.lexsort((inc_stay, inc_day))
    inc_type, inc_stay, inc_day = inc_type[order], inc_stay[order], inc_day[order]
    victim_full = np.full(len(order), -1, dtype=np.int64)
    victim_full[len(sh_stay):len(sh_stay) + len(ap_stay)] = victim
    victim_full = victim_full[order]
    incidents = {"incident": np.arange(len(order)), "type": inc_type, "day": inc_day, "stay": inc_stay,
                 "establishment": stays["establishment"][inc_stay]}
    role_main = np.where(inc_type == "SELF_HARM", "SELF_HARMER", "PERPETRATOR").astype(object)
    has_v = victim_full >= 0
    parties = {
        "incident": np.concatenate([incidents["incident"], incidents["incident"][has_v]]),
        "person": np.concatenate([p[inc_stay], p[victim_full[has_v]]]),
        "role": np.concatenate([role_main, np.full(int(has_v.sum()), "VICTIM", object)]),
    }

    # Non-associations: after an assault between prisoners, and among rival groups.
    na_from_assault = rng.random(int(has_v.sum())) < 0.6
    a_p1 = p[inc_stay[has_v]][na_from_assault]
    a_p2 = p[victim_full[has_v]][na_from_assault]
    a_day = inc_day[has_v][na_from_assault]
    g_stay, g_day = _events_in_stays(rng, stays, np.where(stays["is_reception"], cw[
        "non_associations_from_gangs_per_prisoner"] * 365.25 / np.maximum(stays["end_day"] - stays["start_day"], 1), 0))
    g_other = _copresent(rng, stays, g_stay, g_day)
    okg = g_other >= 0
    na_p1 = np.concatenate([a_p1, p[g_stay[okg]]])
    na_p2 = np.concatenate([a_p2, p[g_other[okg]]])
    na_day = np.concatenate([a_day, g_day[okg]])
    k = len(na_p1)
    reason = np.concatenate([np.full(len(a_p1), "VIC", object), rng.choice(
        np.array(["GANG", "BUL", "RIV", "TH"], dtype=object), int(okg.sum()), p=[0.5, 0.2, 0.2, 0.1])])
    non_assoc = {
        "person": na_p1, "other_person": na_p2, "effective_day": na_day, "reason": reason,
        "role": np.where(reason == "VIC", "PERPETRATOR", "NOT_RELEVANT").astype(object),
        "other_role": np.where(reason == "VIC", "VICTIM", "NOT_RELEVANT").astype(object),
        "restriction": rng.choice(np.array(["CELL", "LANDING", "WING"], dtype=object), k, p=[0.45, 0.35, 0.2]),
        "expiry_day": np.where(rng.random(k) < 0.25, na_day + rng.integers(90, 720, k), NONE),
    }
    non_assoc["expiry_day"] = np.where(non_assoc["expiry_day"] > window_end, NONE, non_assoc["expiry_day"])

    # Alerts: ACCT opened at self-harm (unless one is open), staff assaulter, offence-based and
    # reception alerts from the reference table.
    al_person, al_code, al_start, al_end = [], [], [], []
    sh_p = p[sh_stay]
    order = np.lexsort((sh_day, sh_p))
    acct_open_until: dict[int, int] = {}
    for i in order:
        person, d = int(sh_p[i]), int(sh_day[i])
        if acct_open_until.get(person, NONE) >= d:
            continue
        close = d + int(max(7, round(cw["acct_open_days_median"] * np.exp(rng.normal(0, 0.6)))))
        acct_open_until[person] = close
        al_person += [person, person]
        al_code += ["HA", "HA1"]
        al_start += [d, close]
        al_end += [close, close + 90]
    first_sh = {}
    for i in order:
        first_sh.setdefault(int(sh_p[i]), int(sh_day[i]))
    for person, d in first_sh.items():
        al_person.append(person)
        al_code.append("HSH")
        al_start.append(d)
        al_end.append(NONE)
    staff_p = p[as_stay]
    first_staff: dict[int, int] = {}
    for i in np.argsort(as_day, kind="stable"):
        first_staff.setdefault(int(staff_p[i]), int(as_day[i]))
    for person, d in first_staff.items():
        al_person.append(person)
        al_code.append("XSA")
        al_start.append(d)
        al_end.append(NONE)
    rec = np.flatnonzero(stays["is_reception"])
    for row in alert_codes():
        prev = float(row["prevalence_on_reception"])
        trigger = row["trigger"]
        if trigger == "reception" and prev > 0:
            hit = rec[rng.random(len(rec)) < prev]
        elif trigger == "sexual_offence":
            hit = rec[spells["sexual_offence"][stays["spell"][rec]]]
        elif trigger == "arson_offence":
            hit = rec[spells["arson_offence"][stays["spell"][rec]]]
        else:
            continue
        al_person += list(p[hit])
        al_code += [row["alert_code"]] * len(hit)
        al_start += list(stays["start_day"][hit])
        al_end += [NONE] * len(hit)
    al_end_arr = np.array(al_end, dtype=np.int64)
    al_start_arr = np.array(al_start, dtype=np.int64)
    alerts = {"person": np.array(al_person, dtype=np.int64), "code": np.array(al_code, dtype=object),
              "start_day": al_start_arr, "end_day": np.where(al_end_arr > window_end, NONE, al_end_arr)}
    # Nothing after the window, and nothing before the prison system's alert codes took effect
    # (ALERTS_FROM): with the twenty-year burn-in, long-stay prisoners' self-harm from the 1990s
    # would otherwise carry ACCT codes the system did not yet have (no description downstream).
    # A filter after every draw, so no other draw moves.
    recorded = (al_start_arr <= window_end) & (al_start_arr >= ALERTS_FROM)
    alerts = {k: v[recorded] for k, v in alerts.items()}

    # CSRA at every reception; reviewed to high after an assault on another prisoner.
    csra_rec = {"stay": rec, "day": stays["start_day"][rec], "level": np.where(
        stays["csra_high"][rec], "HIGH", "STANDARD").astype(object),
        "reason": np.full(len(rec), "RECEPTION", object)}
    rev = np.flatnonzero(has_v)
    csra = {
        "person": np.concatenate([p[rec], p[inc_stay[rev]]]),
        "day": np.concatenate([csra_rec["day"], np.minimum(inc_day[rev] + 2, stays["end_day"][inc_stay[rev]] - 1)]),
        "level": np.concatenate([csra_rec["level"], np.full(len(rev), "HIGH", object)]),
        "reason": np.concatenate([csra_rec["reason"], np.full(len(rev), "REVIEW_AFTER_INCIDENT", object)]),
        "establishment": np.concatenate([stays["establishment"][rec], stays["establishment"][inc_stay[rev]]]),
    }
    keep = csra["day"] <= window_end
    csra = {k: v[keep] for k, v in csra.items()}

    # Adjudications: disciplinary charges, one for each assault plus a background rate.
    ad_stay, ad_day = _events_in_stays(rng, stays, cw["adjudications_per_year"] * np.sqrt(violence))
    charges = np.array(["Disobeys any lawful order", "Has in possession an unauthorised article",
                        "Uses threatening, abusive or insulting words or behaviour", "Fights with any person",
                        "Is found with a controlled drug", "Damages prison property"], dtype=object)
    a_stay = np.concatenate([ad_stay, ap_stay, as_stay])
    # An assault is charged within a couple of days, while the prisoner is still there.
    a_day = np.concatenate([ad_day, ap_day, as_day]) + np.concatenate([
        np.zeros(len(ad_stay), np.int64), rng.integers(0, 3, len(ap_stay) + len(as_stay))])
    a_day = np.minimum(a_day, stays["end_day"][a_stay] - 1)
    a_charge = np.concatenate([charges[rng.choice(len(charges), len(ad_stay), p=[0.25, 0.3, 0.2, 0.1, 0.1, 0.05])],
                               np.full(len(ap_stay), "Commits any assault", object),
                               np.full(len(as_stay), "Commits any assault on an officer", object)])
    m = len(a_stay)
    u = rng.random(m)
    adjud = {
        "person": p[a_stay], "day": np.minimum(a_day, window_end), "establishment": stays["establishment"][a_stay],
        "charge": a_charge,
        "finding": np.select([u < 0.68, u < 0.80], ["PROVED", "DISMISSED"], "NOT_PROCEEDED_WITH").astype(object),
    }
    adjud["punishment"] = np.where(adjud["finding"] == "PROVED", rng.choice(np.array(
        ["Loss of privileges", "Forfeiture of earnings", "Cellular confinement", "Caution", "Additional days"],
        dtype=object), m, p=[0.4, 0.25, 0.15, 0.1, 0.1]), None).astype(object)
    return {"incidents": incidents, "incident_parties": parties, "non_associations": non_assoc,
            "alerts": alerts, "assessments": csra, "adjudications": adjud}
