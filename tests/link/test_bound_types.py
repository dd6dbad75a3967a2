"""The candidate pairs' weight bound is computed in doubles (DuckDB reads a literal like 7.27 as
a DECIMAL; a sum of decimals of different scales is wide decimal arithmetic, 40% slower over the
25 million candidate pairs of a million records)."""

import math

import duckdb

from justice.link.explain import weight_bound_tightening, weight_upper_bound


def _model() -> dict:
    return {
        "probability_two_random_records_match": 1e-5,
        "comparisons": [
            {"output_column_name": "surname", "comparison_levels": [
                {"sql_condition": '"surname_l" IS NULL OR "surname_r" IS NULL', "is_null_level": True},
                {"sql_condition": '"surname_l" = "surname_r"', "m_probability": 0.9, "u_probability": 0.001,
                 "tf_adjustment_column": "surname", "tf_adjustment_weight": 1.0},
                {"sql_condition": "jaro_winkler_similarity(surname_l, surname_r) >= 0.9",
                 "m_probability": 0.05, "u_probability": 0.01},
                {"sql_condition": "ELSE", "m_probability": 0.05, "u_probability": 0.989}]},
            {"output_column_name": "dob", "comparison_levels": [
                {"sql_condition": '"dob_l" IS NULL OR "dob_r" IS NULL', "is_null_level": True},
                {"sql_condition": '"dob_l" = "dob_r"', "m_probability": 0.95, "u_probability": 0.0001},
                {"sql_condition": "ELSE", "m_probability": 0.05, "u_probability": 0.9999}]},
        ],
    }


def test_bound_is_double_and_never_below_the_levels_weights():
    expr, cols, tf_cols = weight_upper_bound(_model())
    assert cols == ["dob", "surname"] and tf_cols == ["surname"]
    con = duckdb.connect()
    rows = con.execute(f"""
        select typeof({expr}), {expr} from (values
            ('smith', 'smith', date '1980-01-01', date '1980-01-01', 0.01, 0.01),
            ('smith', 'smyth', date '1980-01-01', date '1981-01-01', 0.01, 0.001),
            (null, 'smyth', null, date '1981-01-01', null, 0.001))
        t(surname_l, surname_r, dob_l, dob_r, tf_surname_l, tf_surname_r)""").fetchall()
    assert {r[0] for r in rows} == {"DOUBLE"}
    prior = math.log2(1e-5 / (1 - 1e-5))
    exact_sur = math.log2(0.9 / 0.001) + (math.log2(0.001) - math.log2(0.01))
    assert abs(rows[0][1] - (prior + exact_sur + math.log2(0.95 / 0.0001))) < 1e-12
    # a costly level (Jaro-Winkler) is not evaluated: the bound takes the best of it and ELSE
    assert abs(rows[1][1] - (prior + math.log2(0.05 / 0.01) + math.log2(0.05 / 0.9999))) < 1e-12
    assert abs(rows[2][1] - prior) < 1e-12


def test_bound_without_term_frequencies_is_double_too():
    model = _model()
    for lv in model["comparisons"][0]["comparison_levels"]:
        lv.pop("tf_adjustment_column", None)
    expr, _, tf_cols = weight_upper_bound(model)
    assert tf_cols == []
    con = duckdb.connect()
    typ = con.execute(f"""select typeof({expr}) from (values ('smith', 'smith', date '1980-01-01', date '1980-01-01'))
                          t(surname_l, surname_r, dob_l, dob_r)""").fetchall()[0][0]
    assert typ == "DOUBLE"


def _bound_of(levels: list[dict], row: str, cols: str) -> float:
    model = {"probability_two_random_records_match": 0.5,  # a prior of 0 bits
             "comparisons": [{"output_column_name": "name", "comparison_levels": levels}]}
    expr, _, _ = weight_upper_bound(model)
    return duckdb.connect().execute(f"select {expr} from (values {row}) t({cols})").fetchall()[0][0]


def test_a_cheap_level_after_the_costly_ones_is_tested_when_it_outweighs_them():
    null = {"sql_condition": "name_l IS NULL OR name_r IS NULL", "is_null_level": True}
    costly = {"sql_condition": "jaro_winkler_similarity(name_l, name_r) >= 0.9", "m_probability": 0.8,
              "u_probability": 0.1}  # 3 bits
    mac = {"sql_condition": "key_l = key_r", "m_probability": 0.8, "u_probability": 0.0125}  # 6 bits
    other = {"sql_condition": "ELSE", "m_probability": 0.1, "u_probability": 0.8}  # -3 bits
    levels = [null, costly, mac, other]
    cols = "name_l, name_r, key_l, key_r"
    # The cheap level holds: the pair's level is it or the costly one before it, at most 6 bits.
    assert _bound_of(levels, "('macx', 'mcx', 'mcx', 'mcx')", cols) == 6.0
    # It does not: the most any other level left gives (the costly one's 3 bits), not 6.
    assert _bound_of(levels, "('ann', 'bob', 'ann', 'bob')", cols) == 3.0


def test_with_no_else_level_a_pair_meeting_no_level_is_bounded_by_zero():
    null = {"sql_condition": "name_l IS NULL OR name_r IS NULL", "is_null_level": True}
    costly = {"sql_condition": "jaro_winkler_similarity(name_l, name_r) >= 0.9", "m_probability": 0.1,
              "u_probability": 0.8}  # -3 bits, and no ELSE: a pair meeting no level weighs 0
    assert _bound_of([null, costly], "('ann', 'bob')", "name_l, name_r") == 0.0


def _level(sql: str, bits: float) -> dict:
    """A level weighing `bits` (the larger of its m and u 0.8)."""
    return {"sql_condition": sql, "m_probability": 0.8 * min(1.0, 2.0 ** bits),
            "u_probability": 0.8 * min(1.0, 2.0 ** -bits)}


# One comparison's levels for the tightening's tests: missing, exact (7 bits), two names close
# (costly, 5 bits), anything else (-3 bits).
_NULL = {"sql_condition": "name_l IS NULL OR name_r IS NULL", "is_null_level": True}
_EXACT = _level("name_l = name_r", 7)
_CLOSE = _level("jaro_winkler_similarity(name_l, name_r) >= 0.9", 5)
_ELSE = _level("ELSE", -3)


def _one(levels: list[dict]) -> dict:
    return {"probability_two_random_records_match": 0.5,
            "comparisons": [{"output_column_name": "name", "comparison_levels": levels}]}


def _tightened(levels: list[dict], rows: str, cols: str) -> list[tuple[float, float]]:
    """(bound, bound + tightening) for each of `rows`."""
    expr, _, _ = weight_upper_bound(_one(levels))
    tightening = weight_bound_tightening(_one(levels))
    assert tightening is not None
    return duckdb.connect().execute(f"select {expr}, {expr} + {tightening} from (values {rows}) t({cols})").fetchall()


def test_the_tightening_stops_at_a_level_reading_what_the_bound_does_not():
    swapped = _level("jaro_winkler_similarity(name_l, other_r) >= 0.9", 8)
    model = _one([_NULL, _EXACT, swapped, _CLOSE, _ELSE])
    expr, _, _ = weight_upper_bound(model)
    # The heaviest level of the tail reads other_r, which the first bound does not read (its
    # records' table would have to carry it): it is not tested, so neither is any lighter one.
    assert "other_r" not in expr
    assert weight_bound_tightening(model) is None


def test_the_tightening_is_never_above_the_bound_nor_below_the_pairs_level():
    swapped = _level("name_l <> name_r and jaro_winkler_similarity(name_l, surname_r) >= 0.9", 8)
    listed = _level("list_has_any(names_l, names_r)", 3)
    # The exact level reads surname too (a swap of two columns), so the swap level is readable.
    exact = _level("name_l = name_r and (surname_l = surname_r or surname_l is null)", 7)
    rows = _tightened([_NULL, exact, swapped, _CLOSE, listed, _ELSE],
                      "('ann', 'ann', 'x', 'x'), ('ann', 'bob', 'x', 'ann'), ('martha', 'marhta', 'x', 'y'), "
                      "('ann', 'bob', 'x', 'y')", "name_l, name_r, surname_l, surname_r")
    assert rows[0] == (7.0, 7.0)
    # A swap the tightening tests and finds: still its 8 bits.
    assert rows[1] == (8.0, 8.0)
    # No swap, but the names are close: the close level's 5 bits, tested too (it outweighs the
    # list level, whose column the first bound does not read).
    assert rows[2] == (8.0, 5.0)
    # Neither: the most of the levels left untested (the list level's 3 bits), not 8.
    assert rows[3] == (8.0, 3.0)


def test_no_tightening_without_a_costly_level_to_test():
    assert weight_bound_tightening(_model()) is not None  # the surname's Jaro-Winkler is testable
    model = _model()
    model["comparisons"] = model["comparisons"][1:]  # dates of birth only: nothing costly
    assert weight_bound_tightening(model) is None


def test_the_tightening_reads_no_column_the_bound_does_not_even_at_a_cheap_level():
    # The demo's model: after the costly level it tests, the heaviest level left is cheap (the
    # sounds agree) but reads a column the first bound never reached, so the records' table for
    # the bound does not carry it. The tightening stops there instead of reading it.
    sound = _level("sound_l = sound_r", 4)
    rows = _tightened([_NULL, _EXACT, _CLOSE, sound, _ELSE], "('ann', 'anne'), ('ann', 'bob')", "name_l, name_r")
    assert rows == [(5.0, 5.0), (5.0, 4.0)]
