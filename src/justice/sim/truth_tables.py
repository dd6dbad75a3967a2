"""Build the truth tables from simulated episodes: cases, hearings, offences, disposals,
custody spells and life in custody, supervision, and programme participation."""

from __future__ import annotations

import numpy as np

from justice import identifiers
from justice.policy import default_release_rules
from justice.sim import custody
from justice.sim import reference as ref
from justice.sim.arrays import KeyedRandom, derive_keys
from justice.sim.courts import NONE, trial_listings

Columns = dict[str, np.ndarray]


def _ids(prefix: str, n: int, width: int = 8) -> np.ndarray:
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _mags_case_type(mode: np.ndarray, group: np.ndarray) -> np.ndarray:
    return np.select(
        [mode == "indictable_only", mode == "either_way", group == "12 Summary motoring"],
        ["indictable_only", "either_way", "summary_motoring"], "summary_non_motoring").astype(object)


def build(rng: dict, params, w: dict, tables: dict, start: int, end: int) -> None:
    """Fill `tables` (in place) with every truth table."""
    off_ref = ref.offences()
    people = tables.pop("_people")
    e = tables.pop("_episodes")
    o = tables.pop("_offences")
    courts_of = tables.pop("_courts_of")
    n = len(people["sex"])
    person_id = _ids("P", n)
    ep_person = e["person"]
    code = e["principal_code"]
    mode = off_ref.mode_of_trial[code]
    group = off_ref.group[code]
    court_code = tables["courts"]["court_code"]
    court_region = tables["courts"]["region"]

    # ---- court cases --------------------------------------------------------------------
    m_has = e["first_listing_day"] != NONE
    m_idx = np.flatnonzero(m_has)
    mags_case_id = np.full(len(ep_person), None, dtype=object)
    mags_case_id[m_idx] = _ids("MC", len(m_idx))
    crown_kinds = [
        ("trial", e["crown_receipt_day"] != NONE, e["crown_receipt_day"], e["crown_completion_day"],
         e["crown_case_type"], e["crown_outcome"]),
        ("committal", e["cfs_receipt_day"] != NONE, e["cfs_receipt_day"],
         np.where(e["committed_for_sentence"], e["sentence_day"], NONE),
         np.full(len(ep_person), "committed_for_sentence", object),
         np.full(len(ep_person), "sentenced", object)),
        ("appeal", e["appeal_receipt_day"] != NONE, e["appeal_receipt_day"], e["appeal_completion_day"],
         np.full(len(ep_person), "appeal", object), np.char.add("appeal_", e["appeal_outcome"].astype(str)).astype(object)),
    ]
    c_rows = {k: [] for k in ("ep", "receipt", "completion", "case_type", "outcome")}
    for _, has, receipt, completion, ctype, outcome in crown_kinds:
        idx = np.flatnonzero(has)
        c_rows["ep"].append(idx)
        c_rows["receipt"].append(receipt[idx])
        c_rows["completion"].append(completion[idx])
        c_rows["case_type"].append(ctype[idx])
        c_rows["outcome"].append(outcome[idx])
    c = {k: np.concatenate(v) for k, v in c_rows.items()}
    order = np.lexsort((c["ep"], c["receipt"]))
    c = {k: v[order] for k, v in c.items()}
    crown_case_id = _ids("CC", len(c["ep"]))
    crown_case_of_ep = np.full(len(ep_person), None, dtype=object)  # the trial or committal case
    tc = c["case_type"] != "appeal"
    crown_case_of_ep[c["ep"][tc]] = crown_case_id[tc]
    c["outcome"] = np.where(c["completion"] == NONE, None, c["outcome"]).astype(object)

    m_outcome = np.where(e["committed_for_sentence"], "committed_for_sentence", e["mags_outcome"]).astype(object)
    m_outcome = np.where(e["mags_completion_day"] == NONE, None, m_outcome).astype(object)
    cases = {
        "case_id": np.concatenate([mags_case_id[m_idx], crown_case_id]),
        "person_id": np.concatenate([person_id[ep_person[m_idx]], person_id[ep_person[c["ep"]]]]),
        "episode_id": np.concatenate([m_idx, c["ep"]]),
        "court_type": np.array(["magistrates"] * len(m_idx) + ["crown"] * len(c["ep"]), dtype=object),
        "case_type": np.concatenate([_mags_case_type(mode[m_idx], group[m_idx]), c["case_type"]]),
        "court_code": np.concatenate([court_code[courts_of["mags"][ep_person[m_idx]]],
                                      court_code[courts_of["crown"][ep_person[c["ep"]]]]]),
        "region": np.concatenate([court_region[courts_of["mags"][ep_person[m_idx]]],
                                  court_region[courts_of["crown"][ep_person[c["ep"]]]]]),
        "charge_date": np.concatenate([e["charge_day"][m_idx], e["charge_day"][c["ep"]]]),
        "receipt_date": np.concatenate([e["first_listing_day"][m_idx], c["receipt"]]),
        "completion_date": np.concatenate([e["mags_completion_day"][m_idx], c["completion"]]),
        "outcome": np.concatenate([m_outcome[m_idx], c["outcome"]]),
        "principal_offence_code": np.concatenate([off_ref.code[code[m_idx]], off_ref.code[code[c["ep"]]]]),
        "offence_group": np.concatenate([group[m_idx], group[c["ep"]]]),
        "remanded_in_custody": np.concatenate([np.zeros(len(m_idx), bool), e["remanded"][c["ep"]] & (
            c["case_type"] != "appeal") & (c["case_type"] != "committed_for_sentence")]),
        "related_case_id": np.concatenate([np.full(len(m_idx), None, object), mags_case_id[c["ep"]]]),
    }
    cases["remanded_in_custody"][: len(m_idx)] = e["remanded"][m_idx] & (e["crown_receipt_day"][m_idx] == NONE)
    tables["court_cases"] = cases

    # ---- hearings ------------------------------------------------------------------------
    h_case, h_day, h_type, h_out = [], [], [], []

    def add(case_ids, days, kind, outcome):
        ok = (days != NONE) & (case_ids != None)
        h_case.append(case_ids[ok]); h_day.append(days[ok])
        h_type.append(np.full(int(ok.sum()), kind, object))
        h_out.append(np.broadcast_to(np.asarray(outcome, dtype=object), days.shape)[ok])

    mc = mags_case_id
    plea = np.where(e["mags_outcome"] == "sent_to_crown", "sent_to_crown_court", np.where(
        e["mags_outcome"] == "convicted_guilty_plea", "guilty_plea", "not_guilty_plea"))
    add(mc, e["first_listing_day"], "first_hearing", plea)
    # Every trial listing, as Criminal Court Statistics count them: ineffective (re-listed),
    # vacated (the case was withdrawn before it: a cracked trial) or effective.
    withdrawn = e["mags_outcome"] == "withdrawn"
    for day, ineffective in trial_listings(e, "mags"):
        add(mc, day, "trial", np.where(ineffective, "ineffective", np.where(withdrawn, "vacated", "effective")))
    mags_sent = (e["crown_receipt_day"] == NONE) & ~e["committed_for_sentence"] & (
        e["sentence_day"] != e["conviction_day"]) & (e["disposal"] != None) & ~e["caution"]
    add(mc, np.where(mags_sent, e["sentence_day"], NONE), "sentence", "sentenced")
    add(mc, np.where(e["mags_outcome"] == "withdrawn", e["mags_verdict_day"], NONE), "mention", "withdrawn")
    trial_case = np.full(len(ep_person), None, dtype=object)
    trial_case[c["ep"][c["case_type"] != "appeal"]] = crown_case_id[c["case_type"] != "appeal"]
    crown_trial = np.where(e["crown_receipt_day"] != NONE, trial_case, None)
    add(crown_trial, e["crown_ptph_day"], "plea_and_trial_preparation", np.where(
        e["crown_verdict_day"] == e["crown_ptph_day"], "guilty_plea", "not_guilty_plea"))
    # (a case that cracked, on or before its last listing, has that listing vacated)
    cracked = e["crown_cracked_day"] != NONE
    for day, ineffective in trial_listings(e, "crown"):
        add(crown_trial, day, "trial", np.where(ineffective, "ineffective", np.where(cracked, "vacated", "effective")))
    add(crown_trial, e["crown_cracked_day"], "mention", "cracked")
    add(crown_trial, np.where(e["convicted_in_crown"] & (e["sentence_day"] != e["conviction_day"]),
                              e["sentence_day"], NONE), "sentence", "sentenced")
    cfs_case = np.where(e["committed_for_sentence"], trial_case, None)
    add(cfs_case, e["sentence_day"], "sentence", "sentenced")
    appeal_case = np.full(len(ep_person), None, dtype=object)
    appeal_case[c["ep"][c["case_type"] == "appeal"]] = crown_case_id[c["case_type"] == "appeal"]
    add(appeal_case, e["appeal_completion_day"], "appeal", e["appeal_outcome"])
    hearings = {"case_id": np.concatenate(h_case), "hearing_date": np.concatenate(h_day),
                "hearing_type": np.concatenate(h_type), "outcome": np.concatenate(h_out)}
    order = np.lexsort((hearings["hearing_date"], hearings["case_id"].astype(str)))
    hearings = {k: v[order] for k, v in hearings.items()}
    hearings = {"hearing_id": _ids("H", len(order), 9), **hearings}
    tables["hearings"] = hearings

    # ---- offences and disposals ----------------------------------------------------------
    oe = o["episode"]
    proven_day = np.where(e["caution"][oe], e["charge_day"][oe], e["conviction_day"][oe])
    proven = o["proven"] & (proven_day != NONE)
    # The principal offence carries the case's disposal; others share it or take a lesser one.
    # The carrier is the episode's first proven row of its principal offence code (or, when that
    # offence was not proven, its most serious proven one), not the episode's first row: an extra
    # offence of a spree may be dated before the principal, or be the one proven.
    principal_row = _carrier_rows(oe, o["code"], e["principal_code"][oe], proven, off_ref.severity[o["code"]])
    disp = e["disposal"][oe].astype(object)
    # Draws keyed by offence (arrays.KeyedRandom): another person's extra offence shifts nothing.
    lesser = ~principal_row & (KeyedRandom(o["draw_key"], 1).random(len(oe)) < 0.4) & np.isin(disp, ["custody", "suspended_sentence", "community_order"])
    disp = np.where(lesser, "no_separate_penalty", disp)
    disp = np.where(proven, disp, None).astype(object)
    offences = {
        "offence_id": _ids("O", len(oe), 9),
        "person_id": person_id[o["person"]],
        "episode_id": oe,
        "case_id": mags_case_id[oe],
        "crown_case_id": crown_case_of_ep[oe],
        "offence_code": off_ref.code[o["code"]],
        "offence_group": off_ref.group[o["code"]],
        "mode_of_trial": off_ref.mode_of_trial[o["code"]],
        "recordable": off_ref.recordable[o["code"]],
        "offence_date": o["offence_day"],
        "charge_date": e["charge_day"][oe],
        "proven": proven,
        "proven_date": np.where(proven, proven_day, NONE),
        "method_of_proof": np.where(proven, np.where(e["caution"][oe], "caution", "conviction"), None).astype(object),
        "disposal": disp,
        "custody_months": np.where(proven & (disp == "custody"), e["custody_months"][oe], np.nan),
        # The case's sentence type is passed on its principal offence (the first row of the
        # case's principal offence code); other offences in custody get concurrent standard
        # determinate terms.
        "sentence_type": np.where(proven & (disp == "custody"), np.where(
            principal_row, e["sentence_type"][oe], "standard_determinate"), None).astype(object),
    }
    tables["offences"] = offences
    d_idx = np.flatnonzero((e["disposal"] != None) & (e["sentence_day"] != NONE))
    sentencing_case = np.where(e["crown_completion_day"][d_idx] != NONE, crown_case_of_ep[d_idx], None)
    sentencing_case = np.where(e["committed_for_sentence"][d_idx], crown_case_of_ep[d_idx], sentencing_case)
    sentencing_case = np.where(sentencing_case == None, mags_case_id[d_idx], sentencing_case)
    tables["disposals"] = {
        "disposal_id": _ids("D", len(d_idx)),
        "person_id": person_id[ep_person[d_idx]],
        "episode_id": d_idx,
        "case_id": np.where(e["caution"][d_idx], None, sentencing_case).astype(object),
        "disposal_type": e["disposal"][d_idx],
        "disposal_date": e["sentence_day"][d_idx],
        "custody_months": e["custody_months"][d_idx],
        "order_months": e["order_months"][d_idx],
        "supervised": e["supervised"][d_idx],
        "index_date": e["index_day"][d_idx],
        "release_rule": e["release_rule"][d_idx],
        "sentence_type": e["sentence_type"][d_idx],
        # Proven offences (convictions and cautions) before this episode, the whole record:
        # from before the person's first contact in the world, the burn-in and the window.
        # What proven reoffending by number of previous offences is split by.
        "previous_offences": e["prior"][d_idx],
    }

    # ---- custody spells -------------------------------------------------------------------
    crng = rng["custody"]
    remanded = e["remanded"] & (e["remand_start_day"] != NONE)
    sentenced = (e["disposal"] == "custody") & (e["sentence_day"] != NONE)
    has_spell = remanded | sentenced
    s_idx = np.flatnonzero(has_spell)
    reception = np.where(remanded[s_idx], e["remand_start_day"][s_idx], e["sentence_day"][s_idx])
    release = e["release_day"][s_idx]
    reason = np.where(remanded[s_idx], "remand", "sentenced").astype(object)
    spell_case = np.where(crown_case_of_ep[s_idx] != None, crown_case_of_ep[s_idx], mags_case_id[s_idx])
    # Recalls: some people released on licence go back for breaking its conditions. Recall is
    # from licence (to the sentence end), not from the supervision that follows a short sentence.
    lic = np.flatnonzero(sentenced & (e["release_day"] != NONE) & (e["licence_end_day"] != NONE))
    lic = lic[e["licence_end_day"][lic] > e["release_day"][lic] + 14]
    # Draws keyed by the licence's episode: whether and when someone is recalled does not move
    # when someone else's licence comes or goes (same-seed worlds under other rules).
    lic_rng = KeyedRandom(e["draw_key"][lic], 2)
    u_recall, u_when, z_stay, u_suitable = (lic_rng.random(len(lic)), lic_rng.random(len(lic)),
                                            lic_rng.normal(0, 0.6, len(lic)), lic_rng.random(len(lic)))
    chosen = u_recall < w["custody"]["recall_probability"]
    recalled = lic[chosen]
    # Recalls come early in a licence more often than late (a cubed uniform: a quarter of the
    # way in on average).
    r_start = e["release_day"][recalled] + np.floor(u_when[chosen] ** 3 * (
        e["licence_end_day"][recalled] - e["release_day"][recalled])).astype(np.int64)
    # Time back inside follows the recall rules (justice.policy): a fixed-term recall for those
    # judged suitable (a risk judgement no record holds, drawn here), else a standard recall to
    # the sentence end unless the Parole Board re-releases first (the drawn stay).
    stay = np.maximum(14, np.round(w["custody"]["standard_recall_median_days"] * np.exp(
        z_stay[chosen]))).astype(np.int64)
    suitable = u_suitable[chosen] < w["custody"]["fixed_term_recall_share"]
    rules = w.get("_release_rules") or default_release_rules()
    back = rules.recall(recall_day=r_start, sentence_day=e["sentence_day"][recalled],
                        length_days=e["licence_end_day"][recalled] - e["sentence_day"][recalled],
                        offence_group=off_ref.group[e["principal_code"][recalled]],
                        fixed_term_suitable=suitable, rerelease_day=r_start + stay,
                        sentence_type=e["sentence_type"][recalled])
    r_end = back.release_day
    # A recall cannot overlap another custody spell or an offence committed outside.
    r_person = ep_person[recalled]
    ok = np.ones(len(recalled), bool)
    sp_person = ep_person[s_idx]
    order = np.lexsort((reception, sp_person))
    sp_p, sp_s, sp_e = sp_person[order], reception[order], np.where(release[order] == NONE, end + 1, release[order])
    lo = np.searchsorted(sp_p, r_person, "left")
    hi = np.searchsorted(sp_p, r_person, "right")
    for i in range(len(recalled)):
        a, b = lo[i], hi[i]
        if np.any((sp_s[a:b] < r_end[i]) & (sp_e[a:b] > r_start[i])):
            ok[i] = False
    o_order = np.lexsort((o["offence_day"], o["person"]))
    op, od = o["person"][o_order], o["offence_day"][o_order]
    lo = np.searchsorted(op, r_person, "left")
    hi = np.searchsorted(op, r_person, "right")
    for i in np.flatnonzero(ok):
        days = od[lo[i]:hi[i]]
        if np.any((days >= r_start[i]) & (days < r_end[i])):
            ok[i] = False
    # Two licences can run at once (a second sentence served while the first licence runs):
    # one recall at a time, the earlier taking precedence.
    cand = np.flatnonzero(ok)
    last_person, last_end = -1, NONE
    for i in cand[np.lexsort((r_start[cand], r_person[cand]))]:
        if r_person[i] == last_person and r_start[i] < last_end:
            ok[i] = False
            continue
        last_person, last_end = r_person[i], r_end[i]
    ok &= r_start <= end
    recalled, r_start, r_end = recalled[ok], r_start[ok], r_end[ok]
    r_end = np.where(r_end > end, NONE, r_end)
    sp = {
        "episode": np.concatenate([s_idx, recalled]),
        "person": np.concatenate([ep_person[s_idx], ep_person[recalled]]),
        "reception_day": np.concatenate([reception, r_start]),
        "release_day": np.concatenate([release, r_end]),
        "reason": np.concatenate([reason, np.full(len(recalled), "recall", object)]),
        "sentence_day": np.concatenate([np.where(sentenced[s_idx], e["sentence_day"][s_idx], NONE),
                                        e["sentence_day"][recalled]]),
        "sentence_months": np.concatenate([np.where(sentenced[s_idx], e["custody_months"][s_idx], np.nan),
                                           e["custody_months"][recalled]]),
        "release_rule": np.concatenate([np.where(sentenced[s_idx], e["release_rule"][s_idx], None),
                                        np.full(len(recalled), None, object)]).astype(object),
        "sentence_type": np.concatenate([np.where(sentenced[s_idx], e["sentence_type"][s_idx], None),
                                         e["sentence_type"][recalled]]).astype(object),
        "case_id": np.concatenate([spell_case, np.where(crown_case_of_ep[recalled] != None, crown_case_of_ep[recalled],
                                                        mags_case_id[recalled])]),
        "draw_key": np.concatenate([e["draw_key"][s_idx], derive_keys(e["draw_key"][recalled], 1)]),
    }
    order = np.lexsort((sp["reception_day"], sp["person"]))
    sp = {k: v[order] for k, v in sp.items()}
    n_sp = len(order)
    sp["spell_id"] = _ids("S", n_sp)
    sp["sex"] = people["sex"][sp["person"]]
    sp["age"] = (sp["reception_day"] - people["dob"][sp["person"]]) / 365.25
    grp = off_ref.group[e["principal_code"][sp["episode"]]]
    sp["sexual_offence"] = grp == "02 Sexual offences"
    sp["arson_offence"] = off_ref.code[e["principal_code"][sp["episode"]]] == "CD05002"

    # Prison numbers (one per person, issued at first reception) and CRNs.
    in_prison = np.unique(sp["person"])
    prison_number = np.full(n, None, dtype=object)
    prison_number[in_prison] = identifiers.make_prison_numbers(rng["identifiers"], len(in_prison))
    people["prison_number"] = prison_number

    # Establishments sized to the average population over the last year of the window.
    sp_end = np.where(sp["release_day"] == NONE, end + 1, sp["release_day"])
    last_year = np.clip(np.minimum(sp_end, end + 1) - np.maximum(sp["reception_day"], end - 364), 0, None).sum() / 365
    n_est = params.prisons or max(3, round(last_year / 720))
    towns = np.array([t.split()[0] for t in tables["courts"]["court_name"]], dtype=object)
    rng_towns = crng.permutation(np.unique(towns))
    est = custody.make_establishments(crng, n_est, rng_towns, w)
    tables["establishments"] = est
    stays = custody.split_into_stays(sp, est, w, end)
    stays["person"] = sp["person"][stays["spell"]]
    # CSRA: the riskiest few, and more so for violent or sexual offending, must be celled alone.
    risk = people["risk"][stays["person"]]
    violent = np.isin(grp[stays["spell"]], ["01 Violence against the person", "03 Robbery", "02 Sexual offences"])
    score = np.log(risk) + 0.8 * violent + KeyedRandom(stays["draw_key"], 5).normal(0, 0.7, len(risk))
    spell_high = np.zeros(n_sp, bool)
    rec = stays["is_reception"]
    thr = np.quantile(score[rec], 1 - w["custody"]["csra_high_share"]) if rec.any() else np.inf
    spell_high[stays["spell"][rec]] = score[rec] >= thr
    stays["csra_high"] = spell_high[stays["spell"]]
    cell = custody.allocate_cells(rng["cells"], stays, stays["csra_high"], n_est, w["custody"]["double_cell_share"])
    wing, landing, number = custody.cell_label(cell)
    stays["wing"] = wing
    sex_all = people["sex"]
    people["self_harm_prone"] = crng.random(n) < np.where(
        sex_all == "F", w["custody"]["self_harm"]["prone_share"]["F"], w["custody"]["self_harm"]["prone_share"]["M"])
    life = custody.life_in_custody(rng["life"], stays, people, sp, w, end)

    est_code = est["establishment_code"]
    tables["custody_spells"] = {
        "spell_id": sp["spell_id"], "person_id": person_id[sp["person"]], "reception_date": sp["reception_day"],
        "release_date": sp["release_day"], "reason": sp["reason"], "sentence_date": sp["sentence_day"],
        "sentence_months": sp["sentence_months"], "release_rule": sp["release_rule"],
        "sentence_type": sp["sentence_type"], "case_id": sp["case_id"],
        "establishment_code": est_code[stays["establishment"][stays["is_reception"]]],
    }
    loc_end = np.where(stays["end_day"] > end, NONE, stays["end_day"])
    tables["prison_locations"] = {
        "person_id": person_id[stays["person"]], "spell_id": sp["spell_id"][stays["spell"]],
        "establishment_code": est_code[stays["establishment"]], "wing": wing, "landing": landing,
        "cell": number,
        "location_code": np.array([f"{a}-{b}-{c}-{d:03d}" for a, b, c, d in zip(
            est_code[stays["establishment"]], wing, landing, number)], dtype=object),
        "start_date": stays["start_day"], "end_date": loc_end, "csra_single_cell": stays["csra_high"],
        "movement": np.where(stays["is_reception"], "reception", np.where(stays["is_transfer"], "transfer",
                                                                            "cell_move")).astype(object),
    }
    inc = life["incidents"]
    incident_id = _ids("I", len(inc["incident"]))
    tables["incidents"] = {"incident_id": incident_id, "incident_type": inc["type"], "incident_date": inc["day"],
                           "establishment_code": est_code[inc["establishment"]]}
    pa_ = life["incident_parties"]
    tables["incident_parties"] = {"incident_id": incident_id[pa_["incident"]], "person_id": person_id[pa_["person"]],
                                  "role": pa_["role"]}
    na = life["non_associations"]
    tables["non_associations"] = {"person_id": person_id[na["person"]], "other_person_id": person_id[na["other_person"]],
                                  "reason": na["reason"], "role": na["role"], "other_role": na["other_role"],
                                  "restriction": na["restriction"], "effective_date": na["effective_day"],
                                  "expiry_date": na["expiry_day"]}
    al = life["alerts"]
    order = np.lexsort((al["code"].astype(str), al["start_day"], al["person"]))
    tables["alerts"] = {"person_id": person_id[al["person"][order]], "alert_code": al["code"][order],
                        "start_date": al["start_day"][order], "end_date": al["end_day"][order]}
    asr = life["assessments"]
    tables["assessments"] = {"person_id": person_id[asr["person"]], "assessment_type": np.full(
        len(asr["person"]), "CSRA", object), "assessment_date": asr["day"], "level": asr["level"],
        "reason": asr["reason"], "establishment_code": est_code[asr["establishment"]]}
    ad = life["adjudications"]
    tables["adjudications"] = {"adjudication_id": _ids("A", len(ad["person"])), "person_id": person_id[ad["person"]],
                               "charge_date": ad["day"], "establishment_code": est_code[ad["establishment"]],
                               "charge": ad["charge"], "finding": ad["finding"], "punishment": ad["punishment"]}

    # ---- probation supervision -------------------------------------------------------------
    co = np.flatnonzero(e["supervised"] & (e["sentence_day"] != NONE))
    months = e["order_months"][co]
    co_end = e["sentence_day"][co] + np.round(months * 30.4375).astype(np.int64)
    lic = np.flatnonzero((e["disposal"] == "custody") & (e["release_day"] != NONE) & (e["supervision_end_day"] != NONE))
    lic = lic[e["supervision_end_day"][lic] > e["release_day"][lic]]
    sup = {
        "episode": np.concatenate([co, lic]),
        "type": np.concatenate([np.where(e["disposal"][co] == "community_order", "community_order",
                                         "suspended_sentence_order"), np.full(len(lic), "licence", object)]).astype(object),
        "start_day": np.concatenate([e["sentence_day"][co], e["release_day"][lic]]),
        "planned_end_day": np.concatenate([co_end, e["supervision_end_day"][lic]]),
    }
    k = len(sup["episode"])
    sup_rng = KeyedRandom(e["draw_key"][sup["episode"]], 3)
    breach = sup_rng.random(k) < np.where(sup["type"] == "licence", 0.0, 0.14)
    breach_day = sup["start_day"] + np.floor(sup_rng.random(k) * (sup["planned_end_day"] - sup["start_day"])).astype(np.int64)
    sup["breach_day"] = np.where(breach & (breach_day <= end), breach_day, NONE)
    sup["end_day"] = np.where(sup["planned_end_day"] > end, NONE, sup["planned_end_day"])
    order = np.lexsort((sup["start_day"], ep_person[sup["episode"]]))
    sup = {kk: v[order] for kk, v in sup.items()}
    sup_person = ep_person[sup["episode"]]
    on_probation = np.unique(sup_person)
    crn = np.full(n, None, dtype=object)
    crn[on_probation] = identifiers.make_crns(rng["identifiers"], len(on_probation))
    people["crn"] = crn
    tables["supervision"] = {
        "supervision_id": _ids("V", len(sup_person)), "person_id": person_id[sup_person],
        "supervision_type": sup["type"], "start_date": sup["start_day"], "planned_end_date": sup["planned_end_day"],
        "end_date": sup["end_day"], "breach_date": sup["breach_day"],
        "case_id": np.where(crown_case_of_ep[sup["episode"]] != None, crown_case_of_ep[sup["episode"]],
                            mags_case_id[sup["episode"]]),
        "region": people["region"][sup_person],
    }

    # ---- interventions ---------------------------------------------------------------------
    progs = w["interventions"]["programmes"]
    iv = np.flatnonzero(e["programme"] >= 0)
    tables["interventions"] = {
        "person_id": person_id[ep_person[iv]],
        "programme": np.array([p["name"] for p in progs], dtype=object)[e["programme"][iv]],
        "provider": np.array([p["provider"] for p in progs], dtype=object)[e["programme"][iv]],
        "start_date": e["programme_start_day"][iv],
        "index_date": e["index_day"][iv],
        # The one-year follow-up the effect applies to starts here (the index date, or release
        # if later); `effect` is the true change in the probability before clipping to [0, 1].
        "follow_up_start_date": e["follow_up_start_day"][iv],
        "effect": e["programme_effect"][iv],
        "p_reoffend_without": e["p_reoffend_without"][iv],
        "p_reoffend_with": e["p_reoffend_with"][iv],
        "reoffends_within_year": e["reoffends_within_year"][iv],
        "would_reoffend_without_programme": e["would_reoffend_without_programme"][iv],
    }

    # ---- persons -----------------------------------------------------------------------------
    tables["persons"] = {
        "person_id": person_id, "forename": people["forename"], "middle_name": people["middle_name"],
        "surname": people["surname"], "sex": people["sex"], "dob": people["dob"],
        "ethnicity": people["ethnicity"], "postcode": people["postcode"], "region": people["region"],
        "pnc_id": people["pnc_id"], "cro_number": people["cro_number"],
        "prison_number": people["prison_number"], "crn": people["crn"],
        "twin_of": np.where(people["twin_of"] >= 0, person_id[np.maximum(people["twin_of"], 0)], None).astype(object),
        "namesake_of": np.where(people["namesake_of"] >= 0, person_id[np.maximum(people["namesake_of"], 0)],
                                None).astype(object),
        "risk_score": np.round(people["risk"], 6),
        "self_harm_prone": people["self_harm_prone"],
    }


def _carrier_rows(episode: np.ndarray, code: np.ndarray, principal_code: np.ndarray, proven: np.ndarray,
                  severity: np.ndarray) -> np.ndarray:
    """True on one row per episode with a proven offence: the row that carries the case's
    sentence. The first proven row of the principal offence code, else the most serious proven
    row (the first of equals), rows in their order."""
    rows = np.flatnonzero(proven)
    order = np.lexsort((rows, -severity[rows], code[rows] != principal_code[rows], episode[rows]))
    rows = rows[order]
    _, first = np.unique(episode[rows], return_index=True)
    out = np.zeros(len(episode), bool)
    out[rows[first]] = True
    return out

