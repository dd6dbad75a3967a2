"""The analysis frame: the index-event rule, the comparison pool, exclusions, and the leakage
test (events after the index date, added or altered, move no covariate but do move outcomes)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from homes import copy_home, warehouse_rows

from justice.evaluate.cohort import CohortFile, Participant, read_cohort
from justice.evaluate.groups import COLUMNS, COVARIATES, OUTCOMES, analysis_frame
from justice.evaluate.identify import Identification, IdentifiedRow, identify


@pytest.fixture(scope="module")
def identification(built_home, linked_home):
    """The largest provider file of the fixture world, identified."""
    files = sorted((linked_home.home / "legacy" / "interventions").glob("*.xlsx"))
    cohorts = [read_cohort(f, on_row_problem="exclude") for f in files]
    cohort = max(cohorts, key=lambda c: len(c.rows))
    return identify(built_home, cohort, min_matched=1)


def _identification(people: list[tuple[str, dt.date]]) -> Identification:
    """An identification of the given (person_id, programme start) pairs, rows 5 onwards."""
    rows = []
    for i, (person_id, start) in enumerate(people):
        p = Participant(5 + i, "A", "B", None, None, start, None, None)
        rows.append(IdentifiedRow(p, "matched", person_id, 30.0, None, None))
    cohort = CohortFile(None, "Test Programme", None, [r.participant for r in rows], 4, {})
    return Identification(cohort, rows, 10.0, 1, False)


def test_frame_columns_pool_and_exclusions(built_home, identification):
    frame, excluded = analysis_frame(built_home, identification)
    assert list(frame.columns) == list(COLUMNS)
    assert frame[list(COVARIATES) + list(OUTCOMES)].notna().all().all()
    # Ethnicity is core.person's group, Unknown for those prison and probation never recorded.
    assert "ethnicity_group" in COVARIATES
    person_group = dict(warehouse_rows(built_home,
                                       "select person_id, ethnicity_group from core.person"))
    assert frame.ethnicity_group.tolist() == [person_group.get(p, "Unknown")
                                              for p in frame.person_id]
    assert set(frame.ethnicity_group) <= {"White", "Mixed", "Asian", "Black", "Other", "Unknown"}
    assert {"White", "Unknown"} <= set(frame.ethnicity_group)
    treated, pool = frame[frame.treated == 1], frame[frame.treated == 0]
    rows = {p.row for p in identification.participants}
    # Every participant taken in is in the frame or excluded with a reason, never both.
    assert set(treated.cohort_row) | set(excluded) == rows
    assert not set(treated.cohort_row) & set(excluded)
    assert all(isinstance(why, str) and why for why in excluded.values())
    assert len(treated) >= 20
    # The pool: index events no programme belongs to, by the participants' rule applied to
    # every start on any provider's list or in this file (the latest event in the 183 days up
    # to the start, unless a sentence or release came between; else the first in the year
    # after), each person-quarter once, in the participants' quarters and kinds of index event.
    starts = [(r[0], r[1]) for r in warehouse_rows(
        built_home, "select person_id, start_date from core.intervention_participation "
                    "where person_id is not null")]
    starts += [(r.person_id, r.participant.start_date) for r in identification.rows
               if r.person_id]
    by_person: dict[str, list] = {}
    for person, start in starts:
        by_person.setdefault(person, []).append(start)
    members = dict(_mart(built_home))
    sentences: dict[str, list] = {}
    for person, day in warehouse_rows(built_home, """
            select person_id, disposal_date from core.disposal where is_principal
            union all select person_id, end_date from core.custody_spell"""):
        if day is not None:
            sentences.setdefault(person, []).append(day)

    def belongs(person, start):
        dates = members.get(person, [])
        before = [d for d in dates if start - dt.timedelta(days=183) <= d <= start]
        if before:
            event = max(before)
            between = any(event < d <= start for d in sentences.get(person, ()))
            return None if between else event
        return min((d for d in dates if start < d <= start + dt.timedelta(days=365)),
                   default=None)

    programme_events = {(p, belongs(p, start)) for p, start in starts}
    pool_events = set(zip(pool.person_id, pool.index_date))
    assert not programme_events & pool_events
    start_of = {p.row: (p.person_id, p.start_date) for p in identification.participants}
    assert all(belongs(*start_of[row]) == day
               for row, day in zip(treated.cohort_row, treated.index_date))
    # ...and it is made of events, not people: someone who took part at another time is still
    # a comparison at an event no programme followed (the fixture has such people).
    assert set(pool.person_id) & set(by_person)
    assert not pool[["person_id", "cohort_quarter"]].duplicated().any()
    assert set(pool.index_event) <= set(treated.index_event)
    assert treated.cohort_quarter.min() <= pool.cohort_quarter.min()
    assert pool.cohort_quarter.max() <= treated.cohort_quarter.max()
    assert frame.attrs["pool"] == len(pool) > 5 * len(treated)
    assert frame.attrs["pool_excluded_other_programmes"] > 0
    assert frame.attrs["excluded_participants"] == len(excluded)
    # Outcomes obey their definitions.
    assert set(frame.reoffended) <= {0, 1}
    assert ((frame.reoffences > 0) == (frame.reoffended == 1)).all()
    assert (frame.days_to_first_reoffence.between(1, 365)).all()
    assert (frame.days_to_first_reoffence[frame.reoffended == 0] == 365).all()
    assert (frame.custody_on_reoffending <= frame.reoffended).all()
    assert ((frame.no_previous_offence == 1) == (frame.previous_offences == 0)).all()
    assert (frame.sentence_length_band[frame.disposal_type != "immediate_custody"] == "none").all()
    assert (frame.age_at_first_contact <= frame.age_at_index).all()


def _mart(built_home):
    return warehouse_rows(built_home, """
        select person_id, list(index_date order by index_date)
        from marts.proven_reoffending_cohort group by person_id""")


def test_index_event_rule(built_home):
    events = dict(_mart(built_home))
    last_published = max(d for dates in events.values() for d in dates)
    belongs = 183
    backward = forward = None
    for person_id, dates in sorted(events.items()):
        for i, d in enumerate(dates):
            after = dates[i + 1] if i + 1 < len(dates) else None
            before = dates[i - 1] if i else None
            # Started 50 days after a sentence or release, nothing else since: it counts.
            if backward is None and (after is None or after > d + dt.timedelta(days=50)):
                backward = (person_id, d + dt.timedelta(days=50), d)
            # Started the day before one, nothing in the 183 days before: the next counts.
            if (forward is None and person_id != (backward or ("",))[0]
                    and (before is None or before < d - dt.timedelta(days=belongs + 1))):
                forward = (person_id, d - dt.timedelta(days=1), d)
    assert backward and forward
    never = next(r[0] for r in warehouse_rows(built_home, """
        select person_id from core.person
        where person_id not in (select person_id from marts.proven_reoffending_cohort)
        order by person_id limit 1"""))
    late = next(p for p in sorted(events) if p not in (backward[0], forward[0]))
    people = [backward[:2], forward[:2], (never, dt.date(2018, 1, 1)),
              (late, last_published + dt.timedelta(days=200))]
    frame, excluded = analysis_frame(built_home, _identification(people))
    chosen = dict(zip(frame[frame.treated == 1].cohort_row, frame[frame.treated == 1].index_date))
    assert chosen == {5: backward[2], 6: forward[2]}
    assert "no sentence or release from custody in a published reoffending cohort" in excluded[7]
    assert "not yet published" in excluded[8]
    # belongs_days narrows the backward window: 50 days after is then too late.
    class Options:
        belongs_days = 30
    frame, excluded = analysis_frame(built_home, _identification(people[:1]), Options())
    assert 5 in excluded or frame[frame.treated == 1].index_date.iloc[0] > backward[1]


def _add_events_after_index(con, frame) -> None:
    """Events after each member's index date, as a later extract or a rebuild would bring:
    new proven reoffences (one sentenced to custody), a breach, a custodial disposal and a
    supervision with a high OGRS score, earlier outcomes moved, and the mart's outcome columns
    updated as `justice build` would."""
    code = con.execute("""select offence_code from reference.offence_codes
                          where recordable and not is_breach order by offence_code limit 1""").fetchall()[0][0]
    breach = con.execute("""select offence_code from reference.offence_codes
                            where is_breach order by offence_code limit 1""").fetchall()[0][0]
    con.register("members", frame[["person_id", "index_date", "cohort_quarter"]])
    # A person can be in the pool at several index events: the events go after the latest, so
    # that they are after every one of that person's index dates.
    con.execute("create temp table m as select person_id, index_date::date as index_date, "
                "cohort_quarter from members "
                "qualify index_date = max(index_date) over (partition by person_id)")
    # The person's latest index event anywhere in the cohort (one outside the frame too): a
    # sentence after it and its 183 days is after every programme start that belongs to one.
    con.execute("""create temp table latest as
                   select person_id, max(index_date) as index_date
                   from marts.proven_reoffending_cohort
                   where person_id in (select person_id from m) group by person_id""")
    # Later events that already exist change: outcomes brought forward, verdicts flipped.
    con.execute("""update core.offence o set outcome_date = m.index_date + 1, convicted = not o.convicted
                   from m where o.person_id = m.person_id and o.offence_date > m.index_date""")
    for n, (kind, days, disposal) in enumerate([(code, 10, "immediate_custody"),
                                                (breach, 20, "fine")]):
        con.execute(f"""
            insert into core.offence by name
            select 'LEAK{n}' || person_id as offence_id, person_id, 'LEAKCASE' || person_id
                       as defendant_case_id, '{kind}' as offence_code,
                   index_date + {days} as offence_date, index_date + {days + 30} as outcome_date,
                   true as convicted, '{disposal}' as disposal_type
            from m""")
    con.execute("""
        insert into core.disposal by name
        select 'LEAKD' || person_id as disposal_id, person_id, 'immediate_custody' as disposal_type,
               -- after any programme start too (a start is at most 183 days after its index
               -- date): a sentence between an index date and a start would rightly move the
               -- event that programme belongs to, a participant's or a comparison's
               greatest(m.index_date, l.index_date) + 200 as disposal_date,
               true as is_principal, 200 as custody_days
        from m join latest l using (person_id)""")
    con.execute("""
        insert into core.supervision by name
        select 'LEAKS' || person_id as supervision_id, person_id, index_date + 5 as start_date,
               99.0 as ogrs_score
        from m""")
    con.execute("""
        update marts.proven_reoffending_cohort c
        set reoffences = c.reoffences + 1, reoffended = true,
            first_reoffence_date = least(coalesce(c.first_reoffence_date, m.index_date + 10),
                                         m.index_date + 10)
        from m where c.person_id = m.person_id and c.cohort_quarter = m.cohort_quarter""")


def test_no_leakage_of_later_events_into_covariates(built_home, identification, tmp_path):
    copy = copy_home(built_home, tmp_path / "home")
    before, excluded_before = analysis_frame(copy, identification)
    con = duckdb.connect(str(copy.home / "warehouse.duckdb"))
    try:
        _add_events_after_index(con, before)
    finally:
        con.close()
    after, excluded_after = analysis_frame(copy, identification)
    assert excluded_after == excluded_before
    key = ["person_id", "index_date"]
    assert after[key].equals(before[key])
    for column in COVARIATES:
        assert after[column].equals(before[column]), column
    # The outcomes did change: every member at their latest index event now has a proven
    # reoffence sentenced to custody.
    last = before.index_date == before.groupby("person_id").index_date.transform("max")
    assert last.sum() == before.person_id.nunique() and (before[last].reoffended == 0).any()
    assert (after[last].reoffended == 1).all()
    assert (after[last].reoffences == before[last].reoffences + 1).all()
    assert (after[last].custody_on_reoffending == 1).all()
    assert (before[last].custody_on_reoffending == 0).any()
    assert (after[last].days_to_first_reoffence <= 10).all()

    # The same kind of change before the index date does move covariates: the test can fail.
    con = duckdb.connect(str(copy.home / "warehouse.duckdb"))
    try:
        code = con.execute("""select offence_code from reference.offence_codes
                              where recordable and not is_breach order by 1 limit 1""").fetchall()[0][0]
        con.register("members", before[["person_id"]].drop_duplicates())
        con.execute(f"""
            insert into core.offence by name
            select 'EARLY' || person_id as offence_id, person_id, '{code}' as offence_code,
                   -- Long before any index occasion (a release can follow years inside).
                   date '2001-01-01' as offence_date, date '2001-03-01' as outcome_date,
                   true as convicted, 'fine' as disposal_type
            from members""")
    finally:
        con.close()
    earlier, _ = analysis_frame(copy, identification)
    assert (earlier.previous_offences >= before.previous_offences + 1).all()
    assert (earlier.no_previous_offence == 0).all()


def test_no_participants_gives_an_empty_frame(built_home):
    frame, excluded = analysis_frame(built_home, _identification([]))
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 0 and excluded == {}
    assert frame.attrs["participants"] == frame.attrs["pool"] == 0


def test_an_event_followed_by_a_referral_at_a_later_sentence_stays_in_the_pool(built_home,
                                                                            tmp_path):
    """A programme belongs to one index event, for the pool as for the participants: the event
    before a later sentence at which the person was referred is a comparison, not left out (that
    would drop events because a reoffence followed them)."""
    copy = copy_home(built_home, tmp_path / "home")
    # People with two cohort events under 150 days apart and no programme anywhere near them.
    pairs = warehouse_rows(copy, """
        with m as (
            select person_id, index_date, index_event,
                   lead(index_date) over (partition by person_id order by index_date) as next_date,
                   lead(index_event) over (partition by person_id order by index_date) as next_kind
            from marts.proven_reoffending_cohort)
        select person_id, index_date, next_date from m
        where next_date <= index_date + 150
          and index_event = 'non-custodial sentence' and next_kind = index_event
          and not exists (select 1 from core.intervention_participation ip
                          where ip.person_id = m.person_id
                            and ip.start_date between m.index_date - 400 and m.next_date + 400)
        order by index_date, person_id""")
    assert len(pairs) >= 2
    (listed, first, second), (in_file, file_first, file_second) = pairs[:2]
    # Someone of the same kind of event whose start opens the window in the first quarter.
    opener = next(r for r in warehouse_rows(copy, f"""
        select person_id, index_date from marts.proven_reoffending_cohort
        where index_event = 'non-custodial sentence'
          and index_date <= date '{min(first, file_first)}'
          and person_id not in ('{listed}', '{in_file}')
        order by index_date desc limit 1"""))
    con = duckdb.connect(str(copy.home / "warehouse.duckdb"))
    try:
        con.execute("""insert into core.intervention_participation by name
                       select 'TEST1' as intervention_participation_id, ? as person_id,
                              ?::date as start_date""", [listed, second])
    finally:
        con.close()
    people = [(opener[0], opener[1]), (in_file, file_second)]
    frame, _ = analysis_frame(copy, _identification(people))
    pool = {(p, d) for p, d in zip(frame[frame.treated == 0].person_id,
                                   frame[frame.treated == 0].index_date)}
    treated = {(p, d) for p, d in zip(frame[frame.treated == 1].person_id,
                                      frame[frame.treated == 1].index_date)}
    assert (in_file, file_second) in treated
    # The event each programme belongs to is out of the pool; the one before it is in.
    assert (listed, second) not in pool and (in_file, file_second) not in pool
    assert (listed, first) in pool
    assert (in_file, file_first) in pool


def test_a_person_on_the_programme_at_two_sentences_is_two_participants(built_home):
    events = dict(_mark_events(built_home))
    # Every start below falls in a published cohort: the last is 20 days after the second event,
    # and no later than the last index event of any cohort.
    last = max(d for dates in events.values() for d in dates)
    person, (first, second) = next((p, dates[:2]) for p, dates in sorted(events.items())
                                   if len(dates) >= 2 and (dates[1] - dates[0]).days > 200
                                   and dates[1] + dt.timedelta(days=20) <= last)
    people = [(person, first + dt.timedelta(days=10)), (person, second + dt.timedelta(days=5)),
              # A second start at the same sentence is the same participation.
              (person, second + dt.timedelta(days=20))]
    frame, excluded = analysis_frame(built_home, _identification(people))
    treated = frame[frame.treated == 1]
    assert sorted(treated.cohort_row) == [5, 6]
    assert sorted(treated.index_date) == [first, second]
    assert "the same sentence or release as row 6" in excluded[7]


def _mark_events(built_home):
    return warehouse_rows(built_home, """
        select m.person_id, list(m.index_date order by m.index_date)
        from marts.proven_reoffending_cohort m
        where not exists (
            select 1 from core.disposal d where d.person_id = m.person_id and d.is_principal
              and d.disposal_date > m.index_date and d.disposal_date <= m.index_date + 20)
          and not exists (
            select 1 from core.custody_spell s where s.person_id = m.person_id
              and s.end_date > m.index_date and s.end_date <= m.index_date + 20)
        group by m.person_id""")
