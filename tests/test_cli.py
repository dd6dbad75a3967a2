"""The `justice` command: help everywhere, documented options, clear errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from justice.cli import app
from justice.settings import SETTINGS, Settings
from justice.sim.params import SimulationParams, documented_fields

runner = CliRunner()
COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--home" in result.output


def test_every_option_is_documented():
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        assert command.help, name
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, f"{name} --{param.name} has no help"


def test_every_setting_and_parameter_is_documented():
    assert all(s.help and s.env.startswith("JUSTICE_") for s in SETTINGS)
    import dataclasses

    docs = documented_fields()
    assert {f.name for f in dataclasses.fields(SimulationParams)} == set(docs)
    assert all(docs.values())


def test_home_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("JUSTICE_HOME", str(tmp_path))
    assert Settings.from_env().home == tmp_path
    assert Settings.from_env(home=tmp_path / "x").home == tmp_path / "x"


def test_simulate_writes_truth_and_reports_json(tmp_path):
    result = runner.invoke(app, ["simulate", "--persons", "500", "--seed", "4", "--home", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["tables"]["persons"] == 500
    assert (tmp_path / "truth" / "persons.parquet").exists()
    params = json.loads((tmp_path / "truth" / "params.json").read_text())
    assert params["intervention_effect"] == -0.05 and params["persons"] == 500


@pytest.mark.parametrize("args, message", [
    (["--start", "2020-13-01"], "not a date"),
    (["--mess", "extreme"], "choose one of low, default, high"),
    (["--persons", "5"], "at least 100"),
    (["--start", "2025-01-01", "--end", "2024-01-01"], "must be after"),
    (["--intervention-effect", "1.5"], "between -1 and 1"),
])
def test_bad_options_give_clear_errors(tmp_path, args, message):
    result = runner.invoke(app, ["simulate", "--home", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_world_file_overrides_and_rejects_unknown_keys(tmp_path):
    good = tmp_path / "w.yaml"
    good.write_text("custody:\n  csra_high_share: 0.2\n")
    result = runner.invoke(app, ["simulate", "--persons", "300", "--home", str(tmp_path), "--json", "--world-file", str(good)])
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("custody:\n  no_such_rate: 1\n")
    result = runner.invoke(app, ["simulate", "--persons", "300", "--home", str(tmp_path), "--world-file", str(bad)])
    assert result.exit_code == 2 and "no_such_rate" in result.output


def test_out_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("not a folder")
    result = runner.invoke(app, ["simulate", "--persons", "200", "--out", str(target)])
    assert result.exit_code == 2 and "is a file" in result.output
    assert target.read_text() == "not a folder"


@pytest.mark.parametrize("url, message", [
    ("not a url", "not a usable SQLAlchemy URL"),
    ("nosuchdialect://x/y", "not a usable SQLAlchemy URL"),
    ("postgresql+psycopg://nobody:secret@127.0.0.1:1/nope", "cannot connect"),
])
def test_bad_prison_db_fails_before_simulating(tmp_path, url, message):
    result = runner.invoke(app, ["simulate", "--persons", "200", "--home", str(tmp_path), "--prison-db", url])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "secret" not in result.output  # passwords are never echoed
    assert not (tmp_path / "truth").exists()


def test_a_failed_run_leaves_the_previous_world_intact(tmp_path, monkeypatch):
    ok = runner.invoke(app, ["simulate", "--persons", "300", "--home", str(tmp_path), "--json"])
    assert ok.exit_code == 0, ok.output
    truth = tmp_path / "truth"

    def truth_files() -> dict:
        # truth/ holds folders too (truth/identity), so every file below it is compared
        return {p.relative_to(truth): p.read_bytes() for p in truth.rglob("*") if p.is_file()}

    before = truth_files()
    assert any(len(p.parts) > 1 for p in before), "truth/ should hold a folder of files"
    legacy_files = sorted(p.relative_to(tmp_path) for p in (tmp_path / "legacy").rglob("*"))

    import justice.sim.legacy.emit as emit_mod

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(emit_mod, "emit_legacy", broken)
    with pytest.raises(RuntimeError):
        from justice.sim.params import SimulationParams
        from justice.sim.world import simulate_to

        simulate_to(SimulationParams(persons=300, seed=9), tmp_path)
    assert truth_files() == before
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "legacy").rglob("*")) == legacy_files


@pytest.mark.slow
def test_demo_runs_every_step_and_says_where(tmp_path):
    """The newcomer's first command: each step leaves its output, and the demo says where and how
    to start the service."""
    import duckdb

    from justice.transform.exports import exports

    result = runner.invoke(app, ["demo", "--persons", "300", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    for sub in ("legacy/", "truth/", "lake/", "warehouse", "reports/"):
        assert sub in out
    assert list((tmp_path / "lake").rglob("*.parquet"))
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        people, = con.execute("select count(*) from core.person").fetchone()
        linked, = con.execute("select count(distinct person_id) from linkage.person_links").fetchone()
        cohort, = con.execute("select count(*) from marts.proven_reoffending_cohort").fetchone()
    finally:
        con.close()
    assert people == linked > 200 and cohort > 0
    manifest = json.loads((tmp_path / "reports" / "data" / "manifest.json").read_text())
    assert set(manifest["files"]) == set(exports())
    assert (tmp_path / "reports" / "linkage_quality.md").stat().st_size > 0
    assert (tmp_path / "reports" / "dbt-docs" / "index.html").exists()
    # 300 people are too few for an evaluation: the demo says so rather than failing.
    assert "an evaluation needs at least 60 people" in out and "try a larger world" in out
    assert f"justice serve --home {tmp_path}" in out and "officer." in out and "admin" in out
    assert "/explore" in out


def test_a_new_demo_world_gets_a_new_serving_store(tmp_path):
    from justice.cli import _fresh_demo_store
    from justice.serving.store import open_store

    settings = Settings(home=tmp_path)
    open_store(settings).dispose()  # the previous demo's store, mirroring the previous world
    store = tmp_path / "serving" / "safety.sqlite"
    assert store.exists()
    _fresh_demo_store(settings)
    assert not store.exists() and not store.with_name("safety.sqlite-wal").exists()
    # A store named by URL is the operator's, never removed by the demo.
    open_store(settings).dispose()
    _fresh_demo_store(Settings(home=tmp_path, serving_db=f"sqlite:///{store}"))
    assert store.exists()


@pytest.mark.parametrize("args", [
    ["link", "review"],            # a sub-command: no warehouse yet
    ["users", "list"],             # another sub-command group
    ["build"],                     # a top-level step with nothing landed
])
def test_every_command_reports_a_step_error_once_as_one_line(tmp_path, args):
    """A JusticeError from any command, nested or not, is reported by the entry point: a line
    saying what is wrong and exit status 2, never a traceback."""
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "safety.sqlite").write_text("not a database")
    result = runner.invoke(app, [*args, "--home", str(tmp_path)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "error:" in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
