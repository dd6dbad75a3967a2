"""The evaluation report's charts, drawn with matplotlib (Agg) to SVG files.

Each function writes one SVG and returns a `Chart`: its file name, a title and a one-sentence
description a screen reader can announce (`alt`). The report puts the figures behind every chart
in a table beside it, so no chart is the only place a number appears.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

# GOV.UK Design System colours: the treatment group in blue, the comparison group in dark grey.
TREATED_COLOUR = "#1d70b8"
COMPARISON_COLOUR = "#505a5f"
BEFORE_COLOUR = "#d4351c"
TEXT_COLOUR = "#0b0c0c"

STYLE = {
    "svg.fonttype": "none",  # text stays text: searchable, scalable and read by screen readers
    "svg.hashsalt": "justice-evaluate",  # stable element ids, so the same input gives the same file
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.edgecolor": COMPARISON_COLOUR,
    "axes.labelcolor": TEXT_COLOUR,
    "xtick.color": TEXT_COLOUR,
    "ytick.color": TEXT_COLOUR,
}

SMD_THRESHOLD = 0.1


@dataclass(frozen=True)
class Chart:
    """One chart written to disk."""

    file: str
    """File name inside the report folder."""
    title: str
    """Heading shown above the chart."""
    alt: str
    """A sentence saying what the chart shows, for people who cannot see it."""


@dataclass(frozen=True)
class OutcomeBar:
    """One outcome as the outcome chart draws it."""

    label: str
    treated: float
    comparison: float
    ci: tuple[float, float]
    """95% confidence interval of the difference (treatment minus comparison)."""
    unit: str
    """'%' for rates (values given as proportions), else the unit's name ('reoffences', 'days')."""


def _save(fig, path: Path, title: str) -> None:
    fig.savefig(path, format="svg", metadata={"Title": title, "Date": None})
    plt.close(fig)


def outcome_chart(bars: Sequence[OutcomeBar], path: Path) -> Chart:
    """Bars of each outcome for the two groups; the whisker on the treatment bar is the range of
    treatment values the difference's 95% confidence interval allows, given the comparison."""
    title = "Outcomes: treatment group and matched comparison group, with 95% confidence intervals"
    with plt.rc_context(STYLE):
        columns = min(len(bars), 2)
        rows = -(-len(bars) // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns + 0.4, 3.1 * rows),
                                 squeeze=False)
        for ax in axes.flat[len(bars):]:
            ax.set_visible(False)
        for ax, bar in zip(axes.flat, bars, strict=False):
            scale = 100.0 if bar.unit == "%" else 1.0
            treated, comparison = bar.treated * scale, bar.comparison * scale
            low, high = (comparison + bar.ci[0] * scale, comparison + bar.ci[1] * scale)
            ax.bar([0, 1], [treated, comparison], color=[TREATED_COLOUR, COMPARISON_COLOUR],
                   width=0.6)
            ax.errorbar([0], [treated], yerr=[[max(treated - low, 0)], [max(high - treated, 0)]],
                        color=TEXT_COLOUR, capsize=5, linewidth=1.2)
            ax.set_xticks([0, 1], ["Treatment", "Comparison"])
            ax.set_title(textwrap.fill(bar.label, 38), fontsize=9)
            ax.set_ylabel(bar.unit if bar.unit != "%" else "per cent")
            ax.set_ylim(0, max(high, treated, comparison, 1e-9) * 1.2)
            ax.spines[["top", "right"]].set_visible(False)
            for x, value in ((0, treated), (1, comparison)):
                ax.text(x, value / 2, _number(value, bar.unit), ha="center", color="white",
                        fontsize=8)
        fig.tight_layout()
        _save(fig, path, title)
    described = "; ".join(
        f"{b.label}: treatment {_number(b.treated * (100 if b.unit == '%' else 1), b.unit)}, "
        f"comparison {_number(b.comparison * (100 if b.unit == '%' else 1), b.unit)}" for b in bars)
    return Chart(path.name, title, f"Bar charts of each outcome. {described}.")


def _number(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.1f}%"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"


def love_plot(balance: pd.DataFrame, path: Path) -> Chart:
    """Absolute standardised mean difference of every covariate before and after matching, with
    the 0.1 line above which a covariate counts as imbalanced."""
    title = "Balance of each characteristic before and after matching (Love plot)"
    rows = balance.iloc[::-1]  # matplotlib draws from the bottom: keep the table's order top-down
    before = rows["smd_before"].abs().to_numpy(dtype=float)
    after = rows["smd_after"].abs().to_numpy(dtype=float)
    y = np.arange(len(rows))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(8.5, 0.22 * len(rows) + 1.3))
        ax.scatter(before, y, marker="o", facecolors="none", edgecolors=BEFORE_COLOUR,
                   label="before matching")
        ax.scatter(after, y, marker="o", color=TREATED_COLOUR, label="after matching")
        ax.axvline(SMD_THRESHOLD, color=TEXT_COLOUR, linestyle="--", linewidth=1)
        ax.set_yticks(y, [str(c) for c in rows["covariate"]], fontsize=7)
        ax.set_xlabel("absolute standardised mean difference (dashed line: 0.1)")
        finite = np.concatenate([before[np.isfinite(before)], after[np.isfinite(after)]])
        ax.set_xlim(0, max(float(finite.max(initial=0)), SMD_THRESHOLD) * 1.1)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        _save(fig, path, title)
    over_before = int((before > SMD_THRESHOLD).sum())
    over_after = int((after > SMD_THRESHOLD).sum())
    alt = (f"Dot plot of {len(rows)} characteristics. Before matching {over_before} had a "
           f"standardised difference above 0.1; after matching {over_after} did.")
    return Chart(path.name, title, alt)


@dataclass(frozen=True)
class ScoreGroup:
    """Propensity scores of one group, with the weight each person carries in that group."""

    label: str
    scores: np.ndarray
    weights: np.ndarray


def overlap_chart(groups: Sequence[ScoreGroup], path: Path) -> Chart:
    """Weighted distributions of the propensity score, one outline per group, to show how far the
    groups overlap (common support)."""
    title = "Propensity scores of the groups (how alike they are on the characteristics)"
    highest = max((float(g.scores.max()) for g in groups if len(g.scores)), default=1.0)
    # Scores of a rare programme crowd near 0: draw up to just past the highest, not to 1.
    bins = np.linspace(0.0, min(1.0, math.ceil(highest * 1.05 * 20) / 20), 41)
    colours = [TREATED_COLOUR, BEFORE_COLOUR, COMPARISON_COLOUR]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        for group, colour in zip(groups, colours, strict=False):
            if len(group.scores) == 0:
                continue
            ax.hist(group.scores, bins=bins, weights=group.weights / group.weights.sum(),
                    histtype="step", linewidth=1.6, color=colour, label=group.label)
        ax.set_xlabel("propensity score (estimated chance of taking part)")
        ax.set_ylabel("share of the group")
        ax.legend(fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        _save(fig, path, title)
    parts = "; ".join(f"{g.label}: median {_weighted_median(g.scores, g.weights):.2f}"
                      for g in groups if len(g.scores))
    return Chart(path.name, title,
                 f"Outlines of the propensity score distribution by group. {parts}.")


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])
