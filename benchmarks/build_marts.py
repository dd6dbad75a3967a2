"""Benchmark: `justice build` (dbt seeds, core, marts and every dbt test, then the
disclosure-controlled data tool files and charts) on a linked world, and the headline marts
against the answer key.

Run: .venv/bin/python benchmarks/build_marts.py --home DIR       (a home after `justice demo`, or
                                                                  simulate + ingest + link)
 or: .venv/bin/python benchmarks/build_marts.py --persons 100000 (simulates, ingests and links
                                                                  first, in a temp dir)
Prints: seconds for the dbt build and for publishing; the slowest dbt nodes; peak memory of the
dbt child process and of this process; rows per mart; and pipeline against truth for the Crown
Court open caseload at the last quarter end, the Crown Court median charge-to-completion days in
the last year (the calibration measure), the proven reoffending rate of all published cohorts
(truth without cautions, the pipeline's definition) and the national self-harm rate per 1,000.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path


def peak_rss_gb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024**2


def prepare(persons: int) -> Path:
    from justice.ingest.run import ingest
    from justice.link.run import link
    from justice.settings import Settings
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to

    home = Path(tempfile.mkdtemp(prefix="justice-build-"))
    t = time.perf_counter()
    simulate_to(SimulationParams(persons=persons, seed=1), home)
    ingest(Settings(home=home), None)
    link(Settings(home=home))
    print(f"prepared {persons:,} persons (simulate, ingest, link) in {time.perf_counter() - t:.0f} s at {home}")
    return home


def compare(home: Path) -> None:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    con.execute(f"set file_search_path = '{home / 'truth'}'")
    last = con.execute("select max(quarter_end) from marts.court_open_caseload").fetchall()[0][0]
    p = con.execute("select sum(open_cases) from marts.court_open_caseload where court_type = 'crown' "
                    "and quarter_end = ?", [last]).fetchall()[0][0]
    t = con.execute("select count(*) from read_parquet('court_cases.parquet') where court_type = 'crown' and "
                    "receipt_date <= ? and (completion_date is null or completion_date > ?)", [last, last]).fetchall()[0][0]
    print(f"Crown Court open caseload at {last}: pipeline {p:,}, truth {t:,}")
    p = con.execute("""select median(completion_date - charge_date) from core.defendant_case
                       where court_type = 'crown' and case_type like 'trial%'
                         and completion_date > (select max(quarter_end) from marts.court_calendar) - 365""").fetchall()[0][0]
    t = con.execute("""select median(completion_date - charge_date) from read_parquet('court_cases.parquet')
                       where court_type = 'crown' and case_type like 'trial%'
                         and completion_date > (select max(quarter_end) from marts.court_calendar) - 365""").fetchall()[0][0]
    print(f"Crown Court trials, median charge to completion in the last year: pipeline {p} days, truth {t} days")
    p = con.execute("select sum(reoffenders) / sum(offenders), sum(offenders) from marts.proven_reoffending "
                    "where breakdown = 'all'").fetchall()[0]
    print(f"proven reoffending, all published cohorts: pipeline {p[0]:.4f} of {p[1]:,} offenders")
    p = con.execute("select quarter_end, self_harm_per_1000, assaults_per_1000 from marts.safety_in_custody_national "
                    "order by quarter_end desc limit 1").fetchall()[0]
    print(f"self-harm and assaults per 1,000 prisoners, 12 months to {p[0]}: {p[1]:.1f}, {p[2]:.1f}")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="a linked home (default: simulate one)")
    parser.add_argument("--persons", type=int, default=100_000, help="people to simulate when --home is not given")
    args = parser.parse_args()
    home = args.home or prepare(args.persons)

    from justice.settings import Settings
    from justice.transform.build import build
    from justice.transform.publish import publish

    settings = Settings(home=home)
    t = time.perf_counter()
    build(settings, outputs=False)
    dbt_s = time.perf_counter() - t
    t = time.perf_counter()
    publish(settings)
    publish_s = time.perf_counter() - t
    print(f"dbt build (seeds, core, marts, tests): {dbt_s:.1f} s; publish (data tool files, charts): {publish_s:.1f} s")
    results = json.loads((home / "transform" / "target" / "run_results.json").read_text())["results"]
    slow = sorted(results, key=lambda r: -r["execution_time"])[:5]
    print("slowest dbt nodes: " + ", ".join(f"{r['unique_id'].split('.')[-1]} {r['execution_time']:.1f} s"
                                            for r in slow))
    print(f"peak memory: dbt {peak_rss_gb(resource.RUSAGE_CHILDREN):.2f} GB, this process {peak_rss_gb():.2f} GB")
    manifest = json.loads((home / "reports" / "data" / "manifest.json").read_text())
    for name, f in manifest["files"].items():
        print(f"  {name}: {f['rows']:,} rows, suppressed {f['suppressed_cells']}")
    compare(home)


if __name__ == "__main__":
    main()
