"""Run dbt on a working project and follow its structured events.

dbt's events are read as dbt documents them, not from console text meant for people: a node's
result event (LogModelResult, LogSeedResult, LogTestResult, ...) carries its index, the run's
total and its status. `run_dbt_process` runs dbt in a child process and reads its JSON log
(`--log-format json`, one event per line): that keeps dbt's global state and dbt-duckdb's open
database handle out of ours. `run_dbt_here` runs dbt in this process (dbtRunner) and reads the
same events from a callback: dbt-spark's session method must share this process's SparkSession.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from justice.errors import TransformError

# Node statuses that are not failures (a test's "warn" is reported by dbt but does not fail a run).
_FINE = frozenset({"success", "pass", "warn", "skipped", "no-op"})


@dataclass
class DbtEvents:
    """What a dbt run's JSON log said: finished nodes, failed nodes and error messages."""

    finished: int = 0
    total: int = 0
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


def read_events(lines: Iterable[str], progress: Callable[[str, int, int], None] | None = None) -> DbtEvents:
    """Fold dbt's JSON log lines into DbtEvents, calling `progress(node, done, total)` as each
    model, seed or test finishes. A line that is not a JSON event (a Python warning, say) is kept
    as text, so a dbt that dies before logging still explains itself."""
    events = DbtEvents()
    for line in lines:
        try:
            event = json.loads(line)
            name = event["info"]["name"]
        except (ValueError, KeyError, TypeError):
            if line.strip():
                events.other.append(line.rstrip())
            continue
        data = event.get("data") or {}
        if name.startswith("Log") and name.endswith("Result") and "index" in data:
            node = (data.get("node_info") or {}).get("unique_id", "?").split(".", 2)[-1]
            events.finished += 1
            events.total = max(events.total, int(data.get("total") or 0))
            status = str(data.get("status") or (data.get("node_info") or {}).get("node_status") or "")
            if status and status not in _FINE:
                events.failures.append(f"{node}: {status}")
            if progress is not None:
                progress(node, events.finished, events.total)
        elif event["info"].get("level") == "error" and event["info"].get("msg"):
            events.errors.append(str(event["info"]["msg"]).strip())
    return events


def run_dbt_process(project: Path, *args: str, progress: Callable[[str, int, int], None] | None = None) -> None:
    """Run `dbt <args>` on the working project; raise TransformError naming the failing nodes.

    `progress(node, done, total)` is called as each model, seed and test finishes."""
    dbt = Path(sys.executable).parent / "dbt"
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    cmd = [str(dbt), "--log-format", "json", "--no-use-colors", *args, "--project-dir", str(project),
           "--profiles-dir", str(project), "--no-version-check", "--log-path", str(project / "logs")]
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        events = read_events(proc.stdout, progress)
    if proc.returncode != 0:
        _raise_failed(project, args, events, f"exit status {proc.returncode}")


def run_dbt_here(project: Path, *args: str, progress: Callable[[str, int, int], None] | None = None) -> None:
    """Run `dbt <args>` in this process (dbtRunner); raise TransformError naming failing nodes."""
    from dbt.cli.main import dbtRunner
    from google.protobuf.json_format import MessageToDict

    lines: list[str] = []

    def collect(event) -> None:
        lines.append(json.dumps(MessageToDict(event, preserving_proto_field_name=True)))

    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    result = dbtRunner(callbacks=[collect]).invoke(
        [*args, "--project-dir", str(project), "--profiles-dir", str(project), "--no-version-check",
         "--log-path", str(project / "logs"), "--quiet"])
    events = read_events(lines, progress)
    if not result.success:
        reason = f"{type(result.exception).__name__}: {result.exception}" if result.exception else "failed"
        _raise_failed(project, args, events, reason)


def _raise_failed(project: Path, args: tuple[str, ...], events: DbtEvents, fallback: str) -> None:
    # run_results.json has each failed node with dbt's message; without it (dbt stopped before
    # running a node: a parse error, a bad profile) the log's failures and errors say why.
    failures = _failed_results(project) or events.failures + events.errors[-3:]
    detail = "; ".join(failures) or "\n".join(events.other[-20:])
    raise TransformError(f"dbt {' '.join(args)} failed: {detail or fallback} "
                         f"(log: {project / 'logs' / 'dbt.log'})")


def _failed_results(project: Path) -> list[str]:
    """The failed nodes in the run's run_results.json, each with dbt's message."""
    results = project / "target" / "run_results.json"
    if not results.exists():
        return []
    failed = []
    for r in json.loads(results.read_text()).get("results", []):
        if r.get("status") not in _FINE:
            name = r.get("unique_id", "?").split(".", 2)[-1]
            failed.append(f"{name}: {r.get('status')} {(r.get('message') or '').strip()}".strip())
    return failed
