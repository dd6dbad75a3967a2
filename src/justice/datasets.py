"""The analysts' datasets for notebooks, as pandas DataFrames.

    >>> from justice import datasets
    >>> t = datasets.court_timeliness()                      # the mart as built
    >>> t[t.stage == "offence_to_completion"].pivot(index="quarter", columns="case_type", values="median_days")
    >>> datasets.proven_reoffending(protected=True)          # as published: small counts suppressed

Each function reads one mart from the warehouse that `justice build` filled (HOME, default
JUSTICE_HOME or ~/.justice; pass `home=` for another). `protected=True` applies the same
disclosure control as the published data tool files (exports.yaml). Person-level data never
leaves with a person id: `proven_reoffending_cohort` always carries keyed pseudonyms. The
definitions of every column are in the dbt docs (`justice docs`) and docs/analysts.md.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from justice.settings import Settings
from justice.transform.exports import exports, protect_export, pseudonym_key, read_mart


def _mart(name: str, home: str | Path | None, protected: bool) -> pd.DataFrame:
    settings = Settings.from_env(home=home)
    table = read_mart(settings, name)
    spec = exports().get(name)
    if spec is not None and (protected or spec.person_level):
        key = pseudonym_key(settings) if spec.person_level else None
        table = protect_export(table, spec, key=key)
    return table.to_pandas()


def available(home: str | Path | None = None) -> pd.DataFrame:
    """The datasets this module serves, with their titles and whether each is person-level."""
    del home  # the list is the export specification, the same for every home
    return pd.DataFrame([{"dataset": name, "title": spec.title, "person_level": spec.person_level}
                         for name, spec in exports().items()])


def court_receipts_disposals(home: str | Path | None = None, protected: bool = False) -> pd.DataFrame:
    """Criminal cases received and completed per quarter, by court type, case type, HMCTS region
    and court (Criminal Court Statistics C1/M1 definitions). Columns: quarter, quarter_start,
    quarter_end, court_type, case_type, region, court_code, court_name, receipts, disposals."""
    return _mart("court_receipts_disposals", home, protected)


def court_open_caseload(home: str | Path | None = None, protected: bool = False) -> pd.DataFrame:
    """The open caseload snapshot on each quarter's last day, by court type and case type, with its
    age profile: open_cases, median_age_days, mean_age_days, open_a_year_or_more, share."""
    return _mart("court_open_caseload", home, protected)


def court_timeliness(home: str | Path | None = None, protected: bool = False) -> pd.DataFrame:
    """Per quarter of completion, court type, case type and stage (offence_to_charge,
    charge_to_first_listing, first_listing_to_completion, offence_to_completion): defendants,
    mean_days and median_days."""
    return _mart("court_timeliness", home, protected)


def court_outcomes(home: str | Path | None = None, protected: bool = False) -> pd.DataFrame:
    """Per quarter of completion, court type and case type: tried, convicted, sentenced and
    immediate custody counts; conviction_rate, custody_rate and average custodial sentence
    length in months."""
    return _mart("court_outcomes", home, protected)


def proven_reoffending(home: str | Path | None = None, protected: bool = False) -> pd.DataFrame:
    """Proven reoffending (MoJ definition) per cohort quarter and breakdown (breakdown,
    breakdown_value): offenders, reoffenders, reoffences, rate, reoffences_per_reoffender."""
    return _mart("proven_reoffending", home, protected)


def proven_reoffending_cohort(home: str | Path | None = None) -> pd.DataFrame:
    """The reoffending cohort, one row per offender and cohort quarter, with the index event,
    breakdown attributes and reoffences; `person_pseudonym` in place of the person id."""
    return _mart("proven_reoffending_cohort", home, protected=True)


def safety_in_custody(home: str | Path | None = None, protected: bool = False) -> pd.DataFrame:
    """Self-harm and assault incidents by establishment and quarter, with the average population
    and rates per 1,000 prisoners."""
    return _mart("safety_in_custody", home, protected)


def safety_in_custody_national(home: str | Path | None = None, protected: bool = False) -> pd.DataFrame:
    """England and Wales self-harm and assault incidents and rates per 1,000 prisoners in the 12
    months to each quarter end."""
    return _mart("safety_in_custody_national", home, protected)


def prison_population_by_custody_type(home: str | Path | None = None, protected: bool = False) -> pd.DataFrame:
    """The prison population on each quarter's last day by custody type (remand, sentenced,
    recall) and, for sentenced people, sentence length band (Offender Management Statistics
    Quarterly): quarter, snapshot_date, custody_type, sentence_length_band, category_order,
    population, share_of_population."""
    return _mart("prison_population_by_custody_type", home, protected)
