"""The courts side of the canonical `core` model (`justice build`), checked against the answer key.

A legacy defendant record is tied to its truth case through truth/records.parquet (record ->
true person) and the case's court, court type and receipt date, which identify a truth case
uniquely in these worlds."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
SIM_OFFENCES = REPO / "src/justice/sim/reference/offences.csv"
SEED_OFFENCES = REPO / "src/justice/transform/seeds/offence_codes.csv"
SEED_ETHNICITY = REPO / "src/justice/transform/seeds/ethnicity_codes.csv"


@pytest.fixture(scope="module")
def built(built_home):
    """The shared linked and built world (read-only): Settings."""
    return built_home


def _q(settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.home / "warehouse.duckdb"), read_only=True)
    try:
        con.execute(f"set file_search_path = '{settings.truth_dir}'")
        con.execute(MATCHED)
        return con.execute(sql).fetchall()
    finally:
        con.close()


# Each defendant case with its truth case (null if none matches).
MATCHED = """
create temp view matched as
select dc.*, c.court_code, t.case_id, t.case_type as truth_case_type,
       t.completion_date as truth_completion, t.charge_date as truth_charge,
       t.principal_offence_code as truth_principal
from core.defendant_case dc
join core.court_case c using (court_case_id)
join read_parquet('records.parquet') r on r.system = dc.court_type and r.record_id = dc.defendant_id
left join read_parquet('court_cases.parquet') t
  on t.person_id = r.person_id and t.court_type = dc.court_type and t.court_code = c.court_code
 and t.receipt_date = c.receipt_date
"""


def test_offence_seed_agrees_with_the_simulators_reference():
    """The seed is the simulator's offence list plus effective dates: they must not drift."""
    sim = {r["offence_code"]: r for r in csv.DictReader(SIM_OFFENCES.open())}
    seed = list(csv.DictReader(SEED_OFFENCES.open()))
    current = {r["offence_code"]: r for r in seed if not r["effective_to"]}
    assert current.keys() == sim.keys()
    assert len(current) == len([r for r in seed if not r["effective_to"]]), "one current row per code"
    for code, s in sim.items():
        c = current[code]
        assert (c["offence_description"], c["offence_group"], c["mode_of_trial"], c["max_penalty_months"],
                c["severity"], c["recordable"]) == (s["description"], s["offence_group"], s["mode_of_trial"],
                                                    s["max_penalty_months"], s["severity"], s["recordable"]), code
    # Every code is classified on any offence date a record can hold: the simulator's people offend
    # from its warm-up years before the window (an offence of 1999 charged in 2014 was found with
    # no classification, so its case had no case type, when the first rows began in 2000).
    from justice.sim.params import SimulationParams

    params = SimulationParams()
    earliest = dt.date.fromisoformat(str(params.start)) - dt.timedelta(days=366 * (params.burn_in_years + 1))
    first = {}
    for r in seed:
        first[r["offence_code"]] = min(first.get(r["offence_code"], r["effective_from"]), r["effective_from"])
    late = {code: day for code, day in first.items() if dt.date.fromisoformat(day) > earliest}
    assert not late, (earliest, late)


def test_every_defendant_case_is_a_truth_case_and_cases_per_type_and_year_agree(built):
    unmatched = _q(built, "select count(*) from matched where case_id is null")[0][0]
    assert unmatched == 0
    rows = _q(built, """
        with ours as (select court_type, year(receipt_date) y, count(*) n from core.court_case group by all),
        truth as (select court_type, year(receipt_date) y, count(*) n from read_parquet('court_cases.parquet')
                  group by all)
        select court_type, y, coalesce(ours.n, 0), truth.n from truth left join ours using (court_type, y)
        where y >= 2014 order by all""")
    # Truth holds cases closed before the window (2014-) that no legacy system keeps, hence
    # years from 2014 only. Within it a magistrates' case is missing when it was completed at its
    # first hearing (so Libra sent its rows once) and that one row was quarantined for an
    # impossible date: measured 1 case in 2015, 2017 and 2025 (of ~330-470), none elsewhere.
    assert len(rows) == 2 * 12
    for court_type, year, ours, truth in rows:
        assert abs(ours - truth) <= max(1, 0.01 * truth), (court_type, year, ours, truth)


def test_case_types_and_dates_agree_with_truth(built):
    for court_type, agree, n in _q(built, """
            select court_type, count(*) filter (where case_type = truth_case_type), count(*)
            from matched group by 1"""):
        # Truth types a magistrates' case by the offence the simulator drew first (its most
        # severe by its own score); core by the MoJ principal offence (disposal, then maximum
        # penalty), so a case of a summary and an either-way offence can differ. Measured 97.8%
        # magistrates' (4,700 / 4,804), 100% Crown Court (497; another world had one trial typed
        # indictable-only by a secondary indictable-only offence, as the statistics would).
        assert agree / n >= (0.96 if court_type == "magistrates" else 0.98), (court_type, agree, n)
    completion, charge, n = _q(built, """
        select count(*) filter (where completion_date is not distinct from truth_completion),
               count(*) filter (where charge_date is not distinct from truth_charge), count(*) from matched""")[0]
    # Measured 5,300 / 5,301 completion dates: a quarantined completion row leaves a case open.
    assert completion / n >= 0.995 and charge / n >= 0.995, (completion, charge, n)


def test_principal_offence_follows_the_moj_rule_and_agrees_with_truth(built):
    rows = _q(built, """
        with best as (  -- the codes that win on disposal and maximum penalty, per defendant case
            select defendant_case_id, list(distinct offence_code) as codes from (
                select *, rank() over (partition by defendant_case_id
                                       order by disposal_severity desc, max_penalty_months desc) as r
                from core.offence) where r = 1 group by 1)
        select m.court_type, len(b.codes) = 1 and b.codes[1] = m.truth_principal as unique_best,
               count(*) filter (where m.principal_offence_code = m.truth_principal), count(*)
        from matched m join best b using (defendant_case_id) group by all order by all""")
    by = {(ct, unique): (agree, n) for ct, unique, agree, n in rows}
    for ct in ("magistrates", "crown"):
        # Where truth's principal is the one offence with the most severe disposal and highest
        # maximum penalty, the rule must pick it.
        agree, n = by[(ct, True)]
        assert agree == n, (ct, agree, n)
        # Overall, truth's principal is the simulator's most severe offence by its own severity
        # score, which ties or disagrees with maximum penalty (harassment, 120 months, outranks
        # grievous bodily harm, 60); and the disposal can sit on a secondary offence. Measured
        # 92.5% magistrates' (4,442 / 4,804), 80.3% Crown Court (399 / 497).
        total = sum(by.get((ct, u), (0, 0))[0] for u in (True, False))
        count = sum(by.get((ct, u), (0, 0))[1] for u in (True, False))
        assert total / count >= (0.88 if ct == "magistrates" else 0.70), (ct, total, count)


def test_principal_disposal_is_the_truth_sentence_and_custody_lengths_agree(built):
    agree, n = _q(built, """
        select count(*) filter (where replace(d.disposal_type, 'custody', 'immediate_custody')
                                      = m.principal_disposal_type), count(*)
        from matched m join read_parquet('disposals.parquet') d on d.case_id = m.case_id""")[0]
    # Gaps (measured 15 of 4,029): the simulator can leave a case's sentence only on an offence it
    # then marks unproven, so the proven ones carry "no separate penalty" (core: other).
    assert agree / n >= 0.99, (agree, n)
    # Both systems write lengths as months x 30.4375 days or years/months/days: measured 443 / 443
    # before sentence types, 427 / 427 of the determinate sentences after.
    close, n = _q(built, """
        select count(*) filter (where abs(m.principal_custody_days - d.custody_months * 30.4375) <= 1), count(*)
        from matched m join read_parquet('disposals.parquet') d on d.case_id = m.case_id
        where d.disposal_type = 'custody' and m.principal_disposal_type = 'immediate_custody'
          and d.sentence_type not in ('life', 'ipp')""")[0]
    assert close / n >= 0.99, (close, n)
    # A life sentence or IPP has a minimum term, not a length: the Crown Court writes none, and
    # staging maps its text to immediate custody (seed disposal_codes). Core holds them exactly
    # when truth passed one in a matched Crown Court case (a small world may hold none).
    seed = dict(_q(built, """select source_disposal, disposal_type from reference.disposal_codes
                             where source_disposal in ('LIFE IMPRISONMENT', 'IMPRISONMENT FOR PUBLIC PROTECTION')"""))
    assert seed == dict.fromkeys(("LIFE IMPRISONMENT", "IMPRISONMENT FOR PUBLIC PROTECTION"),
                                 "immediate_custody"), seed
    rows = _q(built, """
        select disposal_type, custody_days from core.offence
        where source_disposal in ('LIFE IMPRISONMENT', 'IMPRISONMENT FOR PUBLIC PROTECTION')""")
    (passed,) = _q(built, """
        select count(*) from read_parquet('offences.parquet') o
        where o.sentence_type in ('life', 'ipp')
          and exists (select 1 from matched m where m.court_type = 'crown' and m.case_id = o.crown_case_id)""")[0]
    assert bool(rows) == (passed > 0), (len(rows), passed)
    assert all(kind == "immediate_custody" and days is None for kind, days in rows), rows


def test_disposal_distribution_matches_truth_offences(built):
    ours = dict(_q(built, "select disposal_type, count(*) from core.disposal group by 1"))
    truth = dict(_q(built, """
        select case disposal when 'custody' then 'immediate_custody' when 'no_separate_penalty' then 'other'
                    else disposal end, count(*)
        from read_parquet('offences.parquet') o
        where disposal not in ('caution') and exists (select 1 from matched m where m.case_id in (o.case_id, o.crown_case_id))
        group by 1"""))
    assert ours.keys() == truth.keys()
    # Measured within 0.5% (fines 4,435 / 4,442, custody 940 / 944): truth also counts sentences
    # whose sentencing court's record predates the window while the other court's record is in
    # it, and a quarantined result row hides its offence's sentence.
    for kind, n in truth.items():
        assert abs(ours[kind] - n) <= max(3, 0.03 * n), (kind, ours[kind], n)


def test_persons_in_court_match_truth_and_names_stay_in_person(built):
    """People with a court record: core.person against truth, the gap being exactly the
    linkage's splits less its merges among court records (`justice.link.evaluate.person_counts`).

    Measured on the 3,000-person world: 2,972 person ids against 2,850 people; 150 extra ids from
    people split over several ids (60 of them pieces made only of alias or borrowed-identity
    records, which no name-based linker joins), 28 saved by merges: 2,850 + 150 - 28 = 2,972."""
    from justice.link.evaluate import load_truth, person_counts

    ours = _q(built, "select count(*) from core.person "
                     "where list_has_any(systems, ['magistrates', 'crown'])")[0][0]
    con = duckdb.connect(str(built.home / "warehouse.duckdb"), read_only=True)
    try:
        load_truth(con, built.truth_dir)
        linkage = person_counts(con, "system in ('magistrates', 'crown')")
    finally:
        con.close()
    truth = linkage["true_people"]
    assert truth == _q(built, """select count(distinct person_id) from read_parquet('records.parquet')
                                 where system in ('magistrates', 'crown')""")[0][0]
    # core.person holds one row per person id of the index: nothing but linkage moves the count.
    expected = truth + linkage["extra_ids_from_splits"] - linkage["ids_saved_by_merges"]
    assert ours == expected, (ours, truth, linkage)
    # And linkage moves it by no more than its measured error rates allow (tests/link bounds the
    # same splits and merges over every record): splits under 7% of people, merges under 1.5%.
    assert linkage["extra_ids_from_splits"] <= 0.07 * truth, linkage
    assert linkage["ids_saved_by_merges"] <= 0.015 * truth, linkage
    columns = _q(built, """select table_name, column_name from information_schema.columns
                           where table_schema = 'core' and table_name in
                           ('court_case', 'defendant_case', 'offence', 'hearing', 'disposal')""")
    assert {t for t, _ in columns} == {"court_case", "defendant_case", "offence", "hearing", "disposal"}
    assert not [c for _, c in columns if c in ("forename", "surname", "middle_names", "date_of_birth", "dob")]


def test_ethnicity_seed_agrees_with_the_simulators_reference():
    """The pipeline's code list is its own copy of the simulator's: they must not drift."""
    from justice.sim.legacy import ethnicity

    seed = {r["ethnicity_code"]: r["ethnicity_group"] for r in csv.DictReader(SEED_ETHNICITY.open())}
    assert seed == ethnicity.code_groups()


def test_ethnicity_group_is_the_latest_stated_code_and_agrees_with_truth(built):
    """Measured on the 3,000-person world: who has a known group, and how often it is right."""
    groups = dict(_q(built, "select ethnicity_group, count(*) from core.person group by all"))
    assert set(groups) <= {"White", "Mixed", "Asian", "Black", "Other", "Unknown"}
    # Each person of the index with the true person most of their records belong to.
    rows = _q(built, """
        with owners as (
            select l.person_id, r.person_id as true_id, count(*) as n
            from linkage.person_links l
            join read_parquet('records.parquet') r on r.system = l.system and r.record_id = l.record_id
            group by l.person_id, r.person_id
            qualify row_number() over (partition by l.person_id order by n desc, true_id) = 1)
        select p.person_id, p.ethnicity_group,
               list_has_any(p.systems, ['prison', 'probation']) as recorded,
               t.ethnicity as true_group
        from core.person p
        join owners o using (person_id)
        join read_parquet('persons.parquet') t on t.person_id = o.true_id""")
    assert len(rows) == sum(groups.values())
    recorded = [r for r in rows if r[2]]
    assert all(r[1] == "Unknown" for r in rows if not r[2])  # only prison and probation record it
    known = [r for r in recorded if r[1] != "Unknown"]
    known_share = len(known) / len(recorded)
    agree = sum(r[1] == r[3] for r in known) / len(known)
    print(f"known {len(known)}/{len(recorded)} = {known_share:.4f} of those prison or probation "
          f"know, {len(known)}/{len(rows)} = {len(known) / len(rows):.4f} of all; "
          f"agree {agree:.4f}")
    # Measured on this world: see docs/legacy-systems.md, "Ethnicity". Each record is not
    # stated 6% of the time (a person with several records has several chances) and 4% are
    # recoded, some within the group.
    assert 0.90 < known_share < 0.995, known_share
    assert agree > 0.95, agree
    # The known groups keep the true shares among the same people (no group loses out). The
    # recoding (ethnicity_codes.yaml: 4% of rows, 40% of a White person's recodes outside the
    # group) moves ~1.1 points out of White in expectation, with a spread of ~0.4 points on the
    # ~500 White people here; issue 13's world measured 2.01 points (0.7069 against 0.7270), so
    # 0.025 (bias plus three spreads) rather than 0.02.
    for group in ("White", "Black", "Asian", "Mixed", "Other"):
        ours = sum(r[1] == group for r in known) / len(known)
        truth = sum(r[3] == group for r in known) / len(known)
        assert abs(ours - truth) < 0.025, (group, ours, truth)
    # The latest stated code wins, over both systems' staged records.
    code_group = dict(_q(built, "select ethnicity_code, ethnicity_group from reference.ethnicity_codes"))
    records = _q(built, """
        select l.person_id, o.race_code, o.create_datetime, 'prison', o.offender_id::varchar
        from staging.prison__offenders__latest o
        join linkage.person_links l on l.system = 'prison' and l.record_id = o.offender_id::varchar
        union all
        select l.person_id, arg_max(e.ethnic_origin, e.last_updated_date),
               min(e.start_date)::timestamp, 'probation', e.crn
        from staging.probation__offender_events__latest e
        join linkage.person_links l on l.system = 'probation' and l.record_id = e.crn
        group by l.person_id, e.crn""")
    latest: dict[str, tuple] = {}
    for person, code, at, system, record in records:
        group = code_group.get(code, "Unknown")
        if group == "Unknown":
            continue
        # Latest first; a tie goes to prison, then the higher record id (as the model orders).
        rank = (at, tuple(-ord(c) for c in system), record)
        if person not in latest or rank > latest[person][0]:
            latest[person] = (rank, group)
    assert {p: g for p, g, _, _ in rows if g != "Unknown"} == {p: g for p, (_, g) in latest.items()}
