"""Criminal careers: each person's sequence of offending episodes through the window.

The loop runs in rounds, not days: in each round every person with a pending offence has that
episode dealt with (`courts.respond`), and the time to their next offence is drawn from a
reoffending model whose one-year probability depends on age, sex, record, disposal and, for
programme participants, the true intervention effect. A million people take a few dozen rounds.
"""

from __future__ import annotations

import numpy as np

from justice.errors import ConfigError
from justice.sim import courts
from justice.sim import reference as ref
from justice.sim.arrays import KeyedRandom, derive_keys, rank_within_runs
from justice.sim.courts import NONE

Columns = dict[str, np.ndarray]


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def reoffend_probability(w: dict, age: np.ndarray, female: np.ndarray, risk: np.ndarray,
                         prior: np.ndarray, disposal: np.ndarray, custody_months: np.ndarray) -> np.ndarray:
    """One-year probability of a new offence that reaches the justice system, before any programme."""
    m = w["offending"]["reoffend_logit"]
    kind = np.where(disposal == "custody", np.select(
        [custody_months <= 6, custody_months < 12], ["custody_6m_or_less", "custody_short"], "custody_long"),
        np.where(disposal == None, "none", disposal))
    d = np.zeros(len(age))
    for name, beta in m["disposal"].items():
        d[kind == name] = beta
    x = (m["intercept"] + m["log_risk"] * np.log(risk) + m["log1p_prior"] * np.log1p(prior)
         + m["female"] * female + m["juvenile"] * (age < 18)
         + m["age_over_40_per_year"] * np.maximum(age - 40, 0) + d)
    return _logistic(x)


REFERRAL_DISPOSALS = ("custody_short", "custody_long", "community_order", "suspended_sentence")
_PROGRAMME_KEYS = {"name", "provider", "share", "effect"}


def programme_effects(w: dict, default_effect: float) -> np.ndarray:
    """Each programme's true effect (its `effect:` or else `default_effect`), checked."""
    programmes = w["interventions"]["programmes"]
    if not isinstance(programmes, list) or not programmes:
        raise ConfigError("world interventions.programmes: expected a non-empty list of programmes")
    effects = []
    for i, p in enumerate(programmes):
        where = f"world interventions.programmes[{i}]"
        if not isinstance(p, dict) or not {"name", "provider", "share"} <= p.keys():
            raise ConfigError(f"{where}: each programme needs name, provider and share")
        where += f" ({p['name']})"
        if unknown := sorted(set(p) - _PROGRAMME_KEYS):
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                              f"allowed: {', '.join(sorted(_PROGRAMME_KEYS))}")
        if not isinstance(p["share"], int | float) or p["share"] <= 0:
            raise ConfigError(f"{where}: share {p['share']!r} must be a positive number")
        effect = p.get("effect")
        if effect is None:
            effect = default_effect
        elif isinstance(effect, bool) or not isinstance(effect, int | float) or not -1.0 < effect < 1.0:
            raise ConfigError(f"{where}: effect {effect!r} is an absolute change in a probability "
                              "and must lie between -1 and 1")
        effects.append(float(effect))
    return np.array(effects)


def _check_referral_model(model: dict) -> None:
    rec, lat = model.get("recorded"), model.get("latent")
    if not isinstance(rec, dict) or not isinstance(lat, dict):
        raise ConfigError("world interventions.referral: needs `recorded` and `latent` mappings")
    numbers = [("recorded", k, rec.get(k)) for k in ("intercept", "female", "age_per_decade", "log1p_recorded_prior")]
    numbers += [("latent", k, lat.get(k)) for k in ("intercept_shift", "log_risk", "log1p_prior")]
    numbers += [("recorded.disposal", k, v) for k, v in rec.get("disposal", {}).items()]
    numbers += [("recorded.offence_group", k, v) for k, v in rec.get("offence_group", {}).items()]
    for part, key, value in numbers:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"world interventions.referral.{part}.{key}: {value!r} is not a number")
    if unknown := sorted(set(rec.get("disposal", {})) - set(REFERRAL_DISPOSALS)):
        raise ConfigError(f"world interventions.referral.recorded.disposal: unknown {', '.join(unknown)}; "
                          f"choose from {', '.join(REFERRAL_DISPOSALS)}")
    groups = set(ref.offences().group.tolist())
    if unknown := sorted(set(rec.get("offence_group", {})) - groups):
        raise ConfigError(f"world interventions.referral.recorded.offence_group: unknown group(s) "
                          f"{', '.join(unknown)}; groups are named as in reference/offences.csv")


def referral_logit(model: dict, mode: str, *, age: np.ndarray, female: np.ndarray,
                   disposal_kind: np.ndarray, offence_group: np.ndarray, recorded_prior: np.ndarray,
                   risk: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Log-odds of referral at an index event: recorded terms, plus latent ones in `latent` mode."""
    rec = model["recorded"]
    x = (rec["intercept"] + rec["female"] * female + rec["age_per_decade"] * (age - 30) / 10
         + rec["log1p_recorded_prior"] * np.log1p(recorded_prior))
    for kind, beta in rec.get("disposal", {}).items():
        x = x + beta * (disposal_kind == kind)
    for group, beta in rec.get("offence_group", {}).items():
        x = x + beta * (offence_group == group)
    if mode == "latent":
        lat = model["latent"]
        x = x + lat["intercept_shift"] + lat["log_risk"] * np.log(risk) + lat["log1p_prior"] * np.log1p(prior)
    elif mode != "recorded":
        raise ConfigError(f"referral mode {mode!r}: choose recorded or latent")
    return x


def simulate_careers(rng: np.random.Generator, people: Columns, entry_day: np.ndarray, w: dict,
                     window_end: int, window_start: int) -> tuple[Columns, Columns]:
    """Run every candidate's career; returns (episodes, offences), one row per episode / offence.

    `rng` only seeds the run: every later draw is keyed by person and episode number
    (`arrays.KeyedRandom`), so a change to one person's career (an earlier release) changes
    nobody else's, and nothing of theirs before it. Episodes and offences carry their key
    (`draw_key`) for the draws made from them later (recalls, stays).

    Also returns, inside episodes, the intervention referral decided at each index event.
    `window_start` is the first day the legacy extracts cover: referral in `recorded` mode sees
    only proven offences from then on.
    """
    female = people["sex"] == "F"
    next_day = entry_day.copy()
    # The earliest day of the next episode's offences: the start of the follow-up (release,
    # sentence or caution) that preceded it, so no offence falls inside custody.
    earliest = people["dob"] + 3650
    prior = people["prior"].astype(np.int64).copy()
    # Proven offences dated on or after the window start: the record the extracts can show.
    recorded_prior = np.zeros(len(prior), dtype=np.int64)
    active = np.flatnonzero(next_day <= window_end)
    batches: list[Columns] = []
    offence_batches: list[Columns] = []
    offw = w["offending"]
    ia = w["interventions"]
    programmes = ia["programmes"]
    prog_share = np.array([p["share"] for p in programmes], dtype=float)
    prog_effect = programme_effects(w, w["_intervention_effect"])
    referral = ia["referral"]
    _check_referral_model(referral)
    group_of_code = ref.offences().group
    a_first = np.log(offw["first_quarter_share"]) / np.log(91.0 / 365.0)
    episode_base = 0
    person_keys = derive_keys(np.uint64(rng.integers(0, 2**63)), np.arange(len(prior)))
    round_no = 0
    while len(active):
        k = len(active)
        # Everyone's n-th episode is dealt with in round n: its draws are keyed by (person, n).
        rng = KeyedRandom(derive_keys(person_keys[active], round_no))
        round_no += 1
        ep: Columns = {
            "episode": np.arange(episode_base, episode_base + k, dtype=np.int64),
            "person": active,
            "offence_day": next_day[active],
            "prior": prior[active],
            "draw_key": rng.keys,
        }
        episode_base += k
        ep["age"] = (ep["offence_day"] - people["dob"][active]) / 365.25
        ep["female"] = female[active]
        ep_idx, codes = courts.choose_offences(rng, people["risk"][active], w)
        ep["principal_code"] = codes[np.r_[0, np.flatnonzero(np.diff(ep_idx)) + 1]]
        courts.respond(rng, ep, w, window_end)

        # Offences: extras of a spree fall within a few weeks of the principal one.
        off_rng = rng.child(ep_idx, rank_within_runs(ep_idx))
        spread = np.where(np.r_[True, np.diff(ep_idx) != 0], 0, off_rng.integers(0, 45, len(ep_idx)))
        offence_day = np.maximum(ep["offence_day"][ep_idx] - spread, earliest[active][ep_idx])
        dropped = (off_rng.random(len(ep_idx)) < 0.12) & (spread > 0)  # left on file or withdrawn
        proven = (ep["conviction_day"][ep_idx] != NONE) | (ep["caution"][ep_idx] & (ep["charge_day"][ep_idx] != NONE))
        proven &= ~dropped
        offence_batches.append({
            "episode": ep["episode"][ep_idx], "person": active[ep_idx], "code": codes,
            "offence_day": offence_day, "proven": proven, "dropped": dropped,
            "draw_key": off_rng.keys,
        })

        # Reoffending: the clock starts at the index day (release, sentence or caution); an
        # unproven case restarts it at completion.
        completion = np.maximum(ep["crown_completion_day"], ep["mags_completion_day"])
        start = np.where(ep["index_day"] != NONE, ep["index_day"], np.where(
            completion != NONE, completion, ep["charge_day"]))
        start = np.maximum(start, ep["release_day"])  # nobody offends outside from inside prison
        # Still in custody when the window closes (release beyond it): no further offences.
        inside = ((ep["disposal"] == "custody") | ep["remanded"]) & (ep["release_day"] == NONE)
        start = np.where(inside, NONE, start)
        age_at_start = (start - people["dob"][active]) / 365.25
        n_proven = np.bincount(ep_idx, weights=proven, minlength=k).astype(np.int64)
        prior[active] += n_proven
        p1 = reoffend_probability(w, age_at_start, female[active], people["risk"][active],
                                  prior[active], ep["disposal"], np.nan_to_num(ep["custody_months"]))

        # Referral to a programme after release from custody or on a supervised order.
        eligible = (ep["index_day"] != NONE) & ((ep["disposal"] == "custody") | ep["supervised"])
        proof_day = np.where(ep["caution"], ep["charge_day"], ep["conviction_day"])[ep_idx]
        seen = proven & (proof_day >= window_start)
        seen_at_index = np.bincount(ep_idx, weights=seen & (proof_day < ep["index_day"][ep_idx]),
                                    minlength=k).astype(np.int64)
        kind = np.where(ep["disposal"] == "custody", np.where(
            np.nan_to_num(ep["custody_months"]) < 12, "custody_short", "custody_long"),
            ep["disposal"].astype(object))
        age_at_index = np.where(eligible, (np.where(eligible, ep["index_day"], 0)
                                           - people["dob"][active]) / 365.25, 30.0)
        pz = referral_logit(
            referral, w["_referral"], age=age_at_index,
            female=female[active], disposal_kind=kind, offence_group=group_of_code[ep["principal_code"]],
            recorded_prior=recorded_prior[active] + seen_at_index, risk=people["risk"][active],
            prior=prior[active])
        recorded_prior[active] += np.bincount(ep_idx, weights=seen, minlength=k).astype(np.int64)
        joins = eligible & (rng.random(k) < _logistic(pz))
        prog = rng.choice(len(programmes), size=k, p=prog_share / prog_share.sum())
        ep["programme"] = np.where(joins, prog, -1)
        ep["programme_start_day"] = np.where(
            joins, ep["index_day"] + rng.integers(0, ia["start_delay_max_days"] + 1, k), NONE)
        ep["programme_start_day"] = np.where(ep["programme_start_day"] > window_end, NONE,
                                             ep["programme_start_day"])
        joins &= ep["programme_start_day"] != NONE
        ep["programme"][~joins] = -1
        ep["programme_effect"] = np.where(joins, prog_effect[np.maximum(ep["programme"], 0)], np.nan)
        p_with = np.clip(p1 + np.where(joins, ep["programme_effect"], 0.0), 0.0, 1.0)
        # Common random numbers: the same draw decides the outcome with and without the
        # programme, so truth knows each participant's counterfactual.
        u = rng.random(k)
        ep["p_reoffend_without"] = p1
        ep["p_reoffend_with"] = p_with
        ep["reoffends_within_year"] = u < p_with
        ep["would_reoffend_without_programme"] = u < p1
        ep["follow_up_start_day"] = start
        within = u < p_with
        t_in = np.ceil(365.0 * rng.random(k) ** (1.0 / a_first)).astype(np.int64)
        later = ~within & (rng.random(k) < offw["later_reoffend_probability"] * np.minimum(
            1.0, np.sqrt(people["risk"][active])))
        t_later = 365 + np.ceil(rng.exponential(offw["later_gap_mean_days"], k)).astype(np.int64)
        gap = np.select([within, later], [t_in, t_later], -1)
        nxt = np.where(gap > 0, start + gap, NONE)
        nxt = np.where((start == NONE) | (age_at_start > 85), NONE, nxt)
        next_day[active] = nxt
        earliest[active] = np.where(start != NONE, start + 1, earliest[active])
        batches.append(ep)
        active = active[(nxt != NONE) & (nxt <= window_end)]

    episodes = {c: np.concatenate([b[c] for b in batches]) for c in batches[0]}
    offences = {c: np.concatenate([b[c] for b in offence_batches]) for c in offence_batches[0]}
    return episodes, offences
