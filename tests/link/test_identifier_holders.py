"""A record goes to the person who holds its identifier on several records (cluster.rejoin_holders)."""

from __future__ import annotations

import numpy as np
import pytest

from justice.link.cluster import rejoin_holders

NONE = np.array([], dtype=np.int64)
X, Y, Z = "2014/0123456", "2019/7654321", "2011/5550001"


def _groups(labels):
    out: dict[int, set[int]] = {}
    for node, lab in enumerate(np.asarray(labels).tolist()):
        out.setdefault(lab, set()).add(node)
    return {frozenset(v) for v in out.values()}


def _edges(*pairs, weight=10.0):
    left = np.array([p[0] for p in pairs], dtype=np.int64)
    right = np.array([p[1] for p in pairs], dtype=np.int64)
    return left, right, np.full(len(pairs), weight)


def _labels(*groups, n):
    labels = np.empty(n, np.int64)
    for i, g in enumerate(groups):
        labels[list(g)] = i
    return labels


def test_a_lone_holder_goes_to_the_person_who_holds_its_pnc_on_two_records():
    # The borrower (0, 1, 2; PNC X on 0 and 1) and the lender's cluster (3, 4, 5): record 5 was
    # given in the lender's name with the borrower's PNC X, the only PNC in its cluster.
    left, right, weight = _edges((0, 1), (1, 2), (3, 4), (4, 5))
    labels = _labels({0, 1, 2}, {3, 4, 5}, n=6)
    pnc = np.array([X, X, None, None, None, X], dtype=object)
    out, moved, holder, kind = rejoin_holders(labels, left, right, weight, [pnc], [pnc], NONE, NONE)
    assert _groups(out) == {frozenset({0, 1, 2, 5}), frozenset({3, 4})}
    assert moved.tolist() == [5] and holder.tolist() == [0] and kind.tolist() == [0]


def test_one_holder_on_each_side_moves_nothing():
    # A PNC ID held once by each of two clusters: a keying slip on either side, no one to follow.
    left, right, weight = _edges((0, 1), (2, 3))
    labels = _labels({0, 1}, {2, 3}, n=4)
    pnc = np.array([X, None, X, None], dtype=object)
    out, moved, _, _ = rejoin_holders(labels, left, right, weight, [pnc], [pnc], NONE, NONE)
    assert _groups(out) == _groups(labels) and len(moved) == 0
    # `min_holders` 1 would swap the two holders: refused.
    with pytest.raises(ValueError, match="min_holders must be 2 or more"):
        rejoin_holders(labels, left, right, weight, [pnc], [pnc], NONE, NONE, min_holders=1)


def test_what_ties_a_record_to_its_cluster_keeps_it_there():
    left, right, weight = _edges((0, 1), (2, 3), (3, 4))
    labels = _labels({0, 1}, {2, 3, 4}, n=5)
    pnc = np.array([X, X, None, None, X], dtype=object)
    # 4 shares a CRO number with 3: another identifier ties it to its cluster.
    cro = np.array([None, None, None, "12345/99", "12345/99"], dtype=object)
    out, moved, _, _ = rejoin_holders(labels, left, right, weight, [pnc, cro], [pnc, cro], NONE, NONE)
    assert len(moved) == 0 and _groups(out) == _groups(labels)
    # A system's alias link (a forced edge) ties it too.
    left2, right2, weight2 = left, right, weight.copy()
    weight2[2] = float("inf")
    out, moved, _, _ = rejoin_holders(labels, left2, right2, weight2, [pnc], [pnc], NONE, NONE)
    assert len(moved) == 0
    # Without either, it moves.
    out, moved, _, _ = rejoin_holders(labels, left, right, weight, [pnc], [pnc], NONE, NONE)
    assert moved.tolist() == [4] and _groups(out) == {frozenset({0, 1, 4}), frozenset({2, 3})}


def test_a_move_that_would_break_a_constraint_is_not_made():
    left, right, weight = _edges((0, 1), (2, 3))
    labels = _labels({0, 1}, {2, 3}, n=4)
    pnc = np.array([X, X, None, X], dtype=object)
    # 3's CRO number is not the one 0 and 1 hold (and not a keying error of it): two people.
    cro = np.array(["11111/05", None, None, "99999/17"], dtype=object)
    out, moved, _, _ = rejoin_holders(labels, left, right, weight, [pnc], [pnc, cro], NONE, NONE)
    assert len(moved) == 0
    # A CRO number one keying error from theirs is theirs.
    cro[3] = "11111/06"
    out, moved, _, _ = rejoin_holders(labels, left, right, weight, [pnc], [pnc, cro], NONE, NONE)
    assert moved.tolist() == [3] and _groups(out) == {frozenset({0, 1, 3}), frozenset({2})}
    # A reviewer's "not a match" between 3 and 1 keeps it out.
    _out, moved, _, _ = rejoin_holders(labels, left, right, weight, [pnc], [pnc, cro], np.array([1]), np.array([3]))
    assert len(moved) == 0


def test_two_clusters_holding_the_value_or_a_cluster_holding_two_values_move_nothing():
    left, right, weight = _edges((0, 1), (2, 3), (4, 5), (5, 6))
    labels = _labels({0, 1}, {2, 3}, {4, 5, 6}, n=7)
    pnc = np.array([X, X, X, X, None, None, X], dtype=object)
    out, moved, _, _ = rejoin_holders(labels, left, right, weight, [pnc], [pnc], NONE, NONE)
    assert len(moved) == 0 and _groups(out) == _groups(labels)  # two people hold X twice each: whose is it?
    # A cluster already holding two values of the identifier (allowed as a keying error) is left.
    labels = _labels({0, 1}, {4, 5, 6}, {2}, {3}, n=7)
    pnc = np.array([X, X, None, None, "2014/0123457", None, X], dtype=object)
    _out, moved, _, _ = rejoin_holders(labels, left, right, weight, [pnc], [pnc], NONE, NONE)
    assert len(moved) == 0


def test_a_cluster_the_moved_record_alone_held_together_falls_apart():
    # 5 bridged 3 and 4 (its names like each); once it goes to 0-1-2, nothing joins them.
    left, right, weight = _edges((0, 1), (1, 2), (3, 5), (5, 4))
    labels = _labels({0, 1, 2}, {3, 4, 5}, n=6)
    pnc = np.array([X, None, X, None, None, X], dtype=object)
    out, _moved, _, _ = rejoin_holders(labels, left, right, weight, [pnc], [pnc], NONE, NONE)
    assert _groups(out) == {frozenset({0, 1, 2, 5}), frozenset({3}), frozenset({4})}
    # Every other cluster is as it was, singletons included.
    labels = _labels({0, 1, 2}, {3, 4, 5}, {6}, {7, 8}, n=9)
    left, right, weight = _edges((0, 1), (1, 2), (3, 5), (5, 4), (3, 4), (7, 8))
    pnc = np.array([X, None, X, None, None, X, Z, Y, None], dtype=object)
    out, _, _, _ = rejoin_holders(labels, left, right, weight, [pnc], [pnc], NONE, NONE)
    assert _groups(out) == {frozenset({0, 1, 2, 5}), frozenset({3, 4}), frozenset({6}), frozenset({7, 8})}


def test_nothing_to_do_on_an_empty_or_identifierless_index():
    out, moved, _, _ = rejoin_holders(np.zeros(0, np.int64), NONE, NONE, np.zeros(0), [], [], NONE, NONE)
    assert len(out) == 0 and len(moved) == 0
    labels = _labels({0, 1}, {2}, n=3)
    left, right, weight = _edges((0, 1))
    empty = np.array([None, None, None], dtype=object)
    out, moved, _, _ = rejoin_holders(labels, left, right, weight, [empty], [empty], NONE, NONE)
    assert _groups(out) == _groups(labels) and len(moved) == 0


def _index(pnc: dict[str, str], pairs: list[tuple[str, str, float]]):
    """A small index: records and their scored pairs (match weights), PNC IDs as given."""
    import duckdb

    from justice.link.clerical import ensure_decisions_table

    ids = sorted({u for p in pairs for u in p[:2]} | set(pnc))
    con = duckdb.connect()
    con.execute("create schema linkage")
    con.execute("""create table linkage.records (unique_id varchar, system varchar, record_id varchar,
                   same_as varchar, pnc_core varchar, pnc_valid boolean, cro_core varchar, cro_valid boolean)""")
    con.executemany("insert into linkage.records values (?, 'court', ?, null, ?, ?, null, null)",
                    [[u, u.split(":")[1], pnc.get(u), u in pnc] for u in ids])
    con.execute("""create table linkage.pairs (unique_id_l varchar, unique_id_r varchar, match_weight double,
                   match_probability double)""")
    con.executemany("insert into linkage.pairs values (?, ?, ?, 0.5)", [[min(a, b), max(a, b), w] for a, b, w in pairs])
    ensure_decisions_table(con)
    return con


IDENT = [{"column": "pnc_core", "valid": "pnc_valid"}]


def _rules(**holders) -> dict:
    return {"never_link": IDENT, "hard_negatives": [], "identifier_links": IDENT,
            "identifier_holders": {"enabled": True, **holders}, "histories": {}}


# The borrower's records B1, B2 hold his PNC ID X; L1, L2 are the lender's, and L3 was given in
# the lender's name by the borrower, with X on it.
BORROWED = {"pnc": {"court:B1": X, "court:B2": X, "court:L3": X},
                "pairs": [("court:B1", "court:B2", 20.0), ("court:L1", "court:L2", 18.0), ("court:L2", "court:L3", 15.0)]}


def test_the_index_puts_the_lone_holder_with_the_holders_and_says_why():
    from justice.link.persons import cluster_labels, write_person_links

    def people(c):
        out: dict[int, set[str]] = {}
        for u, lab in zip(c["unique_id"].tolist(), c["labels"].tolist()):
            out.setdefault(lab, set()).add(u.split(":")[1])
        return {frozenset(v) for v in out.values()}

    off = dict(_rules(), identifier_holders={"enabled": False})
    assert people(cluster_labels(_index(**BORROWED), 5.0, off)) == {frozenset({"B1", "B2"}), frozenset({"L1", "L2", "L3"})}
    assert people(cluster_labels(_index(**BORROWED), 5.0, _rules())) == {frozenset({"B1", "B2", "L3"}),
                                                                         frozenset({"L1", "L2"})}
    con = _index(**BORROWED)
    write_person_links(con, 5.0, "run-1", _rules())
    rows = dict(con.execute("select record_id, linked_by from linkage.person_links").fetchall())
    assert rows["L3"] == "same pnc_core" and rows["L1"] == "model"
    people_ids = dict(con.execute("select record_id, person_id from linkage.person_links").fetchall())
    assert people_ids["L3"] == people_ids["B1"] != people_ids["L1"]


@pytest.mark.parametrize("bad", [1, 0, 2.5, "2", True])
def test_a_bad_min_holders_is_refused_by_name(bad):
    from justice.errors import ConfigError
    from justice.link.persons import cluster_labels

    with pytest.raises(ConfigError, match="identifier_holders.min_holders"):
        cluster_labels(_index(**BORROWED), 5.0, _rules(min_holders=bad))


def test_an_identifier_that_is_not_a_never_link_key_is_read_from_the_records():
    from justice.link.persons import cluster_labels

    # The CRO number links and moves; only the PNC ID is a never_link key.
    con = _index(pnc={}, pairs=BORROWED["pairs"])
    con.execute("update linkage.records set cro_core = 'C1', cro_valid = true "
                "where record_id in ('B1', 'B2', 'L3')")
    rules = dict(_rules(), identifier_links=[{"column": "cro_core", "valid": "cro_valid"}])
    labels = cluster_labels(con, 5.0, rules)
    found = dict(zip(labels["unique_id"].tolist(), labels["labels"].tolist()))
    assert found["court:L3"] == found["court:B1"] != found["court:L1"]
