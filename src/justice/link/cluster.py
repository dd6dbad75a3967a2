"""Clustering scored pairs into people, and person ids that stay stable across runs.

Edges come from three places: the model's pairs at or above the match threshold, links the
systems themselves assert (a NOMIS alias row and its root), and clerical decisions ("match").
Records connect through edges (connected components). Two kinds of constraint then apply: a
clerical "not a match" decision, and identifiers one person has only one of (two different
valid PNC IDs are two people: the model spec's `never_link`, unless another such identifier, the
same on both sides, vouches for them: `groups_conflict`). A component that breaks one is
rebuilt greedily from its strongest edge down, skipping any edge that would break it. A hard
negative (a guess from names and dates) is soft: a shared identifier lifts it, and one resting on
two forenames being two names is lifted when a group already holds the other's forename
(`NodeNames`).

Person ids: each new cluster inherits the id its records had last run when that id's records
went (mostly) to it; a cluster holding records of several old ids keeps the id with most records
there, and the other ids are recorded as merged into it; a cluster with no old id gets the next
new one. So a person whose records did not change keeps their id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
from jellyfish import levenshtein_distance
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from justice.similarity import jaro_winkler

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


def groups_conflict(va: list[set], vb: list[set], vouch: bool = True) -> bool:
    """Whether two groups of records, holding the values `va` and `vb` of each `never_link`
    identifier, cannot be one person: they hold two values of one identifier that are not one
    keying error apart, and (with `vouch`) no other identifier vouches for them. An identifier
    vouches when each group holds exactly one value of it, the same: a CRO number keyed against
    the wrong person on a record whose PNC ID and names are the group's own is a wrong CRO
    number, not a second person. The caller says when vouching may count (`cluster`: only along
    an edge the model scored above the threshold, so names agree too: a record with another
    person's PNC ID shares that ID with them, but not their names)."""
    clash = [i for i, (x, y) in enumerate(zip(va, vb)) if x and y and _conflict(x, y)]
    if not clash:
        return False
    return not (vouch and any(len(x) == 1 and x == y
                              for i, (x, y) in enumerate(zip(va, vb)) if i not in clash))


class NodeNames:
    """Per node: the forename (None if none), the forenames that count as the same name (the
    forename, its nicknames and formal names and spelling variants: standardise's
    forename_aliases), the sex (None if not recorded) and the first middle name (None if none),
    read only for the nodes asked about.

    `load(nodes)` gives (node, forename, aliases, sex, middle name) for each of `nodes` (node
    numbers, an int64 array); what it gave is kept. At a million records the aliases of every
    record took 10 s to read into Python; the records that could lift a pair are 43,052 of
    1,056,605, read in four calls."""

    def __init__(self, load: Callable[[np.ndarray], Iterable[tuple]]) -> None:
        self._load = load
        self._names: dict[int, tuple[str | None, frozenset, str | None, str | None]] = {}

    @classmethod
    def from_arrays(cls, forename: list, aliases: list, sex: list, middle: list | None = None) -> NodeNames:
        """Names held in memory, node i's at position i."""
        rows = list(zip(range(len(forename)), forename, aliases, sex, middle or [None] * len(forename)))
        return cls(lambda nodes: [rows[int(i)] for i in nodes])

    def ensure(self, nodes: Iterable[int]) -> None:
        """Read the names of those of `nodes` not read yet, in one call of `load`."""
        # (Each node looked up: a set less the dict's keys view walks every key held.)
        missing = np.array(sorted({int(n) for n in nodes if int(n) not in self._names}), dtype=np.int64)
        if len(missing):
            for node, forename, aliases, sex, middle in self._load(missing):
                self._names[int(node)] = (forename, frozenset(aliases or ()), sex, middle)

    def bears_forename(self, group: set[int], y: int) -> bool:
        """Whether a node of `group`, of no other sex, has `y`'s forename or a way of writing it
        (`alike_forenames`) as its forename or its first middle name ("garry jason hammond" bears
        Jason). Initials count as no name."""
        self.ensure([*group, y])
        fy, ay, sy, _ = self._names[y]
        if fy is None or len(fy) < 2:
            return False
        for z in group:
            fz, az, sz, mz = self._names[z]
            if sy is not None and sz is not None and sz != sy:
                continue
            if fz is not None and len(fz) >= 2 and alike_forenames(fz, az, fy, ay):
                return True
            if mz is not None and len(mz) >= 2 and alike_forenames(mz, frozenset(), fy, ay):
                return True
        return False

    def lifts(self, x: int, y: int, group_x: Iterable[int], group_y: Iterable[int]) -> bool:
        """Whether the hard-negative pair (x, y), x in `group_x` and y in `group_y` (the nodes of
        the two groups), is lifted: the group of one holds the other's forename on another record."""
        return (self.bears_forename({z for z in group_x if z != x}, y)
                or self.bears_forename({z for z in group_y if z != y}, x))


def alike_forenames(a: str, a_aliases: frozenset, b: str, b_aliases: frozenset) -> bool:
    """Whether two forenames may be one person's name as written by two clerks: the same, one a
    nickname, formal name or variant of the other (`forename_aliases`), within Jaro-Winkler 0.85
    of the other or of one of its aliases, or one letter apart in names of three letters or more
    ("paup" for Paul): the tests the twins rule's own bridge (`unless_bridged` in model.yaml)
    makes of a third record's name, with the aliases in place of its nickname groups. And, as
    the model's forename level "two letters different" has it, two letters apart in names of
    five letters or more ("tinoghy" for Timothy, two keying errors at the high mess level)."""
    if a == b or a in b_aliases or b in a_aliases:
        return True
    distance = levenshtein_distance(a, b)
    if (min(len(a), len(b)) >= 3 and distance <= 1) or (min(len(a), len(b)) >= 5 and distance <= 2):
        return True
    return (jaro_winkler(a, b) >= 0.85 or any(jaro_winkler(x, a) >= 0.85 for x in b_aliases)
            or any(jaro_winkler(x, b) >= 0.85 for x in a_aliases))


def _majority_within(ca: list[Counter], cb: list[Counter]) -> bool:
    """Whether, for every identifier on which two groups (each value's number of records `ca`,
    `cb`) conflict, one group holds a single value and the other holds it on more of its records
    than any other value. A person's CRO number on four records and another man's, keyed against
    him once, on a fifth are no conflict with a group holding the four's: the merged group holds
    nothing new. A group holding the fifth's alone still conflicts."""
    def commonest(one: Counter, counts: Counter) -> bool:
        """`one` holds one value, held in `counts` on more records than any other."""
        if len(one) != 1:
            return False
        (v,) = one
        return all(n < counts[v] for u, n in counts.items() if u != v)

    return all(not x or not y or not _conflict(x.keys(), y.keys()) or commonest(y, x) or commonest(x, y)
               for x, y in zip(ca, cb))


def _kept_apart(ma: set[int], mb: set[int], partners: dict[int, set[int]], reviewed: dict[int, set[int]],
                share_identifier: bool, names: NodeNames | None, by_forename: set[tuple[int, int]],
                nodes: np.ndarray) -> bool:
    """Whether the cannot-link pairs between groups `ma` and `mb` (local node numbers) keep them
    apart. A reviewer's "not a match" always does. A soft pair (a hard negative) does not when
    the groups share a valid identifier one person has only one of; nor, when it is one of
    `by_forename` (a rule whose premise is that the two forenames are different names) and
    `names` are given, when the group of one of its two records holds the other's forename on
    another record (`NodeNames.bears_forename`)."""
    blocking = [(x, y) for x in ma for y in partners.get(x, set()) & mb]
    if not blocking:
        return False
    if any(y in reviewed.get(x, set()) for x, y in blocking):
        return True
    if share_identifier:
        return False
    if names is None:
        return True
    ga, gb = nodes[list(ma)].tolist(), nodes[list(mb)].tolist()
    return not all((min(x, y), max(x, y)) in by_forename and names.lifts(int(nodes[x]), int(nodes[y]), ga, gb)
                   for x, y in blocking)


def cluster(n: int, left: np.ndarray, right: np.ndarray, weight: np.ndarray,
            cannot_left: np.ndarray, cannot_right: np.ndarray,
            keys: list[np.ndarray] | None = None, soft: np.ndarray | None = None,
            vouch_above: float | None = None, names: NodeNames | None = None,
            by_forename: np.ndarray | None = None) -> np.ndarray:
    """Cluster label of each node: connected components of the edges, split where needed so that
    no cluster holds a cannot-link pair (cannot_left[i], cannot_right[i]) or two different
    values of any of `keys` (per-node arrays, None where a node has no value: e.g. valid PNC
    IDs, since one person has one PNC ID). Two values one keying error apart (`keying_error`)
    are not different: one of them is a typo. Along an edge weighing more than `vouch_above`
    (None: along none), two values of one key are allowed when another key vouches for them
    (`groups_conflict`).

    A component that breaks a constraint is rebuilt greedily: its edges are added strongest
    first (forced edges, weight inf, before all others), and an edge that would break a
    constraint is skipped.

    `soft` marks the cannot-link pairs that are guesses (hard negatives: twins by their names and
    dates) rather than decisions: two groups that share a value of one of `keys` (one person's
    PNC ID) join despite a soft pair between them, as twins do not share a PNC ID.

    `by_forename` marks the soft pairs whose rule rests on the two forenames being different
    names (twins, siblings). With `names` (each node's forename, the forenames that count as the
    same, sex and first middle name), such a pair (x, y) does not keep two groups apart when the group of one
    already holds the other's forename on another record (`NodeNames.bears_forename`): "kod
    woods" (a mistyped Kit) in a group of Chris Woods's records and "chris woods" are not twins,
    since Chris is a name of the group "kod" is in; twins' records carry their own forenames.
    """
    keys = keys or []
    labels = components(n, left, right)
    bad_set: set[int] = set()
    if len(cannot_left):
        same = labels[cannot_left] == labels[cannot_right]
        bad_set.update(np.unique(labels[cannot_left][same]).tolist())
    for key in keys:
        key = np.asarray(key, dtype=object)
        has = np.flatnonzero(key != None)  # elementwise: which nodes hold a value
        if not len(has):
            continue
        # Components holding two different values or more; only those are checked value by value.
        codes, _ = pd.factorize(key[has])
        pairs = pd.DataFrame({"c": labels[has], "v": codes}).drop_duplicates()
        multi = pairs["c"].value_counts()
        multi = set(multi.index[multi > 1].tolist())
        if not multi:
            continue
        seen: dict[int, set] = {}
        pick = np.isin(labels[has], np.fromiter(multi, np.int64, len(multi)))
        for c, v in zip(labels[has][pick].tolist(), key[has][pick].tolist()):
            seen.setdefault(c, set()).add(v)
        bad_set.update(c for c, vs in seen.items() if _conflict(vs, vs))
    if not bad_set:
        return labels
    bad = np.array(sorted(bad_set), dtype=np.int64)
    next_label = int(labels.max()) + 1
    in_bad = np.isin(labels, bad)
    # Each bad component's nodes (ascending), edges (strongest first) and cannot-link pairs,
    # grouped once rather than searched for per component.
    bad_nodes = np.flatnonzero(in_bad)
    bad_nodes = bad_nodes[np.argsort(labels[bad_nodes], kind="stable")]
    node_lo = np.searchsorted(labels[bad_nodes], bad, side="left")
    node_hi = np.searchsorted(labels[bad_nodes], bad, side="right")
    order_all = np.flatnonzero(in_bad[left])
    order_all = order_all[np.argsort(-weight[order_all], kind="stable")]
    order_all = order_all[np.argsort(labels[left[order_all]], kind="stable")]
    edge_comp = labels[left[order_all]]
    edge_lo = np.searchsorted(edge_comp, bad, side="left")
    edge_hi = np.searchsorted(edge_comp, bad, side="right")
    cannot_by_comp: dict[int, list[tuple[int, int, bool, bool]]] = {}
    soft = np.zeros(len(cannot_left), bool) if soft is None else np.asarray(soft, bool)
    by_forename = (np.zeros(len(cannot_left), bool) if by_forename is None
                   else np.asarray(by_forename, bool) & soft)
    if len(cannot_left):
        inside = np.flatnonzero((labels[cannot_left] == labels[cannot_right]) & in_bad[cannot_left])
        for a, b, f, g in zip(cannot_left[inside].tolist(), cannot_right[inside].tolist(), soft[inside].tolist(),
                              by_forename[inside].tolist()):
            cannot_by_comp.setdefault(int(labels[a]), []).append((a, b, f, g))
    if names is not None:
        # The names of every record of the components a forename may lift a pair in, read at once.
        named = [j for j, comp in enumerate(bad.tolist()) if any(g for *_, g in cannot_by_comp.get(comp, []))]
        if named:
            names.ensure(np.concatenate([bad_nodes[node_lo[j]:node_hi[j]] for j in named]).tolist())
    for j, comp in enumerate(bad.tolist()):
        nodes = bad_nodes[node_lo[j]:node_hi[j]]
        local = {int(v): i for i, v in enumerate(nodes.tolist())}
        order = order_all[edge_lo[j]:edge_hi[j]]
        partners: dict[int, set[int]] = {}
        reviewed: dict[int, set[int]] = {}  # the cannot-links a shared identifier does not lift
        liftable: set[tuple[int, int]] = set()  # soft pairs a group holding both forenames lifts
        for a, b, is_soft, named in cannot_by_comp.get(comp, []):
            partners.setdefault(local[a], set()).add(local[b])
            partners.setdefault(local[b], set()).add(local[a])
            if named:
                liftable.add((min(local[a], local[b]), max(local[a], local[b])))
            if not is_soft:
                reviewed.setdefault(local[a], set()).add(local[b])
                reviewed.setdefault(local[b], set()).add(local[a])
        uf = _UnionFind(len(nodes))
        members: dict[int, set[int]] = {i: {i} for i in range(len(nodes))}
        # Per group and `never_link` identifier: each value held and on how many records.
        counts: dict[int, list[Counter]] = {i: [Counter({key[v]} - {None}) for key in keys]
                                            for i, v in enumerate(nodes.tolist())}
        for a_node, b_node, w in zip(left[order].tolist(), right[order].tolist(), weight[order].tolist()):
            a, b = uf.find(local[a_node]), uf.find(local[b_node])
            if a == b:
                continue
            va, vb = [c.keys() for c in counts[a]], [c.keys() for c in counts[b]]
            # Two values of one identifier are two people's, unless another identifier vouches
            # for them or one group holds only the other's commonest value (`_majority_within`).
            if groups_conflict(va, vb, vouch=vouch_above is not None and w > vouch_above) and not _majority_within(
                    counts[a], counts[b]):
                continue
            # A cannot-link keeps two groups apart unless they share a valid identifier one person
            # has only one of (a `never_link` key): a hard negative (twins) is a guess from names and
            # dates, and twins do not share a PNC ID. A reviewer's "not a match" is among the
            # partners too, and a shared identifier does not override it (`reviewed`).
            if partners and _kept_apart(members[a], members[b], partners, reviewed,
                                        any(x & y for x, y in zip(va, vb)), names, liftable, nodes):
                continue
            uf.union(a, b)
            root = uf.find(a)
            other = b if root == a else a
            members[root] |= members.pop(other)
            counts[root] = [x + y for x, y in zip(counts[a], counts[b])]
            counts.pop(other, None)
        roots = np.array([uf.find(i) for i in range(len(nodes))])
        _, sub = np.unique(roots, return_inverse=True)
        labels[nodes] = np.where(sub == 0, comp, next_label + sub - 1)
        next_label += int(sub.max())
    return labels


def rejoin_holders(labels: np.ndarray, left: np.ndarray, right: np.ndarray, weight: np.ndarray,
                   ids: list[np.ndarray], keys: list[np.ndarray], reviewed_left: np.ndarray,
                   reviewed_right: np.ndarray, min_holders: int = 2,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Move a record to the person who holds its identifier, when the names put it with someone
    who does not: a PNC ID is taken from fingerprints, so a value one person holds on
    `min_holders` records or more outweighs a name on one record.

    `labels` are the clusters after `cluster`; `left`, `right`, `weight` its edges; `ids` the
    per-node valid values of each `identifier_links` column (None where a node has none), `keys`
    those of each `never_link` column; `reviewed_*` the node pairs a reviewer said are not a
    match. A record `h` moves from its cluster G to the cluster C when:

    * G has other records and `h` is the only one of them holding its value v of an identifier,
      G holding no other value of it (a borrower's own PNC ID on a record given in the lender's
      name and date of birth; or an alias record whose invented name another alias record
      shares);
    * exactly one other cluster, C, holds v, on `min_holders` records or more;
    * nothing else ties `h` to G: no other identifier value `h` shares with G's records, and no
      link the systems or a clerk assert (a forced edge);
    * the move breaks no constraint in C: no `never_link` value of `h`'s that conflicts with C's
      (a keying error apart is no conflict), no reviewer's "not a match" between `h` and C.

    A record whose own PNC ID was keyed on another person's record is the cost: the names put it
    with its person and the rule moves it away (measured in docs/linkage.md, section 9). After
    the moves, every cluster is the connected components of the edges inside it plus one edge
    from each moved record to a holder in C: a G that `h` alone held together falls apart, as
    nothing else joins it. Returns the labels and the added edges: moved nodes, holder nodes and
    the index into `ids` of the identifier each moved by."""
    if int(min_holders) < 2:
        # Two clusters each holding a value once would swap their holders.
        raise ValueError(f"min_holders must be 2 or more (a value held on one record is no one's), not {min_holders}")
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    none = (labels.copy(), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if n == 0 or not ids:
        return none
    size = np.bincount(labels, minlength=int(labels.max()) + 1)
    frames = []
    for i, col in enumerate(ids):
        col = np.asarray(col, dtype=object)
        has = np.flatnonzero(col != None)  # elementwise
        if len(has):
            frames.append(pd.DataFrame({"kind": i, "node": has, "label": labels[has], "value": col[has]}))
    if not frames:
        return none
    held = pd.concat(frames, ignore_index=True)
    held["value"] = held["value"].astype(str)
    per_value = held.groupby(["kind", "label", "value"])["node"].transform("size")
    per_kind = held.groupby(["kind", "label"])["value"].transform("nunique")
    lone = held[(per_value == 1) & (per_kind == 1) & (size[held["label"].to_numpy()] >= 2)]
    if lone.empty:
        return none
    # The clusters holding each value on `min_holders` records or more.
    counts = held.groupby(["kind", "value", "label"]).agg(holders=("node", "size"), holder=("node", "min")).reset_index()
    strong = counts[counts["holders"] >= int(min_holders)]
    cand = lone.merge(strong.rename(columns={"label": "target"}), on=["kind", "value"])
    cand = cand[cand["target"] != cand["label"]]
    # Exactly one such cluster, and one target per record over all its identifiers.
    cand = cand[cand.groupby(["kind", "node"])["target"].transform("size") == 1]
    cand = cand[cand.groupby("node")["target"].transform("nunique") == 1].drop_duplicates("node")
    if cand.empty:
        return none
    # Another identifier value the record shares with its own cluster ties it there.
    tied = set(held.loc[per_value >= 2, "node"].tolist())
    forced = np.isinf(weight) & (labels[left] == labels[right])
    tied |= set(left[forced].tolist()) | set(right[forced].tolist())
    cand = cand[~cand["node"].isin(tied)]
    reviewed: dict[int, set[int]] = {}
    for a, b in zip(np.asarray(reviewed_left).tolist(), np.asarray(reviewed_right).tolist()):
        reviewed.setdefault(a, set()).add(b)
        reviewed.setdefault(b, set()).add(a)
    targets = set(cand["target"].tolist())
    in_target = np.flatnonzero(np.isin(labels, np.fromiter(targets, np.int64, len(targets)))) if targets else []
    members: dict[int, list[int]] = {}
    for v in np.asarray(in_target).tolist():
        members.setdefault(int(labels[v]), []).append(v)
    key_arrays = [np.asarray(k, dtype=object) for k in keys]
    moved, holders, kinds = [], [], []
    for h, target, holder, kind in zip(cand["node"].tolist(), cand["target"].tolist(), cand["holder"].tolist(),
                                       cand["kind"].tolist()):
        group = members.get(int(target), [])
        if reviewed.get(h, set()) & set(group):
            continue
        if any(k[h] is not None and _conflict({k[h]}, {k[m] for m in group} - {None}) for k in key_arrays):
            continue
        moved.append(h)
        holders.append(holder)
        kinds.append(kind)
    if not moved:
        return none
    moved_a, holders_a = np.asarray(moved, np.int64), np.asarray(holders, np.int64)
    after = labels.copy()
    after[moved_a] = labels[holders_a]
    inside = after[left] == after[right]
    relabelled = components(n, np.concatenate([left[inside], moved_a]), np.concatenate([right[inside], holders_a]))
    return relabelled, moved_a, holders_a, np.asarray(kinds, np.int64)


def stable_ids(labels: np.ndarray, previous: np.ndarray, next_serial: int) -> tuple[np.ndarray, list[tuple[str, str, str]], int]:
    """Person id per node from cluster `labels` and each node's `previous` id (None if new).

    Returns the ids, the id changes as (old_id, new_id, reason) with reason "merged" (the old
    id's records joined a cluster that kept another id) or "split" (some of the old id's records
    left for a cluster with a different id), and the next unused serial.
    """
    prev = np.asarray(previous, dtype=object)
    has_prev = np.flatnonzero(prev != None)  # elementwise
    # Old ids as codes in their sorted order, so "lowest id" is "lowest code"; (cluster, old id)
    # as one integer, counted by a sort (ids as strings grouped by pandas took 2 s at a million).
    codes, names = pd.factorize(prev[has_prev], sort=True)
    names = np.asarray(names, dtype=object)
    n_old = max(len(names), 1)
    pairs, k = np.unique(labels[has_prev].astype(np.int64) * n_old + codes, return_counts=True)
    c, p = pairs // n_old, pairs % n_old
    # Each old id goes to the cluster holding most of its records (ties: the lowest cluster).
    order = np.lexsort((c, -k, p))
    first = order[np.r_[True, p[order][1:] != p[order][:-1]]] if len(order) else order
    best_c = np.full(len(names), -1, np.int64)
    best_c[p[first]] = c[first]
    # Each cluster keeps, of the old ids it won, the one with most records (ties: lowest id).
    won = first[np.lexsort((p[first], -k[first], c[first]))]
    won = won[np.r_[True, c[won][1:] != c[won][:-1]]] if len(won) else won
    top = int(labels.max()) + 1 if len(labels) else 0
    id_of = np.full(top, None, dtype=object)
    id_of[c[won]] = names[p[won]]
    # New clusters get new ids in order of their first node (nodes are sorted by unique_id).
    _, first_node = np.unique(labels, return_index=True)
    in_order = labels[np.sort(first_node)]
    fresh = in_order[id_of[in_order] == None]  # elementwise
    id_of[fresh] = [f"{PERSON_PREFIX}{s:09d}" for s in range(next_serial, next_serial + len(fresh))]
    next_serial += len(fresh)
    ids = id_of[labels]
    # The changes in (old id, cluster) order: an old id's records in a cluster now known by
    # another id were merged there (the cluster it went to) or split off (any other).
    new = id_of[c]
    moved = np.flatnonzero(new != names[p])
    moved = moved[np.lexsort((c[moved], p[moved]))]
    changes = [(old, nw, "merged" if best == cl else "split") for old, nw, best, cl in zip(
        names[p[moved]].tolist(), new[moved].tolist(), best_c[p[moved]].tolist(), c[moved].tolist())]
    return ids, changes, next_serial


def as_table(**columns: object) -> pa.Table:
    return pa.table(dict(columns))
