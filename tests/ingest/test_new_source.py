"""Adding a CSV source is a YAML file and no code: drop a spec in HOME/specs and its files in
HOME/legacy/<system>/, and `justice ingest` lands, stages and reconciles it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from justice import warehouse
from justice.cli import app
from justice.settings import Settings

SPEC = """
system: fines_office
description: A county fines office's monthly export of unpaid fines.
format: csv
encoding: utf-8
files: "fines_*.csv"
cursor: file
options: {delimiter: ";", quotechar: '"', header: true}
tables:
  - name: accounts
    record_key: [account]
    fields:
      - {source: Account, name: account, required: true}
      - {source: Surname, name: surname}
      - {source: Imposed, name: imposed_on, type: date, format: "%Y-%m-%d"}
      - {source: Amount, name: amount, type: decimal}
"""


def test_a_new_csv_source_needs_only_a_spec(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "fines_office.yaml").write_text(SPEC)
    folder = tmp_path / "legacy" / "fines_office"
    folder.mkdir(parents=True)
    (folder / "fines_2025-01.csv").write_text(
        "Account;Surname;Imposed;Amount\nA1;Smith;2025-01-03;120.50\nA2;Jones;2025-13-01;80\nA3;Brown;2025-01-09\n")
    result = CliRunner().invoke(app, ["ingest", "--system", "fines_office", "--home", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)[0]
    assert (report["rows_read"], report["rows_landed"], report["rows_rejected"]) == (3, 2, 1)  # A3 is ragged
    con = warehouse.connect(Settings(home=tmp_path), read_only=True)
    try:
        staged = con.execute("select account, imposed_on::varchar, amount::double from staging.fines_office__accounts").fetchall()
        quarantined = con.execute("select raw_account, rule from quarantine.fines_office__accounts").fetchall()
        rec = con.execute("select rows_read, rows_staged, rows_quarantined from audit.reconciliation").fetchall()
    finally:
        con.close()
    assert staged == [("A1", "2025-01-03", 120.5)]
    assert quarantined == [("A2", "invalid_date")]
    assert rec == [(3, 1, 2)]


def test_schema_drift_new_column_kept_and_reported_missing_required_column_refused(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "fines_office.yaml").write_text(SPEC)
    folder = tmp_path / "legacy" / "fines_office"
    folder.mkdir(parents=True)
    (folder / "fines_2025-01.csv").write_text("Account;Surname;Imposed;Amount;Notes\nA1;Smith;2025-01-03;1;paid late\n")
    (folder / "fines_2025-02.csv").write_text("Surname;Imposed;Amount\nJones;2025-02-03;2\n")
    result = CliRunner().invoke(app, ["ingest", "--system", "fines_office", "--home", str(tmp_path)])
    assert result.exit_code == 1  # one file failed
    out = " ".join(result.output.split())
    assert "x_notes" in out and "kept in raw" in out
    assert "fines_2025-02.csv" in out and "Account" in out and "update the spec or the source" in out
    con = warehouse.connect(Settings(home=tmp_path), read_only=True)
    try:
        assert con.execute("select account, x_notes from raw.fines_office__accounts").fetchall() == [("A1", "paid late")]
    finally:
        con.close()
