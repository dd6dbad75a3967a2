"""Charts of the headline series, drawn from disclosure-controlled data.

A chart at the grain of a data tool file plots that file as published (the protected table
`publish` passes in); a chart of totals over a file's cells (court type totals over case types)
protects those totals like any export. Either way a suppressed point is a gap in the line,
never a guess. The plotted figures are written beside each PNG as CSV. `publish` runs every
function in CHARTS.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pyarrow as pa

from justice import warehouse
from justice.settings import Settings
from justice.transform import exports

Chart = Callable[[Settings, Path, int, dict[str, pa.Table]], Path]
CHARTS: list[Chart] = []


def chart(fn: Chart) -> Chart:
    CHARTS.append(fn)
    return fn


def _query(settings: Settings, sql: str) -> pd.DataFrame:
    con = warehouse.connect(settings, read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def _protected(df: pd.DataFrame, dims: list[str], counts: list[str], derived: dict[str, list[str]],
               threshold: int) -> pd.DataFrame:
    """Chart totals protected as an export of them would be (exports.protect_export)."""
    spec = exports.Export(name="chart", title="chart totals", dims=dims, counts=counts, derived=derived)
    return exports.protect_export(pa.Table.from_pandas(df, preserve_index=False), spec, threshold=threshold).to_pandas()


def _save(fig, df: pd.DataFrame, out: Path, name: str, note: str) -> Path:
    fig.text(0.01, 0.01, note, fontsize=7, color="#505a5f")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = out / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    df.to_csv(out / f"{name}.csv", index=False)
    return path


def _lines(ax, df: pd.DataFrame, x: str, y: str, by: str) -> None:
    drawn = 0
    for key, part in df.groupby(by, sort=True):
        if part[y].isna().all():
            continue  # every point suppressed: no line, no legend entry
        # In date order: a published file's rows need not be (proven reoffending's are not),
        # and a line joins its points in the order given.
        part = part.sort_values(x)
        ax.plot(pd.to_datetime(part[x]), part[y], marker=".", linewidth=1.5, label=str(key))
        drawn += 1
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "every point suppressed (counts too small to publish)", ha="center",
                transform=ax.transAxes, color="#505a5f")


SUPPRESSION_NOTE = "Counts under {t} are suppressed (gaps), with complementary suppression. Source: justice build."


@chart
def court_open_caseload(settings: Settings, out: Path, threshold: int, published: dict[str, pa.Table]) -> Path:
    """Open criminal cases at each quarter end, by court type."""
    df = _query(settings, "select quarter_end, court_type, sum(open_cases) as open_cases "
                          "from marts.court_open_caseload group by all order by 1, 2")
    df = _protected(df, ["quarter_end", "court_type"], ["open_cases"], {}, threshold)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    _lines(ax, df, "quarter_end", "open_cases", "court_type")
    ax.set_title("Open criminal caseload at quarter end")
    ax.set_ylabel("cases")
    return _save(fig, df, out, "court_open_caseload", SUPPRESSION_NOTE.format(t=threshold))


@chart
def court_receipts_disposals(settings: Settings, out: Path, threshold: int, published: dict[str, pa.Table]) -> Path:
    """Cases received and completed per quarter, by court type."""
    df = _query(settings, "select quarter_start, court_type, sum(receipts) as receipts, sum(disposals) as disposals "
                          "from marts.court_receipts_disposals group by all order by 1, 2")
    df = _protected(df, ["quarter_start", "court_type"], ["receipts", "disposals"], {}, threshold)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, (court, part) in zip(axes, df.groupby("court_type", sort=True)):
        x = pd.to_datetime(part["quarter_start"])
        ax.plot(x, part["receipts"], marker=".", label="receipts")
        ax.plot(x, part["disposals"], marker=".", label="disposals")
        ax.set_title(f"{court}: receipts and disposals per quarter")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, df, out, "court_receipts_disposals", SUPPRESSION_NOTE.format(t=threshold))


@chart
def court_timeliness(settings: Settings, out: Path, threshold: int, published: dict[str, pa.Table]) -> Path:
    """Median days from offence to completion, per quarter, by case type (as published)."""
    df = published["court_timeliness"].to_pandas()
    df = df[df["stage"] == "offence_to_completion"].copy()
    df["case_type"] = df["court_type"] + " " + df["case_type"]
    df["median_days"] = df["median_days"].astype(float)
    df = df[["quarter", "quarter_start", "case_type", "defendants", "median_days"]]
    fig, ax = plt.subplots(figsize=(10, 5))
    _lines(ax, df, "quarter_start", "median_days", "case_type")
    ax.set_title("Median days from offence to completion, by case type (quarter of completion)")
    ax.set_ylabel("days")
    return _save(fig, df, out, "court_timeliness", SUPPRESSION_NOTE.format(t=threshold))


@chart
def proven_reoffending(settings: Settings, out: Path, threshold: int, published: dict[str, pa.Table]) -> Path:
    """Proven reoffending rate by cohort quarter: all offenders, adults, juveniles (as published)."""
    df = published["proven_reoffending"].to_pandas()
    df = df[(df["breakdown"] == "all") | ((df["breakdown"] == "adult_juvenile")
                                          & df["breakdown_value"].isin(["adult", "juvenile"]))].copy()
    df["group_name"] = df["breakdown_value"].where(df["breakdown"] != "all", "all offenders")
    df["rate_percent"] = df["rate"].astype(float) * 100
    df = df[["cohort_quarter", "cohort_quarter_start", "group_name", "offenders", "reoffenders", "rate_percent"]]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    _lines(ax, df, "cohort_quarter_start", "rate_percent", "group_name")
    ax.set_title("Proven reoffending rate by cohort quarter")
    ax.set_ylabel("% reoffending within 12 months")
    return _save(fig, df, out, "proven_reoffending", SUPPRESSION_NOTE.format(t=threshold))


@chart
def safety_in_custody(settings: Settings, out: Path, threshold: int, published: dict[str, pa.Table]) -> Path:
    """Self-harm and assault incidents per 1,000 prisoners, 12 months to each quarter end (as
    published)."""
    df = published["safety_in_custody_national"].to_pandas()[
        ["quarter_end", "self_harm_incidents", "assault_incidents", "assaults_on_staff", "self_harm_per_1000",
         "assaults_per_1000", "assaults_on_staff_per_1000"]].sort_values("quarter_end")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    x = pd.to_datetime(df["quarter_end"])
    for col, label in (("self_harm_per_1000", "self-harm"), ("assaults_per_1000", "assaults"),
                       ("assaults_on_staff_per_1000", "assaults on staff")):
        ax.plot(x, df[col].astype(float), marker=".", label=label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Safety in custody: incidents per 1,000 prisoners, 12 months to quarter end")
    ax.set_ylabel("per 1,000 prisoners")
    return _save(fig, df, out, "safety_in_custody", SUPPRESSION_NOTE.format(t=threshold))
