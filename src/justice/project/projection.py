"""`project()`: the baseline and each scenario from one origin, and the tables made from them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from justice.errors import ConfigError
from justice.policy import load_release_rules, read_rule_file
from justice.settings import Settings
from justice.sim.reference import EPOCH, day_number

from . import results
from .data import OriginData, load_origin
from .engine import months_from, returns_in_flows, simulate
from .flows import Flows, learn_flows
from .scenario import BASELINE, Scenario, ScenarioError, load_scenario

RETURN_REPETITIONS = 20
"""Repetitions of the baseline run that sets how many returns the court flows hold by day."""


@dataclass
class Projection:
    """A projection's results: tidy tables, per-repetition totals and the plain-English summary."""

    origin: dt.date
    dates: list[dt.date]
    repetitions: int
    seed: int
    scenarios: list[Scenario]
    population: pd.DataFrame
    """month, date, scenario, breakdown, level, mean, lower, upper."""
    difference: pd.DataFrame
    """Each scenario less the baseline, repetition by repetition: same columns."""
    flows: pd.DataFrame
    """month, date, scenario, receptions and releases in the month up to the date (means)."""
    capacity: pd.DataFrame
    """Each establishment's projected population against its capacity, by month and scenario."""
    capacity_source: str
    totals: dict[str, np.ndarray] = field(repr=False)
    """Total population per repetition and month, (repetitions, months + 1), by scenario."""
    first_day: dict[str, tuple[dt.date, float, float]] = field(default_factory=dict)
    """By scenario: its first day, the releases on it (mean) and the baseline's on that day."""
    summary: list[str] = field(default_factory=list)
    """One plain-English sentence per line."""
    data: OriginData | None = field(default=None, repr=False)


def project(settings: Settings, scenarios: Sequence[Path | str | Scenario] = (), *,
            origin: dt.date | None = None, months: int = 24, repetitions: int = 100,
            seed: int = 1, out: Path | None = None) -> Projection:
    """Project the prison population month by month from `origin` (default: the day after the
    data's end) under the baseline and each scenario; write the outputs to `out` if given."""
    if months < 1 or months > 120:
        raise ScenarioError(f"--months {months}: project between 1 and 120 months")
    if repetitions < 2 or repetitions > 10_000:
        raise ScenarioError(f"--repetitions {repetitions}: between 2 and 10,000 repetitions")
    loaded = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    names = [s.name for s in loaded]
    for s in loaded:
        if s.name == BASELINE.name or names.count(s.name) > 1:
            raise ScenarioError(f"{s.source or s.name}: scenario name {s.name!r} is used twice "
                                "(or is `baseline`); give each scenario its own `name`")
    for s in loaded:
        _check_rules(s)
    data = load_origin(settings, origin)
    for s in loaded:
        if s.start is not None and s.start < data.origin:
            raise ScenarioError(f"{s.source or s.name}: from {s.start} is before the origin "
                                f"{data.origin}; a scenario changes the future only")
    result = run_projection(data, learn_flows(data), [BASELINE, *loaded], months=months,
                            repetitions=repetitions, seed=seed)
    if out is not None:
        from .outputs import write_outputs

        write_outputs(result, Path(out))
    return result


def _check_rules(scenario: Scenario) -> None:
    """Load a scenario's rules once before any work, so a bad rule file or an unknown rule to
    withdraw is reported against the scenario that names it."""
    try:
        load_release_rules(extra=scenario.add_rules, without=scenario.withdraw_rules)
    except ConfigError as exc:
        raise ScenarioError(f"{scenario.source or scenario.name}: rules: {exc}") from exc


def run_projection(data: OriginData, flows: Flows, scenarios: list[Scenario], *, months: int,
                   repetitions: int, seed: int) -> Projection:
    """Simulate each scenario (the first is the baseline) and make the tables."""
    dates = months_from(data.origin, months)
    snapshots = np.array([day_number(d) for d in dates], dtype=np.int64)
    ests = data.establishments
    tables, diffs, flow_rows, totals, counts_by = [], [], [], {}, {}
    exits: dict[str, np.ndarray] = {}
    # How much of the court flow the modelled returns of the projection's releases take over:
    # learnt once from the baseline, then the same for every scenario.
    kept_returns = returns_in_flows(data, flows, months=months,
                                    repetitions=min(repetitions, RETURN_REPETITIONS), seed=seed)
    for scenario in scenarios:
        run = simulate(data, flows, scenario, months=months, repetitions=repetitions, seed=seed,
                       kept_returns=kept_returns)
        counts = results.count(run, snapshots, repetitions, ests)
        counts_by[scenario.name] = counts
        totals[scenario.name] = counts["total"][:, 0, :]
        tables.append(results.tidy(counts, ests, dates, scenario.name))
        rec, rel = results.flows(run, snapshots, repetitions)
        flow_rows.append(pd.DataFrame({
            "month": np.arange(len(dates)), "date": np.array(dates, dtype="datetime64[D]"),
            "scenario": scenario.name, "receptions": rec.mean(axis=0).round(1),
            "releases": rel.mean(axis=0).round(1)}))
        exits[scenario.name] = run.people.exit
        if scenario is not scenarios[0]:
            base = counts_by[scenarios[0].name]
            diff = {k: counts[k] - base[k] for k in counts}
            diffs.append(results.tidy(diff, ests, dates, scenario.name))
    baseline = scenarios[0].name
    capacity, source = _capacity_table(data, counts_by, dates)
    projection = Projection(
        origin=data.origin, dates=dates, repetitions=repetitions, seed=seed,
        scenarios=scenarios, population=pd.concat(tables, ignore_index=True),
        difference=pd.concat(diffs, ignore_index=True) if diffs
        else tables[0].iloc[:0].copy(),
        flows=pd.concat(flow_rows, ignore_index=True), capacity=capacity,
        capacity_source=source, totals=totals, data=data)
    for scenario in scenarios[1:]:
        day = _first_day(scenario, data, exits[scenario.name], exits[baseline])
        n = float(np.count_nonzero(exits[scenario.name] == day_number(day))) / repetitions
        b = float(np.count_nonzero(exits[baseline] == day_number(day))) / repetitions
        projection.first_day[scenario.name] = (day, n, b)
    from .outputs import summary_lines

    projection.summary = summary_lines(projection)
    return projection


def _first_day(scenario: Scenario, data: OriginData, exits: np.ndarray,
               base_exits: np.ndarray) -> dt.date:
    """The scenario's first day: its `from` date, else the first date after the origin on
    which one of its added rules takes effect, else the day it releases the most people more
    than the baseline does."""
    if scenario.start is not None:
        return scenario.start
    origin = data.origin_day
    starts = [c.effective_from for path in scenario.add_rules
              for r in read_rule_file(path).rules for c in r.clauses
              if c.effective_from > origin]
    if starts:
        return EPOCH + dt.timedelta(days=int(min(starts)))
    n = int(max(exits.max(initial=origin), base_exits.max(initial=origin)) - origin + 1)
    extra = (np.bincount(np.clip(exits - origin, 0, None), minlength=n)[:n]
             - np.bincount(np.clip(base_exits - origin, 0, None), minlength=n)[:n])
    extra[0] = 0
    day = origin + 1 + int(np.argmax(extra[1:])) if n > 1 else origin + 1
    return EPOCH + dt.timedelta(days=int(day))


def _capacity_table(data: OriginData, counts_by: dict, dates: list) -> tuple[pd.DataFrame, str]:
    """Projected population of each establishment against its capacity, every scenario."""
    capacity = dict(data.capacity)
    source = data.capacity_source
    missing = [e for e in data.establishments if e not in capacity]
    if missing:
        derived = _derived_capacity(data)
        for e in missing:
            capacity[e] = derived.get(e, 0)
        source += ("; where the prison database gives none (" + ", ".join(missing) + "): the "
                   "highest number held on any day of the year before the origin, as an "
                   "operational capacity derived from use")
    frames = []
    for name, counts in counts_by.items():
        pop = counts["establishment"]  # (reps, establishments, months)
        mean, lower, upper = results.summarise(pop)
        cap = np.array([capacity[e] for e in data.establishments], dtype=float)[:, None]
        over = (pop > cap[None, :, :]).mean(axis=0)
        n_est, m = mean.shape
        frames.append(pd.DataFrame({
            "month": np.tile(np.arange(m), n_est),
            "date": np.tile(np.array(dates, dtype="datetime64[D]"), n_est),
            "scenario": name,
            "establishment": np.repeat(np.array(data.establishments, dtype=object), m),
            "establishment_name": np.repeat(np.array(
                [data.establishment_names.get(e, e) for e in data.establishments], dtype=object), m),
            "capacity": np.repeat(cap[:, 0], m).astype(np.int64),
            "mean": mean.ravel().round(1), "lower": lower.ravel().round(1),
            "upper": upper.ravel().round(1),
            "headroom": (np.repeat(cap[:, 0], m) - mean.ravel()).round(1),
            "probability_over_capacity": over.ravel().round(3),
        }))
    return pd.concat(frames, ignore_index=True), source


def _derived_capacity(data: OriginData) -> dict[str, int]:
    """Most people held in each establishment on any day of the year before the origin."""
    s = data.spells
    origin = data.origin_day
    out = {}
    days = np.arange(origin - 364, origin + 1)
    end = np.where(s.end >= 0, s.end, origin + 1)
    for e in data.establishments:
        mask = s.establishment == e
        change = np.zeros(len(days) + 1, np.int64)
        np.add.at(change, np.clip(s.start[mask] - days[0], 0, len(days)), 1)
        np.add.at(change, np.clip(end[mask] - days[0], 0, len(days)), -1)
        out[e] = int(np.cumsum(change)[:len(days)].max(initial=0))
    return out
