"""Speed changes to a full link that must leave its results as they were (issue 13 part 5,
third pass): the hard-negative query's plan, and the term-frequency tables computed once."""

from __future__ import annotations

import duckdb
from homes import copy_home

from justice.link import model as mdl
from justice.link import run as link_run
from justice.link.blocking import conjuncts
from justice.link.persons import constraints, hard_negative_sql, scalar_columns
from justice.link.store import open_warehouse


def _one_where(rules: list[dict]) -> str:
    """Each hard-negative rule as one WHERE over the scored pairs and their records, the third
    record's `not exists` beside the rule's own conditions: what hard_negative_sql means."""
    parts = []
    for r in rules:
        unless = "" if not r.get("unless_bridged") else f"""
            and not exists (select 1 from linkage.records m where m.unique_id <> l.unique_id
                            and m.unique_id <> r.unique_id and ({r["unless_bridged"]}))"""
        parts.append(f"""select p.unique_id_l, p.unique_id_r, '{r["name"]}' as rule
                         from linkage.pairs p join linkage.records l on l.unique_id = p.unique_id_l
                         join linkage.records r on r.unique_id = p.unique_id_r where ({r["sql"]}) {unless}""")
    return " union all ".join(parts)


def test_hard_negatives_are_the_rules_read_as_one_where(linked_home):
    rules = constraints(mdl.load_model_spec())["hard_negatives"]
    assert any(r.get("unless_bridged") for r in rules)
    con = open_warehouse(linked_home, read_only=True)
    try:
        ref = _one_where(rules)
        # As one query over all the pairs, and narrowed first by the rules' conjuncts over the
        # records' single-valued columns (what a link run uses).
        found = []
        for mine in (hard_negative_sql(rules), hard_negative_sql(rules, scalar_columns(con))):
            found.append(con.execute(f"""select (select count(*) from ({mine})),
                (select count(*) from (({mine}) except all ({ref}))),
                (select count(*) from (({ref}) except all ({mine})))""").fetchall()[0])
        assert "_hard_cand" in hard_negative_sql(rules, scalar_columns(con))
        # Some pairs of the world are spared by a third record, so the bridge is exercised.
        spared = con.execute(f"""select count(*) from (
            ({_one_where([{k: v for k, v in r.items() if k != "unless_bridged"} for r in rules])})
            except all ({ref}))""").fetchall()[0][0]
    finally:
        con.close()
    for n, extra, missing in found:
        assert n > 0 and extra == 0 and missing == 0
    assert spared > 0


def test_a_full_run_with_a_new_model_computes_the_term_frequencies_once(linked_home, tmp_path, monkeypatch):
    settings = copy_home(linked_home, tmp_path / "home")
    calls = []
    real = mdl.compute_tf_tables

    def spy(con, table, columns):
        calls.append(list(columns))
        return real(con, table, columns)

    monkeypatch.setattr(link_run.mdl, "compute_tf_tables", spy)
    link_run.link(settings, retrain=True, full=True)
    assert calls == [mdl.tf_columns(mdl.load_model_spec())]
    con = open_warehouse(settings, read_only=True)
    try:
        for col in calls[0]:
            # Each table is every value's share of the records now in the warehouse.
            assert con.execute(f"""
                select count(*) from (
                    (select {col}, count(*)::double / sum(count(*)) over () as tf_{col}
                     from linkage.records where {col} is not null group by {col})
                    except all (select * from linkage.tf_{col}))""").fetchall()[0][0] == 0
    finally:
        con.close()


def test_conjuncts_are_the_top_level_and_terms():
    sql = ("l.a = r.a and (x and y) and case when p and q then 1 else 0 end = 1\n"
           "  AND l.end = 'a and b' and f(l.b, lambda v: v and true)")
    assert conjuncts(sql) == ["l.a = r.a", "(x and y)", "case when p and q then 1 else 0 end = 1",
                              "l.end = 'a and b'", "f(l.b, lambda v: v and true)"]
    assert conjuncts("l.dob between r.dob and r.dob + 1") is None  # no split inside BETWEEN
    assert conjuncts("l.x = r.x") == ["l.x = r.x"]
    assert conjuncts("l.a = r.a and l.b = r.b or l.c = r.c") is None  # (a and b) or c
    assert conjuncts("l.a = r.a and (l.b = r.b or l.c = r.c)") == ["l.a = r.a", "(l.b = r.b or l.c = r.c)"]
    assert conjuncts("l.a = r.a -- don't") is None
    assert conjuncts("l.é = r.é and l.a = r.a") == ["l.é = r.é", "l.a = r.a"]


def test_narrowed_hard_negatives_equal_the_plain_ones_for_awkward_rules():
    """Rules the narrowing must not change: a top-level OR, references it cannot read (L.x,
    l."x"), a list column, a pair column (p.match_weight)."""
    con = duckdb.connect()
    con.execute("create schema linkage")
    con.execute("""create table linkage.records as select * from (values
        ('u1', 'smith', 1950, ['ann']), ('u2', 'jones', 1960, ['bob']), ('u3', 'smith', 1960, ['ann']))
        t(unique_id, surname, yob, names)""")
    con.execute("""create table linkage.pairs as select * from (values ('u1', 'u2', 3.0), ('u1', 'u3', 9.0),
                   ('u2', 'u3', 1.0)) t(unique_id_l, unique_id_r, match_weight)""")
    for sql in ("l.surname = r.surname and l.yob = r.yob or l.yob < r.yob",
                'l.surname <> r.surname and l."names"[1] <> r.surname',
                "l.surname <> r.surname and L.names[1] <> r.surname",
                "l.yob <> r.yob and p.match_weight > 2",
                "l.surname = r.surname and l.names = r.names"):
        rules = [{"name": "x", "sql": sql}]
        plain = sorted(con.execute(hard_negative_sql(rules)).fetchall())
        assert sorted(con.execute(hard_negative_sql(rules, scalar_columns(con))).fetchall()) == plain, sql
        assert plain, sql  # each rule holds for some pair, so a wrongly narrowed query would show


def test_two_identifier_rules_on_one_column_are_one_basis():
    from justice.link.persons import _identifier_edges_sql, identifier_bases

    rules = [{"column": "pnc_core", "valid": "pnc_valid"}, {"column": "cro_core", "valid": "cro_valid"},
             {"column": "pnc_core", "valid": "pnc_checked"}]
    assert identifier_bases(rules) == ["same pnc_core", "same cro_core"]
    sql = _identifier_edges_sql(rules, 5.0)
    # Both pnc_core rules give their edges the same basis and hash the column, not the rule.
    assert sql.count("3 as basis") == 2 and sql.count("4 as basis") == 1
    assert sql.count("hash('pnc_core', l.pnc_core)") == 2
