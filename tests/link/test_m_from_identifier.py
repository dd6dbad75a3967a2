"""m from the pairs that share a valid PNC ID (justice.link.model.m_from_identifier): each named
comparison's m is its levels' shares among those pairs, smoothed by half a pair; the other
comparisons keep their m; an unknown comparison is refused."""

from __future__ import annotations

import duckdb
import pytest

from justice.errors import ConfigError
from justice.link import model as mdl

RULE = "l.pnc_core = r.pnc_core and l.pnc_valid and r.pnc_valid"


def _model() -> dict:
    def comparison(name: str) -> dict:
        return {"output_column_name": name, "comparison_levels": [
            {"sql_condition": f"{name}_l is null or {name}_r is null", "is_null_level": True},
            {"sql_condition": f"{name}_l = {name}_r", "m_probability": 0.9},
            {"sql_condition": "ELSE", "m_probability": 0.1}]}
    return {"comparisons": [comparison("forename"), comparison("pnc_core")]}


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create table recs (unique_id varchar, forename varchar, pnc_core varchar, pnc_valid boolean)")
    con.executemany("insert into recs values (?, ?, ?, ?)", [
        # One person's four records sharing PNC X: 6 pairs, 3 agreeing on forename (the three
        # "john"s), 3 not (the alias "mark" against each).
        ("a", "john", "X", True), ("b", "john", "X", True), ("c", "john", "X", True), ("d", "mark", "X", True),
        # A PNC ID that is not valid on one side is no evidence: the pair (e, f) is not counted.
        ("e", "paul", "Y", True), ("f", "peter", "Y", False),
        # A missing forename falls in the null level and is not counted.
        ("g", None, "Z", True), ("h", "anne", "Z", True)])
    return con


def test_m_is_the_share_among_pairs_sharing_a_valid_pnc():
    model = _model()
    counted = mdl.m_from_identifier(_con(), "recs", model, RULE, ["forename"])
    assert counted == {"forename": 6}
    exact, other = model["comparisons"][0]["comparison_levels"][1:]
    assert exact["m_probability"] == pytest.approx(3.5 / 7)
    assert other["m_probability"] == pytest.approx(3.5 / 7)
    # The identifier itself keeps its m (its own pairs all agree on it).
    assert [lv.get("m_probability") for lv in model["comparisons"][1]["comparison_levels"]] == [None, 0.9, 0.1]


def test_an_unknown_comparison_is_refused():
    with pytest.raises(ConfigError, match="no comparison"):
        mdl.m_from_identifier(_con(), "recs", _model(), RULE, ["forename", "shoe_size"])


def test_the_model_spec_names_names_and_dates_not_identifiers_and_is_off():
    # Off: on the tuning worlds it traded precision for recall (docs/linkage.md, section 9).
    m = mdl.load_model_spec()["training"]["m_from_identifier"]
    assert m["enabled"] is False
    assert m["rule"] == RULE
    assert {"forename", "surname", "dob"} <= set(m["comparisons"])
    assert not {"pnc", "cro", "prison_number"} & set(m["comparisons"])
