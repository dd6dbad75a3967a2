"""The court statistics marts (`justice build`) against the answer key.

Every headline measure is recomputed from truth/ (the simulator's own cases, offences and
hearings) by the same definition, and compared. Where the pipeline and truth differ the test
finds out why: a legacy row that was quarantined (the case then lacks that row's latest state)
is an explained gap; anything else fails.

Measured on the shared 3,000-person world (pytest -s prints them; the world of issue 13's
fourth calibration round, with the one-off summary cases): receipts and disposals per court type
and year differ by at most 6 cases (2 of 14,556 cases missing: all quarantined rows); the Crown
Court open caseload equals truth in every quarter, the magistrates' one is at most 19 cases over
(19 cases kept open by a quarantined completion row, which stay open in every later quarter: the bound is
the number of such cases, which another test proves are all quarantined); the Crown Court
custody rate equals truth (0.730 on the world of the fourth calibration round). It ran 1.3 to 2.2
points under truth on earlier worlds: the simulator passed a case's sentence on the episode's
first offence row rather than its principal offence, so when a spree's extra offence was dated
first (or was the one proven), the principal took "no separate penalty" and the pipeline's
principal-offence rule read the case as "other" (fixed in sim/truth_tables.py). The average
custodial sentence length is within 1% of truth's over determinate sentences, as published
(30.5 against 30.7 months at the Crown Court; every matched case's length is equal). Truth's
over every custodial sentence ran 4% above it (31.8 months): two life sentences' minimum terms,
which the pipeline rightly leaves out, as the published figure does; quarterly timeliness medians agree within a day in most cells, the
offence-date stages moved by the date mess that staging cannot detect.
"""

from __future__ import annotations

import duckdb
import pytest

# A truth case with the pipeline's definitions: earliest offence date, magistrates' first listing
# (for a Crown Court case, those of the magistrates' case it came from when its own are not there).
TRUTH = """
create temp view tcase as
select c.*,
       coalesce(om.offence_date, oc.offence_date, orel.offence_date) as offence_date,
       coalesce(h.first_listing, c.receipt_date) as first_listing
from read_parquet('court_cases.parquet') c
left join (select case_id, min(offence_date) as offence_date from read_parquet('offences.parquet') group by 1) om
  on om.case_id = c.case_id and c.court_type = 'magistrates'
left join (select crown_case_id, min(offence_date) as offence_date from read_parquet('offences.parquet')
           group by 1) oc
  on oc.crown_case_id = c.case_id and c.court_type = 'crown'
left join (select case_id, min(offence_date) as offence_date from read_parquet('offences.parquet') group by 1) orel
  on orel.case_id = c.related_case_id and c.court_type = 'crown'
left join (select case_id, min(hearing_date) as first_listing from read_parquet('hearings.parquet') group by 1) h
  on h.case_id = case when c.court_type = 'crown' then c.related_case_id else c.case_id end;

-- Each pipeline defendant case with its truth case: the legacy defendant record names the true
-- person (records.parquet); court and receipt date pick the case.
create temp view matched as
select dc.defendant_case_id, dc.court_type, dc.defendant_id, c.court_code, c.receipt_date, c.completion_date,
       t.case_id, t.completion_date as truth_completion
from core.defendant_case dc
join core.court_case c using (court_case_id)
join read_parquet('records.parquet') r on r.system = dc.court_type and r.record_id = dc.defendant_id
left join read_parquet('court_cases.parquet') t
  on t.person_id = r.person_id and t.court_type = dc.court_type and t.court_code = c.court_code
 and t.receipt_date = c.receipt_date;

-- Defendant records with a row in quarantine (its latest state may not have been staged).
create temp view quarantined as
select 'magistrates' as court_type, raw_defendant_id as defendant_id from quarantine.magistrates__defendant_offences
union select 'crown', raw_defendant_id from quarantine.crown__defendants
union select 'crown', defendant_id from quarantine.crown__offences
union select 'crown', defendant_id from quarantine.crown__outcomes
"""


@pytest.fixture(scope="module")
def con(built_home):
    c = duckdb.connect(str(built_home.home / "warehouse.duckdb"), read_only=True)
    c.execute(f"set file_search_path = '{built_home.truth_dir}'")
    c.execute(TRUTH)
    yield c
    c.close()


def _rows(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def _explained(con) -> int:
    """Cases whose state the pipeline cannot know, each with a quarantined row (the test below
    proves it): truth cases with no pipeline case, and pipeline cases whose completion differs
    from truth's (a quarantined completion row keeps a case open in every later quarter). A
    count or snapshot may be off by as many, and no more."""
    differ = _rows(con, "select count(*) from matched where case_id is null or completion_date is distinct from truth_completion")
    missing = _rows(con, """select count(*) from tcase t
        where t.receipt_date >= (select min(quarter_start) from marts.court_calendar)
          and not exists (select 1 from matched m where m.case_id = t.case_id)""")
    return int(differ[0][0]) + int(missing[0][0])


def test_receipts_and_disposals_match_truth(con):
    rows = _rows(con, """
        with p as (select court_type, year(quarter_start) as y, sum(receipts) as r, sum(disposals) as d
                   from marts.court_receipts_disposals group by all),
             -- The quarters the data covers: the calendar ends with the last quarter the data's
             -- as-at date has ended (the latest court event may fall before the window's end).
             cal as (select min(quarter_start) as first, max(quarter_end) as last from marts.court_calendar),
             tr as (select court_type, year(receipt_date) as y, count(*) as r from tcase, cal
                    where receipt_date between cal.first and cal.last group by all),
             td as (select court_type, year(completion_date) as y, count(*) as d from tcase, cal
                    where completion_date between cal.first and cal.last group by all)
        select p.court_type, p.y, p.r, coalesce(tr.r, 0), p.d, coalesce(td.d, 0)
        from p left join tr using (court_type, y) left join td using (court_type, y) order by 1, 2""")
    assert len(rows) == 2 * 12, "12 years of quarters for each court type"
    worst = max(max(abs(r[2] - r[3]), abs(r[4] - r[5])) for r in rows)
    total_p, total_t = sum(r[2] for r in rows), sum(r[3] for r in rows)
    print(f"\nreceipts {total_p} vs truth {total_t}; worst court-type-year difference {worst}")
    assert worst <= max(3, _explained(con))
    assert abs(total_p - total_t) <= 0.002 * total_t


def test_receipts_break_down_by_region_and_court_from_the_register(con):
    rows = _rows(con, """
        select m.court_code, m.region, t.region, sum(m.receipts)
        from marts.court_receipts_disposals m
        left join read_parquet('courts.parquet') t using (court_type, court_code)
        group by all""")
    assert rows and all(r[1] is not None and r[1] == r[2] for r in rows), [r for r in rows if r[1] != r[2]][:5]
    # Zeros included: every court has every case type of its court type in every quarter.
    grid = _rows(con, "select count(*), count(distinct quarter) * (select count(*) from core.court) * 4 "
                      "from marts.court_receipts_disposals")[0]
    assert grid[0] == grid[1]


def test_open_caseload_is_a_snapshot_matching_truth(con):
    rows = _rows(con, """
        select o.quarter_end, o.court_type, sum(o.open_cases),
               (select count(*) from tcase t where t.court_type = o.court_type and t.receipt_date <= o.quarter_end
                  and (t.completion_date is null or t.completion_date > o.quarter_end))
        from marts.court_open_caseload o group by all order by 2, 1""")
    diffs = {ct: [r[2] - r[3] for r in rows if r[1] == ct] for ct in ("crown", "magistrates")}
    print(f"\nopen caseload minus truth, per quarter: { {k: (min(v), max(v)) for k, v in diffs.items()} }")
    # Every quarter of the calendar (47 or 48 of the 12 years: the last is in only once the data's
    # as-at date has ended it), for both court types.
    quarters = _rows(con, "select count(*) from marts.court_calendar")[0][0]
    assert len(rows) == 2 * quarters and quarters >= 47
    for ct, d in diffs.items():
        assert max(abs(x) for x in d) <= max(2, _explained(con)), (ct, d)
    # Not receipts minus disposals: the snapshot of a quarter never counts a case completed by then.
    stale = _rows(con, """
        select count(*) from marts.court_open_caseload o
        join core.court_case c on c.court_type = o.court_type and c.case_type = o.case_type
        where o.open_cases = 0 and c.receipt_date <= o.quarter_end
          and (c.completion_date is null or c.completion_date > o.quarter_end)""")[0][0]
    assert stale == 0


def test_open_caseload_age_profile_matches_truth(con):
    """Crown Court case types are the same in truth (from the case number's class), and no Crown
    Court row is quarantined in this world: median age and cases open a year or more are exact.
    The magistrates' year-or-more count is within two cases of truth in every quarter."""
    rows = _rows(con, """
        with t as (
          select q.quarter_end, t.court_type, t.case_type, median(q.quarter_end - t.receipt_date) as med,
                 count(*) filter (where q.quarter_end - t.receipt_date >= 365) as year_plus
          from marts.court_calendar q join tcase t on t.receipt_date <= q.quarter_end
           and (t.completion_date is null or t.completion_date > q.quarter_end)
          group by all)
        select o.court_type, o.case_type, o.quarter_end, o.open_a_year_or_more, coalesce(t.year_plus, 0),
               o.median_age_days, t.med
        from marts.court_open_caseload o left join t using (quarter_end, court_type, case_type)""")
    crown = [r for r in rows if r[0] == "crown"]
    assert crown and all(r[3] == r[4] and r[5] == r[6] for r in crown), [r for r in crown if r[3] != r[4] or r[5] != r[6]][:5]
    mags = {}
    for r in rows:
        if r[0] == "magistrates":
            mags[r[2]] = mags.get(r[2], 0) + r[3] - r[4]
    assert max(abs(d) for d in mags.values()) <= max(2, _explained(con))


def test_every_case_that_differs_from_truth_has_a_quarantined_row(con):
    per_type = _rows(con, """
        select court_type, count(*), count(case_id),
               count(*) filter (where case_id is not null and completion_date is distinct from truth_completion)
        from matched group by 1 order by 1""")
    unexplained = _rows(con, """
        select m.* from matched m
        where (m.case_id is null or m.completion_date is distinct from m.truth_completion)
          and not exists (select 1 from quarantined q where q.court_type = m.court_type
                          and q.defendant_id = m.defendant_id)""")
    # Truth cases (received in the covered quarters) with no pipeline case at all.
    missing = _rows(con, """
        select t.court_type, count(*) from tcase t
        where t.receipt_date >= (select min(quarter_start) from marts.court_calendar)
          and not exists (select 1 from matched m where m.case_id = t.case_id)
        group by 1""")
    print(f"\ndefendant cases (type, all, matched to truth, completion differs): {per_type}; "
          f"truth cases with no pipeline case: {missing}")
    assert not unexplained, unexplained[:5]
    assert sum(n for _, n in missing) <= 0.002 * sum(r[1] for r in per_type)


STAGES = {
    "offence_to_charge": "charge_date - offence_date",
    "charge_to_first_listing": "first_listing - charge_date",
    "first_listing_to_completion": "completion_date - first_listing",
    "offence_to_completion": "completion_date - offence_date",
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_timeliness_medians_match_truth(con, stage):
    """Quarterly medians in cells of at least 30 defendants agree with truth's: within 2 days in
    95% of cells, and the defendant counts within 1%.

    Truth's cases are grouped by the case type the pipeline gave them: the magistrates' case
    type comes from the principal offence by the MoJ rule, which differs from the simulator's
    own label for about 2% of cases (test_core_courts measures that); in cells of 30 to 100
    defendants with offence-to-charge spreads of months, moving a few cases between cells moves
    a median by weeks, which says nothing about the durations compared here."""
    rows = _rows(con, f"""
        with typed as (
          select t.*, coalesce(dc.case_type, t.case_type) as pipeline_case_type
          from tcase t
          left join (select case_id, any_value(defendant_case_id) as defendant_case_id from matched group by 1) x
            using (case_id)
          left join core.defendant_case dc using (defendant_case_id)),
        t as (
          select court_type, pipeline_case_type as case_type, {{quarter}} as quarter,
                 median({STAGES[stage]}) as med, count(*) as n
          from typed where completion_date is not null and {STAGES[stage]} >= 0 group by all)
        select m.quarter, m.court_type, m.case_type, m.defendants, m.median_days, t.med, t.n
        from marts.court_timeliness m left join t using (court_type, case_type, quarter)
        where m.stage = '{stage}'""".replace("{quarter}", "cast(year(completion_date) as varchar) || 'Q' || "
                                               "cast(quarter(completion_date) as varchar)"))
    big = [r for r in rows if r[3] >= 30 and r[5] is not None]
    close = sum(abs(r[4] - r[5]) <= 2 for r in big)
    n_p, n_t = sum(r[3] for r in rows), sum(r[6] or 0 for r in rows)
    print(f"\n{stage}: {close}/{len(big)} cells within 2 days; defendants {n_p} vs truth {n_t}")
    assert len(big) >= 40
    assert close >= 0.95 * len(big)
    assert abs(n_p - n_t) <= 0.01 * n_t


def test_outcomes_match_truth(con):
    got = {r[0]: r[1:] for r in _rows(con, """
        select court_type, sum(convicted) / sum(tried_defendants), sum(immediate_custody) / sum(sentenced),
               sum(average_custodial_sentence_months * immediate_custody) / sum(immediate_custody)
        from marts.court_outcomes group by 1""")}
    truth = {r[0]: r[1:] for r in _rows(con, """
        with c as (select * from tcase where completion_date >= (select min(quarter_start) from marts.court_calendar)),
             d as (select d.*, c.court_type from read_parquet('disposals.parquet') d join c using (case_id)
                   where d.disposal_type != 'caution')
        select court_type,
          (select count(*) filter (where outcome in ('convicted_guilty_plea', 'convicted_in_absence', 'convicted_at_trial', 'committed_for_sentence'))
                / count(*) filter (where outcome not in ('sent_to_crown', 'sentenced') and outcome not like 'appeal%')
           from c where c.court_type = d.court_type),
          count(*) filter (where disposal_type = 'custody') / count(*),
          -- Determinate sentences only, as published (and as the pipeline can measure: a life
          -- sentence has a minimum term, not a length)
          avg(custody_months) filter (where disposal_type = 'custody'
                                      and coalesce(sentence_type, '') not in ('life', 'ipp'))
        from d group by 1""")}
    print(f"\noutcomes (conviction rate, custody rate, ACSL months): pipeline {got}, truth {truth}")
    for ct in ("magistrates", "crown"):
        assert abs(got[ct][0] - truth[ct][0]) <= 0.015, ct
        assert abs(got[ct][1] - truth[ct][1]) <= 0.02, ct
        assert abs(got[ct][2] - truth[ct][2]) <= 0.01 * truth[ct][2], ct
