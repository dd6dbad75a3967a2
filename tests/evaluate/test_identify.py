"""Identifying a cohort's participants in the person index: the batch scorer equals the
one-record scorer, providers' own lists are never the match, and the match rate on the
simulator's provider files (measured against the answer key, which the pipeline never reads)."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt

import pyarrow.parquet as pq
import pytest
from homes import warehouse_rows

from justice.errors import CohortError
from justice.evaluate.cohort import CohortFile, read_cohort
from justice.evaluate.identify import identify, probe_record
from justice.link.explain import Scorer


def _files(linked_home):
    files = sorted((linked_home.home / "legacy" / "interventions").glob("*.xlsx"))
    assert len(files) == 3
    return files


def _key(result):
    return [(c.unique_id, c.person_id, c.match_weight, c.match_probability,
             [(s.comparison, s.level, s.weight, s.left, s.right) for s in c.steps])
            for c in result.candidates]


def test_batch_scoring_equals_one_by_one(built_home, linked_home):
    cohort = read_cohort(_files(linked_home)[0], on_row_problem="exclude")
    records = [probe_record(p) for p in cohort.rows]
    # Records with little to go on, and one that blocks with nothing, score the same too.
    records += [{"forenames": None, "surname": "Smith", "dob": None, "sex": None, "pnc": None,
                 "prison_number": None},
                {"forenames": "Zzyzx", "surname": "Qwxyz", "dob": "1901-01-01", "sex": "F",
                 "pnc": None, "prison_number": None}]
    with Scorer(built_home) as scorer:
        batch = scorer.score_many(records, top=5)
        for record, many in zip(records, batch, strict=True):
            one = scorer.score(record, top=5)
            assert _key(many) == _key(one), record  # the same arithmetic: equal to the bit
            assert many.person_id == one.person_id
        assert batch[-1].candidates == []
        assert sum(bool(r.candidates) for r in batch) >= len(cohort.rows) - 5


def test_batch_scoring_leaves_out_excluded_systems(built_home, linked_home):
    cohort = read_cohort(_files(linked_home)[1], on_row_problem="exclude")
    records = [probe_record(p) for p in cohort.rows]
    with Scorer(built_home) as scorer:
        plain = scorer.score_many(records, top=None, explain=False)
        without = scorer.score_many(records, top=None, exclude_systems=("interventions",),
                                    explain=False)
    # Each participant's own row is in the index: it is the best candidate until excluded.
    assert sum(r.best.unique_id.startswith("interventions:") for r in plain if r.best) > (
        len(records) // 2)
    for a, b in zip(plain, without, strict=True):
        kept = [(c.unique_id, c.match_weight) for c in a.candidates
                if not c.unique_id.startswith("interventions:")]
        assert [(c.unique_id, c.match_weight) for c in b.candidates] == kept


def _truth(linked_home):
    table = pq.read_table(linked_home.home / "truth" / "records.parquet").to_pydict()
    return {f"{s}:{r}": p for s, r, p in zip(table["system"], table["record_id"],
                                             table["person_id"])}


def test_identifies_the_provider_files(built_home, linked_home):
    """Every matched row is found in courts, prison or probation records, and is the right
    person by the answer key; a row is missed outright only where the person index could not
    place that provider record with its person's other records either.

    Every participant has records in other systems, so a row identification misses is a
    linkage miss, not an absent person. Measured on the 3,000-person world (rows: found,
    doubtful, unmatched; the index's own placement of the same provider records beside them):
    clearwater 36 + 0 repeats, 3, 7 of 46 (0.783; the index placed 40 of the 46), pathways
    71 + 4, 5, 4 of 84 (0.893; 79), second-chance 42 + 2, 2, 6 of 52 (0.846; 46). Of the 17
    rows unmatched, 15 are records the index also left apart from their person (an alias, a
    name swap with no date of birth ...); doubtful rows are held for review by design. Asserted
    per file: unmatched rows the index did place at most 1 + 2% of rows and doubtful under 10%,
    so the match rate falls short of the index's own placement by no more than those; and over
    the three files (182 rows, a few dozen each is too few for a floor file by file) over 0.8."""
    truth = _truth(linked_home)
    # The pipeline's person_id is a cluster: its true person is the one most of its records are.
    members = collections.defaultdict(collections.Counter)
    systems = collections.defaultdict(set)
    outside = collections.defaultdict(set)  # true people with a non-provider record under the id
    for person_id, system, record_id in warehouse_rows(
            built_home, "select person_id, system, record_id from linkage.person_links"):
        who = truth[f"{system}:{record_id}"]
        members[person_id][who] += 1
        systems[person_id].add(system)
        if system != "interventions":
            outside[person_id].add(who)
    # Provider records the index put under one id with their own person's records elsewhere.
    placed = {record_id for person_id, record_id in warehouse_rows(
        built_home, "select person_id, record_id from linkage.person_links "
                    "where system = 'interventions'")
        if truth[f"interventions:{record_id}"] in outside[person_id]}
    rates, found_all, rows_all = {}, 0, 0
    for path in _files(linked_home):
        cohort = read_cohort(path, on_row_problem="exclude")
        ident = identify(built_home, cohort, min_matched=1)
        counts = ident.counts
        assert counts["rows"] == len(cohort.rows)
        assert sum(counts[s] for s in ("matched", "doubtful", "unmatched", "repeat")) == len(
            cohort.rows)
        right = wrong = missed_placed = placed_rows = 0
        for row in ident.rows:
            placed_rows += f"{path.name}:{row.row}" in placed
            if row.status in ("matched", "repeat"):
                assert systems[row.person_id] - {"interventions"}, row
                want = truth[f"interventions:{path.name}:{row.row}"]
                got = members[row.person_id].most_common(1)[0][0]
                right += got == want
                wrong += got != want
            if row.status == "unmatched":
                assert row.match_weight is None or row.match_weight < ident.threshold
                missed_placed += f"{path.name}:{row.row}" in placed
        assert wrong <= max(1, (right + wrong) // 50), (path.name, right, wrong)
        assert counts["people"] == len({p.person_id for p in ident.participants})
        n = len(cohort.rows)
        assert missed_placed <= 1 + 0.02 * n, (path.name, missed_placed, n)
        assert counts["doubtful"] < 0.1 * n, (path.name, counts)
        found = counts["matched"] + counts["repeat"]
        rates[path.name] = ident.match_rate
        found_all, rows_all = found_all + found, rows_all + n
        print(f"{path.name}: {counts}, match rate {ident.match_rate:.1%}, "
              f"right {right}, wrong {wrong}, index placed {placed_rows}, "
              f"unmatched the index placed {missed_placed}")
    assert found_all / rows_all > 0.8, rates


def test_fewer_than_the_minimum_matched_is_an_error(built_home, linked_home):
    cohort = read_cohort(_files(linked_home)[0], on_row_problem="exclude")
    # People, not participations: someone on the programme twice counts once.
    people = identify(built_home, cohort, min_matched=1).counts["people"]
    with pytest.raises(CohortError, match=f"only {people} of {len(cohort.rows)} rows were found"
                                          r".*at least 60 people") as excinfo:
        identify(built_home, cohort)  # the default minimum: 60
    assert excinfo.value.identification.counts["people"] == people
    assert identify(built_home, cohort, min_matched=people).counts["people"] == people
    with pytest.raises(CohortError, match=f"at least {people + 1} people"):
        identify(built_home, cohort, min_matched=people + 1)


def test_the_same_person_twice_is_two_participations_unless_the_start_is_the_same(
        built_home, linked_home):
    cohort = read_cohort(_files(linked_home)[2], on_row_problem="exclude")
    first = identify(built_home, cohort, min_matched=1)
    row = next(r for r in first.rows if r.status == "matched")
    # The same participant on two later rows: once more with an earlier start (on the programme
    # twice), once with the same start (entered twice).
    again = dataclasses.replace(row.participant, row=999,
                                start_date=row.participant.start_date - dt.timedelta(days=300))
    twice = dataclasses.replace(row.participant, row=1000)
    doubled = CohortFile(cohort.path, cohort.programme, cohort.provider,
                         [*cohort.rows, again, twice], cohort.header_row, cohort.columns)
    ident = identify(built_home, doubled, min_matched=1)
    by_row = {r.row: r for r in ident.rows}
    assert by_row[999].status == by_row[row.row].status == "matched"
    assert by_row[1000].status == "repeat"
    assert f"the same person and start as row {row.row}" in by_row[1000].note
    kept = [p for p in ident.participants if p.person_id == row.person_id]
    assert sorted((p.row, p.start_date) for p in kept) == [
        (row.row, row.participant.start_date), (999, again.start_date)]
    # People are counted once however many times they took part.
    assert ident.counts["people"] == first.counts["people"]
    assert len(ident.participants) == len(first.participants) + 1
