"""The published PNG charts (justice.transform.charts) join a line's points in date order, even
when the published file's rows are not (proven reoffending's are not)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from justice.transform import charts


def test_a_line_joins_its_points_in_date_order():
    published_order = pd.DataFrame({
        "cohort_quarter_start": ["2024-01-01", "2022-07-01", "2023-04-01", "2021-10-01"],
        "group_name": ["all offenders"] * 4,
        "rate_percent": [27.3, 27.1, 26.0, 25.5],
    })
    fig, ax = plt.subplots()
    try:
        charts._lines(ax, published_order, "cohort_quarter_start", "rate_percent", "group_name")
        [line] = ax.get_lines()
        xs = list(pd.to_datetime(line.get_xdata()))
        assert xs == sorted(xs)
        assert list(line.get_ydata()) == [25.5, 27.1, 26.0, 27.3]
    finally:
        plt.close(fig)
