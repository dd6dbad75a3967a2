"""A projection's files: tidy tables (Parquet and CSV), a fan chart, a plain-English summary.

Files written to the folder (HOME/reports/projections by default)::

    population.parquet / .csv    month, date, scenario, breakdown, level, mean, lower, upper
    difference.parquet / .csv    each scenario less the baseline, with its 95% interval
    flows.csv                    receptions and releases a month (means)
    capacity.parquet / .csv      each establishment against its capacity
    fan_chart.svg / .png         the total population with its intervals, every scenario
    summary.txt / summary.json   the sentences below, and the figures behind them
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .results import summarise

COLOURS = ("#1d70b8", "#d4351c", "#00703c", "#f47738", "#4c2c92", "#505a5f")
STYLE = {"svg.fonttype": "none", "svg.hashsalt": "justice-project", "font.family": "sans-serif",
         "font.size": 9}


def summary_lines(p) -> list[str]:
    """Plain-English sentences: the baseline's path, and for each scenario the places it frees
    or fills, by when, and its first day's releases."""
    base_name = p.scenarios[0].name
    base = p.totals[base_name].mean(axis=0)
    last = len(p.dates) - 1
    lines = [(f"Baseline: about {base[0]:,.0f} people in custody on {p.dates[0]:%d %B %Y}, "
              f"about {base[-1]:,.0f} projected by {p.dates[-1]:%B %Y} (month {last}), from "
              f"{p.repetitions} repetitions.")]
    for s in p.scenarios[1:]:
        diff = p.totals[s.name] - p.totals[base_name]
        mean, lower, upper = summarise(diff)
        peak = int(np.argmax(np.abs(mean)))
        verb = "frees" if mean[peak] <= 0 else "fills"
        low, high = (-upper[peak], -lower[peak]) if verb == "frees" else (lower[peak], upper[peak])
        line = (f"{s.name}: {verb} about {abs(mean[peak]):,.0f} places by month {peak} "
                f"({p.dates[peak]:%B %Y}; 95% interval {_whole(low)} to {_whole(high)}), "
                f"{'freeing' if mean[last] <= 0 else 'filling'} about {abs(mean[last]):,.0f} "
                f"by month {last}")
        if s.name in p.first_day and s.add_rules:
            day, n, b = p.first_day[s.name]
            line += (f"; about {n:,.0f} released on its first day, {day:%d %B %Y} "
                     f"({n - b:,.0f} more than the baseline's {b:,.0f})")
        lines.append(line + ".")
    over = p.capacity[(p.capacity.month == last) & (p.capacity.probability_over_capacity >= 0.5)]
    for scen, rows in over.groupby("scenario", sort=False):
        names = ", ".join(f"{r.establishment_name} ({r['mean']:,.0f} of {r.capacity:,})"
                          for _, r in rows.iterrows())
        lines.append(f"{scen}: over capacity by month {last}: {names}.")
    return lines


def _whole(x: float) -> str:
    """A count to the nearest whole number, never "-0"."""
    return f"{round(float(x)):,}"


def write_outputs(p, folder: Path) -> dict[str, Path]:
    """Write the tables, the fan chart and the summary into `folder`; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in (("population", p.population), ("difference", p.difference),
                        ("capacity", p.capacity)):
        frame.to_parquet(folder / f"{name}.parquet", index=False)
        frame.to_csv(folder / f"{name}.csv", index=False)
        paths[name] = folder / f"{name}.parquet"
    p.flows.to_csv(folder / "flows.csv", index=False)
    paths["flows"] = folder / "flows.csv"
    paths["fan_chart"] = fan_chart(p, folder / "fan_chart.svg")
    fan_chart(p, folder / "fan_chart.png")
    (folder / "summary.txt").write_text("\n".join(p.summary) + "\n", "utf-8")
    meta = {
        "origin": p.origin.isoformat(), "months": len(p.dates) - 1, "repetitions": p.repetitions,
        "seed": p.seed, "capacity_source": p.capacity_source, "summary": p.summary,
        "scenarios": [{"name": s.name, "description": s.description,
                       "file": str(s.source) if s.source else None,
                       "first_day": p.first_day[s.name][0].isoformat() if s.name in p.first_day else None,
                       "first_day_releases": round(p.first_day[s.name][1], 1)
                       if s.name in p.first_day else None,
                       "total_mean": p.totals[s.name].mean(axis=0).round(1).tolist()}
                      for s in p.scenarios],
        "dates": [d.isoformat() for d in p.dates],
    }
    (folder / "summary.json").write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
    paths["summary"] = folder / "summary.txt"
    return paths


def fan_chart(p, path: Path) -> Path:
    """The total population month by month: the baseline's 50% and 95% bands, each scenario's
    mean and 95% band."""
    x = np.array(p.dates, dtype="datetime64[D]")
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(8, 4.2))
        for i, s in enumerate(p.scenarios):
            totals = p.totals[s.name]
            colour = COLOURS[i % len(COLOURS)]
            lo95, lo50, hi50, hi95 = np.percentile(totals, [2.5, 25, 75, 97.5], axis=0)
            ax.fill_between(x, lo95, hi95, color=colour, alpha=0.15, linewidth=0)
            if i == 0:
                ax.fill_between(x, lo50, hi50, color=colour, alpha=0.3, linewidth=0)
            ax.plot(x, totals.mean(axis=0), color=colour, linewidth=1.8, label=s.name)
        ax.set_title(f"Projected prison population from {p.origin:%d %B %Y}\n"
                     f"Lines: means. Shaded: 95% of {p.repetitions} repetitions (and 50% for "
                     "the baseline)", fontsize=9, loc="left")
        ax.set_ylabel("People in custody")
        ax.grid(axis="y", color="#b1b4b6", linewidth=0.5)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False, loc="best")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
        plt.close(fig)
    return path
