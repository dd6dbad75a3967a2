"""The model's levels from Splink's comparison-level library score as the raw DuckDB SQL they
replaced: on DuckDB every pair falls in the same level of every comparison."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from justice.engine import linkage_sql_by_engine
from justice.errors import ConfigError
from justice.link import model as mdl
from justice.link.store import open_warehouse

OLD_LEVELS = Path(__file__).parent / "data" / "model_v2_raw_sql_levels.yaml"


def _level_cases(spec: dict) -> list[str]:
    """Per comparison, SQL giving the index of the level a pair (l, r) falls in."""
    settings = mdl.splink_settings(spec)
    out = []
    for comp in settings["comparisons"]:
        whens = []
        for i, level in enumerate(comp["comparison_levels"]):
            cond = level["sql_condition"]
            if cond == "ELSE":
                whens.append(f"else {i}")
            else:
                whens.append(f"when {cond} then {i}")
        out.append(f"case {' '.join(whens)} end")
    return out


def test_library_levels_put_every_pair_in_the_same_level_as_the_raw_sql(linked_home):
    spec = mdl.load_model_spec()
    old = {**spec, "comparisons": yaml.safe_load(OLD_LEVELS.read_text())["comparisons"]}
    assert [c["name"] for c in old["comparisons"]] == [c["name"] for c in spec["comparisons"]]
    assert [[lv["label"] for lv in c["levels"]] for c in old["comparisons"]] == \
           [[lv["label"] for lv in c["levels"]] for c in spec["comparisons"]]
    library = sum(1 for c in spec["comparisons"] for lv in c["levels"] if "sql" not in lv)
    assert library >= 25  # most levels come from the library now
    con = open_warehouse(linked_home, read_only=True)
    try:
        cols = [r[0] for r in con.execute("describe linkage.records").fetchall()]
        sides = ", ".join(f"l.{c} as {c}_l, r.{c} as {c}_r" for c in cols)
        # Pairs that agree on something (where the finer levels are reached) and random pairs.
        con.execute(f"""
            create temp table p as
            select {sides} from linkage.records l join linkage.records r
              on l.unique_id < r.unique_id
             and (l.dob = r.dob or l.surname = r.surname or l.forename = r.forename
                  or l.postcode_district = r.postcode_district or l.surname_sound = r.surname_sound)
            where hash(l.unique_id, r.unique_id) % 4 = 0
            union all
            select {sides} from linkage.records l join linkage.records r
              on hash(l.unique_id, r.unique_id) % 500 = 0 and l.unique_id < r.unique_id
        """)
        n = con.execute("select count(*) from p").fetchall()[0][0]
        assert n > 50_000
        for name, before, after in zip([c["name"] for c in spec["comparisons"]], _level_cases(old),
                                       _level_cases(spec)):
            differ, reached = con.execute(
                f"select count(*) filter (where ({before}) is distinct from ({after})), "
                f"list(distinct ({after})) from p").fetchall()[0]
            assert differ == 0, name
            # Every level from the library (a null level aside) is reached, so each was compared.
            levels = next(c for c in spec["comparisons"] if c["name"] == name)["levels"]
            library_levels = {i for i, lv in enumerate(levels) if "sql" not in lv and "missing" not in lv}
            assert library_levels <= set(reached), name
    finally:
        con.close()


def test_each_engine_has_the_model_in_its_own_sql():
    spec = mdl.load_model_spec()
    spark = mdl.dialect_sql(spec, linkage_sql_by_engine()["spark"])
    text = " ".join([c for comp in spark["comparisons"] for c in comp] + spark["blocking_rules"]).lower()
    # DuckDB's names, as sqlglot would leave them, are not Spark's.
    for duckdb_only in ("jaro_winkler_similarity", "jarowinkler", "list_", "&&", "strftime", '"'):
        assert duckdb_only not in text, duckdb_only
    assert "jaro_winkler(" in text and "arrays_overlap(" in text
    # A list's first element, null when it is empty (as on DuckDB), not an error.
    rule = spec["blocking_rules"].index(next(r for r in spec["blocking_rules"] if "forename_names[1]" in r))
    assert "try_element_at(l.forename_names, 1)" in spark["blocking_rules"][rule].lower()


def test_a_level_must_say_what_it_is(tmp_path):
    spec = mdl.load_model_spec()
    bad = dict(spec)
    bad["comparisons"] = [{"name": "sex", "levels": [{"label": "exact", "exact": "sex", "sql": "sex_l = sex_r"},
                                                     {"label": "else", "sql": "ELSE"}]}]
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match="comparison 'sex', level 'exact': give one of"):
        mdl.load_model_spec(path)


@pytest.mark.parametrize("rules", [[], None, ["l.dob = r.dob", ""], ["l.dob = r.dob", 3], "l.dob=r.dob"])
def test_blocking_rules_must_be_conditions(tmp_path, rules):
    bad = dict(mdl.load_model_spec())
    bad["blocking_rules"] = rules
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match="`blocking_rules` must be a list of SQL conditions"):
        mdl.load_model_spec(path)
