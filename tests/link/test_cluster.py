"""Clustering under constraints, and person ids that stay stable across runs."""

from __future__ import annotations

import numpy as np

from justice.link.cluster import PERSON_PREFIX, cluster, components, keying_error, stable_ids

INF = float("inf")
NONE = np.array([], dtype=np.int64)


def _groups(labels: np.ndarray) -> set[frozenset[int]]:
    out: dict[int, set[int]] = {}
    for node, lab in enumerate(labels.tolist()):
        out.setdefault(lab, set()).add(node)
    return {frozenset(v) for v in out.values()}


def _edges(*triples):
    left = np.array([t[0] for t in triples], dtype=np.int64)
    right = np.array([t[1] for t in triples], dtype=np.int64)
    weight = np.array([t[2] for t in triples], dtype=float)
    return left, right, weight


def test_components_join_transitively():
    labels = components(5, np.array([0, 1]), np.array([1, 2]))
    assert _groups(labels) == {frozenset({0, 1, 2}), frozenset({3}), frozenset({4})}


def test_a_cannot_link_pair_is_split_at_the_weakest_edge():
    left, right, weight = _edges((0, 1, 20.0), (1, 2, 7.0), (2, 3, 25.0))
    labels = cluster(4, left, right, weight, np.array([0]), np.array([3]))
    assert _groups(labels) == {frozenset({0, 1}), frozenset({2, 3})}


# Two people's PNC IDs (core): many characters apart.
X, Y = "2014/0123456", "2019/7654321"


def test_two_valid_identifiers_never_share_a_cluster():
    # Twins 0 and 2 (PNCs X and Y); 1 has no PNC and is pulled both ways; 0-1 is stronger.
    left, right, weight = _edges((0, 1, 30.0), (1, 2, 12.0), (2, 3, 40.0))
    pnc = np.array([X, None, Y, None], dtype=object)
    labels = cluster(4, left, right, weight, NONE, NONE, [pnc])
    assert _groups(labels) == {frozenset({0, 1}), frozenset({2, 3})}
    # Without the constraint everything is one cluster.
    assert len(_groups(cluster(4, left, right, weight, NONE, NONE))) == 1


def test_identifiers_one_keying_error_apart_may_share_a_cluster():
    # 1 holds X with one digit mistyped (its check letter re-keyed, so it passes as valid): a typo
    # of X, not a second person's id. Y is a second person's, so 3 stays apart.
    left, right, weight = _edges((0, 1, 30.0), (1, 2, 25.0), (2, 3, 9.0))
    typo = "2014/0123956"
    pnc = np.array([X, typo, None, Y], dtype=object)
    labels = cluster(4, left, right, weight, NONE, NONE, [pnc])
    assert _groups(labels) == {frozenset({0, 1, 2}), frozenset({3})}
    assert keying_error(X, typo) and keying_error(X, "2014/0124356")  # a transposition
    assert not keying_error(X, Y) and not keying_error(typo, "2014/0124356")


def test_another_identifier_the_same_on_both_sides_vouches_for_two_values():
    # 0 and 1 share PNC X; 1's CRO is another person's (keyed against the wrong person): the PNC
    # vouches, so they are one person. 2 and 3 are that other person (CRO B, PNC Y): two PNC IDs
    # and two CROs apart from the first person, nothing vouches, they stay apart.
    a, b = "123456/10A", "654321/15Z"
    left, right, weight = _edges((0, 1, 30.0), (1, 2, 12.0), (2, 3, 40.0))
    pnc = np.array([X, X, Y, Y], dtype=object)
    cro = np.array([a, b, b, None], dtype=object)
    labels = cluster(4, left, right, weight, NONE, NONE, [pnc, cro], vouch_above=10.0)
    assert _groups(labels) == {frozenset({0, 1}), frozenset({2, 3})}
    # Only along an edge above `vouch_above` (a model link, names alike), and not by default.
    for above in (30.0, None):
        labels = cluster(4, left, right, weight, NONE, NONE, [pnc, cro], vouch_above=above)
        assert _groups(labels) == {frozenset({0}), frozenset({1}), frozenset({2, 3})}
    # Without the shared PNC the two CROs part 0 from 1.
    pnc_apart = np.array([X, None, Y, Y], dtype=object)
    labels = cluster(4, left, right, weight, NONE, NONE, [pnc_apart, cro], vouch_above=10.0)
    assert _groups(labels) == {frozenset({0}), frozenset({1, 2, 3})}
    # A group holding two PNC IDs vouches for nothing: 3 (PNC X, CRO B) joins neither.
    left, right, weight = _edges((0, 1, 30.0), (1, 2, 25.0), (2, 3, 19.0))
    pnc = np.array([X, Y, None, X], dtype=object)
    cro = np.array([a, a, None, b], dtype=object)
    labels = cluster(4, left, right, weight, NONE, NONE, [pnc, cro], vouch_above=10.0)
    assert _groups(labels) == {frozenset({0, 1, 2}), frozenset({3})}


def test_forced_edges_go_first():
    # A system alias (inf) between 1 and 2 wins over a stronger-looking model edge 0-1 that
    # would join conflicting identifiers.
    left, right, weight = _edges((0, 1, 50.0), (1, 2, INF))
    pnc = np.array([X, None, Y], dtype=object)
    labels = cluster(3, left, right, weight, NONE, NONE, [pnc])
    assert _groups(labels) == {frozenset({0}), frozenset({1, 2})}


def test_unconstrained_components_keep_their_labels():
    left, right, weight = _edges((0, 1, 9.0), (2, 3, 9.0), (3, 4, 9.0))
    pnc = np.array(["X", "X", None, "Z", "Z"], dtype=object)
    labels = cluster(5, left, right, weight, NONE, NONE, [pnc])
    np.testing.assert_array_equal(labels, components(5, left, right))


def test_unchanged_people_keep_their_ids():
    labels = np.array([0, 0, 1, 2])
    ids, changes, nxt = stable_ids(labels, np.array([None] * 4, dtype=object), 1)
    assert ids.tolist() == [f"{PERSON_PREFIX}000000001"] * 2 + [f"{PERSON_PREFIX}000000002", f"{PERSON_PREFIX}000000003"]
    assert changes == [] and nxt == 4
    # Same clusters under different labels, and a new record joining the second person.
    again, changes, nxt2 = stable_ids(np.array([5, 5, 3, 4, 3]), np.append(ids, None), nxt)
    assert again.tolist()[:4] == ids.tolist() and again[4] == ids[2]
    assert changes == [] and nxt2 == nxt


def test_merges_and_splits_are_recorded():
    prev = np.array(["MPI000000001", "MPI000000001", "MPI000000002", "MPI000000003", "MPI000000003",
                     "MPI000000003"], dtype=object)
    # 1 and 2 merge (1 has more records there); 3 splits 2:1.
    labels = np.array([0, 0, 0, 1, 1, 2])
    ids, changes, nxt = stable_ids(labels, prev, 4)
    assert ids.tolist() == ["MPI000000001"] * 3 + ["MPI000000003"] * 2 + ["MPI000000004"]
    assert ("MPI000000002", "MPI000000001", "merged") in changes
    assert ("MPI000000003", "MPI000000004", "split") in changes
    assert nxt == 5


def _stable_ids_by_the_rules(labels, previous, next_serial):
    """stable_ids' rules written out plainly, record by record (the vectorised code must agree)."""
    counts: dict = {}
    for c, p in zip(labels.tolist(), previous):
        if p is not None:
            counts[(c, p)] = counts.get((c, p), 0) + 1
    best: dict = {}
    for (c, p), k in counts.items():
        if p not in best or k > best[p][1] or (k == best[p][1] and c < best[p][0]):
            best[p] = (c, k)
    keep: dict = {}
    for p, (c, k) in best.items():
        if c not in keep or k > keep[c][1] or (k == keep[c][1] and p < keep[c][0]):
            keep[c] = (p, k)
    cid = {c: p for c, (p, _) in keep.items()}
    for c in labels.tolist():
        if c not in cid:
            cid[c] = f"{PERSON_PREFIX}{next_serial:09d}"
            next_serial += 1
    changes = [(p, cid[c], "merged" if best[p][0] == c else "split")
               for (c, p) in sorted(counts, key=lambda x: (x[1], x[0])) if cid[c] != p]
    return [cid[c] for c in labels.tolist()], changes, next_serial


def test_stable_ids_follow_their_rules_on_random_reclusterings():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        old = rng.integers(0, max(1, n // 2), n)
        previous = [None if rng.random() < 0.2 else f"{PERSON_PREFIX}{int(o) + 1:09d}" for o in old]
        labels = rng.integers(0, max(1, n // 2), n).astype(np.int64)
        ids, changes, serial = stable_ids(labels, np.array(previous, dtype=object), 100)
        want_ids, want_changes, want_serial = _stable_ids_by_the_rules(labels, previous, 100)
        assert ids.tolist() == want_ids
        assert changes == want_changes
        assert serial == want_serial
    # Some of those had merges and splits to check.
    assert any(c for c in [stable_ids(np.array([0, 0, 1]), np.array(["MPIa", "MPIb", "MPIa"], dtype=object), 1)[1]])
