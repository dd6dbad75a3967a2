"""The court register extract: every court of the world, with its exact HMCTS region."""

from __future__ import annotations

import csv
import datetime as dt

import numpy as np
import pyarrow.parquet as pq

from justice.sim import mess
from justice.sim.legacy import court_register


def _read(path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:  # strict UTF-8
        reader = csv.reader(fh)
        header = next(reader)
        assert tuple(header) == court_register.HEADER
        return [dict(zip(header, row, strict=True)) for row in reader]


def test_register_equals_the_truth_courts(small_truth):
    out, world = small_truth
    files = sorted((out / "legacy" / "court_register").iterdir())
    assert [f.name for f in files] == [f"court_register_{world.params.end:%Y%m%d}.csv"]
    rows = _read(files[0])
    truth = pq.read_table(out / "truth" / "courts.parquet").to_pylist()
    got = sorted((r["Court Code"], r["Court Name"].rstrip(), r["Court Type"], r["HMCTS Region"]) for r in rows)
    want = sorted((t["court_code"], t["court_name"], t["court_type"], t["region"]) for t in truth)
    assert got == want
    codes = [r["Court Code"] for r in rows]
    assert codes == sorted(codes) and len(set(codes)) == len(codes)
    for r in rows:
        opened = dt.datetime.strptime(r["Open Date"], "%d/%m/%Y").date()
        assert opened < world.params.start
        assert r["Close Date"] == ""


def test_register_codes_are_the_case_systems_codes(small_truth):
    out, _ = small_truth
    codes = {r["Court Code"] for r in _read(next((out / "legacy" / "court_register").iterdir()))}
    libra = set()
    for f in (out / "legacy" / "magistrates").rglob("libra_*.csv"):
        with open(f, encoding="cp1252", newline="") as fh:
            libra |= {row["Court Code"] for row in csv.DictReader(fh)}
    assert libra and libra <= codes


def test_only_names_are_padded_and_regions_stay_exact(small_world, tmp_path):
    rates = {**mess.load_mess_levels()["default"], "whitespace": 1.0}
    key = court_register.emit(small_world.tables, np.random.default_rng(1), rates, tmp_path, small_world.params)
    assert key.num_rows == 0  # no people, so nothing for the answer key
    rows = _read(next(tmp_path.iterdir()))
    courts = small_world.tables["courts"]
    truth = dict(zip(courts["court_code"], zip(courts["court_name"], courts["region"], strict=True), strict=True))
    for r in rows:
        name, region = truth[r["Court Code"]]
        assert r["Court Name"] != name and r["Court Name"].rstrip() == name
        assert r["HMCTS Region"] == region
