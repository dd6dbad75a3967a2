"""Disclosure control: primary and secondary suppression, derived columns, pseudonyms."""

from __future__ import annotations

import itertools

import pyarrow as pa
import pytest

from justice.disclosure import assert_no_identifiers, protect, pseudonymise
from justice.errors import ConfigError


def _grid(values: dict[tuple[str, str], int]) -> pa.Table:
    rows, cols = zip(*values)
    return pa.table({"row": list(rows), "col": list(cols), "n": list(values.values())})


def _recoverable(table: pa.Table) -> list[tuple]:
    """Cells an attacker can recover from row and column totals of the original table."""
    t = table.to_pylist()
    hidden = [(r["row"], r["col"]) for r in t if r["n"] is None]
    out = []
    for dim in ("row", "col"):
        lines: dict[str, list] = {}
        for r in t:
            lines.setdefault(r["col" if dim == "row" else "row"], []).append(r)
        for line in lines.values():
            missing = [r for r in line if r["n"] is None]
            if len(missing) == 1:
                out.append((missing[0]["row"], missing[0]["col"]))
    return [c for c in out if c in hidden]


def test_small_counts_are_suppressed_and_cannot_be_recovered_from_totals():
    values = {(r, c): v for (r, c), v in zip(itertools.product("ABC", "xyz"), [3, 40, 55, 20, 31, 12, 60, 0, 25])}
    out = protect(_grid(values), dims=["row", "col"], counts=["n"], threshold=10)
    got = {(r["row"], r["col"]): r["n"] for r in out.to_pylist()}
    assert got[("A", "x")] is None                      # primary: 3 < 10
    assert got[("C", "y")] == 0                         # zeros are published
    assert _recoverable(out) == []                      # secondary: no line with one hidden cell
    hidden = sum(v is None for v in got.values())
    assert 2 <= hidden <= 4                             # and not everything
    assert out.column("n_suppressed").to_pylist() == [v is None for v in got.values()]


def test_threshold_and_derived_columns():
    t = pa.table({"q": ["2020Q1", "2020Q2"], "offenders": [8, 200], "reoffenders": [3, 50],
                  "rate": [0.375, 0.25]})
    out = protect(t, dims=["q"], counts=["offenders", "reoffenders"], derived={"rate": ["reoffenders", "offenders"]},
                  threshold=10)
    rows = out.to_pylist()
    # One dimension: the single line is both quarters, so the 200 / 50 cells go too, or a
    # published national total would reveal the small quarter.
    assert rows[0]["offenders"] is None and rows[0]["reoffenders"] is None and rows[0]["rate"] is None
    assert rows[1]["offenders"] is None and rows[1]["rate"] is None
    nothing = protect(t, dims=["q"], counts=["offenders"], threshold=1)
    assert nothing.column("offenders").to_pylist() == [8, 200]


def test_a_part_cannot_be_had_from_its_total():
    """assault_incidents = on_prisoners + on_staff on every row: hiding on_staff = 3 alone would
    publish it as 22 - 19; the row's line makes a second cell go, and lines along the quarter then
    spread it so that no line of either kind has a single hidden cell."""
    t = pa.table({"q": ["2016", "2017", "2018"], "assaults": [22, 40, 35], "on_prisoners": [19, 25, 20],
                  "on_staff": [3, 15, 15]})
    sums = {"assaults": ["on_prisoners", "on_staff"]}
    out = protect(t, dims=["q"], counts=["assaults", "on_prisoners", "on_staff"], sums=sums, threshold=10).to_pylist()
    row = out[0]
    assert row["on_staff"] is None
    assert [row["assaults"], row["on_prisoners"]].count(None) >= 1
    for r in out:   # each row's line
        assert [r["assaults"], r["on_prisoners"], r["on_staff"]].count(None) != 1
    for col in ("assaults", "on_prisoners", "on_staff"):   # each column's line over the quarters
        assert [r[col] for r in out].count(None) != 1
    with pytest.raises(ConfigError, match="not among the counts"):
        protect(t, dims=["q"], counts=["assaults"], sums=sums)


def test_bad_tables_are_refused(monkeypatch):
    t = pa.table({"q": ["a", "a"], "n": [1, 2]})
    with pytest.raises(ConfigError, match="identify one row"):
        protect(t, dims=["q"], counts=["n"])
    with pytest.raises(ConfigError, match="no column"):
        protect(t, dims=["q"], counts=["count"])
    with pytest.raises(ConfigError, match="non-negative whole"):
        protect(pa.table({"q": ["a"], "n": [-1]}), dims=["q"], counts=["n"])
    monkeypatch.setenv("JUSTICE_DISCLOSURE_THRESHOLD", "ten")
    with pytest.raises(ConfigError, match="whole number"):
        protect(pa.table({"q": ["a"], "n": [1]}), dims=["q"], counts=["n"])


def test_pseudonyms_are_keyed_and_stable():
    a = pseudonymise(["MPI000000001", None, "MPI000000002"], "secret")
    assert a[1] is None and len(a[0]) == 16 and a[0] != a[2]
    assert pseudonymise(["MPI000000001"], "secret") == a[:1]
    assert pseudonymise(["MPI000000001"], "other") != a[:1]
    with pytest.raises(ConfigError):
        pseudonymise(["x"], "")


def test_identifying_columns_are_refused():
    with pytest.raises(ConfigError, match="surname"):
        assert_no_identifiers(pa.table({"surname": ["x"], "n": [1]}))
    assert_no_identifiers(pa.table({"pseudonym": ["ab12"], "n": [1]}))


@pytest.mark.parametrize("seed", range(20))
def test_random_three_way_tables_leave_no_line_with_one_hidden_cell(seed):
    import random

    rng = random.Random(seed)
    dims = {"a": "pqr", "b": "stuv", "c": "wx"}
    rows = [dict(zip(dims, cell)) | {"n": rng.choice([0, 1, 2, 5, 9, 10, 15, 40, 100, 300])}
            for cell in itertools.product(*dims.values())]
    out = protect(pa.Table.from_pylist(rows), dims=list(dims), counts=["n"], threshold=10).to_pylist()
    assert all(r["n"] is None for r, o in zip(out, rows) if 0 < o["n"] < 10)
    for d in dims:
        others = [x for x in dims if x != d]
        lines: dict[tuple, list] = {}
        for r, orig in zip(out, rows):
            lines.setdefault(tuple(r[x] for x in others), []).append((r["n"], orig["n"]))
        for line in lines.values():
            hidden = [o for n, o in line if n is None]
            assert len(hidden) != 1, (d, line)   # a line total would give a lone hidden cell away
