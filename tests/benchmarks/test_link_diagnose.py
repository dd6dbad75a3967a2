"""benchmarks/link_diagnose.py --keys: the missed pairs no scored pair reaches, and what a
candidate blocking key would reach and cost; --bounds: what the records allow. Each checked
against a plain count."""

from __future__ import annotations

import itertools
import re
from collections import Counter

import duckdb
import pytest
from benchmark_scripts import load_script


@pytest.fixture(scope="module")
def link_diagnose():
    return load_script("link_diagnose")


def test_the_keys_table_counts_what_a_plain_count_does(link_diagnose, linked_home):
    home = linked_home.home
    text = link_diagnose.diagnose(home, keys=True)
    text = text[text.rindex("\n== ") + 1:]  # the keys' table, last
    con = duckdb.connect()
    con.execute(f"attach '{home / 'warehouse.duckdb'}' as wh (read_only)")
    recs = con.execute(f"""
        select r.unique_id, l.person_id as pred, t.person_id as truth, r.postcode
        from wh.linkage.person_links l join read_parquet('{home / 'truth' / 'records.parquet'}') t
        using (system, record_id) join wh.linkage.records r using (unique_id)""").df()
    scored = con.execute("select unique_id_l, unique_id_r from wh.linkage.pairs").fetchall()
    con.close()
    pred = dict(zip(recs["unique_id"], recs["pred"]))
    compared = {frozenset((pred[a], pred[b])) for a, b in scored if pred[a] != pred[b]}
    unreached = []
    for _, people in recs.groupby("truth"):
        rows = sorted(people.itertuples(index=False), key=lambda r: r.unique_id)
        for a, b in itertools.combinations(rows, 2):
            if a.pred != b.pred and frozenset((a.pred, b.pred)) not in compared:
                unreached.append((a, b))
    header = re.search(r"([\d,]+) missed pairs between ([\d,]+) pairs of person ids", text)
    assert header, text
    assert int(header[1].replace(",", "")) == len(unreached) > 0
    assert int(header[2].replace(",", "")) == len({frozenset((a.pred, b.pred)) for a, b in unreached})
    # "postcode alone": pairs of unreached records with one postcode; and every pair of records
    # sharing a postcode in the whole index.
    line = next(x for x in text.splitlines() if x.startswith("postcode alone"))
    reaches, splits, cost = (int(v.replace(",", "")) for v in line.split()[-3:])
    hit = [(a, b) for a, b in unreached if a.postcode is not None and a.postcode == b.postcode]
    assert reaches == len(hit) and splits == len({frozenset((a.pred, b.pred)) for a, b in hit})
    sizes = recs["postcode"].dropna().value_counts()
    assert cost == int((sizes * (sizes - 1) // 2).sum())
    assert len([x for x in text.splitlines()[2:] if x.strip()]) == len(link_diagnose.CANDIDATE_KEYS)


def _pairs_pr(labels: dict, truth: dict) -> tuple[float, float]:
    """Pairwise precision and recall by counting the records of each label, each true person and
    each (label, person), in plain Python."""
    def pairs(keys) -> int:
        return sum(k * (k - 1) // 2 for k in Counter(keys).values())

    both = pairs((labels[u], truth[u]) for u in truth)
    return both / pairs(labels[u] for u in truth), both / pairs(truth.values())


def _row(text: str, name: str) -> tuple[float, float]:
    line = next(x for x in text.splitlines() if x.startswith(name))
    return tuple(float(v) for v in line.split()[-2:])


def test_the_bounds_count_what_a_plain_count_does(link_diagnose, linked_home):
    home = linked_home.home
    text = link_diagnose.diagnose(home, bounds_from=[])
    text = text[text.index("== what the records allow"):]
    con = duckdb.connect()
    con.execute(f"attach '{home / 'warehouse.duckdb'}' as wh (read_only)")
    recs = con.execute(f"""
        select r.unique_id, l.person_id as pred, t.person_id as truth,
               r.pnc_core is not null or r.cro_core is not null or r.prison_number is not null as own_id
        from wh.linkage.person_links l join read_parquet('{home / 'truth' / 'records.parquet'}') t
        using (system, record_id) join wh.linkage.records r using (unique_id)""").df()
    lent = dict(con.execute(f"""
        select distinct system || ':' || record_id, other_person_id
        from read_parquet('{home / 'truth' / 'identity' / 'record_mess.parquet'}')
        where kind = 'borrowed_identity'""").fetchall())
    kept = con.execute("select unique_id_l, unique_id_r, match_weight from wh.linkage.pairs").fetchall()
    con.close()
    assert lent, "the test world has borrowed identities"
    truth = dict(zip(recs["unique_id"], recs["truth"]))
    pred = dict(zip(recs["unique_id"], recs["pred"]))
    own_id = dict(zip(recs["unique_id"], recs["own_id"]))
    assert _row(text, "the index") == pytest.approx(_pairs_pr(pred, truth), abs=5e-5)
    moved = {u: lent.get(u, t) for u, t in truth.items()}
    assert _row(text, "the answer key, every borrowed") == pytest.approx(_pairs_pr(moved, truth), abs=5e-5)
    kept_id = {u: (t if own_id[u] else lent.get(u, t)) for u, t in truth.items()}
    assert _row(text, "  ... but those carrying") == pytest.approx(_pairs_pr(kept_id, truth), abs=5e-5)

    # Kept pairs at or above +3 joined by a plain union-find.
    parent = {u: u for u in truth}

    def find(u):
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for a, b, w in kept:
        if w >= 3.0:
            parent[find(a)] = find(b)
    joined = {u: find(u) for u in truth}
    assert _row(text, "match weight >= +3.00") == pytest.approx(_pairs_pr(joined, truth), abs=5e-5)
    # The true kept pairs alone, joined the same way: their reach.
    parent = {u: u for u in truth}
    for a, b, _ in kept:
        if truth[a] == truth[b]:
            parent[find(a)] = find(b)
    reach = _pairs_pr({u: find(u) for u in truth}, truth)
    assert reach[0] == 1.0
    assert _row(text, "the true pairs among them") == pytest.approx(reach, abs=5e-5)
    every = _row(text, "true pairs a blocking rule makes")
    assert every[0] == 1.0 and reach[1] <= every[1] <= 1.0
    assert "pattern match rate" not in text  # no other home of its level was given

    # Every candidate pair scored: the band at or above keep_weight is the kept pairs; the true
    # pairs of all bands are the true pairs a blocking rule's SQL holds for (the rules' own
    # conditions, not the block keys the scoring used).
    block = text[text.index("every candidate pair scored"):].splitlines()
    bands = {line[:40].strip(): [float(v.replace(",", "")) for v in line[40:].split()]
             for line in block[2:] if line.strip()}
    at_keep = next(v for k, v in bands.items() if k.startswith("at or above keep_weight"))
    assert at_keep[:2] == [len(kept), sum(truth[a] == truth[b] for a, b, _ in kept)]
    below = bands.pop("below keep_weight, all")
    assert below[:2] == [sum(v[0] for k, v in bands.items() if v is not at_keep),
                         sum(v[1] for k, v in bands.items() if v is not at_keep)]
    assert int(block[0].split("(")[1].split(")")[0].replace(",", "")) == sum(v[0] for v in bands.values())
    from justice.link.blocking import rule_texts
    from justice.link.model import load_model

    any_rule = " or ".join(f"coalesce(({r}), false)" for r in rule_texts(load_model(home)[0]))
    con = duckdb.connect()
    con.execute(f"attach '{home / 'warehouse.duckdb'}' as wh (read_only)")
    true_candidates = con.execute(f"""
        with t as (select system || ':' || record_id as uid, person_id
                   from read_parquet('{home / 'truth' / 'records.parquet'}'))
        select count(*) from t a join t b on a.person_id = b.person_id and a.uid < b.uid
        join wh.linkage.records l on l.unique_id = a.uid join wh.linkage.records r on r.unique_id = b.uid
        where {any_rule}""").fetchall()[0][0]
    con.close()
    assert sum(v[1] for v in bands.values()) == true_candidates
    assert below[1] > 0 and below[1] / below[0] < at_keep[1] / at_keep[0]


def test_the_pattern_ranking_reads_the_other_homes_of_the_level(link_diagnose, linked_home, tmp_path):
    from homes import copy_home

    home = linked_home.home
    twin = copy_home(linked_home, tmp_path / "twin").home
    text = link_diagnose.diagnose(home, bounds_from=[home, twin])
    header = re.search(r"ranked by the pattern's true match rate in 1 other home\(s\) of level (\w+) \(([\d,]+) patterns\)",
                       text)
    assert header, text
    con = duckdb.connect()
    con.execute(f"attach '{home / 'warehouse.duckdb'}' as wh (read_only)")
    cols = sorted(c for (c,) in con.execute(
        "select column_name from information_schema.columns where table_catalog = 'wh' and table_schema = 'linkage' "
        "and table_name = 'pairs' and starts_with(column_name, 'mw_')").fetchall())
    patterns = con.execute(f"select count(distinct ({', '.join(f'round({c})' for c in cols)})) from wh.linkage.pairs").fetchall()
    con.close()
    assert int(header[2].replace(",", "")) == patterns[0][0]
    rows = [_row(text, f"pattern match rate >= {q:.2f}") for q in (0.9, 0.95, 0.97, 0.98, 0.99)]
    # Stricter rates keep fewer pairs: recall never rises.
    assert all(a[1] >= b[1] for a, b in itertools.pairwise(rows))
    # Below keep_weight: the true pairs the index holds as two people are the missed pairs the
    # stages' table finds blocked but scored below keep_weight (its own count, from the blocking
    # rules' SQL and the stored pairs); each stricter rate picks out no more pairs.
    header = re.search(r"below keep_weight and held as two people by the index: ([\d,]+) true pairs, ([\d,]+) false; "
                       r"ranked by the pattern's true match rate below keep_weight in 1 other home", text)
    assert header, text
    stage = next(x for x in text.splitlines() if x.startswith("blocked, scored below keep_weight"))
    assert int(header[1].replace(",", "")) == int(stage.split()[-3].replace(",", ""))
    picked = [tuple(int(v.replace(",", "")) for v in x.split()[-2:])
              for x in text.splitlines() if re.match(r">= 0\.[579] ", x)]
    assert len(picked) == 3
    assert all(a[0] >= b[0] and a[1] >= b[1] for a, b in itertools.pairwise(picked))
    assert picked[0][0] <= int(header[1].replace(",", "")) and picked[0][1] <= int(header[2].replace(",", ""))
    # A home of another mess level is not read.
    (tmp_path / "twin" / "truth" / "params.json").write_text('{"mess": "low"}')
    text = link_diagnose.diagnose(home, bounds_from=[home, twin])
    assert "pattern match rate" not in text and "held as two people" not in text


def test_the_sweep_at_the_models_threshold_is_the_index(link_diagnose, linked_home, monkeypatch):
    """Clustered again at the model's own link threshold, the kept pairs give the index's own
    precision and recall (every pass after scoring is run again); a higher threshold never gives
    more recall."""
    from justice.link.model import load_model

    home = linked_home.home
    threshold = float(load_model(home)[0]["justice"]["thresholds"]["match_weight"])
    monkeypatch.setattr(link_diagnose, "SWEEP", (threshold, threshold + 10.0))
    lines = link_diagnose.sweep(home)
    rows = [tuple(float(v) for v in line.split()) for line in lines[2:]]
    assert [r[0] for r in rows] == pytest.approx([threshold, threshold + 10.0], abs=0.005)
    con = duckdb.connect()
    con.execute(f"attach '{home / 'warehouse.duckdb'}' as wh (read_only)")
    recs = con.execute(f"""
        select r.unique_id, l.person_id as pred, t.person_id as truth
        from wh.linkage.person_links l join read_parquet('{home / 'truth' / 'records.parquet'}') t
        using (system, record_id) join wh.linkage.records r using (unique_id)""").df()
    con.close()
    index = _pairs_pr(dict(zip(recs["unique_id"], recs["pred"])), dict(zip(recs["unique_id"], recs["truth"])))
    assert rows[0][1:] == pytest.approx(index, abs=5e-5)
    assert rows[1][2] <= rows[0][2]


def test_a_home_it_cannot_diagnose_is_refused_with_the_home_named(link_diagnose, linked_home, tmp_path,
                                                                   monkeypatch, capsys):
    import sys

    from homes import copy_home

    def refused(home) -> str:
        monkeypatch.setattr(sys, "argv", ["link_diagnose.py", str(home)])
        with pytest.raises(SystemExit) as exit_:
            link_diagnose.main()
        assert exit_.value.code == 2
        return capsys.readouterr().err

    assert f"{tmp_path / 'empty'}: not a linked home" in refused(tmp_path / "empty")
    real = copy_home(linked_home, tmp_path / "real").home
    (real / "truth" / "records.parquet").unlink()
    assert f"{real}: no answer key" in refused(real)
