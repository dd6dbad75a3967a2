"""Benchmark: `justice link` at scale, incremental linking, and scoring one record.

Run: .venv/bin/python benchmarks/link_scale.py --home DIR         (a home after `justice demo` or
                                                                    simulate + ingest)
 or: .venv/bin/python benchmarks/link_scale.py --persons 440000  (simulates and ingests first, in
                                                                    a temp dir: ~1,000,000 records)
    (--full-only: the full run and its accuracy only; --score-only: the one-record latency only)
Prints: records; seconds to standardise, train, predict and cluster (a full run with a new model);
peak memory; pairwise F1 against the answer key; an incremental run after 1% of records change;
and the latency of scoring one new record against the index (median and 95th centile over
--probes records, each a real record with its names re-keyed, after one warm-up).
Also prints CPU seconds per phase (this process, all threads; on a shared machine a steadier
measure than wall time) and the load average.
Targets (issue 13 part 5): about 1,000,000 records standardised, trained, predicted, clustered and
written in <= 60 s on 2 cores; one record scored against that index in <= 50 ms at the 95th
centile. (Issue 5's were 5 minutes within 16 GB, and 100 ms.)
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

# The progress message that starts each phase of `link` (run.py), for CPU seconds per phase.
PHASE_STARTS = (("standardising", "standardise"), ("comparing random pairs", "train"), ("estimating the prior", "train"),
                ("scoring candidate pairs", "predict"), ("clustering", "cluster+write"))


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def build(persons: int) -> Path:
    from justice.ingest.run import ingest
    from justice.settings import Settings
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to

    home = Path(tempfile.mkdtemp(prefix="justice-link-scale-"))
    t = time.perf_counter()
    simulate_to(SimulationParams(persons=persons, seed=1), home)
    ingest(Settings(home=home), None)
    print(f"simulated and ingested {persons:,} persons in {time.perf_counter() - t:.0f}s", flush=True)
    return home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--persons", type=int, default=440_000)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--full-only", action="store_true",
                        help="only the full run with a new model (and its accuracy when there is an answer key)")
    parser.add_argument("--score-only", action="store_true",
                        help="only the one-record latency, against --home's index as it is (no link run: "
                             "the home is opened read-only)")
    args = parser.parse_args()
    if args.score_only and args.home is None:
        parser.error("--score-only needs --home (a linked home)")

    from justice.link.evaluate import evaluate
    from justice.link.run import link
    from justice.link.standardise import load_sources
    from justice.link.store import open_warehouse
    from justice.settings import Settings

    home = args.home or build(args.persons)
    settings = Settings(home=home)

    # CPU seconds per phase (this process, all threads), split where link() reports each step.
    marks: list[tuple[str, float]] = []

    def progress(message: str) -> None:
        for start, phase in PHASE_STARTS:
            if message.startswith(start) and not any(p == phase for p, _ in marks):
                marks.append((phase, time.process_time()))

    if args.score_only:
        score_one_at_a_time(settings, args.probes)
        return

    load = os.getloadavg()[0]
    t, c = time.perf_counter(), time.process_time()
    result = link(settings, retrain=True, full=True, progress=progress)
    wall, cpu_total = time.perf_counter() - t, time.process_time() - c
    marks.append(("end", time.process_time()))
    cpu = {p: marks[i + 1][1] - m for i, (p, m) in enumerate(marks[:-1])}
    s = result.seconds
    print(f"full run with training: {result.records:,} records, {result.pairs_scored:,} pairs scored, "
          f"{result.persons:,} people (load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)")
    print(f"  wall: standardise {s['standardise']:.1f}s  train {s['train']:.1f}s  predict {s['predict']:.1f}s  "
          f"cluster+write {s['cluster']:.1f}s  total {wall:.1f}s  peak {peak_rss_gb():.2f} GB", flush=True)
    print("  CPU:  " + "  ".join(f"{p} {cpu.get(p, 0.0):.1f}s" for p in dict.fromkeys(p for _, p in PHASE_STARTS))
          + f"  total {cpu_total:.1f}s", flush=True)

    if (settings.truth_dir / "records.parquet").exists():
        con = open_warehouse(settings, read_only=True)
        try:
            q = evaluate(con, settings.truth_dir)
        finally:
            con.close()
        pw = q["pairwise"]
        print(f"  pairwise precision {pw['precision']:.4f} recall {pw['recall']:.4f} F1 {pw['f1']:.4f}; "
              f"B-cubed F1 {q['clusters']['bcubed_f1']:.4f}", flush=True)

    if args.full_only:
        return

    t = time.perf_counter()
    again = link(settings)
    print(f"incremental run, nothing changed: {again.changed_records:,} records re-scored, "
          f"{time.perf_counter() - t:.1f}s", flush=True)

    # A new load: 1% more records (copies of magistrates records under new ids, as a new system
    # would send them) matched against the index without retraining.
    sources = load_sources()
    sources["new_load"] = {"records": """
        select 'N' || defendant_id as record_id, forenames, surname, dob, sex, postcode, pnc_id as pnc,
               cro_number as cro, null as prison_number, null as crn, null as same_as
        from staging.magistrates__defendant_offences__latest
        qualify row_number() over (partition by defendant_id order by offence_seq) = 1
        order by hash(defendant_id) limit (select count(*) // 100 from wh.linkage.records)"""}
    t = time.perf_counter()
    inc = link(settings, sources=sources)
    print(f"incremental run, {inc.changed_records:,} new records: {inc.pairs_scored:,} pairs scored, "
          f"{time.perf_counter() - t:.1f}s (predict {inc.seconds['predict']:.1f}s)", flush=True)

    score_one_at_a_time(settings, args.probes)


def score_one_at_a_time(settings, n_probes: int) -> None:
    """One record at a time: real records with their names re-keyed, scored as new records."""
    from justice.link.explain import Scorer
    from justice.link.store import open_warehouse

    con = open_warehouse(settings, read_only=True)
    try:
        records = con.execute("select count(*) from linkage.records").fetchall()[0][0]
        rows = con.execute(f"""
            select r.forename, r.middle_names, r.surname, r.dob, r.sex, r.postcode, r.pnc, r.cro
            from linkage.records r using sample reservoir({n_probes + 1} rows) repeatable (42)""").fetchall()
    finally:
        con.close()
    rng = random.Random(42)
    probes = []
    for fore, mid, sur, dob, sex, pc, pnc, cro in rows:
        sur = (sur or "x")
        if len(sur) > 3 and rng.random() < 0.5:  # a keying error in half of them
            i = rng.randrange(1, len(sur) - 1)
            sur = sur[:i] + sur[i + 1] + sur[i] + sur[i + 2:]
        probes.append({"forenames": " ".join(x for x in (fore, mid) if x), "surname": sur.upper(),
                       "dob": dob.isoformat() if dob else None, "sex": sex, "postcode": pc, "pnc": pnc, "cro": cro})
    with Scorer(settings) as scorer:
        t = time.perf_counter()
        scorer.score(probes[0])  # the first reads the index into memory
        opened = time.perf_counter() - t
        times, joined = [], 0
        load, cpu = os.getloadavg()[0], time.process_time()
        for p in probes[1:]:
            t = time.perf_counter()
            r = scorer.score(p)
            times.append((time.perf_counter() - t) * 1000)
            joined += r.person_id is not None
        cpu = time.process_time() - cpu
    times.sort()
    print(f"one record against a {records:,}-record index: median {statistics.median(times):.1f} ms, "
          f"95th centile {times[int(0.95 * (len(times) - 1))]:.1f} ms over {len(times)} records "
          f"({joined} joined an existing person); {cpu * 1000 / len(times):.1f} ms CPU a record; "
          f"first record (reads the index) {opened:.1f}s, peak {peak_rss_gb():.2f} GB "
          f"(load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    main()
