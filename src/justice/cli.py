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
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from justice.errors import JusticeError
from justice.settings import Settings

app = typer.Typer(help="The justice data platform: extract, link and analyse legacy justice data.",
                  no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True)

HomeOption = Annotated[Path | None, typer.Option("--home", help="State folder (default $JUSTICE_HOME or ./justice-home).")]


def _settings(home: Path | None) -> Settings:
    return Settings.from_env(home=home)


def _fail(exc: JusticeError) -> None:
    err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
    raise typer.Exit(code=2)


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
    mess: Annotated[str, typer.Option(help="Mess level of the legacy extracts: low, default or high.")] = "default",
    prisons: Annotated[int | None, typer.Option(help="Number of establishments (default: by population).")] = None,
    world_file: Annotated[Path | None, typer.Option(help="YAML overriding behavioural rates of the world.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: --home).")] = None,
    prison_db: Annotated[str | None, typer.Option(
        help="SQLAlchemy URL to write the prison (NOMIS) database to instead of a SQLite file.")] = None,
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of tables.")] = False,
) -> None:
    """Simulate the justice system: write legacy/ (five systems' messy extracts) and truth/ (the answer key)."""
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to

    target = out or _settings(home).home
    try:
        params = SimulationParams(persons=persons, seed=seed, start=_parse_date(start, "--start"),
                                  end=_parse_date(end, "--end"), intervention_effect=intervention_effect,
                                  mess=mess, prisons=prisons, world_file=str(world_file) if world_file else None)
        t0 = time.perf_counter()
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=err, transient=True, disable=as_json) as progress:
            task = progress.add_task("simulating", total=None)
            world = simulate_to(params, target, progress=lambda stage: progress.update(task, description=stage),
                                prison_db=prison_db)
        seconds = time.perf_counter() - t0
    except JusticeError as exc:
        _fail(exc)
        return
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
        table.add_row(row["figure"], str(row["simulated"]), str(row["target"]), str(row["tolerance"]),
                      "[green]yes[/]" if row["within_tolerance"] else "[yellow]no[/]")
    console.print(table)
    console.print(f"Wrote {target / 'truth'} and {target / 'legacy'} in {seconds:.1f}s")


@app.command()
def demo(
    persons: Annotated[int, typer.Option(help="People in the demo world.")] = 5_000,
    home: HomeOption = None,
) -> None:
    """Run every pipeline step that exists on a small simulated world, and say where outputs are."""
    settings = _settings(home)
    simulate(persons=persons, seed=1, start="2014-01-01", end="2025-12-31", intervention_effect=-0.05,
             mess="default", prisons=None, world_file=None, out=settings.home, prison_db=None, home=home,
             as_json=False)
    console.print(f"\n[bold]Demo outputs[/] under {settings.home.resolve()}:")
    for label, path in (("legacy/", settings.legacy_dir), ("truth/", settings.truth_dir)):
        if path.exists():
            console.print(f"  {label:10s} {path.resolve()}  {_describe(path)}")


def _describe(path: Path) -> str:
    files = [p for p in path.rglob("*") if p.is_file()]
    return f"({len(files):,} files, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB)"


def main() -> None:  # pragma: no cover - console entry point
    app()
