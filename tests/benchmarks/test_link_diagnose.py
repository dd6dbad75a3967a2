"""benchmarks/link_diagnose.py --keys: the missed pairs no scored pair reaches, and what a
candidate blocking key would reach and cost, checked against a plain count in pandas."""

from __future__ import annotations

import itertools
import re

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
