"""Benchmark: does `justice evaluate` find a programme's true effect, over many simulated worlds?

Run: .venv/bin/python benchmarks/evaluate_validity.py --seeds 30 --referral recorded
     .venv/bin/python benchmarks/evaluate_validity.py --seeds 10 --first-seed 201 --referral latent

Each seed is a whole world run through the whole platform: simulate (two programmes sharing the
referrals, one with a true effect on the one-year reoffending probability and one with none;
`--referral` says whether referral depends only on what the records show or also on the latent
risk), ingest, link, build, and then `justice evaluate` on each programme's participant lists,
put together into one cohort file as a provider would send them. The pipeline never sees truth;
this script reads it only to say what the right answer was.

The true effect on what the evaluation measures: a programme changes the probability of any
reoffence within the year by `effect`, but the evaluation counts *proven reoffences* (a
recordable offence that is not a breach, by the platform's reference offence codes in force on
the offence date, committed in the year and proven within a further 183 days, as the proven
reoffending mart counts them), so the true effect on that measure is `effect` times the share of
the participants who reoffend within the year that have such a reoffence, measured in the same
world from truth (about 0.58; counting every proven offence, summary and breach ones too, gave
0.72 and overstated the true effect by a quarter). The programme with no effect has a true
effect of exactly 0.

Prints one line per seed and programme, then per programme: coverage of the 95% confidence
interval, bias (mean estimate - truth), the spread of the estimates beside the mean standard
error, the share found significant, the doubly robust estimate's coverage, how often the placebo
check (offending in the year before the index date) was significant, and the median E-value.
Seeds 101-130 were used to diagnose and change the method (December 2026); 131-160 are the
check on worlds it was not tuned on; 201-210 the latent-referral worlds (docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

PROGRAMMES = (
    {"name": "Thinking Skills Programme", "provider": "Pathways Partnership", "share": 0.5},
    {"name": "Employment Support Scheme", "provider": "Second Chance Works", "share": 0.5},
)
FOLLOW_UP_DAYS, WAITING_DAYS = 365, 183
OFFENCE_CODES = Path(__file__).resolve().parents[1] / "src/justice/transform/seeds/offence_codes.csv"


def _world_file(folder: Path, effect: float) -> Path:
    import yaml

    programmes = [dict(PROGRAMMES[0], effect=effect), dict(PROGRAMMES[1], effect=0.0)]
    path = folder / "world.yaml"
    path.write_text(yaml.safe_dump({"interventions": {"programmes": programmes}}))
    return path


def _cohort_csv(settings, programme_slug: str, out: Path) -> int:
    """Every participant row of one programme's workbooks, as one CSV a provider might send."""
    from justice.evaluate.cohort import read_cohort, write_csv

    paths = sorted((settings.legacy_dir / "interventions").glob(f"*__{programme_slug}__*.xlsx"))
    # Rows the provider typed wrongly (an impossible date, a duplicate) are left out, as an
    # analyst would before sending the file on.
    return write_csv((p for path in paths for p in read_cohort(path, on_row_problem="exclude").rows),
                     out)


def _proven_share(truth_dir: Path, programme: str) -> float:
    """Of this programme's participations followed by an offence within the year, the share
    with a proven reoffence as the evaluation counts one: what a proven measure sees."""
    import duckdb

    con = duckdb.connect()
    iv, off = truth_dir / "interventions.parquet", truth_dir / "offences.parquet"
    share = con.execute(f"""
        with codes as (
            select offence_code, recordable, is_breach, effective_from::date as effective_from,
                   coalesce(try_cast(effective_to as date), date '9999-12-31') as effective_to
            from read_csv('{OFFENCE_CODES}', header = true, all_varchar = true)),
        reoffence as (
            select o.person_id, o.offence_date, o.proven_date
            from read_parquet('{off}') o
            join codes c on c.offence_code = o.offence_code
             and o.offence_date between c.effective_from and c.effective_to
            where o.proven and c.recordable = 'true' and c.is_breach = 'false'),
        p as (
            select person_id, follow_up_start_date as s
            from read_parquet('{iv}') where programme = ? and reoffends_within_year)
        select avg(case when exists (
            select 1 from reoffence o
            where o.person_id = p.person_id
              and o.offence_date > p.s and o.offence_date <= p.s + {FOLLOW_UP_DAYS}
              and o.proven_date <= p.s + {FOLLOW_UP_DAYS + WAITING_DAYS}) then 1.0 else 0.0 end)
        from p""", [programme]).fetchall()[0][0]
    con.close()
    return float(share)


def run_seed(seed: int, persons: int, effect: float, referral: str, workdir: str,
             reuse: bool = False) -> list[dict]:
    """One world through the platform, and both programmes evaluated; one dict per programme.
    With `reuse`, a world this script built before (both cohort files written) is evaluated
    again without running the pipeline (to measure a change to the evaluation alone)."""
    from justice.errors import JusticeError
    from justice.evaluate.run import EvaluationOptions, evaluate
    from justice.ingest.run import ingest
    from justice.link.run import link
    from justice.settings import Settings
    from justice.sim.legacy.interventions import slug
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to
    from justice.transform.build import build

    home = Path(workdir) / f"seed{seed}"
    settings = Settings(home=home)
    built = all((home / f"{slug(p['name'])}.csv").exists() for p in PROGRAMMES)
    began = time.perf_counter()
    if not (reuse and built):
        home.mkdir(parents=True, exist_ok=True)
        params = SimulationParams(persons=persons, seed=seed, referral=referral,
                                  world_file=str(_world_file(home, effect)))
        simulate_to(params, home)
        ingest(settings, None)
        link(settings)
        build(settings)
    pipeline_s = time.perf_counter() - began
    out = []
    for k, prog in enumerate(PROGRAMMES):
        true_effect = effect if k == 0 else 0.0
        share = _proven_share(settings.truth_dir, prog["name"])
        row = {"seed": seed, "programme": prog["name"], "effect": true_effect,
               "proven_share": share, "truth": true_effect * share, "pipeline_s": pipeline_s}
        cohort = home / f"{slug(prog['name'])}.csv"
        if not (reuse and built):
            row["rows"] = _cohort_csv(settings, slug(prog["name"]), cohort)
        t = time.perf_counter()
        try:
            ev = evaluate(settings, cohort, options=EvaluationOptions())
        except JusticeError as exc:
            row["refused"] = str(exc).splitlines()[0]
            out.append(row)
            continue
        s = ev.summary
        o = s["outcomes"]["reoffending_rate"]
        row.update(evaluate_s=time.perf_counter() - t, treated=s["treated"], matched=s["matched"],
                   estimate=o["difference"], ci=o["ci"], p_value=o["p_value"],
                   dr=o["doubly_robust"]["difference"], dr_ci=o["doubly_robust"]["ci"],
                   placebo_p=s["placebo"]["p_value"], e_value=s["sensitivity"]["e_value"],
                   mde=s["mde"]["difference"])
        out.append(row)
    return out


def _covers(ci, truth) -> bool:
    return ci[0] <= truth <= ci[1]


def summarise(rows: list[dict]) -> dict:
    """The figures per programme over the seeds that gave an estimate."""
    report = {}
    for prog in PROGRAMMES:
        mine = [r for r in rows if r["programme"] == prog["name"]]
        done = [r for r in mine if "estimate" in r]
        if not done:
            report[prog["name"]] = {"seeds": len(mine), "estimated": 0}
            continue
        est = [r["estimate"] for r in done]
        truth = [r["truth"] for r in done]
        se = [(r["ci"][1] - r["ci"][0]) / (2 * 1.959964) for r in done]
        report[prog["name"]] = {
            "seeds": len(mine), "estimated": len(done),
            "refused": [r.get("refused") for r in mine if "refused" in r],
            "true_effect_mean": statistics.fmean(truth),
            "estimate_mean": statistics.fmean(est),
            "bias": statistics.fmean(e - t for e, t in zip(est, truth)),
            "sd_of_estimates": statistics.stdev(est) if len(est) > 1 else None,
            "mean_se": statistics.fmean(se),
            "coverage": statistics.fmean(_covers(r["ci"], r["truth"]) for r in done),
            "significant": statistics.fmean(r["p_value"] < 0.05 for r in done),
            "dr_coverage": statistics.fmean(_covers(r["dr_ci"], r["truth"]) for r in done),
            "dr_bias": statistics.fmean(r["dr"] - r["truth"] for r in done),
            "placebo_significant": statistics.fmean(r["placebo_p"] < 0.05 for r in done),
            "median_e_value": statistics.median(r["e_value"] for r in done if r["e_value"]),
            "median_treated": statistics.median(r["treated"] for r in done),
            "median_mde": statistics.median(r["mde"] for r in done),
            "median_evaluate_s": statistics.median(r["evaluate_s"] for r in done),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=101)
    parser.add_argument("--persons", type=int, default=8_000)
    parser.add_argument("--effect", type=float, default=-0.10,
                        help="True change in the one-year reoffending probability of the first programme.")
    parser.add_argument("--referral", choices=("recorded", "latent"), default="recorded")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="Also write every row and the summary here.")
    parser.add_argument("--reuse", action="store_true",
                        help="Evaluate worlds already built in --workdir again, without the pipeline.")
    parser.add_argument("--only-built", action="store_true",
                        help="With --reuse: only the seeds whose worlds are complete in --workdir.")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="justice-evaluate-validity-"))
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if args.reuse and args.only_built:
        from justice.sim.legacy.interventions import slug

        seeds = [s for s in seeds if all((workdir / f"seed{s}" / f"{slug(p['name'])}.csv").exists()
                                         for p in PROGRAMMES)]
        print(f"re-evaluating the {len(seeds)} complete worlds: seeds {seeds}", flush=True)
    rows: list[dict] = []
    began = time.perf_counter()
    print(f"{args.seeds} worlds of {args.persons:,} people, referral {args.referral}, effect "
          f"{args.effect:+.2f} on the first programme; worlds in {workdir}", flush=True)
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run_seed, s, args.persons, args.effect, args.referral, str(workdir),
                               args.reuse) for s in seeds]
        for future in futures:
            for r in future.result():
                rows.append(r)
                if "estimate" in r:
                    print(f"seed {r['seed']:4d} {r['programme'][:26]:26s} truth {r['truth']:+.3f} "
                          f"estimate {r['estimate']:+.3f} [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}] "
                          f"p {r['p_value']:.3f} treated {r['treated']} placebo p {r['placebo_p']:.2f}"
                          f" ({r['pipeline_s']:.0f}s pipeline, {r['evaluate_s']:.1f}s evaluate)",
                          flush=True)
                else:
                    print(f"seed {r['seed']:4d} {r['programme'][:26]:26s} refused: {r['refused']}",
                          flush=True)
    summary = summarise(rows)
    print(json.dumps(summary, indent=2, default=str))
    print(f"total {time.perf_counter() - began:.0f}s", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows, "summary": summary}, indent=2, default=str))


if __name__ == "__main__":
    main()
