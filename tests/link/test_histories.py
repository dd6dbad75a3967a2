"""The second pass (justice.link.histories): a record joins its person through evidence spread over
the person's records, and the clustering constraints still hold after it."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from justice.link.clerical import ensure_decisions_table
from justice.link.persons import cluster_labels, write_person_links

PRIOR = -10.0
THRESHOLD = 5.0
X, Y = "2014/0123456", "2019/7654321"  # two people's PNC IDs (core), many characters apart


def _world(pairs: list[tuple[str, str, float, float, float]], pnc: dict[str, str] | None = None,
           sex: dict[str, str] | None = None) -> duckdb.DuckDBPyConnection:
    """An index of a few records and their scored pairs: (record, record, forename weight, date of
    birth weight, postcode weight); each pair's match weight is the prior plus the three."""
    pnc, sex = pnc or {}, sex or {}
    ids = sorted({u for p in pairs for u in p[:2]})
    con = duckdb.connect()
    con.execute("create schema linkage")
    con.execute("""create table linkage.records (unique_id varchar, system varchar, record_id varchar,
                   same_as varchar, sex varchar, pnc_core varchar, pnc_valid boolean,
                   cro_core varchar, cro_valid boolean)""")
    con.executemany("insert into linkage.records values (?, 'court', ?, null, ?, ?, ?, null, null)",
                    [[u, u.split(":")[1], sex.get(u, "M"), pnc.get(u), u in pnc] for u in ids])
    con.execute("""create table linkage.pairs (unique_id_l varchar, unique_id_r varchar, match_weight double,
                   match_probability double, mw_forename double, mw_dob double, mw_postcode double)""")
    con.executemany("insert into linkage.pairs values (?, ?, ?, 0.5, ?, ?, ?)",
                    [[min(a, b), max(a, b), PRIOR + f + d + p, f, d, p] for a, b, f, d, p in pairs])
    ensure_decisions_table(con)
    return con


# Person P's records X and Y agree on everything (an address since moved to, name written the
# same). Record R agrees with X on forename and date of birth but holds the new address (X's
# postcode is the old one: -3), and with Y on the date of birth and the new postcode, but Y's
# forename is mistyped (-2). Neither pair reaches the threshold (1 and 3); P's history does:
# best forename 6, best date of birth 8, best postcode 7: -10 + 21 = 11.
SPREAD = [("court:X", "court:Y", 6.0, 8.0, 7.0),
          ("court:R", "court:X", 6.0, 8.0, -3.0),
          ("court:R", "court:Y", -2.0, 8.0, 7.0)]


def _rules(enabled: bool = True, **extra) -> dict:
    return {"never_link": [{"column": "pnc_core", "valid": "pnc_valid"}], "hard_negatives": [],
            "identifier_links": [], "histories": {"enabled": enabled, "margin": 0.0, "rounds": 3}, **extra}


def _people(c: dict) -> set[frozenset[str]]:
    out: dict[int, set[str]] = {}
    for u, lab in zip(c["unique_id"].tolist(), c["labels"].tolist()):
        out.setdefault(lab, set()).add(u.split(":")[1])
    return {frozenset(v) for v in out.values()}


def test_a_record_joins_its_person_through_the_combined_history():
    con = _world(SPREAD)
    # Pairwise, R is nobody's: each of its pairs is below the threshold.
    assert _people(cluster_labels(con, THRESHOLD, _rules(enabled=False))) == {frozenset("XY"), frozenset("R")}
    c = cluster_labels(con, THRESHOLD, _rules())
    assert _people(c) == {frozenset("XYR")}
    # The merge is an edge of its own, weighed by the history's score, with its basis.
    assert "person history" in c["basis"].tolist()
    assert c["weight"][c["basis"] == "person history"].tolist() == [pytest.approx(11.0)]


def test_history_never_outweighs_disagreement_on_every_record():
    # R disagrees with every record of P on the date of birth: best of history is still -4.
    con = _world([("court:X", "court:Y", 6.0, 8.0, 7.0),
                  ("court:R", "court:X", 6.0, -4.0, -3.0),
                  ("court:R", "court:Y", -2.0, -4.0, 7.0)])
    assert _people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XY"), frozenset("R")}


def test_two_identifiers_still_keep_people_apart():
    con = _world(SPREAD, pnc={"court:X": X, "court:R": Y})
    assert _people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XY"), frozenset("R")}
    # One keying error apart is one person's id mistyped, as in the first pass.
    con = _world(SPREAD, pnc={"court:X": X, "court:R": "2014/0123956"})
    assert _people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XYR")}


def test_an_identifier_link_never_vouches_whatever_the_thresholds_last_digits():
    # X and R share a PNC ID (an identifier link, weighed at the threshold) but hold two CRO
    # numbers, and their one scored pair is far below the threshold: the PNC ID may not vouch
    # for the CROs along that link, so they stay apart. The edges' weights are compared rounded
    # to 1e-9, and a threshold such as a label-free +6.63... rounds up as often as down.
    rules = _rules(enabled=False, identifier_links=[{"column": "pnc_core", "valid": "pnc_valid"}],
                   never_link=[{"column": "pnc_core", "valid": "pnc_valid"},
                               {"column": "cro_core", "valid": "cro_valid"}])
    for threshold in (THRESHOLD, THRESHOLD + 6e-10, THRESHOLD + 4e-10):
        con = _world([("court:R", "court:X", 0.0, 0.0, 0.0)], pnc={"court:X": X, "court:R": X})
        con.execute("update linkage.records set cro_valid = true, cro_core = case unique_id "
                    "when 'court:X' then '123456/10' else '654321/15' end")
        assert _people(cluster_labels(con, threshold, rules)) == {frozenset("X"), frozenset("R")}, threshold


def test_a_hard_negative_or_a_clerical_non_match_still_keeps_people_apart():
    rules = _rules(hard_negatives=[{"name": "sexes differ", "sql": "l.sex <> r.sex"}])
    con = _world(SPREAD, sex={"court:R": "F"})
    assert _people(cluster_labels(con, THRESHOLD, rules)) == {frozenset("XY"), frozenset("R")}
    con = _world(SPREAD)
    con.execute("insert into linkage.clerical_decisions values ('court:R', 'court:Y', 'non_match', 'a clerk', "
                "now(), null)")
    assert _people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XY"), frozenset("R")}


def test_a_record_takes_only_its_best_person_in_a_round():
    # Two people P (X, Y) and Q (V, W) whom R's history matches (P better); P and Q hold two
    # different PNC IDs, so they are two people and R goes to P alone.
    pairs = SPREAD + [("court:V", "court:W", 6.0, 8.0, 7.0),
                      ("court:R", "court:V", 6.0, 8.0, -4.0),
                      ("court:R", "court:W", -3.0, 8.0, 6.0)]
    con = _world(pairs, pnc={"court:X": X, "court:V": Y})
    assert _people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XYR"), frozenset("VW")}


def test_the_merge_is_written_with_its_basis():
    con = _world(SPREAD)
    _links, persons = write_person_links(con, THRESHOLD, "run-1", _rules())
    assert persons == 1
    rows = dict(con.execute("select record_id, linked_by from linkage.person_links").fetchall())
    assert rows["R"] == "person history"
    assert len({r[0] for r in con.execute("select person_id from linkage.person_links").fetchall()}) == 1
    assert np.isfinite(con.execute("select weakest_link_weight from linkage.person_links").fetchall()[0][0])


def _alias_world(postcode_and_pnc: float) -> duckdb.DuckDBPyConnection:
    """P's records X and Y hold P's PNC ID; P's alias records A and B (an invented name and date
    of birth, used twice) hold P's address, and A holds P's PNC ID as well. A against X disagrees
    on forename (-4) and date of birth (-6); `postcode_and_pnc` is what the address and the
    identifier add."""
    return _world([("court:X", "court:Y", 6.0, 8.0, 7.0),
                   ("court:A", "court:B", 6.0, 8.0, 3.0),
                   ("court:A", "court:X", -4.0, -6.0, postcode_and_pnc)],
                  pnc={"court:X": X, "court:Y": X, "court:A": X})


def test_an_alias_joins_through_a_shared_identifier_when_the_history_does_not_oppose_it():
    ident = [{"column": "pnc_core", "valid": "pnc_valid"}]
    rules = _rules(identifier_links=ident)
    rules["histories"]["identifier_threshold"] = 0.0
    # -10 - 4 - 6 + 21 = +1: short of the threshold (5), but at least even with the id shared.
    # The first pass's identifier links leave the two groups apart: the alias group holds the id
    # on one record of two (as a PNC ID keyed against the wrong person would be).
    first = dict(rules, histories={"enabled": False})
    assert _people(cluster_labels(_alias_world(21.0), THRESHOLD, first)) == {frozenset("XY"), frozenset("AB")}
    assert _people(cluster_labels(_alias_world(21.0), THRESHOLD, rules)) == {frozenset("XYAB")}
    # Without the identifier rule the history pass needs the threshold itself.
    plain = dict(rules, histories={"enabled": True, "margin": 0.0})
    assert _people(cluster_labels(_alias_world(21.0), THRESHOLD, plain)) == {frozenset("XY"), frozenset("AB")}
    # A shared id the rest of the history outweighs (-1) is not enough.
    assert _people(cluster_labels(_alias_world(19.0), THRESHOLD, rules)) == {frozenset("XY"), frozenset("AB")}


def test_the_margin_raises_the_bar_for_people_without_a_shared_identifier():
    rules = _rules()
    rules["histories"]["margin"] = 7.0  # 11 < 5 + 7
    assert _people(cluster_labels(_world(SPREAD), THRESHOLD, rules)) == {frozenset("XY"), frozenset("R")}


def test_a_merge_on_a_shared_identifier_is_weighed_at_the_threshold():
    rules = _rules(identifier_links=[{"column": "pnc_core", "valid": "pnc_valid"}])
    rules["histories"]["identifier_threshold"] = 0.0
    c = cluster_labels(_alias_world(21.0), THRESHOLD, rules)
    assert c["weight"][c["basis"] == "person history"].tolist() == [THRESHOLD]


def test_the_strongest_pair_between_two_clusters_is_one_pair_and_ties_go_to_the_lowest_nodes():
    # Clusters {A, B} and {C, D}: B-D and A-C tie on the strongest weight (B-D written first), A-D
    # is weaker. The edge is one scored pair, the lowest nodes' (A-C), the same every run.
    from justice.link.histories import _comparisons, cluster_scores

    con = _world([("court:B", "court:D", 6.0, 8.0, 1.0), ("court:A", "court:D", 6.0, 8.0, -3.0),
                  ("court:A", "court:C", 6.0, 8.0, 1.0)])
    uid = np.array(["court:A", "court:B", "court:C", "court:D"], dtype=object)
    for _ in range(5):
        s = cluster_scores(con, uid, np.array([0, 0, 1, 1]), _comparisons(con), PRIOR)
        assert (s["node_l"].tolist(), s["node_r"].tolist()) == ([0], [2])  # A-C, not B-D or A-D
        assert s["score"].tolist() == [PRIOR + 6.0 + 8.0 + 1.0]


@pytest.mark.parametrize("lifted", [True, False])
def test_a_hard_negative_resting_on_forenames_is_lifted_by_the_history_holding_both(lifted):
    # P's record Y has its forename mistyped ("kod"); R ("chris") and Y look like twins by their
    # forenames. P's history holds "chris" on X, so, for a rule resting on the forenames being
    # two names, R is P's; for any other rule (or without the flag) the pair keeps them apart.
    con = _world(SPREAD)
    con.execute("alter table linkage.records add column forename varchar")
    con.execute("alter table linkage.records add column forename_aliases varchar[]")
    con.execute("alter table linkage.records add column middle_names varchar")
    con.execute("update linkage.records set forename = case record_id when 'Y' then 'kod' else 'chris' end")
    con.execute("update linkage.records set forename_aliases = [forename]")
    # (The rule is kept to pairs with R: X and Y are one person's, as their pair's weight says.)
    rules = _rules(hard_negatives=[{"name": "forenames differ", "lifted_by_forename": lifted,
                                    "sql": "'R' in (l.record_id, r.record_id) and l.forename <> r.forename"}])
    people = _people(cluster_labels(con, THRESHOLD, rules))
    assert people == ({frozenset("XYR")} if lifted else {frozenset("XY"), frozenset("R")})
