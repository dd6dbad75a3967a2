"""What happens to a batch of offending episodes: caution or charge, court journey, sentence.

An episode is one or more offences a person commits together and that are dealt with together
(one out-of-court disposal, or one magistrates' case and possibly one Crown Court case). Every
step is vectorised over the batch; times are day numbers (days since 1970-01-01).
"""

from __future__ import annotations

import numpy as np

from justice.policy import default_release_rules, months_to_days
from justice.policy.engine import NO_DAY
from justice.policy.rulefiles import INDETERMINATE_TYPES
from justice.sim import reference as ref
from justice.sim.arrays import KeyedRandom, rank_within_runs

Columns = dict[str, np.ndarray]
NONE = np.iinfo(np.int64).min  # "no such day" in day-number columns

# Day columns that are planned at sentence rather than events, so may lie beyond the window.
PLANNED_DAYS = ("licence_end_day", "supervision_end_day")

DISPOSALS = ("caution", "discharge", "fine", "community_order", "suspended_sentence", "custody")
INDETERMINATE = INDETERMINATE_TYPES
"""Sentence types with no fixed end: their `custody_months` is the minimum term (tariff)."""


def lognormal_days(rng: KeyedRandom, median: np.ndarray | float, sigma: float, n: int) -> np.ndarray:
    """Whole days from a lognormal with the given median(s); at least one day."""
    return np.maximum(1, np.round(np.asarray(median) * np.exp(rng.normal(0.0, sigma, n)))).astype(np.int64)


def choose_offences(rng: KeyedRandom, risk: np.ndarray, w: dict) -> tuple[np.ndarray, np.ndarray]:
    """Offences of each episode: (episode index per offence, offence-table row per offence).

    The first offence of an episode is its most serious; riskier people commit more offences
    at once and more of the serious and acquisitive kinds.
    """
    off = ref.offences()
    n = len(risk)
    mix = w["offending"]["offence_mix"]
    r = risk ** mix["steepness"]
    s = (r / (r + mix["half_risk"] ** mix["steepness"]))[:, None]
    weights = (1 - s) * off.weight_low_risk[None, :] + s * off.weight_high_risk[None, :]
    cum = np.cumsum(weights, axis=1)
    first = (cum < rng.random(n)[:, None] * cum[:, -1:]).sum(axis=1)
    extra = rng.poisson(w["offending"]["extra_offences_per_case"] * np.minimum(risk, 4.0))
    # Fine-only summary matters (speeding, TV licence) come one at a time.
    extra[off.max_penalty_months[first] == 0] = 0
    ep_of_extra = np.repeat(np.arange(n), extra)
    # Each extra offence draws by its episode and its place in it (keyed draws).
    extra_rng = rng.child(ep_of_extra, rank_within_runs(ep_of_extra))
    same_group = extra_rng.random(len(ep_of_extra)) < 0.6
    redraw = (cum[ep_of_extra] < extra_rng.random(len(ep_of_extra))[:, None]
              * cum[ep_of_extra, -1:]).sum(axis=1)
    u_same = extra_rng.random(len(ep_of_extra))[same_group]
    # An extra offence of the same group is the principal itself or a lesser one of its group.
    group_code = np.searchsorted(np.unique(off.group), off.group)
    members = np.argsort(group_code, kind="stable")  # offence rows grouped by offence group
    size = np.bincount(group_code)
    offset = np.r_[0, np.cumsum(size)[:-1]]
    g = group_code[first[ep_of_extra[same_group]]]
    pick_same = members[offset[g] + np.floor(u_same * size[g]).astype(np.int64)]
    extra_code = redraw.copy()
    extra_code[same_group] = pick_same
    # Keep the principal the most severe: swap if an extra turned out more severe. And keep an
    # episode's mode of trial its principal's: a case holding an indictable-only offence is sent
    # to the Crown Court as an indictable-only case (Crime and Disorder Act 1998 s.51), which the
    # court journey decides from the principal alone, so an extra indictable-only offence beside an
    # either-way or summary principal is the principal's offence again.
    principal = first[ep_of_extra]
    demote = (off.severity[extra_code] > off.severity[principal]) | (
        (off.mode_of_trial[extra_code] == "indictable_only") & (off.mode_of_trial[principal] != "indictable_only"))
    extra_code = np.where(demote, principal, extra_code)
    episode = np.concatenate([np.arange(n), ep_of_extra])
    code = np.concatenate([first, extra_code])
    order = np.argsort(episode, kind="stable")
    return episode[order], code[order]


def respond(rng: KeyedRandom, ep: Columns, w: dict, window_end: int) -> None:
    """Caution or charge each episode, then run the court journey and the sentence (in place)."""
    off = ref.offences()
    n = len(ep["person"])
    code = ep["principal_code"]
    mode = off.mode_of_trial[code]
    severity = off.severity[code]
    juvenile = ep["age"] < 18
    first_time = ep["prior"] == 0
    resp = w["response"]

    cp = resp["caution_probability"]
    p_caution = np.select([juvenile & first_time, juvenile, first_time], [cp["juvenile_first"],
                          cp["juvenile"], cp["adult_first"]], cp["adult"])
    p_caution = np.where((mode == "indictable_only") | (severity > 5) | ~off.recordable[code], 0.0, p_caution)
    caution = rng.random(n) < p_caution

    med = np.select([mode == "summary", mode == "either_way"],
                    [resp["offence_to_charge_median_days"]["summary"],
                     resp["offence_to_charge_median_days"]["either_way"]],
                    resp["offence_to_charge_median_days"]["indictable_only"])
    # Investigations and charging decisions took longer after 2020 (see world.yaml).
    med = med * ref.piecewise_linear(ep["offence_day"], resp["offence_to_charge_factor"])
    charge_day = ep["offence_day"] + lognormal_days(rng, med, resp["offence_to_charge_sigma"], n)
    # Cautions are given sooner than charges come to court.
    charge_day = np.where(caution, ep["offence_day"] + (charge_day - ep["offence_day"]) // 3, charge_day)
    ep["caution"] = caution
    ep["charge_day"] = charge_day
    first_listing = charge_day + lognormal_days(rng, resp["charge_to_first_listing_median_days"],
                                                 resp["charge_to_first_listing_sigma"], n)
    ep["first_listing_day"] = np.where(caution, NONE, first_listing)
    _courts(rng, ep, mode, severity, w)
    _sentence(rng, ep, w)
    # Nothing happens after the window: an event beyond it has not happened yet. The end of a
    # licence or supervision period is a planned date set at sentence, known on release; cutting
    # it off would leave everyone released in the window's last year or so without a licence to
    # be recalled on (recalls ran at a sixth of the published rate).
    for col in [c for c in ep if c.endswith("_day") and c not in PLANNED_DAYS]:
        ep[col] = np.where(ep[col] > window_end, NONE, ep[col])


MAX_INEFFECTIVE_LISTINGS = 4
"""Ineffective listings of one trial at most (then the next goes ahead or is vacated): at a
per-listing probability of 0.23, 0.06% of trials would have more."""


def _trial_listings(rng: KeyedRandom, relist: KeyedRandom, first: np.ndarray, listed: np.ndarray,
                    p_ineffective: float, relist_median: np.ndarray | float,
                    relist_sigma: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Days of each trial's listings and how many of them were ineffective.

    Criminal Court Statistics count trial listings: each is effective (the trial starts),
    cracked (it does not go ahead, and needs no re-listing: a late plea or the prosecution
    dropping the case) or ineffective (it does not go ahead on the day, and is adjourned to a
    later date). The probability is per listing, so the number of ineffective listings before
    the last is geometric, each adding a re-listing delay. Returns the listing days (listing
    0 is `first` on every row; listing j >= 1 only where j <= the ineffective count, NONE
    elsewhere) and the count (0 where nothing is `listed`). The first uniform and the first delay come from
    the episode's own stream (`rng`), further delays from `relist`, so that adding re-listings
    moved no other draw.
    """
    n = len(first)
    # P(k >= j) = p ** j; k >= 1 exactly where u < p, as when one re-listing was drawn per trial.
    u = np.maximum(rng.random(n), 1e-300)
    k = np.minimum(np.floor(np.log(u) / np.log(p_ineffective)), MAX_INEFFECTIVE_LISTINGS).astype(np.int64)
    k = np.where(listed, k, 0)
    days = [first]
    for j in range(1, MAX_INEFFECTIVE_LISTINGS + 1):
        source = rng if j == 1 else relist
        day = days[-1] + lognormal_days(source, relist_median, relist_sigma, n)
        days.append(np.where(listed & (k >= j), day, NONE))
    return days, k


def _last_listing(days: list[np.ndarray], k: np.ndarray) -> np.ndarray:
    """The day of listing number `k` of each row."""
    return np.choose(np.clip(k, 0, len(days) - 1), days)


def _store_listings(ep: Columns, court: str, days: list[np.ndarray], k: np.ndarray,
                    listed: np.ndarray) -> None:
    """Listing days as `{court}_trial_listing{j}_day` columns and the ineffective count."""
    for j, day in enumerate(days):
        ep[f"{court}_trial_listing{j}_day"] = np.where(listed, day, NONE)
    ep[f"{court}_ineffective_listings"] = np.where(listed, k, -1)


def trial_listings(ep: Columns, court: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(listing days, ineffective?) for each listing number of `court`'s trials (rows with no
    such listing, or one after the window, hold NONE). A listing before the last is
    ineffective, whether or not its re-listing falls inside the window."""
    k = ep[f"{court}_ineffective_listings"]
    return [(ep[f"{court}_trial_listing{j}_day"], j < k) for j in range(MAX_INEFFECTIVE_LISTINGS + 1)]


def _courts(rng: KeyedRandom, ep: Columns, mode: np.ndarray, severity: np.ndarray, w: dict) -> None:
    n = len(mode)
    # Re-listings after the first draw from their own stream (see _trial_listings).
    relist = KeyedRandom(ep["draw_key"], 13)
    mags, crown = w["response"]["magistrates"], w["response"]["crown"]
    charged = ~ep["caution"]
    fl = ep["first_listing_day"]
    u = lambda: rng.random(n)

    sent = charged & ((mode == "indictable_only") | (
        (mode == "either_way") & (u() < 0.02 + mags["either_way_sent_for_trial"] * np.maximum(severity - 4, 0))))
    in_mags = charged & ~sent

    # Magistrates' court: plea at first hearing, else trial (perhaps ineffective), or withdrawal.
    guilty_plea = in_mags & (u() < mags["guilty_plea"])
    contested = in_mags & ~guilty_plea
    withdrawn = contested & (u() < mags["withdrawn_before_trial"])
    tried = contested & ~withdrawn
    trial1 = fl + lognormal_days(rng, mags["trial_wait_median_days"], 0.5, n)
    # The trial is fixed at the first hearing; every listing may be ineffective and the case is
    # re-listed, until one goes ahead or is vacated because the case was withdrawn.
    m_days, n_ineffective = _trial_listings(rng, relist, trial1, contested, mags["ineffective_trial"],
                                            mags["relisting_median_days"], 0.5)
    trial_day = _last_listing(m_days, n_ineffective)
    convicted_at_trial = tried & (u() < mags["conviction_at_trial"])
    _store_listings(ep, "mags", m_days, n_ineffective, contested)
    before_last = np.where(n_ineffective > 0, _last_listing(m_days, n_ineffective - 1), fl)
    withdrawn_day = before_last + (rng.random(n) * (trial_day - before_last)).astype(np.int64)
    ep["mags_verdict_day"] = np.select([guilty_plea, convicted_at_trial | tried, withdrawn],
                                       [fl, trial_day, withdrawn_day], NONE)
    ep["mags_outcome"] = np.select(
        [sent, guilty_plea, convicted_at_trial, tried, withdrawn],
        ["sent_to_crown", "convicted_guilty_plea", "convicted_at_trial", "acquitted", "withdrawn"],
        None).astype(object)
    ep["mags_outcome"][~charged] = None

    # Crown Court trial cases: PTPH, plea, trial after a wait that grew with the backlog.
    remand = sent & (u() < np.clip(crown["remand_in_custody"] + 0.05 * (severity - 6) - 0.4 * ep["female"], 0.02, 0.95))
    remand |= in_mags & (mode == "either_way") & (u() < crown["magistrates_remand_in_custody"])
    ep["remanded"] = remand
    receipt = np.where(sent, fl, NONE)
    ptph = fl + lognormal_days(rng, crown["ptph_days"], crown["ptph_sigma"], n)
    plea_ptph = sent & (u() < crown["guilty_plea_first_hearing"])
    to_trial = sent & ~plea_ptph
    median_wait = ref.piecewise_linear(fl, crown["trial_wait_median_days"])
    # Custody time limits put remanded defendants' trials first.
    median_wait = np.where(remand, median_wait * crown["remand_trial_wait_factor"], median_wait)
    wait = lognormal_days(rng, median_wait, crown["trial_wait_sigma"], n)
    ctrial1 = np.maximum(ptph + 14, fl + wait)
    cracked = to_trial & (u() < crown["cracked_trial"])
    crack_u = rng.random(n)
    cracked_plea = cracked & (u() >= crown["cracked_prosecution_share"])
    effective_trial = to_trial & ~cracked
    # Listings until one goes ahead, or the last is vacated because the case cracked before it.
    c_days, c_ineffective = _trial_listings(rng, relist, ctrial1, to_trial, crown["ineffective_trial"],
                                             median_wait * crown["relisting_wait_factor"], 0.4)
    ctrial_day = _last_listing(c_days, c_ineffective)
    c_before_last = np.where(c_ineffective > 0, _last_listing(c_days, c_ineffective - 1), ptph)
    crack_day = c_before_last + (crack_u * (ctrial_day - c_before_last)).astype(np.int64)
    cconv_trial = effective_trial & (u() < crown["conviction_at_trial"])
    ep["crown_receipt_day"] = receipt
    ep["crown_ptph_day"] = np.where(sent, ptph, NONE)
    _store_listings(ep, "crown", c_days, c_ineffective, to_trial)
    ep["crown_cracked_day"] = np.where(cracked, crack_day, NONE)
    ep["crown_verdict_day"] = np.select([plea_ptph, cracked, effective_trial], [ptph, crack_day, ctrial_day], NONE)
    ep["crown_outcome"] = np.select(
        [plea_ptph, cracked_plea, cracked, cconv_trial, effective_trial],
        ["convicted_guilty_plea", "convicted_guilty_plea", "prosecution_offered_no_evidence",
         "convicted_at_trial", "acquitted"], None).astype(object)
    ep["crown_outcome"][~sent] = None
    ep["crown_case_type"] = np.where(sent, np.where(mode == "indictable_only", "trial_indictable_only",
                                                    "trial_either_way"), None).astype(object)
    ep["convicted"] = guilty_plea | convicted_at_trial | plea_ptph | cracked_plea | cconv_trial
    ep["conviction_day"] = np.select(
        [guilty_plea | convicted_at_trial, plea_ptph | cracked_plea | cconv_trial],
        [ep["mags_verdict_day"], ep["crown_verdict_day"]], NONE)
    ep["convicted_in_crown"] = sent & ep["convicted"]


def _sentence(rng: KeyedRandom, ep: Columns, w: dict) -> None:
    """Disposal, custodial length, committals for sentence, appeals, release and index day."""
    off = ref.offences()
    sw = w["sentencing"]
    n = len(ep["person"])
    code = ep["principal_code"]
    severity = off.severity[code].astype(float)
    max_pen = off.max_penalty_months[code].astype(float)
    conv = ep["convicted"]
    crown = ep["convicted_in_crown"]
    juvenile = ep["age"] < 18

    def draw(base: dict) -> np.ndarray:
        names = list(base)
        logits = np.log(np.array([base[k] for k in names]))[None, :].repeat(n, 0)
        ci = names.index("custody")
        uplift = (sw["custody_prior_uplift"] * np.log1p(ep["prior"]) + sw["custody_severity_uplift"]
                  * (severity - 4) - 1.8 * juvenile + sw["custody_female"] * ep["female"] - 0.5)
        logits[:, ci] += uplift
        # A defendant is refused bail only where custody is a real prospect (Bail Act 1976 as
        # amended by LASPO 2012), so those remanded mostly go on to a custodial sentence.
        logits[:, ci] += sw["custody_remanded_uplift"] * ep["remanded"]
        if "suspended_sentence" in names:
            logits[:, names.index("suspended_sentence")] += 0.5 * uplift
        if "community_order" in names:
            logits[:, names.index("community_order")] += 0.25 * uplift
        p = np.exp(logits)
        cum = np.cumsum(p, axis=1)
        return np.array(names, dtype=object)[(cum < rng.random(n)[:, None] * cum[:, -1:]).sum(axis=1)]

    mags_choice, crown_choice = draw(sw["magistrates"]), draw(sw["crown"])
    fine_only = np.array(list(sw["summary_fine_only"]), dtype=object)[
        (rng.random(n) >= sw["summary_fine_only"]["fine"]).astype(int)]
    disposal = np.where(crown, crown_choice, mags_choice)
    disposal = np.where(max_pen == 0, fine_only, disposal)
    disposal = np.where(conv, disposal, None).astype(object)
    disposal[ep["caution"]] = "caution"

    # Custodial length: the offence's typical Crown term, longer for a long record.
    crown_med = off.crown_custody_median_months[code] * np.exp(sw["length_prior_uplift"] * np.log1p(ep["prior"]))
    crown_len = crown_med * np.exp(rng.normal(0, sw["length_sigma"], n))
    mags_len = sw["magistrates_custody_median_months"] * np.exp(rng.normal(0, 0.6, n))
    months = np.where(crown, crown_len, np.maximum(mags_len, crown_len * 0.5))
    months = np.clip(np.minimum(months, np.where(max_pen >= 9999, 600, max_pen)), 0.25, 600)
    needs_length = (disposal == "custody") | (disposal == "suspended_sentence")
    months = np.where(disposal == "suspended_sentence", np.minimum(months, 24), months)

    # A magistrates' court that wants more custody than its powers allow commits to the Crown
    # Court for sentence; summary-only offences are capped at six months instead.
    powers_days, powers_months = ref.magistrates_max_custody()
    sent_day_mags = ep["conviction_day"] + np.where(
        rng.random(n) < w["response"]["magistrates"]["sentence_adjourned_for_reports"],
        lognormal_days(rng, w["response"]["magistrates"]["report_adjournment_days"], 0.3, n), 0)
    power = ref.effective_value(np.where(conv, ep["conviction_day"], 0), powers_days, powers_months)
    mode = off.mode_of_trial[code]
    committed = conv & ~crown & needs_length & (mode == "either_way") & (months > power)
    committed |= conv & ~crown & (disposal == "custody") & (mode == "either_way") & (
        rng.random(n) < w["response"]["magistrates"]["committal_for_sentence"])
    months = np.where(conv & ~crown & ~committed & needs_length, np.minimum(months, np.where(
        mode == "summary", 6, power)), months)
    months = np.round(months, 1)
    cfs_receipt = ep["conviction_day"] + rng.integers(7, 22, n)
    cfs_sentence = cfs_receipt + lognormal_days(rng, 35, 0.4, n)
    crown_sent_day = ep["conviction_day"] + np.where(rng.random(n) < 0.75, lognormal_days(
        rng, w["response"]["crown"]["sentence_adjournment_days"],
        w["response"]["crown"]["sentence_adjournment_sigma"], n), 0)
    sentence_day = np.select([committed, crown, conv], [cfs_sentence, crown_sent_day, sent_day_mags], NONE)
    sentence_day = np.where(ep["caution"], ep["charge_day"], sentence_day)
    ep["committed_for_sentence"] = committed
    ep["cfs_receipt_day"] = np.where(committed, cfs_receipt, NONE)
    ep["disposal"] = disposal
    ep["sentence_day"] = sentence_day
    ep["custody_months"] = np.where(needs_length & conv, months, np.nan)
    co = sw["community_order_months"]
    ss = sw["suspended_months"]
    order_months = np.where(disposal == "community_order", np.clip(np.round(
        co["median"] * np.exp(rng.normal(0, 0.45, n))), co["min"], co["max"]), np.nan)
    order_months = np.where(disposal == "suspended_sentence", np.clip(np.round(
        ss["median"] * np.exp(rng.normal(0, 0.4, n))), ss["min"], ss["max"]), order_months)
    ep["order_months"] = order_months
    ep["supervised"] = (disposal == "community_order") | (
        (disposal == "suspended_sentence") & (rng.random(n) < sw["suspended_with_supervision"]))

    # Appeals from magistrates' convictions to the Crown Court.
    mags_done = conv & ~crown & ~committed
    appeal = mags_done & (rng.random(n) < w["response"]["magistrates"]["appeal"] * (1 + (disposal == "custody") * 3))
    a_receipt = sentence_day + rng.integers(10, 22, n)
    a_done = a_receipt + lognormal_days(rng, w["response"]["crown"]["appeal_hearing_median_days"], 0.4, n)
    ep["appeal_receipt_day"] = np.where(appeal, a_receipt, NONE)
    ep["appeal_completion_day"] = np.where(appeal, a_done, NONE)
    a_u = rng.random(n)
    ep["appeal_outcome"] = np.where(appeal, np.select(
        [a_u < w["response"]["crown"]["appeal_allowed"], a_u < 0.85], ["allowed", "dismissed"], "abandoned"),
        None).astype(object)

    # Mags completion: sending, sentence (or committal), acquittal or withdrawal.
    ep["mags_completion_day"] = np.select(
        [ep["mags_outcome"] == "sent_to_crown", committed, conv & ~crown, ep["mags_verdict_day"] != NONE],
        [ep["first_listing_day"], ep["conviction_day"], sentence_day, ep["mags_verdict_day"]], NONE)
    ep["crown_completion_day"] = np.select(
        [crown, ep["crown_verdict_day"] != NONE], [sentence_day, ep["crown_verdict_day"]], NONE)
    _release(rng, ep, w)


def sentence_types(u: KeyedRandom, ep: Columns, w: dict) -> np.ndarray:
    """The type of each custodial sentence (None where there is none), and minimum terms.

    Murder carries a mandatory life sentence. Other grave offences sentenced in the Crown Court
    get a discretionary life sentence at a small rate, an IPP while it existed (4 April 2005 to
    2 December 2012; from 14 July 2008 only where the notional determinate term was four years or
    more) or, from 3 December 2012, an extended determinate sentence (custodial term of four
    years or more). Rates by offence and sentence are in world.yaml (sentencing:
    sentence_types). For life and IPP `custody_months` becomes the minimum term: half the
    notional determinate term, or for murder a term drawn from its own distribution. Sets
    `sentence_type`, `custody_months` and `extension_months` (EDS) in place.
    """
    off = ref.offences()
    st = w["sentencing"]["sentence_types"]
    n = len(ep["person"])
    code = ep["principal_code"]
    day = ep["sentence_day"]
    months = np.nan_to_num(ep["custody_months"])
    custody = (ep["disposal"] == "custody") & (day != NONE)
    crown = ep["convicted_in_crown"] | ep["committed_for_sentence"]
    grave = np.isin(off.group[code], st["grave_offence_groups"]) & (off.severity[code] >= st["grave_min_severity"])
    u_type, z_term, u_ext = u.random(n), u.normal(0.0, 1.0, n), u.random(n)
    murder = custody & np.isin(off.code[code], st["mandatory_life_offences"])
    life = murder | (custody & crown & (off.severity[code] >= st["discretionary_life"]["min_severity"])
                     & (u_type < st["discretionary_life"]["probability"]))
    ipp_cfg, eds_cfg = st["ipp"], st["extended"]
    ipp_window = (day >= ref.day_number(ipp_cfg["from"])) & (day < ref.day_number(ipp_cfg["until"]))
    ipp_min = np.where(day >= ref.day_number(ipp_cfg["min_months_from"]), ipp_cfg["min_months"], 0)
    # One uniform decides among the kinds, so their shares add up rather than compete.
    u_rest = (u_type - st["discretionary_life"]["probability"]) / (1 - st["discretionary_life"]["probability"])
    ipp = custody & crown & grave & ~life & ipp_window & (months >= ipp_min) & (u_rest < ipp_cfg["probability"])
    eds = custody & crown & grave & ~life & (day >= ref.day_number(eds_cfg["from"])) & (
        months >= eds_cfg["min_months"]) & (u_rest < eds_cfg["probability"])
    kind = np.select([life, ipp, eds, custody], ["life", "ipp", "extended_determinate",
                                                 "standard_determinate"], None).astype(object)
    lt = st["murder_minimum_term_years"]
    murder_term = np.clip(lt["median"] * np.exp(lt["sigma"] * z_term), lt["min"], lt["max"]) * 12
    tariff = np.where(murder, murder_term, np.maximum(months * 0.5, 1.0))
    ep["custody_months"] = np.where(life | ipp, np.round(tariff, 1), ep["custody_months"])
    ext = eds_cfg["extension_years"]
    max_ext = np.where(off.group[code] == "02 Sexual offences", ext["max_sexual"], ext["max_violent"])
    ep["extension_months"] = np.where(eds, np.round(12 * (1 + u_ext * (max_ext - 1))), np.nan)
    ep["sentence_type"] = kind
    return kind


def _release(rng: KeyedRandom, ep: Columns, w: dict) -> None:
    """Remand, reception and release under the effective-dated release rules; the index day."""
    off = ref.offences()
    n = len(ep["person"])
    custody = ep["disposal"] == "custody"
    sentence_day = ep["sentence_day"]
    remanded = ep["remanded"]
    completion = np.maximum(ep["crown_completion_day"], ep["mags_completion_day"])
    remand_start = ep["charge_day"] + rng.integers(0, 3, n)
    # Sentence types and the Parole Board draw from their own keyed stream, so adding them
    # moved no other draw of the episode.
    type_rng = KeyedRandom(ep["draw_key"], 11)
    kind = sentence_types(type_rng, ep, w)
    months = np.nan_to_num(ep["custody_months"])
    remand_end = np.where(custody, sentence_day, completion)
    ep["remand_start_day"] = np.where(remanded, remand_start, NONE)
    remand_days = np.where(remanded, np.maximum(remand_end - remand_start, 0), 0)

    length_days = months_to_days(months)
    # The release day and its rule come from the policy engine (justice.policy), so a rule
    # change is a rule-file edit; only sentenced custody is asked about.
    rules = w.get("_release_rules") or default_release_rules()
    sentenced = np.flatnonzero(custody)
    outcome = rules.release(sentence_day=sentence_day[sentenced],
                            length_days=length_days[sentenced],
                            offence_group=off.group[ep["principal_code"][sentenced]],
                            remand_days=remand_days[sentenced],
                            sentence_type=kind[sentenced])
    # Where the Parole Board decides, the rules give the earliest day it may direct release
    # (and, for an EDS, the day release becomes automatic): the Board's decision is drawn.
    release_sub = _parole_board(type_rng, outcome, kind[sentenced], ep["draw_key"][sentenced], w)
    release = np.full(n, NONE, dtype=np.int64)
    release[sentenced] = release_sub
    rule_name = np.full(n, None, dtype=object)
    rule_name[sentenced] = outcome.rule
    ep["release_day"] = np.where(custody, release, np.where(remanded, remand_end, NONE))
    ep["release_rule"] = np.where(custody, rule_name, None).astype(object)
    # The licence runs to the sentence end; an EDS adds its extension period; a life licence
    # lasts for life and an IPP licence until the Parole Board ends it (ten years on here: the
    # earliest the Board could consider it before the Victims and Prisoners Act 2024).
    extension = months_to_days(np.nan_to_num(ep["extension_months"]))
    lic = w["sentencing"]["sentence_types"]["indeterminate_licence_years"]
    licence_end = np.select(
        [kind == "life", kind == "ipp"],
        [release + round(lic["life"] * 365.25), release + round(lic["ipp"] * 365.25)],
        sentence_day + length_days + extension)
    ep["licence_end_day"] = np.where(custody, licence_end, NONE)
    # Offender Rehabilitation Act 2014: at least 12 months' supervision after release from
    # sentences under two years imposed from 1 February 2015.
    pss = custody & (kind == "standard_determinate") & (months < 24) & (
        sentence_day >= ref.day_number("2015-02-01"))
    ep["supervision_end_day"] = np.where(custody, np.where(pss, np.maximum(licence_end, release + 365),
                                                           licence_end), NONE)
    proven = ep["convicted"] | ep["caution"]
    ep["index_day"] = np.select([custody, proven], [release, sentence_day], NONE)


def _parole_board(u: KeyedRandom, outcome, kind: np.ndarray, keys: np.ndarray, w: dict) -> np.ndarray:
    """Release days of sentences whose rule releases by the Parole Board (others as given).

    An EDS prisoner is released by the Board at a share of first reviews, a few months after
    parole eligibility, else automatically at the end of the custodial term. A life or IPP
    prisoner is released after the minimum term once the Board is satisfied: a lognormal delay
    past the tariff, longer for IPP (the Board released few IPP prisoners at tariff).
    """
    pb = w["sentencing"]["sentence_types"]["parole_board"]
    release = outcome.release_day.copy()
    if outcome.parole_board is None or not outcome.parole_board.any():
        return release
    r = KeyedRandom(keys, 12)
    n = len(release)
    u_pb, z_delay = r.random(n), r.normal(0.0, 1.0, n)
    parole = outcome.parole_board
    automatic = outcome.automatic_day
    review = np.round(pb["eds_review_median_days"] * np.exp(0.5 * z_delay)).astype(np.int64)
    eds_out = np.where(u_pb < pb["eds_release_at_review"], release + review, automatic)
    eds_out = np.where(automatic != NO_DAY, np.minimum(eds_out, automatic), eds_out)
    median = np.where(kind == "ipp", pb["ipp_post_tariff_median_years"], pb["life_post_tariff_median_years"])
    delay = np.round(365.25 * median * np.exp(pb["post_tariff_sigma"] * z_delay)).astype(np.int64)
    indeterminate = np.isin(kind, INDETERMINATE)
    out = np.where(indeterminate, release + delay, eds_out)
    return np.where(parole, out, release)
