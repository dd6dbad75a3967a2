"""The `justice` command: simulate, and (as they land) ingest, link, build, evaluate, serve.

Every command takes `--home` (or JUSTICE_HOME) and shows progress on anything slow.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from typer.core import TyperGroup

from justice.errors import JusticeError
from justice.settings import Settings

console = Console()
err = Console(stderr=True)


class _Commands(TyperGroup):
    """The command tree, with a step's errors reported in one place: a JusticeError (bad input,
    a missing step, a bad setting) is one red line on stderr naming what and where, exit status 2;
    anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except JusticeError as exc:
            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(code=2) from None


app = typer.Typer(cls=_Commands, no_args_is_help=True, add_completion=False,
                  help="The justice data platform: extract, link and analyse legacy justice data.")

# Options given before the command (`justice --engine spark demo`), for every step's settings.
_global: dict[str, object] = {}


@app.callback()
def _options(
    engine: Annotated[str | None, typer.Option(
        "--engine", help="Query engine: duckdb (default) or spark (default $JUSTICE_ENGINE).")] = None,
) -> None:
    """The justice data platform: extract, link and analyse legacy justice data."""
    _global["engine"] = engine


HomeOption = Annotated[Path | None, typer.Option("--home", help="State folder (default $JUSTICE_HOME or ./justice-home).")]


def _settings(home: Path | None) -> Settings:
    return Settings.from_env(home=home, engine=_global.get("engine"))


def _parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form", param_hint=option) from None


@app.command()
def simulate(
    persons: Annotated[int, typer.Option(help="People in the simulated world.")] = 5_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed and options give identical output.")] = 1,
    start: Annotated[str, typer.Option(help="First day of the window (YYYY-MM-DD).")] = "2014-01-01",
    end: Annotated[str, typer.Option(help="Last day of the window (YYYY-MM-DD).")] = "2025-12-31",
    intervention_effect: Annotated[float, typer.Option(
        help="True absolute change in participants' one-year reoffending probability.")] = -0.05,
    referral: Annotated[str, typer.Option(
        help="Who is referred to programmes: 'recorded' (only on what the extracts record) or "
             "'latent' (also on propensity no extract shows).")] = "latent",
    mess: Annotated[str, typer.Option(help="Mess level of the legacy extracts: low, default or high.")] = "default",
    prisons: Annotated[int | None, typer.Option(help="Number of establishments (default: by population).")] = None,
    world_file: Annotated[Path | None, typer.Option(help="YAML overriding behavioural rates of the world.")] = None,
    policy: Annotated[list[Path] | None, typer.Option(
        "--policy", help="A release-rule file (docs/policy-rules.md) added to the package's rules; "
                         "repeat for several.")] = None,
    without_rule: Annotated[list[str] | None, typer.Option(
        "--without-rule", help="Leave out a release or recall rule by name (e.g. sds40); repeat "
                               "for several.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: --home).")] = None,
    prison_db: Annotated[str | None, typer.Option(
        help="SQLAlchemy URL to write the prison (NOMIS) database to instead of a SQLite file.")] = None,
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of tables.")] = False,
) -> None:
    """Simulate the justice system: write legacy/ (every source system's messy extract) and truth/ (the answer key)."""
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to

    target = out or _settings(home).home
    params = SimulationParams(persons=persons, seed=seed, start=_parse_date(start, "--start"),
                              end=_parse_date(end, "--end"), intervention_effect=intervention_effect,
                              referral=referral, mess=mess, prisons=prisons, world_file=str(world_file) if world_file else None,
                              policy_files=tuple(str(p.resolve()) for p in policy or ()),
                              withdrawn_rules=tuple(without_rule or ()))
    t0 = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True, disable=as_json) as progress:
        task = progress.add_task("simulating", total=None)
        world = simulate_to(params, target, progress=lambda stage: progress.update(task, description=stage),
                            prison_db=prison_db)
    seconds = time.perf_counter() - t0
    summary = {"out": str(target), "seconds": round(seconds, 1),
               "tables": {k: len(next(iter(v.values()))) for k, v in sorted(world.tables.items())},
               "calibration": world.calibration}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    table = Table(title=f"Calibration ({persons:,} people)")
    for col in ("figure", "simulated", "target", "±", "ok"):
        table.add_column(col)
    for row in world.calibration or []:
        # A figure the world does not yet reproduce, or one too noisy at this size, says so
        # (figures without min_persons were measured reliable from 100,000 people).
        reliable_from = row.get("min_persons") or 100_000
        ok = ("[green]yes[/]" if row["within_tolerance"] else "[dim]known gap[/]" if row.get("known_gap")
              else f"[dim]no (noisy below {reliable_from:,})[/]" if reliable_from > persons
              else "[yellow]no[/]")
        table.add_row(row["figure"], str(row["simulated"]), str(row["target"]), str(row["tolerance"]), ok)
    console.print(table)
    if persons < 100_000:
        console.print("[dim]Prison and court figures rest on few people below about 100,000 and wander; "
                      "see docs/calibration.md.[/]")
    console.print(f"Wrote {target / 'truth'} and {target / 'legacy'} in {seconds:.1f}s")


@app.command()
def feed(
    home: HomeOption = None,
    prison_db: Annotated[str | None, typer.Option(
        "--prison-db", help="SQLAlchemy URL of the prison database (default $JUSTICE_PRISON_DB or "
                            "HOME/legacy/prison/nomis.sqlite).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; with the database and the ticks it fixes "
                                           "what is written.")] = 1,
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall-clock second (1: real time).")] = 1.0,
    rate: Annotated[float, typer.Option(help="Multiplies every event rate (makes a quiet prison busy).")] = 1.0,
    tick: Annotated[float, typer.Option(help="Wall seconds between writes.")] = 1.0,
    steps: Annotated[int | None, typer.Option(help="Run this many ticks at once, without sleeping, then stop.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many wall seconds.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Carry the simulated prison on past the world's end date, writing receptions, transfers,
    releases, cell moves, alerts, CSRA reviews, non-associations, incidents and adjudications into
    the prison (NOMIS) database as they happen in simulated time; Ctrl-C stops after the current
    tick. The answer key grows in HOME/truth/feed/."""
    import sqlalchemy as sa

    from justice.sim.feed import FeedOptions, run_feed

    settings = Settings.from_env(home=home, prison_db=prison_db)
    options = FeedOptions(seed=seed, speed=speed, rate=rate, tick=tick, steps=steps, duration=duration)
    shown = sa.engine.make_url(settings.prison_db_url).render_as_string(hide_password=True)
    if not as_json:
        err.print(f"feeding {shown} at {speed:g}x real time, rates x{rate:g}, a write every "
                  f"{tick:g} s" + (f", {steps} ticks" if steps is not None else " (Ctrl-C to stop)"),
                  soft_wrap=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True, disable=as_json) as bar:
        task = bar.add_task("feed", total=steps)
        written = 0

        def progress(result, live) -> None:
            nonlocal written
            written += sum(result.counts.values())
            bar.update(task, advance=1, description=(
                f"feed: prison clock {live.state.clock_text}, {written:,} events, "
                f"roll {len(live.state.bookings):,}"))

        summary = run_feed(settings.prison_db_url, settings.truth_dir, options, progress=progress)
    if as_json:
        print(json.dumps({"from": summary.started_at, "to": summary.ended_at, "ticks": summary.ticks,
                          "events": dict(sorted(summary.counts.items())), "roll": summary.roll,
                          "seconds": round(summary.seconds, 2)}, indent=2))
        return
    table = Table(title=f"Prison events {summary.started_at} to {summary.ended_at} ({summary.ticks:,} ticks)")
    table.add_column("event")
    table.add_column("written", justify="right")
    for kind, n in sorted(summary.counts.items()):
        table.add_row(kind, f"{n:,}")
    table.add_row("[bold]total[/]", f"[bold]{sum(summary.counts.values()):,}[/]")
    console.print(table)
    pace = (f"{summary.ticks / max(summary.seconds, 1e-9):,.0f} ticks a second" if steps is not None
            else f"{summary.seconds:,.0f} s")
    console.print(f"roll now {summary.roll:,}; {pace}; answer key in {settings.truth_dir / 'feed'}")


@app.command()
def demo(
    persons: Annotated[int, typer.Option(help="People in the demo world.")] = 5_000,
    home: HomeOption = None,
) -> None:
    """Run every pipeline step that exists on a small simulated world, and say where outputs are."""
    settings = _settings(home)
    simulate(persons=persons, seed=1, start="2014-01-01", end="2025-12-31", intervention_effect=-0.05,
             referral="latent", mess="default", prisons=None, world_file=None, out=settings.home, prison_db=None, home=home,
             as_json=False)
    ingest(system=None, home=home, as_json=False)
    _run_link(home)
    link_report(home=home)
    build(home=home)
    docs(home=home, serve=False, port=8080)
    _demo_evaluation(settings)
    console.print(f"\n[bold]Demo outputs[/] under {settings.home.resolve()}:")
    for label, path in (("legacy/", settings.legacy_dir), ("truth/", settings.truth_dir),
                        ("lake/", settings.lake_dir), ("warehouse", settings.warehouse_path),
                        ("reports/", settings.reports_dir)):
        if path.exists():
            console.print(f"  {label:10s} {path.resolve()}  {_describe(path)}")
    _fresh_demo_store(settings)
    _demo_accounts(settings)
    _demo_projection(settings)


def _fresh_demo_store(settings: Settings) -> None:
    """The demo simulated its world afresh, so the default serving store (a mirror of the previous
    world's prison database, cursors and all) starts afresh too; a store set by URL is left alone."""
    if settings.serving_db:
        return
    store = Path(settings.serving_db_url.removeprefix("sqlite:///"))
    if store.exists():
        for path in (store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")):
            path.unlink(missing_ok=True)
        console.print(f"[dim]Started a new serving store at {store}: the old one mirrored the "
                      "previous demo world.[/]")


@app.command()
def ingest(
    system: Annotated[str | None, typer.Option(help="Only this system (default: every system with a spec).")] = None,
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the load reports as JSON.")] = False,
) -> None:
    """Extract every legacy system under HOME/legacy and land it, lossless, in HOME/lake/raw."""
    from justice.ingest.run import ingest as run_ingest

    settings = _settings(home)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True, disable=as_json) as bar:
        tasks: dict[str, int] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"ingest {name}", total=total)
            bar.update(tasks[name], completed=done, total=total)

        reports = run_ingest(settings, system, progress=progress)
    if as_json:
        print(json.dumps([r.to_json() for r in reports], indent=2))
    else:
        table = Table(title="Ingest")
        for col in ("system", "files loaded", "skipped", "failed", "rows read", "landed", "set aside"):
            table.add_column(col, justify="left" if col == "system" else "right")
        for r in reports:
            j = r.to_json()
            table.add_row(r.system, f"{j['files_loaded']:,}", f"{j['files_skipped']:,}",
                          f"[red]{j['files_failed']}[/]" if j["files_failed"] else "0",
                          f"{r.rows_read:,}", f"{r.rows_landed:,}", f"{r.rows_rejected:,}")
        console.print(table)
        for r in reports:
            new = sorted({c for f in r.files for c in f.new_columns})
            if new:
                console.print(f"[yellow]{r.system}[/]: columns not in its spec were kept in raw: "
                              f"{', '.join(new)} (add them to the spec to stage them)", soft_wrap=True)
            for f in r.errors:
                err.print(f"[red]{r.system}[/] {f.file}: {f.error}", soft_wrap=True)
    if any(r.errors for r in reports):
        raise typer.Exit(code=1)


@app.command()
def status(home: HomeOption = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Per system: the last load, its rows and rows set aside, and how fresh it is."""
    from justice.warehouse import load_history

    history = load_history(_settings(home))
    latest: dict[str, dict] = {}
    for row in history:
        latest.setdefault(row["system"], row)
    now = dt.datetime.now(dt.UTC)
    rows = []
    for system, row in sorted(latest.items()):
        finished = dt.datetime.fromisoformat(row["finished_at"])
        rows.append({**row, "age_hours": round((now - finished).total_seconds() / 3600, 1),
                     "loads": sum(1 for h in history if h["system"] == system)})
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        console.print("No loads yet: run `justice ingest`.")
        return
    table = Table(title="Last load per system")
    for col in ("system", "load", "finished", "age (h)", "loads", "rows read", "landed", "set aside", "failed files"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["system"], r["load_id"], r["finished_at"], str(r["age_hours"]), str(r["loads"]),
                      f"{r['rows_read']:,}", f"{r['rows_landed']:,}", f"{r['rows_rejected']:,}", str(r["files_failed"]))
    console.print(table)


@app.command()
def quarantine(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List rows set aside when reading, with the rule they broke and why."""
    from justice.warehouse import rejects

    rows = rejects(_settings(home), system, limit)
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        console.print("Nothing set aside.")
        return
    table = Table(title="Set aside at read time")
    for col in ("system", "file", "where", "rule", "reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["_system"], r["_file"], r["_locator"], r["rule"], r["reason"])
    console.print(table)


link_app = typer.Typer(help="Link each person's records across systems: the master person index.",
                       invoke_without_command=True, no_args_is_help=False)
app.add_typer(link_app, name="link")


@link_app.callback(invoke_without_command=True)
def link_run(
    ctx: typer.Context,
    retrain: Annotated[bool, typer.Option(help="Train a new model version first (else the current one is used).")] = False,
    full: Annotated[bool, typer.Option(help="Score every candidate pair, not only new or changed records.")] = False,
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
) -> None:
    """Standardise every person-bearing record, score candidate pairs with the Splink model,
    cluster them into people and write linkage.person_links (incremental after the first run)."""
    if ctx.invoked_subcommand is None:
        _run_link(home, retrain=retrain, full=full, as_json=as_json)


def _run_link(home: Path | None, *, retrain: bool = False, full: bool = False, as_json: bool = False) -> None:
    from justice.link.run import link as run_link

    settings = _settings(home)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  transient=True, disable=as_json) as bar:
        task = bar.add_task("link", total=None)
        result = run_link(settings, retrain=retrain, full=full,
                          progress=lambda msg: bar.update(task, description=f"link: {msg}"))
    summary = {"run_id": result.run_id, "mode": result.mode, "model_version": result.model_version,
               "model": str(result.model_path), "records": result.records,
               "new_or_changed_records": result.changed_records, "pairs_scored": result.pairs_scored,
               "links": result.links, "persons": result.persons, "clerical_review_pairs": result.review_pairs,
               "seconds": {k: round(v, 2) for k, v in result.seconds.items()}}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    table = Table(title=f"Link ({result.mode}, model v{result.model_version})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in (("records", result.records), ("new or changed records", result.changed_records),
                         ("pairs scored", result.pairs_scored), ("links in clusters", result.links),
                         ("people (person_id)", result.persons),
                         ("pairs for clerical review", result.review_pairs)):
        table.add_row(label, f"{value:,}")
    table.add_row("seconds", f"{result.seconds.get('total', 0):.1f}")
    console.print(table)


def _explain_table(result) -> None:
    console.print(f"prior weight {result.prior_weight:+.2f}; link threshold {result.threshold:+.2f}; "
                  f"would join: [bold]{result.person_id or 'nobody (a new person)'}[/]")
    if not result.candidates:
        console.print("no candidates: the blocking rules pair this record with nothing in the index")
    for c in result.candidates:
        table = Table(title=f"{c.unique_id} -> {c.person_id}: match weight {c.match_weight:+.2f} "
                            f"(probability {c.match_probability:.4f})")
        for col in ("comparison", "level", "weight", "index record", "this record"):
            table.add_column(col, justify="right" if col == "weight" else "left")
        for st in c.steps:
            table.add_row(st.comparison, st.level, f"{st.weight:+.2f}", st.left, st.right)
        console.print(table)


@link_app.command("explain")
def link_explain(
    record_id: Annotated[str | None, typer.Argument(help="An indexed record, system:record_id (e.g. crown:10371735).")] = None,
    forenames: Annotated[str | None, typer.Option(help="Forenames of a new record.")] = None,
    surname: Annotated[str | None, typer.Option(help="Surname.")] = None,
    dob: Annotated[str | None, typer.Option(help="Date of birth, YYYY-MM-DD.")] = None,
    sex: Annotated[str | None, typer.Option(help="M or F.")] = None,
    postcode: Annotated[str | None, typer.Option(help="Postcode.")] = None,
    pnc: Annotated[str | None, typer.Option(help="PNC ID.")] = None,
    cro: Annotated[str | None, typer.Option(help="CRO number.")] = None,
    prison_number: Annotated[str | None, typer.Option(help="Prison number.")] = None,
    crn: Annotated[str | None, typer.Option(help="Probation CRN.")] = None,
    top: Annotated[int, typer.Option(help="Show this many best candidates.")] = 3,
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Score one record against the person index and show which comparisons gave how much weight."""
    from dataclasses import asdict

    from justice.link.explain import explain

    fields = {"forenames": forenames, "surname": surname, "dob": dob, "sex": sex, "postcode": postcode,
              "pnc": pnc, "cro": cro, "prison_number": prison_number, "crn": crn}
    given = {k: v for k, v in fields.items() if v is not None}
    if (record_id is None) == (not given):
        raise typer.BadParameter("give either a record id or the fields of a new record (--surname ...)")
    result = explain(_settings(home), record_id if record_id is not None else given, top=top)
    if as_json:
        print(json.dumps({"record": result.record, "prior_weight": result.prior_weight,
                          "threshold": result.threshold, "person_id": result.person_id,
                          "candidates": [asdict(c) for c in result.candidates]}, indent=2, default=str))
    else:
        _explain_table(result)


@link_app.command("review")
def link_review(
    limit: Annotated[int, typer.Option(help="At most this many pairs (closest to the threshold first).")] = 20,
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List pairs in the uncertainty band awaiting a clerical decision."""
    from justice.link.store import open_warehouse, require_links

    con = open_warehouse(_settings(home), read_only=True)
    try:
        require_links(con)
        cur = con.execute("select * from linkage.clerical_review limit ?", [limit])
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        total = con.execute("select count(*) from linkage.clerical_review").fetchall()[0][0]
    finally:
        con.close()
    if as_json:
        print(json.dumps({"pending": total, "pairs": rows}, indent=2, default=str))
        return
    table = Table(title=f"Clerical review: {total:,} pairs pending (showing {len(rows)})")
    for col in ("record", "other record", "weight", "names", "dob", "ids", "days in common"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["unique_id_l"], r["unique_id_r"], f"{r['match_weight']:+.1f}",
                      f"{r['forename_l']} {r['surname_l']} / {r['forename_r']} {r['surname_r']}",
                      f"{r['dob_l']} / {r['dob_r']}", f"{r['pnc_l'] or '-'} / {r['pnc_r'] or '-'}",
                      " ".join(str(d) for d in r.get("shared_event_days") or []) or "-")
    console.print(table)
    console.print("decide with: justice link decide RECORD OTHER --match|--not-match --reviewer NAME")


@link_app.command("decide")
def link_decide(
    record: Annotated[str, typer.Argument(help="One record, system:record_id.")],
    other: Annotated[str, typer.Argument(help="The other record, system:record_id.")],
    match: Annotated[bool, typer.Option("--match/--not-match", help="Are they the same person?")],
    reviewer: Annotated[str, typer.Option(help="Who decided (kept with the decision).")],
    note: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
    home: HomeOption = None,
) -> None:
    """Store a reviewer's decision on a pair; every later `justice link` honours it."""
    from justice.link.clerical import record_decision

    record_decision(_settings(home), record, other, "match" if match else "non_match", reviewer, note)
    console.print(f"recorded: {record} and {other} {'are' if match else 'are not'} the same person; "
                  "run `justice link` to apply it")


@link_app.command("calibrate")
def link_calibrate(
    labels: Annotated[Path | None, typer.Option(
        help="Clerks' decisions on the sample: the written clerical_sample.csv with its `decision` "
             "column filled in (match or non_match).")] = None,
    clerk: Annotated[str, typer.Option(help="Who labelled the file (kept with each label).")] = "clerical team",
    simulated_clerk: Annotated[bool, typer.Option(
        "--simulated-clerk", help="In a simulated world: label exactly the sampled pairs from the answer key, "
                                  "as a clerk would.")] = False,
    redraw: Annotated[bool, typer.Option(help="Draw a new sample even if one exists for this model.")] = False,
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Choose the link threshold from a clerical sample (at most 2,000 pairs, stratified over the
    match weight): draw it, take the clerks' labels, then save the threshold as a new model
    version and re-cluster. See docs/linkage.md section 8."""
    from justice.link.calibrate import run_calibration

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  transient=True, disable=as_json) as bar:
        task = bar.add_task("calibrate", total=None)
        result = run_calibration(_settings(home), labels=labels, clerk=clerk, simulated_clerk=simulated_clerk,
                                 redraw=redraw,
                                 progress=lambda msg: bar.update(task, description=f"calibrate: {msg}"))
    if as_json:
        print(json.dumps({"status": result.status, "sample_pairs": result.sample_pairs,
                          "labelled": result.labelled, "sample_file": str(result.sample_file),
                          "model_version": result.model_version, "threshold_choice": result.choice},
                         indent=2, default=str))
        return
    if result.status != "calibrated":
        console.print(f"clerical sample: {result.labelled:,} of {result.sample_pairs:,} pairs labelled; "
                      f"fill in the decision column of {result.sample_file} and run "
                      f"`justice link calibrate --labels {result.sample_file}`", soft_wrap=True)
        return
    c = result.choice
    console.print(f"link threshold {c['match_weight']:+.2f} (was {c['previous_match_weight']:+.2f}) from "
                  f"{c['sample']['pairs']:,} labelled pairs; estimated precision "
                  f"{c['estimated']['precision']:.4f}, recall {c['estimated']['recall']:.4f}; "
                  f"model v{result.model_version} ({c['model_file']}); index re-clustered", soft_wrap=True)


@link_app.command("report")
def link_report(home: HomeOption = None) -> None:
    """Write the linkage quality report (and charts) to HOME/reports/."""
    from justice.link.report import write_report

    path = write_report(_settings(home))
    console.print(f"linkage quality report: {path}")


@app.command()
def build(home: HomeOption = None) -> None:
    """Build the analysts' datasets with dbt: reference seeds, the canonical `core` model keyed on
    person_id, and the marts, with every dbt test (after `justice ingest` and `justice link`);
    then publish the disclosure-controlled data tool files (Parquet, CSV) and charts in
    HOME/reports/."""
    from justice.transform.build import build as run_build

    settings = _settings(home)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("dbt build: seeds, core, marts", total=None)

        def progress(step: str, done: int, total: int) -> None:
            kind, _, what = step.partition(" ")
            label = "dbt build" if kind == "dbt" else f"publish {kind}"
            bar.update(task, description=f"{label}: {what}", completed=done, total=total)

        project = run_build(settings, progress=progress)
    reports = settings.reports_dir
    console.print(f"built seeds, core and marts (dbt project {project}); data tool files in {reports / 'data'}, "
                  f"charts in {reports / 'charts'}; dbt docs: `justice docs`")


@app.command()
def docs(home: HomeOption = None,
         serve: Annotated[bool, typer.Option(help="Serve the docs on localhost after writing them.")] = False,
         port: Annotated[int, typer.Option(help="Port for --serve.")] = 8080) -> None:
    """Write the dbt docs (every model and column, with lineage) to HOME/reports/dbt-docs."""
    from justice.transform.build import docs as run_docs

    settings = _settings(home)
    out = run_docs(settings)
    console.print(f"dbt docs: {out / 'index.html'}")
    if serve:
        import functools
        import http.server

        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
        with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
            console.print(f"serving on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass


@app.command("evaluate")
def evaluate_cohort(
    cohort: Annotated[Path, typer.Option(
        "--cohort", help="A provider's cohort file (CSV or xlsx: names, date of birth, sex, "
                         "programme start date, optional PNC or prison number).")],
    programme: Annotated[str | None, typer.Option(
        help="Programme name for the report (default: the file's title row or name).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Report folder (default HOME/reports/evaluation/<file name, no extension>).")] = None,
    comparators: Annotated[int, typer.Option(
        help="Comparison people matched to each participant, at most.")] = 5,
    caliper: Annotated[float, typer.Option(
        help="Widest match, in standard deviations of the propensity score's logit.")] = 0.2,
    min_matched: Annotated[int, typer.Option(
        help="Fewest participants found in the records for the evaluation to go ahead.")] = 60,
    exclude_bad_rows: Annotated[bool, typer.Option(
        "--exclude-bad-rows", help="Leave out rows with problems (bad or future dates, "
                                   "duplicates), listed in the report, instead of refusing the "
                                   "file.")] = False,
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the report's JSON to standard output.")] = False,
) -> None:
    """Evaluate a programme's impact on proven reoffending from a provider's cohort file (Justice
    Data Lab style): find the participants, match a comparison group, and write report.html,
    report.json, charts and tables; nothing is written if the file has problems."""
    from justice.evaluate.report import p_value
    from justice.evaluate.run import EvaluationOptions, evaluate, write_report

    settings = _settings(home)
    target = out or settings.reports_dir / "evaluation" / cohort.stem
    options = EvaluationOptions(comparators=comparators, caliper=caliper,
                                min_matched=min_matched, exclude_bad_rows=exclude_bad_rows)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True, disable=as_json) as bar:
        bar.add_task(f"evaluating {cohort.name}", total=None)
        evaluation = evaluate(settings, cohort, programme=programme, options=options)
        folder = write_report(evaluation, target)
    summary = evaluation.summary
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    ident, mde = summary["identification"], summary["mde"]
    provider = summary["provider"] or "provider not named"
    console.print(f"[bold]{summary['programme']}[/] ({provider}): "
                  f"{ident['rows']:,} rows, {ident['matched'] + ident['repeat']:,} found "
                  f"({ident['match_rate']:.0%}), "
                  f"{ident['doubtful']:,} doubtful, {ident['unmatched']:,} not found; "
                  f"{summary['treated']:,} in the treatment group, {summary['matched']:,} matched "
                  f"to {summary['comparison']:,} comparison people", soft_wrap=True)
    console.print(f"Detectable: {mde['difference'] * 100:.1f} percentage points at "
                  f"{mde['power']:.0%} power (base rate {mde['base_rate']:.0%})")
    rate = summary["outcomes"]["reoffending_rate"]
    console.print(rate["headline"], soft_wrap=True)
    console.print(f"Conclusion: {rate['conclusion']} (difference {rate['difference'] * 100:+.1f} "
                  f"points, 95% CI {rate['ci'][0] * 100:+.1f} to {rate['ci'][1] * 100:+.1f}, "
                  f"p {p_value(rate['p_value'])})", soft_wrap=True)
    console.print(f"Report: {folder / 'report.html'}", soft_wrap=True)


def _demo_evaluation(settings: Settings) -> None:
    """Evaluate the provider file with the most rows, as a provider would send it: the
    simulator's files carry the mistakes real ones do, so rows with problems are left out and
    listed in the report rather than refusing the file."""
    from justice.evaluate.cohort import read_cohort

    folder = settings.legacy_dir / "interventions"
    sizes = {}
    for path in sorted(folder.glob("*.xlsx")) + sorted(folder.glob("*.csv")):
        try:
            sizes[path] = len(read_cohort(path, on_row_problem="exclude").rows)
        except JusticeError as exc:
            err.print(f"[yellow]demo: skipping {path.name}:[/] {exc}", soft_wrap=True)
    if not sizes:
        console.print(f"[yellow]demo: no readable provider file in {folder}; no evaluation[/]")
        return
    cohort = max(sizes, key=lambda path: (sizes[path], path.name))
    try:
        evaluate_cohort(cohort=cohort, programme=None,
                        out=settings.reports_dir / "evaluation" / cohort.stem, comparators=5,
                        caliper=0.2, min_matched=60, exclude_bad_rows=True, home=settings.home,
                        as_json=False)
    except JusticeError as exc:
        # A small demo world can leave a programme with too few people to evaluate; the rest of
        # the demo still stands.
        err.print(f"[yellow]demo: the evaluation did not run:[/] {exc}", soft_wrap=True)
        console.print("[yellow]demo: try a larger world (--persons) for an evaluation[/]")


@app.command("project")
def project_population(
    scenario: Annotated[list[Path] | None, typer.Option(
        "--scenario", help="A scenario YAML file (rules added or withdrawn, volumes, sentence "
                           "lengths, recalls, from a date); repeat for several.")] = None,
    origin: Annotated[str | None, typer.Option(
        "--from", help="Origin date YYYY-MM-DD (default: the day after the data's end).")] = None,
    months: Annotated[int, typer.Option(help="Months to project.")] = 24,
    repetitions: Annotated[int, typer.Option(
        help="Monte Carlo repetitions (the intervals are their 2.5th to 97.5th percentiles).")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same projection.")] = 1,
    out: Annotated[Path | None, typer.Option(
        help="Output folder (default HOME/reports/projections).")] = None,
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary and totals as JSON.")] = False,
) -> None:
    """Project the prison population month by month from the people in custody on the origin
    and recent flows, under the release rules and each scenario: tables, a fan chart, capacity
    by establishment and a plain-English summary."""
    from justice.project import project

    settings = _settings(home)
    start = _parse_date(origin, "--from") if origin else None
    target = out or settings.reports_dir / "projections"
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True, disable=as_json) as bar:
        bar.add_task(f"projecting {months} months, {repetitions} repetitions", total=None)
        result = project(settings, scenario or [], origin=start, months=months,
                         repetitions=repetitions, seed=seed, out=target)
    if as_json:
        print((target / "summary.json").read_text("utf-8"))
        return
    for line in result.summary:
        console.print(line, soft_wrap=True)
    console.print(f"Tables, fan chart and capacity by establishment: {target}", soft_wrap=True)


def _demo_projection(settings: Settings) -> None:
    """Project the demo world two years ahead under the example early-release scenario."""
    example = Path(__file__).parent / "project" / "scenarios" / "early_release.yaml"
    console.print("\n[bold]Projection[/] (example scenario: early_release.yaml)")
    try:
        project_population(scenario=[example], origin=None, months=24, repetitions=100, seed=1,
                           out=None, home=settings.home, as_json=False)
    except JusticeError as exc:
        err.print(f"[yellow]demo: the projection did not run:[/] {exc}", soft_wrap=True)


StoreOption = Annotated[str | None, typer.Option(
    "--store", help="SQLAlchemy URL of the serving store (default $JUSTICE_SERVING_DB or "
                    "HOME/serving/safety.sqlite).")]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless you mean it).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes; more than 1 needs a PostgreSQL store.")] = 1,
    sync: Annotated[bool, typer.Option("--sync/--no-sync", help=(
        "Sync the prison database in the background (--no-sync when `justice sync` runs as its "
        "own process)."))] = True,
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Run the prison safety service (sign in, safety pages, audit) with uvicorn."""
    import os

    import uvicorn

    from justice.web.app import app_from_env, assets_folder, create_app

    settings = Settings.from_env(home=home, serving_db=store)
    if workers < 1:
        raise JusticeError(f"--workers {workers}: give 1 or more")
    if workers > 1 and not settings.serving_db_url.startswith("postgresql"):
        raise JusticeError(f"--workers {workers} needs a PostgreSQL serving store (--store or "
                           "JUSTICE_SERVING_DB=postgresql+psycopg://...): SQLite serves one process")
    assets_folder(settings)
    application = create_app(settings, sync=sync) if workers == 1 else None
    console.print(f"Prison safety on http://{host}:{port}/ (Ctrl-C to stop); "
                  f"{'syncing every ' + format(settings.sync_interval, 'g') + 's' if sync else 'not syncing'}")
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_level="info")
        return
    if sync:
        console.print("[yellow]Each worker syncs; the sync takes a lock so one runs at a time. "
                      "Running `justice sync` as its own process and --no-sync here is simpler.[/]")
    # Workers import the app themselves: hand them the settings through the environment.
    os.environ.update({"JUSTICE_HOME": str(settings.home), "JUSTICE_SERVING_DB": settings.serving_db_url,
                       "JUSTICE_SERVE_SYNC": "1" if sync else "0"})
    uvicorn.run(f"{app_from_env.__module__}:{app_from_env.__name__}", factory=True, host=host,
                port=port, workers=workers, log_level="info")


users_app = typer.Typer(help="Accounts of the prison safety service.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _store(home: Path | None, store: str | None):
    from justice.serving.store import open_store

    settings = Settings.from_env(home=home, serving_db=store)
    return settings, open_store(settings)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name (no spaces), e.g. jsmith.")],
    role: Annotated[str, typer.Option(help="officer, safety-lead, analyst, provider or admin.")],
    prison: Annotated[list[str] | None, typer.Option(
        "--prison", help="Prison code the user works in (repeat for several); officers and safety leads.")] = None,
    provider: Annotated[str | None, typer.Option(
        "--provider", help="Organisation a provider account acts for: the provider name on its "
                           "programmes' files, e.g. \"Pathways Partnership\" (provider role only).")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input (else prompt twice).")] = False,
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Create an account (password at least 12 characters, hashed with argon2id)."""
    import sys

    from justice.web import auth

    settings, engine = _store(home, store)
    if role not in auth.ROLES:
        raise JusticeError(f"role {role!r}: choose one of {', '.join(auth.ROLES)}")
    known = auth.known_prisons(settings, engine) if prison else None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        raise JusticeError("no terminal to ask for the password: use --password-stdin")
    user = auth.add_user(engine, name, role, prison or [], password, known_prisons=known,
                         provider=provider)
    where = f" for {', '.join(user.prisons)}" if user.prisons else ""
    where += f" for {user.provider}" if user.provider else ""
    console.print(f"added {user.name} ({user.role}){where}")


@users_app.command("list")
def users_list(home: HomeOption = None, store: StoreOption = None,
               as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """List accounts: role, prisons, active or disabled, locked."""
    from justice.web import auth

    _, engine = _store(home, store)
    accounts = auth.list_users(engine)
    if as_json:
        print(json.dumps(accounts, indent=2, default=str))
        return
    table = Table(title=f"Users ({len(accounts)})")
    for col in ("name", "role", "prisons", "state", "created (UTC)"):
        table.add_column(col)
    for a in accounts:
        state = ("disabled" if not a["active"] else
                 f"locked until {a['locked_until']:%H:%M} UTC" if a["locked_until"] else "active")
        table.add_row(a["name"], a["role"], ", ".join(a["prisons"]) or "-", state,
                      f"{a['created_at']:%Y-%m-%d %H:%M}")
    console.print(table)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="User name.")],
                  home: HomeOption = None, store: StoreOption = None) -> None:
    """Disable an account and end its sessions."""
    from justice.web import auth

    auth.disable_user(_store(home, store)[1], name)
    console.print(f"disabled {name}; their sessions are ended")


@users_app.command("unlock")
def users_unlock(name: Annotated[str, typer.Argument(help="User name.")],
                 home: HomeOption = None, store: StoreOption = None) -> None:
    """Lift a lockout after too many failed sign-ins."""
    from justice.web import auth

    auth.unlock_user(_store(home, store)[1], name)
    console.print(f"unlocked {name}")


audit_app = typer.Typer(help="The safety service's audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(home: HomeOption = None, store: StoreOption = None) -> None:
    """Recompute the audit log's hash chain: exit 1 if a row was changed, removed or added
    outside the service."""
    from justice.web import audit

    _, engine = _store(home, store)
    with engine.connect() as conn:
        report = audit.verify_chain(conn)
    if report.intact:
        older = (f" ({report.unchained_rows:,} older rows, written before the store had the "
                 "chain, are not checked)" if report.unchained_rows else "")
        console.print(f"audit log intact: {report.rows:,} rows, hash chain and head agree{older}")
        return
    if report.first_broken_id is not None:
        err.print(f"[bold red]audit log changed:[/] the hash chain breaks at row "
                  f"{report.first_broken_id} (that row was edited, or the one before it removed)")
    else:
        err.print(f"[bold red]audit log changed:[/] {report.rows:,} rows chain correctly but the "
                  "head disagrees (rows were removed from the end, or added outside the service)")
    raise typer.Exit(code=1)


def _demo_accounts(settings: Settings) -> None:
    from justice.serving.store import open_store
    from justice.web import auth

    accounts = auth.ensure_demo_accounts(settings, open_store(settings))
    console.print("\n[bold]The web app[/] (prison safety, statistics explorer, providers' "
                  "evaluations): start it with")
    console.print(f"  justice serve --home {settings.home.resolve()}")
    console.print("then open http://127.0.0.1:8000/explore for the published statistics (no "
                  "sign-in), or http://127.0.0.1:8000/ and sign in as one of these (password "
                  f"[bold]{auth.DEMO_PASSWORD}[/], for this simulated world only):")
    for user in accounts:
        where = ", ".join(user.prisons) or user.provider or ""
        page = ("/portal (upload a cohort file, read its evaluation)"
                if user.role in ("provider", "analyst") else "")
        console.print(f"  {user.name:30s} {user.role:8s} {where} {page}".rstrip())
    console.print("For a live prison (receptions, moves, alerts, incidents as they happen), run in "
                  "another terminal:")
    console.print(f"  justice feed --home {settings.home.resolve()} --speed 60 --rate 20")


@app.command()
def sync(
    home: HomeOption = None,
    once: Annotated[bool, typer.Option("--once", help="Run one sync and exit (exit code 1 if it failed).")] = False,
    interval: Annotated[float | None, typer.Option(
        help="Seconds between syncs (default $JUSTICE_SYNC_INTERVAL or 60).")] = None,
    prison_db: Annotated[str | None, typer.Option(
        "--prison-db", help="SQLAlchemy URL of the prison database (default $JUSTICE_PRISON_DB or "
                            "HOME/legacy/prison/nomis.sqlite).")] = None,
    store: Annotated[str | None, typer.Option(
        "--store", help="SQLAlchemy URL of the serving store (default $JUSTICE_SERVING_DB or "
                        "HOME/serving/safety.sqlite).")] = None,
    look_back: Annotated[float, typer.Option(
        help="Seconds of the prison clock re-read behind each table's cursor, for rows committed "
             "late.")] = 120.0,
) -> None:
    """Copy the prison database into the safety service's serving store, incrementally, and
    resolve new prison records to the person index: once, or every --interval seconds until
    Ctrl-C. Run it as its own process when several web workers share a PostgreSQL store
    (`justice serve --no-sync`); two syncers on one PostgreSQL store never write at once."""
    import sqlalchemy as sa

    from justice.serving.store import open_store
    from justice.web.sync import open_prison, sync_once

    if look_back < 0:
        raise typer.BadParameter("must be 0 or more seconds", param_hint="--look-back")
    settings = Settings.from_env(home=home, prison_db=prison_db, serving_db=store,
                                 sync_interval=interval)
    engine = open_store(settings)
    source = open_prison(settings)
    shown = sa.engine.make_url(settings.prison_db_url).render_as_string(hide_password=True)
    err.print(f"syncing {shown} into {engine.url.render_as_string(hide_password=True)}"
              + ("" if once else f" every {settings.sync_interval:g} s (Ctrl-C to stop)"), soft_wrap=True)
    try:
        while True:
            began = time.monotonic()
            with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err,
                          transient=True) as bar:
                task = bar.add_task("sync", total=None)

                def progress(table: str, rows: int, bar=bar, task=task) -> None:
                    bar.update(task, description=f"sync: {table} {rows:,} rows")

                result = sync_once(settings, engine, source=source,
                                   look_back=dt.timedelta(seconds=look_back), progress=progress)
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            if result.skipped:
                console.print(f"{stamp} skipped: {result.note}", soft_wrap=True)
            elif result.error:
                err.print(f"{stamp} [bold red]sync failed:[/] {result.error} (nothing was changed)",
                          soft_wrap=True)
            else:
                console.print(f"{stamp} read {result.rows_read:,} rows, upserted {result.upserted:,}, "
                              f"deleted {result.deleted:,}, resolved {result.resolved:,} "
                              f"({result.scored:,} scored) in {result.seconds:.2f} s; data as at "
                              f"{result.as_at}" + (f"; {result.note}" if result.note else ""),
                              soft_wrap=True)
            if once:
                raise typer.Exit(code=1 if result.error else 0)
            time.sleep(max(0.0, settings.sync_interval - (time.monotonic() - began)))
    except KeyboardInterrupt:
        err.print("stopped")
    finally:
        source.dispose()
        engine.dispose()

def _describe(path: Path) -> str:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return f"({len(files):,} files, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB)"


def main() -> None:  # pragma: no cover - console entry point
    app()
