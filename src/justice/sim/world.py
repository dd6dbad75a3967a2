"""Simulate the whole world and write its truth: the clean answer key the pipeline never reads."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from faker import Faker

from justice import identifiers
from justice.errors import SimulationError
from justice.policy import load_release_rules
from justice.sim import careers, one_offs, out_of_court
from justice.sim import people as people_mod
from justice.sim import reference as ref
from justice.sim.courts import NONE
from justice.sim.params import SimulationParams

Columns = dict[str, np.ndarray]
Progress = Callable[[str], None]

# Independent random streams, one per part of the world, so that changing one part does not
# reshuffle every other part's draws.
STREAMS = ("people", "careers", "identifiers", "custody", "cells", "life", "probation", "places", "topup")


@dataclass
class World:
    """The simulated world: named truth tables (columns of numpy arrays) and its params."""

    params: SimulationParams
    tables: dict[str, Columns]
    calibration: list[dict] | None = None


def _streams(seed: int, salt: int = 0) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence([seed, salt]).spawn(len(STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(STREAMS, children)}


def _town_names(seed: int, n: int) -> np.ndarray:
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    seen: list[str] = []
    while len(seen) < n:
        town = fake.city()
        if town not in seen:
            seen.append(town)
    return np.array(seen, dtype=object)


def _simulate_candidates(params: SimulationParams, w: dict, n: int, salt: int,
                         pools, postcodes) -> tuple[Columns, Columns, Columns]:
    rng = _streams(params.seed, salt)
    start = ref.day_number(params.start) - 365 * params.burn_in_years
    end = ref.day_number(params.end)
    entry = rng["people"].integers(start, end + 1, n)
    people = people_mod.make_people(rng["people"], n, entry, w, pools, postcodes)
    entry = people_mod.add_twins_and_namesakes(rng["people"], people, entry,
                                               w["population"]["twin_share"],
                                               # Half the free people at most copy the other half.
                                               one_offs.world_number(w["population"], "namesake_share",
                                                                     0.0, 0.5, "population"), pools)
    episodes, offences = careers.simulate_careers(rng["careers"], people, entry, w, end,
                                                  ref.day_number(params.start))
    return people, episodes, offences


def _last_activity(ep: Columns) -> np.ndarray:
    days = np.stack([ep[c] for c in ep if c.endswith("_day")])
    return days.max(axis=0)


def simulate(params: SimulationParams, progress: Progress = lambda _: None) -> World:
    """Simulate people's journeys through the justice system and return the truth tables."""
    w = ref.world(params.world_file)
    w["_intervention_effect"] = params.intervention_effect
    w["_referral"] = params.referral
    # One rule set for the whole run: the package's rules plus the params' policy files.
    w["_release_rules"] = load_release_rules(extra=params.policy_files,
                                             without=params.withdrawn_rules)
    start, end = ref.day_number(params.start), ref.day_number(params.end)
    pools = people_mod.name_pools()
    postcodes = people_mod.postcode_pool(params.seed, max(2_000, min(params.persons // 4, 100_000)))

    # People come into contact over the burn-in and the window; those whose records are all
    # closed before the window opens are not part of the world. Top up until there are enough.
    progress("careers")
    parts: list[tuple[Columns, Columns, Columns]] = []
    kept = 0
    salt = 0
    factor = 1.45
    while kept < params.persons:
        need = int((params.persons - kept) * factor) + 50
        pe, ep, of = _simulate_candidates(params, w, need, salt, pools, postcodes)
        # Only people with activity in the window can be chosen: drop the rest now, so that
        # with a long burn-in the candidates whose careers closed before it do not stay in memory.
        pe, ep, of = _active_only(pe, ep, of, start)
        parts.append((pe, ep, of))
        kept += len(pe["sex"])
        salt += 1
        factor = 1.6
    # Handed on in a list each step empties, so no frame keeps a stage's arrays alive past it
    # (at 1,000,000 people the candidates and the burn-in's episodes are gigabytes).
    combined = list(_combine(parts, params.persons))
    progress("custody")
    rng = _streams(params.seed)
    tables = _build_tables(rng, params, w, combined, start, end)
    # Their own stream, apart from STREAMS: the careers' world is the same with or without them.
    progress("one-off summary cases")
    one_off_rng = np.random.default_rng(np.random.SeedSequence([params.seed, 9_311]))
    tables["one_off_cases"] = one_offs.simulate(one_off_rng, w, params.persons, tables["courts"], start, end,
                                                pools, postcodes)
    progress("one-off out-of-court disposals")
    ooc_rng = np.random.default_rng(np.random.SeedSequence([params.seed, 9_312]))
    tables["out_of_court_disposals"] = out_of_court.simulate(ooc_rng, w, params.persons, tables["courts"],
                                                             start, end)
    return World(params=params, tables=tables)


def _active_only(pe: Columns, ep: Columns, of: Columns, start: int) -> tuple[Columns, Columns, Columns]:
    """The candidates with activity on or after `start`, renumbered 0..k-1 in the same order."""
    active = np.zeros(len(pe["sex"]), bool)
    active[ep["person"][_last_activity(ep) >= start]] = True
    return _keep_people(pe, ep, of, active)


def _keep_people(pe: Columns, ep: Columns, of: Columns, keep: np.ndarray) -> tuple[Columns, Columns, Columns]:
    """The people where `keep` is true, with their episodes and offences, renumbered 0..k-1 in
    the same order; a twin or namesake reference to someone left out becomes -1."""
    new_id = np.full(len(keep), -1, dtype=np.int64)
    new_id[keep] = np.arange(int(keep.sum()))
    pe = {c: v[keep] for c, v in pe.items()}
    for col in ("twin_of", "namesake_of"):
        pe[col] = np.where(pe[col] >= 0, new_id[np.maximum(pe[col], 0)], -1)
    ep_keep = keep[ep["person"]]
    ep = {c: v[ep_keep] for c, v in ep.items()}
    ep["person"] = new_id[ep["person"]]
    of_keep = keep[of["person"]]
    of = {c: v[of_keep] for c, v in of.items()}
    of["person"] = new_id[of["person"]]
    return pe, ep, of


def _combine(parts: list, n_persons: int) -> tuple[Columns, Columns, Columns]:
    """Concatenate candidate batches (of people active in the window), keep the first n_persons,
    and renumber people 0..n-1 and episodes 0..m-1 in a stable order. Empties `parts`."""
    people_cols = parts[0][0].keys()
    offset = 0
    ep_offset = 0
    all_people, all_eps, all_offs = [], [], []
    for pe, ep, of in parts:
        ep = dict(ep)
        of = dict(of)
        n = len(pe["sex"])
        pe = dict(pe)
        for col in ("twin_of", "namesake_of"):
            pe[col] = np.where(pe[col] >= 0, pe[col] + offset, -1)
        ep["person"] = ep["person"] + offset
        of["person"] = of["person"] + offset
        ep["episode"] = ep["episode"] + ep_offset
        of["episode"] = of["episode"] + ep_offset
        # Past the part's highest episode number: `_active_only` leaves gaps in the numbering.
        ep_offset += int(ep["episode"].max()) + 1 if len(ep["episode"]) else 0
        offset += n
        all_people.append(pe)
        all_eps.append(ep)
        all_offs.append(of)
    people = {c: np.concatenate([p[c] for p in all_people]) for c in people_cols}
    eps = {c: np.concatenate([e[c] for e in all_eps]) for c in all_eps[0]}
    offs = {c: np.concatenate([o[c] for o in all_offs]) for c in all_offs[0]}
    for batches in (parts, all_people, all_eps, all_offs):
        batches.clear()
    # Every batch holds only people active in the window (`_active_only`): the first n_persons.
    people, eps, offs = _keep_people(people, eps, offs, np.arange(len(people["sex"])) < n_persons)
    # Episodes renumbered densely, in (person, offence day) order.
    order = np.lexsort((eps["episode"], eps["offence_day"], eps["person"]))
    eps = {c: v[order] for c, v in eps.items()}
    old = eps["episode"]
    sorter = np.argsort(old)
    offs["episode"] = sorter[np.searchsorted(old, offs["episode"], sorter=sorter)]
    eps["episode"] = np.arange(len(order))
    order = np.lexsort((offs["offence_day"], offs["episode"]))
    offs = {c: v[order] for c, v in offs.items()}
    return people, eps, offs


def _build_tables(rng, params, w, combined: list, start, end) -> dict[str, Columns]:
    """Turn episodes into the truth tables (identifiers, courts, custody, probation, ...).

    `combined` is `[people, episodes, offences]`, emptied here: the burn-in's episodes and
    offences are let go once the window's are taken out."""
    people, eps, offs = combined
    combined.clear()
    off_ref = ref.offences()
    n = len(people["sex"])
    # Records from the burn-in that closed before the window are history: they count as
    # previous offences but no system holds them any more.
    in_window_ep = _last_activity(eps) >= start
    tables: dict[str, Columns] = {}

    # Identifiers: a PNC ID at the first recordable arrest, a CRO number on conviction,
    # a prison number at first reception, a CRN at first supervision.
    rec = off_ref.recordable[offs["code"]]
    charge = eps["charge_day"][offs["episode"]]
    has_rec = rec & (charge != NONE)
    first_arrest = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_arrest, offs["person"][has_rec], charge[has_rec])
    has_pnc = first_arrest < np.iinfo(np.int64).max
    years = (np.datetime64("1970-01-01") + first_arrest[has_pnc].astype("timedelta64[D]")).astype("datetime64[Y]").astype(int) + 1970
    pnc = np.full(n, None, dtype=object)
    pnc[has_pnc] = identifiers.make_pnc_ids(rng["identifiers"], years)
    convicted_rec = np.zeros(n, bool)
    conv = eps["conviction_day"][offs["episode"]] != NONE
    convicted_rec[offs["person"][rec & conv]] = True
    cro = np.full(n, None, dtype=object)
    cro_years = years[convicted_rec[has_pnc]]
    cro[has_pnc & convicted_rec] = identifiers.make_cro_numbers(rng["identifiers"], cro_years)
    people["pnc_id"] = pnc
    people["cro_number"] = cro
    del rec, charge, has_rec, conv

    # Courts and regions.
    regions = np.array(w["population"]["regions"], dtype=object)
    n_mags = max(len(regions), params.persons // 40_000)
    n_crown = max(len(regions), params.persons // 90_000)
    towns = _town_names(params.seed, n_mags + n_crown + 200)
    mags_region = regions[np.arange(n_mags) % len(regions)]
    crown_region = regions[np.arange(n_crown) % len(regions)]
    courts = {
        "court_code": np.array([f"B{i + 1:02d}{j:03d}" for j, i in zip(range(n_mags), np.arange(n_mags) % len(regions))]
                               + [f"{400 + j:03d}" for j in range(n_crown)], dtype=object),
        "court_name": np.array([f"{t} Magistrates' Court" for t in towns[:n_mags]]
                               + [f"{t} Crown Court" for t in towns[n_mags:n_mags + n_crown]], dtype=object),
        "court_type": np.array(["magistrates"] * n_mags + ["crown"] * n_crown, dtype=object),
        "region": np.concatenate([mags_region, crown_region]),
    }
    tables["courts"] = courts
    person_region = people["region"]
    mags_court_of = np.empty(n, dtype=np.int64)
    crown_court_of = np.empty(n, dtype=np.int64)
    for r_i, r in enumerate(regions):
        m = person_region == r
        mc = np.flatnonzero(mags_region == r)
        cc = np.flatnonzero(crown_region == r) + n_mags
        mags_court_of[m] = mc[rng["places"].integers(0, len(mc), int(m.sum()))]
        crown_court_of[m] = cc[rng["places"].integers(0, len(cc), int(m.sum()))]

    e = {c: v[in_window_ep] for c, v in eps.items()}
    new_pos = np.full(len(in_window_ep), -1, dtype=np.int64)
    new_pos[in_window_ep] = np.arange(int(in_window_ep.sum()))
    e["episode"] = np.arange(int(in_window_ep.sum()))
    keep_off = new_pos[offs["episode"]] >= 0
    o = {c: v[keep_off] for c, v in offs.items()}
    o["episode"] = new_pos[o["episode"]]
    del eps, offs, in_window_ep, new_pos, keep_off
    tables["_episodes"] = e
    tables["_offences"] = o
    tables["_people"] = people
    tables["_courts_of"] = {"mags": mags_court_of, "crown": crown_court_of}
    from justice.sim import truth_tables

    truth_tables.build(rng, params, w, tables, start, end)
    for table in tables.values():
        for column, values in table.items():
            table[column] = _shared_labels(values)
    return tables


def _shared_labels(values: np.ndarray) -> np.ndarray:
    """A column of a few labels (an outcome, a movement, a finding) with one string object per
    label. Labels made by `np.where(...).astype(object)` are a new string object on every row:
    about 50 bytes a row where a reference is 8, a gigabyte at 1,000,000 people. The values are
    the same; a column of many distinct values (ids, names) is returned as it is."""
    if values.dtype != object or len(values) < 1_000:
        return values
    # A sample first, so that a column of ids or names is not hashed whole for nothing.
    if len(set(values[:: max(1, len(values) // 2_000)].tolist())) > 200:
        return values
    codes, labels = pd.factorize(values)
    # Only strings and None: factorize would read a float NaN as missing too, and make it None.
    if (len(labels) > 1_000 or not all(isinstance(v, str) for v in labels.tolist())
            or int((codes < 0).sum()) != int(np.equal(values, None).sum())):
        return values
    shared = np.empty(len(labels) + 1, dtype=object)
    shared[:-1] = labels  # index -1 (a missing value) reads the None at the end
    return shared[codes]


def simulate_to(params: SimulationParams, out: Path, progress: Progress = lambda _: None, *,
                legacy: bool = True, prison_db: str | None = None) -> World:
    """Simulate, measure calibration, write `out/truth/` and (by default) `out/legacy/`.

    `prison_db` is a SQLAlchemy URL for the prison system's database instead of the default
    SQLite file under `out/legacy/prison/`. Everything is written into a staging folder first
    and swapped in at the end, so a failed or killed run leaves the previous outputs intact.
    """
    from justice.sim import calibration, truth
    from justice.sim.legacy import prison
    from justice.sim.legacy.emit import emit_legacy

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SimulationError(f"--out {out}: is a file; give a folder (it is created if missing)")
    if prison_db:
        prison.check_database(prison_db)
    staging = out / ".simulate-partial"
    try:
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
    except OSError as exc:
        raise SimulationError(f"--out {out}: cannot write there ({exc.strerror})") from None

    world = simulate(params, progress)
    progress("calibration")
    start, end = ref.day_number(params.start), ref.day_number(params.end)
    world.calibration = calibration.calibrate(world.tables, start, end)
    progress("writing truth")
    truth.write_truth(world.tables, params.to_json_dict(), world.calibration, staging)
    if legacy:
        # The one-off summary cases are in truth now: the magistrates' extract reads them back a
        # year at a time rather than holding all of them beside the careers' extract (about
        # 0.6 GB at 1,000,000 people), and the world gets them back, the same values, after.
        one_off_file = staging / "truth" / "one_off_cases.parquet"
        read_back = "one_off_cases" in world.tables and one_off_file.exists()
        if read_back:
            world.tables["one_off_cases"] = one_off_file
        emit_legacy(world.tables, params, staging, prison_db=prison_db, progress=progress)
        if read_back:
            world.tables["one_off_cases"] = one_offs.read_truth(one_off_file)
    # Legacy extracts of an earlier world would contradict this truth: replace or remove both.
    for part in ("truth", "legacy"):
        target = out / part
        if target.exists():
            shutil.rmtree(target)
        if (staging / part).exists():
            (staging / part).rename(target)
    shutil.rmtree(staging)
    return world
