"""The returns of released prisoners in the projection: on a new charge, and on recall, learnt
from past releases; a scenario's moved releases bring their own returns."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from justice.project import Scenario
from justice.project.data import OriginData, Spells, load_origin
from justice.project.engine import CASE_TYPES, returns_in_flows, simulate
from justice.project.flows import (
    learn_flows,
    learn_recall_timing,
    learn_returns,
    licence_end,
    recall_licence_end,
)
from justice.sim.reference import day_number

ORIGIN = dt.date(2024, 1, 1)
O = day_number(ORIGIN)

# A rule file releasing every sentence at a quarter from 2024-04-01 (shared by the projection tests).
QUARTER_RULE = Path(__file__).with_name("quarter_rule.yaml")


def _origin(rows: list[tuple]) -> OriginData:
    """OriginData from (person, reason, start, end, sentence_day, length_days) rows."""
    person, reason, start, end, sentence_day, length = (np.array(c) for c in zip(*rows))
    n = len(rows)
    spells = Spells(reason=reason.astype(object), start=start.astype(np.int64),
                    end=end.astype(np.int64), sex=np.full(n, "M", object),
                    establishment=np.full(n, "AAI", object),
                    sentence_day=sentence_day.astype(np.int64), length_days=length.astype(np.int64),
                    sentence_type=np.where(sentence_day >= 0, "standard_determinate", "").astype(object),
                    offence_group=np.full(n, "", object), person=person.astype(np.int64))
    return OriginData(ORIGIN, dt.date(2014, 1, 1), ORIGIN, spells, ("AAI",), {}, {}, "test")


def test_returns_on_a_new_charge_are_learnt_by_time_since_release():
    rows = []
    # Two cohorts released from a sentence, 30% of each received again 100 days later (still
    # inside on the origin); and 70 first receptions in the last year.
    for cohort, (released, n) in enumerate(((O - 700, 200), (O - 400, 100))):
        for i in range(n):
            p = cohort * 1_000 + i
            rows.append((p, "sentenced", released - 200, released, released - 200, 400))
            if i < 0.3 * n:
                rows.append((p, "sentenced", released + 100, -1, released + 100, 300))
    rows += [(5_000 + i, "sentenced", O - 50, -1, O - 50, 300) for i in range(70)]
    returns = learn_returns(_origin(rows))
    days = returns.after(np.array([0.0, 0.29, 0.31, 0.99]))
    assert days.tolist() == [100, 100, -1, -1]  # 30% return, all on day 100
    assert returns.share["sentenced"] == pytest.approx(0.3)
    assert len(returns.pool) == 30  # the last year's returns: the second cohort's


def test_recall_timing_is_learnt_as_a_share_of_the_licence():
    rows = []
    # 1,000 licences of 800 days from O - 800; 400 recalled a quarter of the way in.
    for p in range(1_000):
        rows.append((p, "sentenced", O - 1600, O - 800, O - 1600, 1600))
        if p < 400:
            rows.append((p, "recall", O - 600, O - 500, -1, 0))
    data = _origin(rows)
    released = np.flatnonzero(data.spells.reason == "sentenced")
    last = licence_end(data.spells.sentence_day[released], data.spells.length_days[released],
                       data.spells.end[released])
    timing = learn_recall_timing(data, released, last)
    assert timing.probability == pytest.approx(0.4)
    assert timing.at(np.array([0.2, 0.3])).tolist() == pytest.approx([0.0, 0.4])
    assert 0.24 <= float(timing.fraction_at(np.array([0.2]))[0]) <= 0.26
    # Each recall is from the licence of the person's release before it: ending at O.
    recalls = np.flatnonzero(data.spells.reason == "recall")
    assert (recall_licence_end(data.spells, recalls) == O).all()


def _receptions(run, origin: int, horizon: int = O + 365) -> np.ndarray:
    """Receptions from court in the year after the origin (recalls left out), by repetition."""
    reps = int(run.people.rep.max()) + 1
    after = (run.people.entry > origin) & (run.people.entry <= horizon)
    seg = run.segments
    recall = ((seg.case_type == CASE_TYPES.index("recall")) & (seg.start > origin)
              & (seg.start <= horizon))
    return (np.bincount(run.people.rep[after], minlength=reps)
            - np.bincount(seg.rep[recall], minlength=reps))


def test_earlier_releases_bring_their_own_returns(built_home, tmp_path):
    quarter = Scenario(name="quarter", add_rules=(QUARTER_RULE,))
    data = load_origin(built_home, ORIGIN)
    flows = learn_flows(data)
    assert len(flows.returns.pool) > 0 and flows.recall_timing.probability > 0
    kept = returns_in_flows(data, flows, months=18, repetitions=20, seed=2)
    runs = {}
    for name, scenario in (("base", Scenario(name="base")), ("quarter", quarter)):
        for modelled in (None, kept):
            runs[name, modelled is None] = simulate(data, flows, scenario, months=18,
                                                    repetitions=40, seed=2, kept_returns=modelled)
    # Without the model, the scenario moves releases but brings nobody in: the same receptions.
    assert _receptions(runs["quarter", True], O).tolist() == _receptions(runs["base", True], O).tolist()
    # With it, the people the rule releases early come back on new charges (and recalls) sooner.
    extra = _receptions(runs["quarter", False], O) - _receptions(runs["base", False], O)
    assert extra.mean() > 0 and (extra >= 0).all()
    # The baseline's own returns take the place of the returns in the recent flows: about as
    # many receptions from court either way.
    with_model, without = (_receptions(runs["base", m], O).mean() for m in (False, True))
    assert with_model == pytest.approx(without, rel=0.1)



def test_no_releases_from_a_sentence_means_no_returns():
    rows = [(i, "remand", start, start + 100, -1, 0) for i, start in enumerate(range(O - 900, O - 200))]
    flows = learn_flows(_origin(rows))
    assert len(flows.returns.pool) == 0 and flows.returns.after(np.array([0.0])).tolist() == [-1]
