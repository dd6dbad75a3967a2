"""Benchmark: one evaluation, end to end from the provider's file, against a large world.

Run: .venv/bin/python benchmarks/evaluate_speed.py --home /work/homes/big --rows 1000
     (a home that has been simulated, ingested, linked and built; 1,000,000 people for the
     issue's target)

Takes `--rows` participant rows from one programme's workbooks in the home's
legacy/interventions/ (the earliest rows of the most recent years whose follow-up is complete,
as a provider would send a finished cohort), writes them as one CSV, then times
`justice.evaluate.run.evaluate` and `write_report` on it, step by step: reading the file,
identifying each participant in the person index, building the analysis frame from the
warehouse, matching and estimating, and writing the report. Also prints peak memory (VmHWM of
this process) and the evaluation's headline figures, so the work done is visible.
Target (issue 12): a 1,000-person cohort against a 1,000,000-person population in <= 60 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def peak_rss_gb() -> float:
    """Peak resident memory of this process (VmHWM), in GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def write_cohort(home: Path, programme_slug: str, rows: int, before_year: int, out: Path) -> int:
    """`rows` participant rows of one programme, from files of years before `before_year`,
    latest files first."""
    from itertools import islice

    from justice.evaluate.cohort import read_cohort, write_csv

    files = sorted((home / "legacy" / "interventions").glob(f"*__{programme_slug}__*.xlsx"))
    files = [f for f in files if int(f.stem.split("__")[-1][-4:]) < before_year]
    participants = (p for path in reversed(files)
                    for p in read_cohort(path, on_row_problem="exclude").rows)
    return write_csv(islice(participants, rows), out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--programme", default="thinking-skills-programme")
    parser.add_argument("--before-year", type=int, default=2024,
                        help="Take rows from files of programme years before this (complete follow-up).")
    args = parser.parse_args()

    from justice.evaluate import groups, identify, matching
    from justice.evaluate.cohort import read_cohort
    from justice.evaluate.run import EvaluationOptions, evaluate, write_report
    from justice.settings import Settings

    settings = Settings(home=args.home)
    work = Path(tempfile.mkdtemp(prefix="justice-evaluate-speed-"))
    cohort = work / "cohort.csv"
    n = write_cohort(args.home, args.programme, args.rows, args.before_year, cohort)
    print(f"cohort: {n:,} rows of {args.programme} in {cohort}", flush=True)

    # The steps one by one (the same calls evaluate() makes), then evaluate() as a whole.
    options = EvaluationOptions()
    t0 = time.perf_counter()
    read = read_cohort(cohort)
    t1 = time.perf_counter()
    ident = identify.identify(settings, read, min_matched=options.min_matched)
    t2 = time.perf_counter()
    frame, _ = groups.analysis_frame(settings, ident, options)
    t3 = time.perf_counter()
    covariates = [c for c in groups.COVARIATES if c in frame.columns]
    matching.match(frame, treatment="treated", covariates=covariates, outcome="reoffended",
                   exact=[c for c in options.exact if c in covariates])
    t4 = time.perf_counter()
    print(f"read {t1 - t0:.2f}s  identify {t2 - t1:.2f}s  analysis frame {t3 - t2:.2f}s "
          f"({len(frame):,} rows, {int(frame['treated'].sum()):,} participants)  "
          f"match {t4 - t3:.2f}s", flush=True)

    began = time.perf_counter()
    evaluation = evaluate(settings, cohort, options=options)
    evaluated = time.perf_counter()
    out = write_report(evaluation, work / "report")
    ended = time.perf_counter()
    s = evaluation.summary
    rate = s["outcomes"]["reoffending_rate"]
    print(f"end to end: evaluate {evaluated - began:.1f}s + report {ended - evaluated:.1f}s = "
          f"{ended - began:.1f}s (target <= 60 s); peak memory {peak_rss_gb():.2f} GB")
    print(f"identified {s['identification']['matched']:,} of {s['identification']['rows']:,} rows; "
          f"{s['treated']:,} participants, {s['comparison']:,} comparison people used from a pool of "
          f"{s['matching']['comparison_pool']:,}; reoffending {rate['treated']:.3f} vs "
          f"{rate['comparison']:.3f}, difference {rate['difference']:+.3f} "
          f"[{rate['ci'][0]:+.3f}, {rate['ci'][1]:+.3f}]; report in {out}")


if __name__ == "__main__":
    main()
