"""Crown Court case system (modelled on XHIBIT): daily XML files of case messages.

Layout
------
``crown/YYYY-MM/xhibit_YYYYMMDD.xml``: one UTF-8 XML file per day on which at least one case
was created or changed, grouped into monthly folders. Daily files stay small (a million-person
world has roughly 150 messages a day), so there is no need to batch them by month. Every file
validates against ``crown.xsd`` (namespace ``urn:justice-sim:xhibit:1``)::

    CaseMessages @MessageDate @Source
      CaseMessage @MessageID @MessageType (NEW / UPDATE / RESULTED)
        Case
          CaseNumber CourtCode CourtName CaseType ReceiptDate CommittingCourt? CommittalDate?
          CaseStatus (OPEN / CLOSED)
          Defendants/Defendant
            DefendantID
            PersonalDetails: Surname Forename1? Forename2? DateOfBirth? Gender (1 male,
                             2 female, 0 not known) Postcode?
            PNCId? CROno? CustodyStatus (IN CUSTODY / ON BAIL)
            Offences/Offence: OffenceSeq OffenceCode OffenceWording OffenceStartDate
                              ChargeDate? ArraignmentDate? Plea?
            Outcomes/Outcome (once resulted): OffenceSeq Verdict OutcomeDate Disposal?
                              SentenceYears? SentenceMonths? SentenceDays?
                              (immediate custody by type: IMPRISONMENT, EXTENDED SENTENCE OF
                              IMPRISONMENT with its custodial term, LIFE IMPRISONMENT and
                              IMPRISONMENT FOR PUBLIC PROTECTION with no length)
          Hearings/Hearing: HearingDate HearingType HearingResult?

Each message is the full state of the case as at the message date: a case is sent when
received, on each hearing day (a trial listing vacated when the case cracked is recorded when
the case closes, not on its listed day), when resulted, and when its defendant's details are
corrected (``late_correction``: earlier messages keep the wrong surname or date of birth). The
latest message for a ``DefendantID`` is the current state.

Keys
----
``DefendantID`` (8 digits) is the person-bearing record key, one per case. ``CaseNumber`` is
the case class (``T`` trial, ``S`` committal for sentence, ``A`` appeal), the year of receipt
and a serial within court, class and year (``T20190001``); the case key is
(``CourtCode``, ``CaseNumber``). A case refers to the magistrates' case it came from only
through the free-text ``CommittingCourt`` (spelled in several ways) and the
``CommittalDate``: there is no shared key with the magistrates' system.

Dates are ISO ``yyyy-mm-dd``. Dates the system stamps itself (message, receipt, committal,
hearing, arraignment, charge, outcome) are typed ``xs:date``. ``DateOfBirth`` and
``OffenceStartDate`` are keyed in by staff and are typed in the schema as the loose string
pattern ``\\d{4}-\\d{2}-\\d{2}``, so a message carrying an impossible date (``2019-02-31``,
``0000-00-00``: the ``invalid_date`` mess) is still schema-valid, as in the real feed. Names are
in mixed case as keyed.

Mess (answer-key labels)
------------------------
Identity mess from :func:`justice.sim.legacy.identity.messy_identity`; ``duplicate_row`` (one
of the record's messages sent twice, byte for byte, in the same file); ``invalid_date``;
``late_correction``; ``whitespace`` and ``encoding_error`` on the surname.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from justice.sim import reference as ref
from justice.sim.arrays import composite, group_starts
from justice.sim.courts import NONE
from justice.sim.legacy.identity import messy_identity, person_rows
from justice.sim.legacy.magistrates import (
    add_labels,
    answer_key,
    bad_dates,
    cases_in_receipt_order,
    custody_terms,
    day_chunks,
    day_number,
    dob_days,
    format_days,
    identity_options,
    lookup,
    month_folder,
    other_person_ids,
    pick_rows,
    record_events,
    scrambled_numbers,
    wrong_identity,
    year_of,
)

SYSTEM = "crown"
NAMESPACE = "urn:justice-sim:xhibit:1"
XSD_PATH = Path(__file__).with_name("crown.xsd")
CHUNK_MESSAGES = 50_000
ISO = "%Y-%m-%d"

_CLASS = {"trial_either_way": "T", "trial_indictable_only": "T", "committed_for_sentence": "S",
          "appeal": "A"}
_CASE_TYPE = {"T": "TRIAL", "S": "SENTENCE", "A": "APPEAL"}
_HEARING_TYPE = {"plea_and_trial_preparation": "PTPH", "trial": "TRIAL", "sentence": "SENTENCE",
                 "mention": "MENTION", "appeal": "APPEAL", "first_hearing": "FIRST HEARING"}
_DISPOSAL = {
    "fine": "FINE",
    "discharge": "CONDITIONAL DISCHARGE",
    "community_order": "COMMUNITY ORDER",
    "suspended_sentence": "SUSPENDED SENTENCE ORDER",
    "custody": "IMPRISONMENT",
    "no_separate_penalty": "NO SEPARATE PENALTY",
}
# Immediate custody as XHIBIT writes it, by sentence type. A life sentence or IPP has a minimum
# term, not a length: no SentenceYears/Months/Days are written for it (as the published
# average custodial sentence length leaves them out). An extended sentence's length is its
# custodial term.
_CUSTODY_TEXT = {
    "standard_determinate": "IMPRISONMENT",
    "extended_determinate": "EXTENDED SENTENCE OF IMPRISONMENT",
    "life": "LIFE IMPRISONMENT",
    "ipp": "IMPRISONMENT FOR PUBLIC PROTECTION",
}
_GENDER = {"M": "1", "F": "2"}


def esc(s: object) -> str:
    """Text content escaped for XML (None -> "")."""
    if s is None:
        return ""
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _el(tag: str, value: object) -> str:
    """``<tag>value</tag>``, or "" when the value is missing or empty."""
    return f"<{tag}>{esc(value)}</{tag}>" if value not in (None, "") else ""


def _committing_court(rng: np.random.Generator, names: list[str | None]) -> list[str]:
    """How a clerk types the sending magistrates' court: several spellings of the same court."""
    k = rng.integers(0, 5, len(names)).tolist()
    out = []
    for name, j in zip(names, k, strict=True):
        if name is None:
            out.append("")
            continue
        town = name.replace(" Magistrates' Court", "")
        out.append((name, f"{town} MC", f"{town.upper()} MAGISTRATES COURT", f"{town} Mags",
                    town)[j])
    return out


def _sentence(months: float) -> str:
    if np.isnan(months):
        return ""
    whole = int(np.floor(months + 1e-9))
    days = round((months - whole) * 30.4375)
    y, m = divmod(whole, 12)
    return (_el("SentenceYears", y if y else "") + _el("SentenceMonths", m if m else "")
            + _el("SentenceDays", days if days else ""))


def emit(tables: dict, rng: np.random.Generator, rates: dict, out: Path, params) -> pa.Table:
    """Write the daily XHIBIT XML files under ``out``; return the answer key (one row per
    DefendantID)."""
    out = Path(out)
    start, end = day_number(params.start), day_number(params.end)
    cc = tables["court_cases"]
    case = cases_in_receipt_order(tables, "crown")
    n = len(case["case_id"])
    receipt, completion = case["receipt_date"], case["completion_date"]

    # The system's own keys: case number per court, class and year; a defendant id per case.
    klass = np.array([_CLASS[t] for t in case["case_type"].tolist()] + [""], dtype=object)[:-1]
    year = year_of(receipt)
    court = case["court_code"].astype(str)
    grp = np.char.add(np.char.add(court, klass.astype(str)), year.astype(str))
    by_grp = np.lexsort((np.arange(n), grp))
    g_sorted = grp[by_grp]
    g_starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]]) if n else np.zeros(0, int)
    serial = np.empty(n, np.int64)
    serial[by_grp] = np.arange(n) - np.repeat(g_starts, np.diff(np.r_[g_starts, n])) + 1
    case_no = [f"{k}{y}{s:04d}" for k, y, s in
               zip(klass.tolist(), year.tolist(), serial.tolist(), strict=True)]
    rank = np.lexsort((serial, klass.astype(str), year, court))
    rank_of = np.empty(n, np.int64)
    rank_of[rank] = np.arange(n)
    def_id = scrambled_numbers(rng, n, 10_000_000, 100_000_000).astype(str).astype(object)

    courts = tables["courts"]
    court_name = dict(zip(courts["court_code"].tolist(), courts["court_name"].tolist(),
                          strict=True))
    mags_pos = lookup(case["related_case_id"], cc["case_id"])
    committing = _committing_court(rng, [court_name[cc["court_code"][p]] if p >= 0 else None
                                         for p in mags_pos.tolist()])
    committal = np.where(mags_pos >= 0, cc["completion_date"][np.maximum(mags_pos, 0)], NONE)
    committal_s = format_days(committal, ISO)
    receipt_s = format_days(receipt, ISO)
    header = [
        f"<CaseNumber>{no}</CaseNumber><CourtCode>{c}</CourtCode>"
        f"<CourtName>{esc(court_name[c])}</CourtName><CaseType>{_CASE_TYPE[k]}</CaseType>"
        f"<ReceiptDate>{r}</ReceiptDate>{_el('CommittingCourt', cm)}{_el('CommittalDate', cd)}"
        for no, c, k, r, cm, cd in zip(case_no, court.tolist(), klass.tolist(),
                                       receipt_s.tolist(), committing, committal_s.tolist(),
                                       strict=True)
    ]

    # Offences: those sent up (crown_case_id), or for an appeal those of the case appealed.
    offs_t = tables["offences"]
    by_crown = lookup(offs_t["crown_case_id"], case["case_id"])
    appeal = klass == "A"
    app_of_mags = np.full(len(cc["case_id"]), -1, np.int64)
    app_of_mags[mags_pos[appeal & (mags_pos >= 0)]] = np.flatnonzero(appeal & (mags_pos >= 0))
    o_mags = lookup(offs_t["case_id"], cc["case_id"])
    by_appeal = np.where(o_mags >= 0, app_of_mags[np.maximum(o_mags, 0)], -1)
    o_idx = np.r_[np.flatnonzero(by_crown >= 0), np.flatnonzero(by_appeal >= 0)]
    o_rec = np.r_[by_crown[by_crown >= 0], by_appeal[by_appeal >= 0]]
    srt = np.lexsort((o_idx, o_rec))
    o_idx, o_rec = o_idx[srt], o_rec[srt]
    offs = {k: v[o_idx] for k, v in offs_t.items()}
    o_starts, o_counts = group_starts(o_rec, n)
    o_seq = np.arange(len(o_rec)) - o_starts[o_rec] + 1
    off_ref = ref.offences()
    wording_of = dict(zip(off_ref.code.tolist(), off_ref.description.tolist(), strict=True))

    # Hearings, and the plea and trial preparation hearing where pleas are taken.
    h = tables["hearings"]
    h_rec = lookup(h["case_id"], case["case_id"])
    h_sel = np.flatnonzero(h_rec >= 0)
    h_sel = h_sel[np.lexsort((h_sel, h["hearing_date"][h_sel], h_rec[h_sel]))]
    h_rec = h_rec[h_sel]
    h_day = h["hearing_date"][h_sel]
    h_starts, _ = group_starts(h_rec, n)
    ptph = np.full(n, np.iinfo(np.int64).max, np.int64)
    ptph_guilty = np.zeros(n, bool)
    is_ptph = h["hearing_type"][h_sel] == "plea_and_trial_preparation"
    first_ptph = np.flatnonzero(is_ptph)[::-1]  # reversed, so the earliest write wins
    ptph[h_rec[first_ptph]] = h_day[first_ptph]
    ptph_guilty[h_rec[first_ptph]] = h["outcome"][h_sel][first_ptph] == "guilty_plea"
    h_text = [
        f"<Hearing><HearingDate>{d}</HearingDate><HearingType>{_HEARING_TYPE.get(t, t.upper())}"
        f"</HearingType>{_el('HearingResult', (o or '').upper().replace('_', ' '))}</Hearing>"
        for d, t, o in zip(format_days(h_day, ISO).tolist(), h["hearing_type"][h_sel].tolist(),
                           h["outcome"][h_sel].tolist(), strict=True)
    ]
    h_cum: list[str] = []
    for i, t in enumerate(h_text):  # hearings so far, per case
        h_cum.append(h_cum[-1] + t if i and h_rec[i] == h_rec[i - 1] else t)

    # Offence blocks: before and after arraignment (plea), and the outcomes once resulted.
    proven = offs["proven"].astype(bool)
    oc = case["outcome"][o_rec]
    r_klass = klass[o_rec]
    plea = np.where(ptph_guilty[o_rec] & proven, "GUILTY", "NOT GUILTY")
    arraigned = format_days(np.where(ptph[o_rec] < np.iinfo(np.int64).max, ptph[o_rec], NONE),
                            ISO)
    verdict = np.select(
        [r_klass == "A", (oc == "convicted_guilty_plea") & proven, oc == "convicted_guilty_plea",
         (oc == "convicted_at_trial") & proven, (oc == "convicted_at_trial") | (oc == "acquitted"),
         oc == "prosecution_offered_no_evidence", (r_klass == "S") & proven],
        [np.char.upper(np.char.replace(oc.astype(str), "_", " ")), "GUILTY PLEA", "LIE ON FILE",
         "GUILTY", "NOT GUILTY", "NO EVIDENCE OFFERED", "CONVICTED BELOW"],
        "NOT PROCEEDED WITH").astype(object)
    sentenced = proven & (r_klass != "A")
    outcome_day = np.where((offs["proven_date"] != NONE) & sentenced, offs["proven_date"],
                           completion[o_rec])
    outcome_s = format_days(np.where(outcome_day == NONE, receipt[o_rec], outcome_day), ISO)
    months = custody_terms(tables, offs, np.asarray(case["case_id"])[o_rec])
    stype = offs["sentence_type"]
    off_date_s = format_days(offs["offence_date"], ISO).tolist()
    charge_s = format_days(offs["charge_date"], ISO).tolist()
    pre, post, res = [], [], []
    for i in range(len(o_rec)):
        code = offs["offence_code"][i]
        body = (f"<OffenceSeq>{o_seq[i]}</OffenceSeq><OffenceCode>{code}</OffenceCode>"
                f"<OffenceWording>{esc(wording_of.get(code))}</OffenceWording>"
                f"<OffenceStartDate>{off_date_s[i]}</OffenceStartDate>"
                f"{_el('ChargeDate', charge_s[i])}")
        pre.append(f"<Offence>{body}</Offence>")
        pleaded = _el("ArraignmentDate", arraigned[i]) + _el("Plea", plea[i]) if arraigned[i] else ""
        post.append(f"<Offence>{body}{pleaded}</Offence>")
        dispo = offs["disposal"][i]
        if sentenced[i] and isinstance(dispo, str) and dispo in _DISPOSAL:
            kind = stype[i] if dispo == "custody" and isinstance(stype[i], str) else "standard_determinate"
            sent = _el("Disposal", _CUSTODY_TEXT[kind] if dispo == "custody" else _DISPOSAL[dispo])
            if dispo in ("custody", "suspended_sentence") and kind not in ("life", "ipp"):
                sent += _sentence(float(months[i]))
        else:
            sent = ""
        res.append(f"<Outcome><OffenceSeq>{o_seq[i]}</OffenceSeq><Verdict>{verdict[i]}</Verdict>"
                   f"<OutcomeDate>{outcome_s[i]}</OutcomeDate>{sent}</Outcome>")

    def joined(parts: list[str]) -> list[str]:
        return ["".join(parts[s:s + c]) for s, c in
                zip(o_starts.tolist(), o_counts.tolist(), strict=True)]

    offences_pre, offences_post, outcomes = joined(pre), joined(post), joined(res)

    # Identity as XHIBIT holds it: mixed case.
    rows = person_rows(tables, case["person_id"])
    messy, labels = messy_identity(rng, rows, rates, surname_pool=tables["persons"]["surname"],
                                   ids=("pnc_id", "cro_number"), upper_case=False,
                                   **identity_options(tables, SYSTEM, receipt))
    # A trial listing vacated when the case cracked keeps its listed date but is recorded when the
    # case closes: a closed case gets no message on the day it would have been tried (one closed
    # before the window would otherwise first appear, already closed, on that later day).
    h_event = np.where((completion[h_rec] != NONE) & (h_day > completion[h_rec]), completion[h_rec], h_day)
    ev = record_events(rng, np.r_[np.arange(n), h_rec, np.arange(n)],
                       np.r_[receipt, h_event, completion], n, start, end, rates["late_correction"])
    late = ev["late"]
    labels = add_labels(labels, "late_correction", late)
    wrong_sur, wrong_dob = wrong_identity(rng, messy["surname"], messy["dob"], late)
    dob_s = format_days(dob_days(messy["dob"]), ISO)
    w_dob_s = format_days(dob_days(wrong_dob), ISO)
    custody = np.where(case["remanded_in_custody"].astype(bool), "IN CUSTODY", "ON BAIL")

    def person_block(sur, dob) -> list[str]:
        return [
            f"<PersonalDetails><Surname>{esc(s)}</Surname>{_el('Forename1', f)}"
            f"{_el('Forename2', m)}{_el('DateOfBirth', d)}<Gender>{_GENDER.get(g, '0')}</Gender>"
            f"{_el('Postcode', pc)}</PersonalDetails>{_el('PNCId', p)}{_el('CROno', c)}"
            f"<CustodyStatus>{cs}</CustodyStatus>"
            for s, f, m, d, g, pc, p, c, cs in zip(
                sur.tolist(), messy["forename"].tolist(), messy["middle_name"].tolist(),
                dob.tolist(), messy["sex"].tolist(), messy["postcode"].tolist(),
                messy["pnc_id"].tolist(), messy["cro_number"].tolist(), custody.tolist(),
                strict=True)
        ]

    person = person_block(messy["surname"], dob_s)
    person_w = person_block(wrong_sur, w_dob_s)

    # Messages: one per record event; row-level mess picks messages.
    ev_rec, ev_day, ev_wrong = ev["rec"], ev["day"], ev["wrong"]
    dup_rec, dup_msgs = pick_rows(rng, ev_rec, n, rates["duplicate_row"])
    labels = add_labels(labels, "duplicate_row", dup_rec)
    bad_rec, bad_msgs = pick_rows(rng, ev_rec, n, rates["invalid_date"])
    b_rec = ev_rec[bad_msgs]
    b_dob = np.where(ev_wrong[bad_msgs], dob_days(wrong_dob)[b_rec], dob_days(messy["dob"])[b_rec])
    b_first_off = o_starts[b_rec]
    use_dob = (rng.random(len(bad_msgs)) < 0.5) & (b_dob != NONE)
    use_dob |= o_counts[b_rec] == 0
    # A message with neither a date of birth nor an offence cannot carry the error.
    hopeless = use_dob & (b_dob == NONE)
    bad_rec[b_rec[hopeless]] = False
    src = np.where(use_dob, b_dob, offs["offence_date"][np.minimum(b_first_off, len(o_rec) - 1)]
                   if len(o_rec) else b_dob)
    bad_val = bad_dates(rng, year_of(src), iso=True)
    labels = add_labels(labels, "invalid_date", bad_rec)
    bad_of = {int(m): (bool(u), str(v), d) for m, u, v, d in
              zip(bad_msgs.tolist(), use_dob.tolist(), bad_val.tolist(),
                  format_days(src, ISO).tolist(), strict=True)}

    h_cnt = np.searchsorted(composite(h_rec, h_event), composite(ev_rec, ev_day), side="right") \
        - h_starts[ev_rec]
    perm = np.lexsort((rank_of[ev_rec], ev_day))
    dup = np.zeros(len(ev_rec), np.int64)
    dup[dup_msgs] = 1
    for _, _, days in day_chunks(ev_day[perm], CHUNK_MESSAGES):
        for day, a, b in days:
            folder, stamp = month_folder(out, day)
            iso = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:]}"
            parts = ['<?xml version="1.0" encoding="UTF-8"?>\n',
                     f'<CaseMessages xmlns="{NAMESPACE}" MessageDate="{iso}" Source="XHIBIT">\n']
            for k, m in enumerate(perm[a:b].tolist(), start=1):
                r, d = int(ev_rec[m]), int(ev_day[m])
                closed = completion[r] != NONE and completion[r] <= d
                mtype = "NEW" if d == receipt[r] else "RESULTED" if d == completion[r] else "UPDATE"
                offences = offences_post[r] if ptph[r] <= d else offences_pre[r]
                nh = int(h_cnt[m])
                msg = (
                    f'<CaseMessage MessageID="{stamp}-{k:06d}" MessageType="{mtype}"><Case>'
                    f"{header[r]}<CaseStatus>{'CLOSED' if closed else 'OPEN'}</CaseStatus>"
                    f"<Defendants><Defendant><DefendantID>{def_id[r]}</DefendantID>"
                    f"{person_w[r] if ev_wrong[m] else person[r]}<Offences>{offences}</Offences>"
                    f"{'<Outcomes>' + outcomes[r] + '</Outcomes>' if closed else ''}"
                    f"</Defendant></Defendants>"
                    f"<Hearings>{h_cum[h_starts[r] + nh - 1] if nh > 0 else ''}</Hearings>"
                    "</Case></CaseMessage>\n"
                )
                if m in bad_of:
                    is_dob, val, orig = bad_of[m]
                    tag = "DateOfBirth" if is_dob else "OffenceStartDate"
                    msg = msg.replace(f"<{tag}>{orig}</{tag}>", f"<{tag}>{val}</{tag}>", 1)
                parts.append(msg)
                if dup[m]:
                    parts.append(msg)
            parts.append("</CaseMessages>\n")
            (folder / f"xhibit_{stamp}.xml").write_text("".join(parts), encoding="utf-8")

    kept = ev["kept"]
    return answer_key(SYSTEM, def_id[kept], case["person_id"][kept], labels[kept],
                      other_person_ids(tables, messy)[kept])
