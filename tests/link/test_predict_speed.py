"""The fast full predict (candidate pairs by block keys, pairs that cannot reach the keep
threshold dropped by an upper bound, the rest scored by Splink) gives Splink's own predict."""

from __future__ import annotations

import pytest

from justice.engine.duckdb import DuckDBEngine
from justice.link import model as mdl
from justice.link.blocking import all_rules_keyed, build_blocked_pairs
from justice.link.explain import weight_bound_tightening, weight_upper_bound
from justice.link.store import open_warehouse


def _splink(con, model):
    settings = mdl.splink_part(model, DuckDBEngine(settings=None).linkage_sql)
    linker, db_api = mdl.make_linker(DuckDBEngine(settings=None), con, "wh.linkage.records", settings)
    mdl.register_tf_tables(DuckDBEngine(settings=None), con, linker, db_api, mdl.tf_columns(model))
    return settings, linker, db_api


def test_blocked_pairs_are_splinks_and_the_bound_holds(linked_home):
    model, _ = mdl.load_model(linked_home.home)
    assert all_rules_keyed(model)
    keep = float(model["justice"]["thresholds"]["keep_weight"])
    con = open_warehouse(linked_home, read_only=True)
    try:
        settings, linker, _ = _splink(con, model)
        # Splink's own blocking and scoring, every candidate pair (no threshold).
        own = linker.inference.predict(warning_mode="never")
        con.execute(f"create table memory.main.own as select * from memory.main.{own.physical_name}")
        n_own = con.execute("select count(*) from memory.main.own").fetchall()[0][0]
        # The same candidate pairs by block keys, each under the same first rule.
        n = build_blocked_pairs(con, model, "wh.linkage.records", "memory.main.mine")
        assert n == n_own > 1000
        assert con.execute("""select count(*) from memory.main.own o join memory.main.mine m
                              on m.join_key_l = o.unique_id_l and m.join_key_r = o.unique_id_r
                              and m.match_key = o.match_key""").fetchall()[0][0] == n_own
        # The bound is never below Splink's weight, and it is tight enough to drop most pairs.
        bound = weight_upper_bound(settings)
        assert bound is not None
        kept = build_blocked_pairs(con, model, "wh.linkage.records", "memory.main.bounded", bound=bound, keep=keep)
        assert con.execute(f"""select count(*) from memory.main.own o where o.match_weight >= {keep}
                               and (o.unique_id_l, o.unique_id_r) not in
                                   (select join_key_l, join_key_r from memory.main.bounded)""").fetchall()[0][0] == 0
        above = con.execute(f"select count(*) from memory.main.own where match_weight >= {keep}").fetchall()[0][0]
        assert above <= kept < n_own
        # Pair by pair: the bound is at least the weight Splink gives, whatever the threshold.
        expr, cols, tf_cols = bound
        sides = ", ".join(f"l.{c} as {c}_l, r.{c} as {c}_r" for c in cols)
        tfs = "".join(f", tl_{c}.tf_{c} as tf_{c}_l, tr_{c}.tf_{c} as tf_{c}_r" for c in tf_cols)
        tf_joins = "".join(f" left join wh.linkage.tf_{c} tl_{c} on tl_{c}.{c} = l.{c}"
                           f" left join wh.linkage.tf_{c} tr_{c} on tr_{c}.{c} = r.{c}" for c in tf_cols)
        below, total = con.execute(f"""
            with c as (select o.match_weight, {sides}{tfs} from memory.main.own o
                       join wh.linkage.records l on l.unique_id = o.unique_id_l
                       join wh.linkage.records r on r.unique_id = o.unique_id_r{tf_joins})
            select count(*) filter (where {expr} < match_weight - 1e-9), count(*) from c""").fetchall()[0]
        assert below == 0 and total == n_own
        # The tightening tests the name similarities the bound assumed: still never below
        # Splink's weight, pair by pair, and it drops more pairs, none that reach `keep`.
        tightening = weight_bound_tightening(settings)
        assert tightening is not None and "jaro_winkler_similarity" in tightening
        below, lower, total = con.execute(f"""
            with c as (select o.match_weight, {sides}{tfs} from memory.main.own o
                       join wh.linkage.records l on l.unique_id = o.unique_id_l
                       join wh.linkage.records r on r.unique_id = o.unique_id_r{tf_joins})
            select count(*) filter (where {expr} + {tightening} < match_weight - 1e-9),
                   count(*) filter (where {tightening} < -1e-9), count(*) from c""").fetchall()[0]
        assert below == 0 and total == n_own and lower > 0
        tighter = build_blocked_pairs(con, model, "wh.linkage.records", "memory.main.tighter", bound=bound,
                                      keep=keep, tightening=tightening)
        assert above <= tighter < kept
        assert con.execute(f"""select count(*) from memory.main.own o where o.match_weight >= {keep}
                               and (o.unique_id_l, o.unique_id_r) not in
                                   (select join_key_l, join_key_r from memory.main.tighter)""").fetchall()[0][0] == 0
        assert con.execute("""select count(*) from memory.main.tighter t join memory.main.bounded b
                              using (join_key_l, join_key_r, match_key)""").fetchall()[0][0] == tighter
    finally:
        con.close()


def test_pipeline_pairs_equal_splinks_own_predict(linked_home):
    """linkage.pairs (the fast path) holds exactly the pairs Splink's own predict keeps, with the
    same weights."""
    model, _ = mdl.load_model(linked_home.home)
    keep = float(model["justice"]["thresholds"]["keep_weight"])
    con = open_warehouse(linked_home, read_only=True)
    try:
        _, linker, _ = _splink(con, model)
        own = linker.inference.predict(threshold_match_weight=keep, warning_mode="never")
        rows = con.execute(f"""
            select count(*), count(p.unique_id_l), max(abs(p.match_weight - o.match_weight))
            from memory.main.{own.physical_name} o left join linkage.pairs p using (unique_id_l, unique_id_r)""").fetchall()[0]
        total = con.execute("select count(*) from linkage.pairs").fetchall()[0][0]
    finally:
        con.close()
    assert rows[0] == rows[1] == total > 100
    assert rows[2] == pytest.approx(0, abs=1e-9)
