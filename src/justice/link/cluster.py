"""Clustering scored pairs into people, and person ids that stay stable across runs.

Edges come from three places: the model's pairs at or above the match threshold, links the
systems themselves assert (a NOMIS alias row and its root), and clerical decisions ("match").
Records connect through edges (connected components). Two kinds of constraint then apply: a
clerical "not a match" decision, and identifiers one person has only one of (two different
valid PNC IDs are two people: the model spec's `never_link`). A component that breaks one is
rebuilt greedily from its strongest edge down, skipping any edge that would break it.

Person ids: each new cluster inherits the id its records had last run when that id's records
went (mostly) to it; a cluster holding records of several old ids keeps the id with most records
there, and the other ids are recorded as merged into it; a cluster with no old id gets the next
new one. So a person whose records did not change keeps their id.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

PERSON_PREFIX = "MPI"
FORCED = float("inf")


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected-component label (0..k-1) of each of `n` nodes joined by edges (left, right)."""
    if n == 0:
        return np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(left), np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def keying_error(a: str, b: str) -> bool:
    """Whether two identifiers differ as one keying error would make them: one character
    substituted, or two adjacent characters transposed. A clerk who mistypes a digit and re-keys
    the check letter to fit makes a valid id one character from the right one; two people's ids
    are almost never that close."""
    if len(a) != len(b):
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(diff) == 1:
        return True
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


def _conflict(xs: set, ys: set) -> bool:
    """Whether two sets of one identifier's values hold two that cannot be one person's."""
    return any(x != y and not keying_error(str(x), str(y)) for x in xs for y in ys)


def cluster(n: int, left: np.ndarray, right: np.ndarray, weight: np.ndarray,
            cannot_left: np.ndarray, cannot_right: np.ndarray,
            keys: list[np.ndarray] | None = None) -> np.ndarray:
    """Cluster label of each node: connected components of the edges, split where needed so that
    no cluster holds a cannot-link pair (cannot_left[i], cannot_right[i]) or two different
    values of any of `keys` (per-node arrays, None where a node has no value: e.g. valid PNC
    IDs, since one person has one PNC ID). Two values one keying error apart (`keying_error`)
    are not different: one of them is a typo.

    A component that breaks a constraint is rebuilt greedily: its edges are added strongest
    first (forced edges, weight inf, before all others), and an edge that would break a
    constraint is skipped.
    """
    keys = keys or []
    labels = components(n, left, right)
    bad_set: set[int] = set()
    if len(cannot_left):
        same = labels[cannot_left] == labels[cannot_right]
        bad_set.update(np.unique(labels[cannot_left][same]).tolist())
    for key in keys:
        has = np.array([v is not None for v in key.tolist()], bool)
        if has.any():
            lab, val = labels[has], np.asarray(key, dtype=object)[has]
            seen: dict[int, set] = {}
            for c, v in zip(lab.tolist(), val.tolist()):
                seen.setdefault(c, set()).add(v)
            bad_set.update(c for c, vs in seen.items() if len(vs) > 1 and _conflict(vs, vs))
    if not bad_set:
        return labels
    bad = np.array(sorted(bad_set), dtype=np.int64)
    next_label = int(labels.max()) + 1
    in_bad = np.isin(labels, bad)
    edge_bad = in_bad[left]
    order_all = np.flatnonzero(edge_bad)
    order_all = order_all[np.argsort(-weight[order_all], kind="stable")]
    edge_comp = labels[left[order_all]]
    for comp in bad.tolist():
        nodes = np.flatnonzero(labels == comp)
        local = {int(v): i for i, v in enumerate(nodes.tolist())}
        order = order_all[edge_comp == comp]
        partners: dict[int, set[int]] = {}
        for a, b in zip(cannot_left.tolist(), cannot_right.tolist()):
            if a in local and b in local:
                partners.setdefault(local[a], set()).add(local[b])
                partners.setdefault(local[b], set()).add(local[a])
        uf = _UnionFind(len(nodes))
        members: dict[int, set[int]] = {i: {i} for i in range(len(nodes))}
        values: dict[int, list[set]] = {i: [{key[v]} - {None} for key in keys]
                                        for i, v in enumerate(nodes.tolist())}
        for e in order.tolist():
            a, b = uf.find(local[int(left[e])]), uf.find(local[int(right[e])])
            if a == b:
                continue
            va, vb = values[a], values[b]
            if any(x and y and _conflict(x, y) for x, y in zip(va, vb)):
                continue
            if partners and any(partners.get(x, set()) & members[b] for x in members[a]):
                continue
            uf.union(a, b)
            root = uf.find(a)
            other = b if root == a else a
            members[root] |= members.pop(other)
            values[root] = [x | y for x, y in zip(va, vb)]
            values.pop(other, None)
        roots = np.array([uf.find(i) for i in range(len(nodes))])
        _, sub = np.unique(roots, return_inverse=True)
        labels[nodes] = np.where(sub == 0, comp, next_label + sub - 1)
        next_label += int(sub.max())
    return labels


def stable_ids(labels: np.ndarray, previous: np.ndarray, next_serial: int) -> tuple[np.ndarray, list[tuple[str, str, str]], int]:
    """Person id per node from cluster `labels` and each node's `previous` id (None if new).

    Returns the ids, the id changes as (old_id, new_id, reason) with reason "merged" (the old
    id's records joined a cluster that kept another id) or "split" (some of the old id's records
    left for a cluster with a different id), and the next unused serial.
    """
    n = len(labels)
    ids = np.empty(n, dtype=object)
    prev = np.asarray(previous, dtype=object)
    has_prev = np.array([p is not None for p in prev.tolist()], bool)
    # (cluster, old id) -> record count
    counts: dict[tuple[int, str], int] = {}
    for c, p in zip(labels[has_prev].tolist(), prev[has_prev].tolist()):
        counts[(c, p)] = counts.get((c, p), 0) + 1
    # Each old id goes to the cluster holding most of its records (ties: the lowest cluster).
    best_cluster: dict[str, tuple[int, int]] = {}
    for (c, p), k in counts.items():
        cur = best_cluster.get(p)
        if cur is None or k > cur[1] or (k == cur[1] and c < cur[0]):
            best_cluster[p] = (c, k)
    # Each cluster keeps, of the old ids it won, the one with most records (ties: lowest id).
    keep: dict[int, tuple[str, int]] = {}
    for p, (c, k) in best_cluster.items():
        cur = keep.get(c)
        if cur is None or k > cur[1] or (k == cur[1] and p < cur[0]):
            keep[c] = (p, k)
    cluster_id: dict[int, str] = {c: p for c, (p, _) in keep.items()}
    # New clusters get new ids in order of their first node (nodes are sorted by unique_id).
    _, first = np.unique(labels, return_index=True)
    for c in labels[np.sort(first)].tolist():
        if c not in cluster_id:
            cluster_id[c] = f"{PERSON_PREFIX}{next_serial:09d}"
            next_serial += 1
    for i, c in enumerate(labels.tolist()):
        ids[i] = cluster_id[c]
    changes: list[tuple[str, str, str]] = []
    for (c, p), _k in sorted(counts.items(), key=lambda x: (x[0][1], x[0][0])):
        new = cluster_id[c]
        if new != p:
            reason = "merged" if best_cluster[p][0] == c else "split"
            changes.append((p, new, reason))
    return ids, changes, next_serial


def as_table(**columns: object) -> pa.Table:
    return pa.table(dict(columns))
