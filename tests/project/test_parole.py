"""Sentence types in the projection: the prison's record of the sentence (core.custody_sentence)
gives its type, the rules say when the Parole Board may first release, and when it does is learnt
from the Board's recent releases; life and IPP prisoners are an indeterminate band of their own."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from justice.policy import ReleaseOutcome, load_release_rules
from justice.policy.engine import NO_DAY
from justice.project import Scenario
from justice.project.data import OriginData, Spells, load_origin
from justice.project.engine import SENTENCE_BANDS, simulate
from justice.project.flows import Duration, ParoleDelays, learn_flows, learn_parole_delays
from justice.project.rules import release
from justice.sim.reference import day_number

ORIGIN = dt.date(2024, 1, 1)
O = day_number(ORIGIN)
YEAR = 365


def _origin(rows: list[tuple]) -> OriginData:
    """OriginData from (reason, start, end, sentence_day, length_days, sentence_type) rows, one
    person each, sentenced on reception."""
    reason, start, end, sentence_day, length, kind = (np.array(c) for c in zip(*rows))
    n = len(rows)
    spells = Spells(reason=reason.astype(object), start=start.astype(np.int64), end=end.astype(np.int64),
                    sex=np.full(n, "M", object), establishment=np.full(n, "AAI", object),
                    sentence_day=sentence_day.astype(np.int64), length_days=length.astype(np.int64),
                    sentence_type=kind.astype(object), offence_group=np.full(n, "", object),
                    person=np.arange(n, dtype=np.int64))
    return OriginData(ORIGIN, dt.date(2010, 1, 1), ORIGIN, spells, ("AAI",), {}, {}, "test")


def _lifers(delay: int, n: int = 400, tariff_years: int = 10) -> list[tuple]:
    """Life-sentence prisoners with a ten-year minimum term, sentenced on reception over eight
    years, whose Board releases each `delay` days after the term (those it has by the origin)."""
    rows = []
    tariff = tariff_years * YEAR
    for i in range(n):
        start = O - tariff - 4 * YEAR + (8 * YEAR * i) // n
        out = start + tariff + delay
        rows.append(("sentenced", start, out if out <= O else -1, start, tariff, "life"))
    return rows


def test_the_rules_leave_life_and_extended_sentences_to_the_board():
    rules = load_release_rules()
    day = np.full(3, day_number(dt.date(2020, 1, 1)))
    length = np.array([8 * YEAR, 8 * YEAR, 12 * YEAR])
    rel = release(rules, sentence_day=day, length_days=length, offence_group=np.full(3, "", object),
                  remand_days=np.zeros(3, np.int64),
                  sentence_type=np.array(["standard_determinate", "extended_determinate", "life"], object))
    assert rel.parole_board.tolist() == [False, True, True]
    # An EDS (since 2015) may be released from two-thirds and is released at the term's end; a
    # life sentence from the minimum term, never automatically.
    assert rel.release_day[1] == day[1] + round(length[1] * 2 / 3)
    assert rel.automatic_day[1] == day[1] + length[1]
    assert rel.release_day[2] == day[2] + length[2] and rel.automatic_day[2] == NO_DAY
    # An unknown type ('', the court's record alone) is a standard determinate sentence.
    unknown = release(rules, sentence_day=day[:1], length_days=length[:1], offence_group=np.array([""], object),
                      remand_days=np.zeros(1, np.int64), sentence_type=np.array([""], object))
    assert unknown.release_day[0] == rel.release_day[0] and not unknown.parole_board[0]


def test_board_delays_are_learnt_with_the_ones_still_waiting():
    delays = learn_parole_delays(_origin(_lifers(delay=2 * YEAR)))
    assert delays.observed["indeterminate"] > 20 and delays.observed["extended"] == 0
    fitted = delays.indeterminate
    # Every release came 730 days after the term: the curve jumps there, from 0 to 1.
    assert fitted.cdf_at(np.array([2 * YEAR - 1]))[0] == 0.0
    assert fitted.cdf_at(np.array([2 * YEAR]))[0] == pytest.approx(1.0)
    # Someone still held 400 days past the term is drawn out at 730, not at once.
    drawn = fitted.draw(np.random.default_rng(1), np.full(50, 400))
    assert (drawn == 2 * YEAR).all()


def test_board_release_is_drawn_after_eligibility_and_capped_at_automatic_release():
    fitted = Duration(times=np.array([100, 300]), cdf=np.array([0.5, 1.0]))
    delays = ParoleDelays(indeterminate=None, extended=fitted, observed={"indeterminate": 0, "extended": 9})
    first = np.array([O + 10, O + 10, O + 10, O - 50])
    rel = ReleaseOutcome(release_day=first, rule=np.full(4, "", object), fraction=np.zeros(4),
                         parole_board=np.array([False, True, True, True]),
                         automatic_day=np.array([O + 10, O + 200, NO_DAY, NO_DAY]))
    kinds = np.array(["standard_determinate", "extended_determinate", "life", "life"], object)
    days = np.stack([delays.release_days(rel, kinds, np.random.default_rng(k), O) for k in range(200)])
    assert (days[:, 0] == O + 10).all()                        # the rules' day, no Board
    assert set(days[:, 1]) == {O + 110, O + 200}               # 100 days, or capped at automatic
    # A life sentence borrows the extended sentences' delays (none of its own seen): 100 or 300.
    assert set(days[:, 2]) == {O + 110, O + 310}
    # Eligible 50 days before the origin and still held: drawn given the 50 days already waited.
    assert set(days[:, 3]) <= {O + 50, O + 250} and (days[:, 3] > O).all()
    # With no Board release seen at all, release is on the first day the Board may.
    none = ParoleDelays(None, None, {"indeterminate": 0, "extended": 0})
    assert none.release_days(rel, kinds, np.random.default_rng(0), O).tolist() == first.tolist()


def test_lifers_past_their_term_stay_as_long_as_the_board_keeps_them():
    # The stock holds lifers past their minimum term; the Board has been releasing them two years
    # after it. Under the rules alone they would all be out within a fortnight of the origin
    # (overdue); with the delays learnt, each leaves two years after their term, so the stock of
    # lifers falls only as those two years run out.
    rows = _lifers(delay=2 * YEAR)
    data = _origin(rows)
    flows = learn_flows(data)
    assert flows.parole.observed["indeterminate"] > 0
    run = simulate(data, flows, Scenario(name="base"), months=24, repetitions=4, seed=1)
    seg = run.segments
    band = SENTENCE_BANDS.index("indeterminate")
    held_at_origin = int(((data.spells.end < 0)).sum())
    due = {}
    for months in (6, 12, 18):
        day = O + months * 30
        counted = ((seg.band == band) & (seg.start <= day) & (seg.end > day)).sum() / 4
        expected = sum(1 for r in rows if r[2] < 0 and r[1] + 12 * YEAR > day)
        due[months] = (counted, expected)
        assert counted == expected, due
    assert held_at_origin > due[18][1] > 0
    # Every stay in custody is in the indeterminate band (none in the determinate ones).
    sentenced = seg.case_type == 1
    assert (seg.band[sentenced] == band).all()


def test_the_warehouse_gives_each_spell_its_recorded_sentence(built_home):
    data = load_origin(built_home, dt.date(2025, 1, 1))
    s = data.spells
    types = set(s.sentence_type[s.sentence_day >= 0].tolist())
    assert "standard_determinate" in types and types <= {"standard_determinate", "extended_determinate",
                                                         "life", "ipp"}
    # Recalls carry no sentence of their own; a sentence passed after the origin is unknown.
    assert (s.sentence_type[s.reason == "recall"] == "").all()
    assert (s.sentence_day <= data.origin_day).all()
    # The stock's sentence lengths are the NOMIS terms: whole months at 30.4375 days plus days.
    known = (s.sentence_day >= 0) & (s.reason != "recall")
    assert known.sum() > 100 and (s.length_days[known] > 0).all()


@pytest.mark.parametrize(("change", "says"), [
    # from before core.custody_sentence existed
    ("drop table core.custody_sentence", "custody_sentence.*justice build"),
    # from before it had the term in days
    ("alter table core.custody_sentence drop column term_length_days", "term_length_days.*justice build"),
])
def test_a_warehouse_built_before_custody_sentences_is_refused_clearly(built_home, tmp_path, change, says):
    # A warehouse an older build made: the projection says to rebuild it, not a traceback.
    import shutil

    import duckdb

    from justice.project import ScenarioError
    from justice.settings import Settings

    old = Settings(home=tmp_path)
    shutil.copy2(built_home.home / "warehouse.duckdb", old.home / "warehouse.duckdb")
    con = duckdb.connect(str(old.home / "warehouse.duckdb"))
    con.execute(change)
    con.close()
    with pytest.raises(ScenarioError, match=says):
        load_origin(old, dt.date(2025, 1, 1))
