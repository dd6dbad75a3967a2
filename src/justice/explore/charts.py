"""Line charts of a table's time series, drawn as SVG on the server (no JavaScript).

A table has a chart when its only row dimension (or only column dimension) is the dataset's
time dimension: one chart per measure, one line per column (or row). A withheld figure ([c],
[x], [z]) is a gap in the line, never a guess. The SVG uses presentation attributes only (the
service's Content-Security-Policy allows no inline style), and carries a title and description
for screen readers; the page shows the same figures in a table beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from justice.explore.table import TOTAL, Table

WIDTH, HEIGHT = 720, 340
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 48
MAX_SERIES = 8
# GOV.UK Design System colours, each line also dashed its own way so colour is not the only cue.
COLOURS = ("#1d70b8", "#d4351c", "#00703c", "#4c2c92", "#f47738", "#28a197", "#d53880", "#0b0c0c")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "12 4", "4 4", "1 2", "10 2 2 2")


@dataclass(frozen=True)
class Series:
    """One line: its name and a value (or None, a gap) per period."""

    name: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class Chart:
    """One chart: its title, periods, lines and the SVG drawn from them (or why none was)."""

    title: str
    periods: tuple[str, ...]
    series: tuple[Series, ...]
    percent: bool
    svg: str
    note: str = ""


def _nice_top(top: float) -> float:
    if top <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(top))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= top:
            return step * power
    return 10 * power


def _number(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f}%"
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:,.1f}"


def draw(chart_id: str, title: str, periods: list[str], series: list[Series], percent: bool) -> str:
    """The SVG markup of a line chart (every text escaped)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    present = [v for s in series for v in s.values if v is not None]
    top = _nice_top(max(present, default=0.0))
    step_x = plot_w / max(len(periods) - 1, 1)

    def x(i: int) -> float:
        return LEFT + i * step_x if len(periods) > 1 else LEFT + plot_w / 2

    def y(v: float) -> float:
        return TOP + plot_h - (v / top) * plot_h

    names = ", ".join(s.name for s in series)
    desc = (f"Line chart of {len(series)} series ({names}) over {len(periods)} periods, "
            f"{periods[0]} to {periods[-1]}. Gaps are figures withheld. The figures are in the table.")
    opening = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
               f'class="app-chart" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
               f'focusable="false" width="100%" font-family="GDS Transport, arial, sans-serif">')
    parts = [opening,
             f'<title id="{chart_id}-title">{escape(title)}</title>',
             f'<desc id="{chart_id}-desc">{escape(desc)}</desc>']
    for k in range(5):
        value = top * k / 4
        gy = y(value)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{gy:.1f}" y2="{gy:.1f}" '
                     f'stroke="#b1b4b6" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end" font-size="12" '
                     f'fill="#0b0c0c">{escape(_number(value, percent))}</text>')
    every = max(1, math.ceil(len(periods) / 8))
    for i, period in enumerate(periods):
        # The last period is labelled too, unless that would overlap the label before it.
        last = i == len(periods) - 1 and i % every >= every / 2
        if i % every == 0 or last:
            anchor = "end" if i == len(periods) - 1 and len(periods) > 1 else "middle"
            parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="{anchor}" '
                         f'font-size="12" fill="#0b0c0c">{escape(period)}</text>')
    for n, s in enumerate(series):
        colour, dash = COLOURS[n % len(COLOURS)], DASHES[n % len(DASHES)]
        path, pen_down = [], False
        for i, v in enumerate(s.values):
            if v is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{x(i):.1f} {y(v):.1f}")
            pen_down = True
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        if path:
            parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" '
                         f'stroke-width="2.5"{dash_attr}/>')
        for i, v in enumerate(s.values):
            if v is not None:
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>')
    # The legend, under the plot.
    lx = LEFT
    for n, s in enumerate(series):
        colour, dash = COLOURS[n % len(COLOURS)], DASHES[n % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        ly = HEIGHT - 10
        parts.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" '
                     f'stroke-width="2.5"{dash_attr}/>')
        label = s.name if len(s.name) <= 28 else s.name[:27] + "…"
        parts.append(f'<text x="{lx + 30}" y="{ly}" font-size="12" fill="#0b0c0c">{escape(label)}</text>')
        lx += 40 + 7 * len(label)
    parts.append("</svg>")
    return "".join(parts)


def charts_of(table: Table, id_prefix: str = "chart") -> list[Chart]:
    """One chart per measure of `table` when it runs along the dataset's time dimension
    (its only row or only column dimension); none otherwise."""
    time = table.dataset.time
    q = table.query
    if time is None or not ((q.rows == (time,)) or (q.cols == (time,) and not q.rows)):
        return []
    along_rows = q.rows == (time,)
    at_period = [i for i, k in enumerate(table.row_keys if along_rows else table.col_keys)
                 if k != (TOTAL,)]
    periods = [(table.row_keys if along_rows else table.col_keys)[i][0] for i in at_period]
    line_keys = table.col_keys if along_rows else table.row_keys
    width = len(table.col_keys)
    if not periods:
        return []
    out = []
    for n, measure in enumerate(table.measures):
        title = f"{measure.label}, by {table.dataset.dim_label(time).lower()}"
        if len(line_keys) > MAX_SERIES:
            out.append(Chart(title, tuple(periods), (), measure.percent, "",
                             note=f"No chart: {len(line_keys)} lines are too many to read. "
                                  f"Filter to {MAX_SERIES} or fewer."))
            continue
        figures = table.values(measure.name)  # row by row
        series = []
        for n_line, line in enumerate(line_keys):
            at = ([i * width + n_line for i in at_period] if along_rows
                  else [n_line * width + i for i in at_period])
            values = [None if figures[k] is None else float(figures[k]) for k in at]
            name = ", ".join(table.dataset.value_label(d, v) if v != TOTAL else TOTAL
                             for d, v in zip(q.cols if along_rows else q.rows, line)) or measure.label
            series.append(Series(name, tuple(values)))
        svg = draw(f"{id_prefix}-{n}", title, periods, series, measure.percent)
        out.append(Chart(title, tuple(periods), tuple(series), measure.percent, svg))
    return out
