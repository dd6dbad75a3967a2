"""u from random record pairs (justice.link.model: random_pair_levels, refine_u, train).

With `u_without_matches`, training compares one seeded set of random pairs once: the levels'
plain shares among them are EM's starting u (Splink's own random sample is not drawn), and the
same pairs weighted by the trained model's probability of a non-match are the final u."""

from __future__ import annotations

import math

import duckdb
import pytest
import yaml

from justice.errors import ConfigError
from justice.link import model as mdl


def _comparisons() -> list[dict]:
    return [{"output_column_name": "name", "comparison_levels": [
        {"sql_condition": "name_l is null or name_r is null", "is_null_level": True},
        {"sql_condition": "name_l = name_r", "m_probability": 0.9},
        {"sql_condition": "ELSE", "m_probability": 0.1}]}]


def _con(n: int = 40) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Ten records named "a", one name missing, the rest all different.
    con.execute(f"""create table recs as select i as record_no, 'r' || i as unique_id,
                    case when i <= 10 then 'a' when i = 11 then null else 'n' || i end as name
                    from range(1, {n + 1}) t(i)""")
    return con


def test_random_pairs_are_counted_by_level_reproducibly():
    con = _con()
    rows = mdl.random_pair_levels(con, "recs", _comparisons(), pairs=5_000, seed=7)
    assert rows == mdl.random_pair_levels(con, "recs", _comparisons(), pairs=5_000, seed=7)
    assert rows != mdl.random_pair_levels(con, "recs", _comparisons(), pairs=5_000, seed=8)
    counts = {g: k for g, k in rows}
    # Levels: -1 the null level, 1 the exact, 2 the else; a pair of a record with itself is dropped.
    assert set(counts) == {-1, 1, 2}
    assert 4_700 < sum(counts.values()) <= 5_000
    # Two records both among the ten "a"s: about (10/40) * (9/39) of the pairs.
    assert counts[1] / sum(counts.values()) == pytest.approx(10 / 40 * 9 / 39, abs=0.02)


def test_plain_shares_then_weighted_by_the_non_match_probability():
    comps = _comparisons()
    # 100 pairs agreeing, 900 not, 50 with a name missing (not counted).
    counts = [(-1, 50), (1, 100), (2, 900)]
    mdl._set_u(comps, counts, [1.0] * len(counts))
    exact, other = comps[0]["comparison_levels"][1:]
    assert exact["u_probability"] == pytest.approx(100.5 / 1001)
    assert other["u_probability"] == pytest.approx(900.5 / 1001)

    # A model sure that agreeing pairs are matches leaves them nearly out of u.
    model = {"comparisons": comps, "probability_two_random_records_match": 0.5}
    mdl.refine_u(model, counts, rounds=1)
    bits = math.log2(0.9 / (100.5 / 1001))
    agree_nm = 100 / (1 + 2 ** bits)
    else_nm = 900 / (1 + 2 ** math.log2(0.1 / (900.5 / 1001)))
    total = agree_nm + 0.5 + else_nm + 0.5
    assert exact["u_probability"] == pytest.approx((agree_nm + 0.5) / total)
    assert other["u_probability"] == pytest.approx((else_nm + 0.5) / total)
    assert exact["u_probability"] < 100.5 / 1001


def test_training_draws_no_splink_u_sample_and_starts_em_from_the_random_pairs(linked_home, monkeypatch):
    from splink.internals.linker_components.training import LinkerTraining

    from justice.link.store import open_warehouse

    def refuse(*args, **kwargs):
        raise AssertionError("Splink's u sample is drawn")

    starting_u: list[dict] = []
    em = LinkerTraining.estimate_parameters_using_expectation_maximisation

    def spy(self, *args, **kwargs):
        if not starting_u:
            starting_u.append({(c.output_column_name, lv.label_for_charts): lv.u_probability
                               for c in self._linker._settings_obj.comparisons
                               for lv in c.comparison_levels if not lv.is_null_level})
        return em(self, *args, **kwargs)

    monkeypatch.setattr(LinkerTraining, "estimate_u_using_random_sampling", refuse)
    monkeypatch.setattr(LinkerTraining, "estimate_parameters_using_expectation_maximisation", spy)
    spec = mdl.load_model_spec()
    tr = spec["training"]
    assert tr["u_without_matches"] is True
    con = open_warehouse(linked_home, read_only=True)
    try:
        model = mdl.train(con, spec, "wh.linkage.records")
        comps = mdl.splink_settings(spec)["comparisons"]
        rows = mdl.random_pair_levels(con, "wh.linkage.records", comps, pairs=int(tr["u_refine_pairs"]),
                                      seed=int(tr["u_seed"]))
    finally:
        con.close()
    plain = mdl.splink_settings(spec)["comparisons"]
    mdl._set_u(plain, rows, [1.0] * len(rows))
    expected = {(c["output_column_name"], lv["label_for_charts"]): lv["u_probability"]
                for c in plain for lv in c["comparison_levels"] if not lv.get("is_null_level")}
    assert starting_u and starting_u[0] == pytest.approx(expected, rel=1e-12)
    # The final u: the same pairs weighted by the trained model (refine_u), not the plain shares.
    final = {(c["output_column_name"], lv["label_for_charts"]): lv["u_probability"]
             for c in model["comparisons"] for lv in c["comparison_levels"] if not lv.get("is_null_level")}
    assert final.keys() == expected.keys() and final != pytest.approx(expected, rel=1e-9)
    exact_pnc = ("pnc", "exact (valid)")
    assert final[exact_pnc] < expected[exact_pnc]


def test_em_samples_whole_blocks_of_a_rule_that_makes_too_many_pairs():
    con = duckdb.connect()
    # 2,000 blocks of 5 records sharing a name: 20,000 pairs; one record has no name.
    con.execute("""create table recs as select i as record_no, 'b' || (i % 2000) as name
                   from range(10000) t(i) union all select 10000, null""")
    rule = "l.name = r.name"
    assert mdl.em_sample_rule(con, "recs", rule, None) == rule
    assert mdl.em_sample_rule(con, "recs", rule, 20_000) == rule
    sampled = mdl.em_sample_rule(con, "recs", rule, 5_000)
    assert sampled.startswith(rule + " and ") and sampled != rule
    pairs = con.execute(f"""select l.name, count(*) from recs l join recs r on {sampled.replace('l.name = r.name', 'l.name = r.name and l.record_no < r.record_no')}
                            group by all""").fetchall()
    # Whole blocks (10 pairs each), about a quarter of them.
    assert {k for _, k in pairs} == {10}
    assert 3_500 < 10 * len(pairs) < 6_500
    # The same sample every time; a rule that is not equalities is used whole.
    assert mdl.em_sample_rule(con, "recs", rule, 5_000) == sampled
    assert mdl.em_sample_rule(con, "recs", "levenshtein(l.name, r.name) <= 1", 5) == "levenshtein(l.name, r.name) <= 1"


def test_em_trains_on_sampled_blocks(linked_home):
    from justice.link.store import open_warehouse

    spec = mdl.load_model_spec()
    sampled = {**spec, "training": {**spec["training"], "em_max_pairs": 500}}
    con = open_warehouse(linked_home, read_only=True)
    try:
        rules = [mdl.em_sample_rule(con, "wh.linkage.records", r, 500) for r in spec["training"]["em_blocking_rules"]]
        whole = mdl.train(con, spec, "wh.linkage.records")
        model = mdl.train(con, sampled, "wh.linkage.records")
    finally:
        con.close()
    # Every session of this world makes more than 500 pairs, so Splink's EM ran on sampled rules.
    assert all(r != orig for r, orig in zip(rules, spec["training"]["em_blocking_rules"]))
    m = {(c["output_column_name"], lv["label_for_charts"]): lv.get("m_probability")
         for c in model["comparisons"] for lv in c["comparison_levels"] if not lv.get("is_null_level")}
    assert all(v is None or 0 < v <= 1 for v in m.values())
    m_whole = {(c["output_column_name"], lv["label_for_charts"]): lv.get("m_probability")
               for c in whole["comparisons"] for lv in c["comparison_levels"] if not lv.get("is_null_level")}
    assert m != m_whole
    # EM still learns the names' m from a sample (an exact forename is most matches' level).
    assert m[("forename", "exact")] > 0.5


@pytest.mark.parametrize("bad", [0, -5, 2.5, "300k", True])
def test_a_bad_em_max_pairs_is_a_clear_error(tmp_path, bad):
    spec = mdl.load_model_spec()
    spec["training"]["em_max_pairs"] = bad
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="em_max_pairs"):
        mdl.load_model_spec(path)
    spec["training"].pop("em_max_pairs")
    path.write_text(yaml.safe_dump(spec))
    assert "em_max_pairs" not in mdl.load_model_spec(path)["training"]
