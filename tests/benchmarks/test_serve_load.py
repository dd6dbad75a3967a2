"""benchmarks/serve_load.py: its wrk script, the parsing of wrk's output and of the roll page."""

from __future__ import annotations

import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from benchmark_scripts import BENCHMARKS, load_script

SCRIPT = BENCHMARKS / "serve_load.py"


@pytest.fixture(scope="module")
def serve_load():
    return load_script("serve_load")


ROLL = """
<table class="govuk-table"><thead><tr><th>Cell</th><th>Name</th><th>Flags</th></tr></thead>
<tbody>
<tr class="govuk-table__row"><td>A-1-001</td><td><a href="/prisoners/A1234BC">Smith, John</a>
  A1234BC</td><td><strong class="govuk-tag govuk-tag--red">Open ACCT</strong></td></tr>
<tr class="govuk-table__row"><td>A-1-002</td><td>Jones, Ann A1234BD</td>
  <td><span data-label="Open ACCT" title="Open ACCT"></span>Self-harm history</td></tr>
</tbody></table>
"""


def test_roll_row_finds_the_prisoners_row_only(serve_load):
    assert "Smith" in serve_load.roll_row(ROLL, "A1234BC")
    assert "Jones" in serve_load.roll_row(ROLL, "A1234BD")
    assert serve_load.roll_row(ROLL, "A1234B") is None
    assert serve_load.roll_row(ROLL, "Z9999ZZ") is None


def test_a_flag_counts_only_as_shown_text(serve_load):
    assert serve_load.row_shows_flag(serve_load.roll_row(ROLL, "A1234BC"))
    # In attributes only (a filter's option, a tooltip), the flag is not shown on the row.
    assert not serve_load.row_shows_flag(serve_load.roll_row(ROLL, "A1234BD"))
    assert not serve_load.row_shows_flag("<td>Open ACCTS</td>")


def test_wrk_output_is_parsed_with_errors_counted(serve_load):
    out = ("Running 5s test @ http://127.0.0.1:1/x\n"
           'SERVE_LOAD {"requests": 200, "duration_us": 4000000, "bytes": 10, "ok": 190, '
           '"statuses": {"403": 6, "500": 4}, "p50_us": 1000, "p95_us": 90000, "p99_us": 120000, '
           '"max_us": 150000, "mean_us": 2000.5, "connect_errors": 0, "read_errors": 1, '
           '"write_errors": 0, "timeouts": 2}\n')
    figures = serve_load.parse_wrk_output(out)
    assert figures["rps"] == 50.0
    assert figures["statuses"] == {403: 6, 500: 4}
    assert figures["socket_errors"] == 3
    assert figures["errors"] == 13
    with pytest.raises(serve_load.BenchmarkError, match="no SERVE_LOAD line"):
        serve_load.parse_wrk_output("Running 5s test\n0 requests\n")


def test_without_wrk_it_says_how_to_install_it(serve_load, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(serve_load.shutil, "which", lambda _name: None)
    assert serve_load.main(["--home", str(tmp_path)]) == 2
    assert "apt-get install -y wrk" in capsys.readouterr().err


class _Pages(BaseHTTPRequestHandler):
    """200 for /ok/..., 403 for /gone/...; records the cookies it was sent."""

    cookies: ClassVar[list[str]] = []

    def do_GET(self):
        type(self).cookies.append(self.headers.get("Cookie", ""))
        status = 200 if self.path.startswith("/ok/") else 403
        body = b"page"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_the_wrk_script_rotates_paths_sends_the_cookie_and_counts_statuses(serve_load, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        paths = tmp_path / "paths.txt"
        paths.write_text("/ok/1\n/ok/2\n/gone/3\n")
        script = tmp_path / "s.lua"
        script.write_text(serve_load.WRK_SCRIPT)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        out = subprocess.run(["wrk", "-t", "2", "-c", "4", "-d", "1s", "-H", "Cookie: s=tok",
                              "-s", str(script), base + "/ok/1", "--", str(paths)],
                             check=True, capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    figures = serve_load.parse_wrk_output(out.stdout)
    assert figures["requests"] > 10
    # One path in three answers 403: counted as an error by status, the rest as ok.
    assert figures["ok"] + figures["statuses"].get(403, 0) == figures["requests"]
    assert figures["statuses"][403] >= figures["requests"] // 3 - 2
    assert set(_Pages.cookies) == {"s=tok"}
