"""A throwaway PostgreSQL server for tests, started with the server's own binaries (no Docker).

Fixture ``postgres_url`` (session scope) runs ``initdb`` into a fresh temporary folder, starts the
server with ``pg_ctl`` on a free localhost port (trust authentication, unix socket in the same
folder, durability switched off for speed) and yields a SQLAlchemy URL such as
``postgresql+psycopg://postgres@127.0.0.1:54321/postgres``. The server is stopped and the folder
deleted at the end of the session.

Binaries are looked for in ``/usr/lib/postgresql/*/bin`` (newest version first), then on PATH.
PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
``postgres`` system user (via ``runuser``, or ``su`` where there is no ``runuser``).

When PostgreSQL (or, under root, the ``postgres`` user) is missing the tests that use the fixture
are skipped, unless the environment variable ``CI`` is set (GitHub Actions sets ``CI=true``):
then they fail, because CI must run every test.

Tests that use the fixture are marked ``@pytest.mark.postgres``. ``tests/conftest.py`` offers
the fixture to every test (``from postgres_server import postgres_url``).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_USER = "postgres"
START_ATTEMPTS = 3


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    """Skip locally; fail in CI, where every test must run."""
    if _in_ci():
        pytest.fail(f"PostgreSQL test server unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL test server unavailable: {reason}")


def _version_key(path: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", Path(path).parent.name)
    return tuple(int(p) for p in parts)


def find_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl: newest /usr/lib/postgresql/*/bin, else PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for cand in candidates:
        if all(os.access(Path(cand, tool), os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(cand)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Runner:
    """Runs the server's commands, as the postgres user when the tests run as root."""

    def __init__(self) -> None:
        self.as_root = os.geteuid() == 0
        self.uid = self.gid = None
        if self.as_root:
            try:
                entry = pwd.getpwnam(SERVER_USER)
            except KeyError:
                _unavailable(
                    f"tests run as root and there is no {SERVER_USER!r} user to run the server "
                    f"(create one with: useradd --system {SERVER_USER})"
                )
            self.uid, self.gid = entry.pw_uid, entry.pw_gid
            self.prefix = self._switch_user_prefix()

    def _switch_user_prefix(self) -> list[str] | None:
        if shutil.which("runuser"):
            return ["runuser", "-u", SERVER_USER, "--"]
        if shutil.which("su"):
            return None  # handled in run(): su needs one shell command string
        _unavailable("running as root, but neither runuser nor su is available")
        return None

    def own(self, path: Path) -> None:
        if self.as_root:
            os.chown(path, self.uid, self.gid)

    def run(self, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
        if self.as_root:
            if self.prefix is not None:
                cmd = [*self.prefix, *cmd]
            else:
                cmd = ["su", SERVER_USER, "-s", "/bin/sh", "-c", shlex.join(cmd)]
        return subprocess.run(cmd, check=False, capture_output=True, text=True, **kwargs)


def _check(result: subprocess.CompletedProcess, what: str, log: Path | None = None) -> None:
    if result.returncode != 0:
        detail = (result.stdout + result.stderr).strip()
        if log is not None and log.exists():
            detail += "\n--- server log ---\n" + log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{detail}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty PostgreSQL server that lives for the test session."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _unavailable("no initdb/pg_ctl in /usr/lib/postgresql/*/bin or on PATH")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is not installed")
    runner = _Runner()
    # Not pytest's tmp_path: its parent is private to root, and the server user must reach it.
    base = Path(tempfile.mkdtemp(prefix="justice-pg-"))
    runner.own(base)
    data, log = base / "data", base / "server.log"
    started = False
    try:
        _check(
            runner.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--locale=C", "--no-sync"], timeout=120),
            "initdb",
        )
        for attempt in range(START_ATTEMPTS):
            port = _free_port()
            options = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off")
            result = runner.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log),
                                 "-o", options, "-w", "-t", "60", "start"], timeout=90)
            if result.returncode == 0:
                started = True
                break
            # Another process may have taken the port between choosing and binding it.
            if attempt == START_ATTEMPTS - 1:
                _check(result, "pg_ctl start", log)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            runner.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       timeout=60)
        shutil.rmtree(base, ignore_errors=True)
