"""A second pass that matches people against people: each cluster's history of names, dates of
birth, postcodes and identifiers against another's, best of history per comparison.

Pairwise scoring weighs two records at a time, so it cannot combine evidence spread over a
person's records: a record that agrees with one of a person's records on the name and with
another on the new address scores low against both. Person indexes keep each person's history
and match a record against the whole person. After the first clustering, this pass scores every
two clusters that hold at least one scored pair between them (linkage.pairs, at or above the
model's `keep_weight`) by the model's own weights: for each comparison, the best weight any pair
of their records has on it (the name from one pair, the postcode from another, the date of birth
from a third), summed with the model's prior. A person's records disagree with each other
(people move, clerks mistype) and best of history reads only what the two people have in common;
where every pair disagrees on a comparison the best is still a disagreement.

Two clusters merge when that score reaches the link threshold plus `margin` and the constraints
still hold for the merged cluster: no two different valid identifiers of a `never_link` column
(keying errors aside, as in clustering), no hard-negative or clerical "not a match" pair inside it
(a hard negative resting on the forenames is lifted as in clustering, when one of the two
clusters holds the other record's forename: cluster.NodeNames).
Merges are made in rounds, strongest first, each cluster in at most one merge a round, and the
profiles are re-scored after each round, so a merge is always decided on the histories as they
now stand and one round cannot chain a cluster through several others. Precision comes first:
with several clusters at the threshold a cluster takes only its best.

Everything here reads linkage.pairs and the first pass's clusters; nothing reads the answer key.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from justice.link import cluster as clustering

BASIS = "person history"


def _comparisons(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The per-comparison weight columns of linkage.pairs (term-frequency adjustment included)."""
    cols = [r[0] for r in con.execute("describe linkage.pairs").fetchall()]
    return sorted(c for c in cols if c.startswith("mw_") and not c.startswith("mw_tf_adj_"))


def prior_weight(con: duckdb.DuckDBPyConnection, comparisons: list[str]) -> float | None:
    """The model's prior as a match weight: a pair's match weight less its comparisons' weights
    (the same for every pair). None when there are no pairs."""
    total = " + ".join(f"coalesce({c}, 0)" for c in comparisons) or "0"
    row = con.execute(f"select median(match_weight - ({total})) from linkage.pairs").fetchall()[0]
    return None if row[0] is None else float(row[0])


def _pair_nodes(con: duckdb.DuckDBPyConnection, uid: np.ndarray, comparisons: list[str], identifiers: list[dict],
                into: str) -> None:
    """Temp table `into`: every scored pair (linkage.pairs), its match weight and the weights of
    `comparisons`, with its two records' nodes (their positions in `uid`) and whether they hold
    the same valid value of one of `identifiers`: what the rounds of cluster_scores read, found
    once (joins on the unique ids, which no round changes)."""
    shared = " or ".join(f"(l.{r['column']} = r.{r['column']} and l.{r['valid']} and r.{r['valid']})"
                         for r in identifiers) or "false"
    records = ("" if not identifiers else
               """join linkage.records l on l.unique_id = p.unique_id_l
                  join linkage.records r on r.unique_id = p.unique_id_r""")
    con.register("_hist_uid", pa.table({"unique_id": pa.array(uid.tolist(), pa.string()),
                                        "node": pa.array(np.arange(len(uid)))}))
    try:
        con.execute(f"""
            create or replace temp table {into} as
            select a.node as node_l, b.node as node_r, coalesce({shared}, false) as shared_id,
                   p.match_weight{"".join(f", p.{c}" for c in comparisons)}
            from linkage.pairs p
            join _hist_uid a on a.unique_id = p.unique_id_l
            join _hist_uid b on b.unique_id = p.unique_id_r
            {records}""")
    finally:
        con.unregister("_hist_uid")


def cluster_scores(con: duckdb.DuckDBPyConnection, uid: np.ndarray, labels: np.ndarray,
                   comparisons: list[str], prior: float, identifiers: list[dict] = (),
                   pairs: str | None = None) -> dict[str, np.ndarray]:
    """For every two clusters with a scored pair between them: the best-of-history score (prior
    plus, per comparison, the best weight over the pairs between them), whether a scored pair
    between them holds the same valid value of one of `identifiers` (`identifier_links` rules),
    and their strongest pair's nodes. Arrays c1 < c2, score, shared_id, node_l, node_r.
    `pairs` names a table `_pair_nodes` made for these `uid` and `identifiers` (else one is made
    here)."""
    if pairs is None:
        _pair_nodes(con, uid, comparisons, list(identifiers), "_hist_pairs_once")
    con.register("_hist_labels", pa.table({"node": pa.array(np.arange(len(uid))),
                                           "cluster": pa.array(np.asarray(labels, dtype=np.int64))}))
    best = " + ".join(f"coalesce(max({c}), 0)" for c in comparisons) or "0"
    try:
        return con.sql(f"""
            with p as (
                select least(a.cluster, b.cluster) as c1, greatest(a.cluster, b.cluster) as c2, p.*
                from {pairs or "_hist_pairs_once"} p
                join _hist_labels a on a.node = p.node_l
                join _hist_labels b on b.node = p.node_r
                where a.cluster <> b.cluster)
            , g as (
                -- The strongest pair between the two clusters, both ends from that one pair; a
                -- tie on weight goes to the lowest nodes, so every run (any thread count) gives
                -- the same evidence.
                select c1, c2, {float(prior)} + {best} as score, bool_or(shared_id) as shared_id,
                       arg_max({{'l': node_l, 'r': node_r}}, (match_weight, -node_l, -node_r)) as edge
                from p group by c1, c2)
            select c1, c2, score, shared_id, edge.l as node_l, edge.r as node_r from g
        """).fetchnumpy()
    finally:
        con.unregister("_hist_labels")
        if pairs is None:
            con.execute("drop table if exists _hist_pairs_once")


def merge_histories(con: duckdb.DuckDBPyConnection, uid: np.ndarray, labels: np.ndarray,
                    threshold: float, cannot_left: np.ndarray, cannot_right: np.ndarray,
                    keys: list[np.ndarray], *, margin: float = 0.0, rounds: int = 3,
                    identifiers: list[dict] = (), identifier_threshold: float | None = None,
                    names: clustering.NodeNames | None = None, by_forename: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Merge clusters whose histories match (module docstring). `uid` and `labels` are the first
    pass's nodes (sorted unique ids) and cluster labels; `cannot_*` the node pairs that may not
    share a cluster; `keys` the per-node values of the `never_link` identifiers (None where a
    node has none); `by_forename` marks the cannot-link pairs that, with the records' `names`,
    a group holding both forenames lifts, as in the first pass (cluster.NodeNames). Returns the
    new labels and the edges that made each merge (l, r, weight:
    the strongest pair between the two clusters, weighed by their history score, or at the
    threshold when a shared identifier made a merge below it)."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    edges: dict[str, list] = {"l": [], "r": [], "weight": []}
    comparisons = _comparisons(con)
    prior = prior_weight(con, comparisons) if comparisons else None
    if prior is None or len(uid) == 0:
        return labels, _arrays(edges)
    partners, lifted = cannot_partners(cannot_left, cannot_right, by_forename, names)
    key_lists = [np.asarray(k, dtype=object).tolist() for k in keys]
    _pair_nodes(con, uid, comparisons, list(identifiers) if identifier_threshold is not None else [], "_hist_pairs")
    try:
        return _merge_rounds(con, uid, labels, threshold, partners, key_lists, edges, comparisons, prior,
                             margin=margin, rounds=rounds, identifier_threshold=identifier_threshold,
                             names=names if len(lifted) else None, lifted=lifted.astype(np.int64))
    finally:
        con.execute("drop table if exists _hist_pairs")


def cannot_partners(cannot_left: np.ndarray, cannot_right: np.ndarray, by_forename: np.ndarray | None,
                    names: clustering.NodeNames | None) -> tuple[dict[int, list[tuple[int, bool]]], np.ndarray]:
    """Each node's cannot-link partners, each with whether a group holding both forenames lifts the
    pair (`by_forename`, when there are `names` to lift it by); and the nodes of the liftable
    pairs (int64, sorted)."""
    partners: dict[int, list[tuple[int, bool]]] = {}
    liftable = (np.zeros(len(cannot_left), bool) if by_forename is None or names is None
                else np.asarray(by_forename, bool))
    for a, b, f in zip(np.asarray(cannot_left).tolist(), np.asarray(cannot_right).tolist(), liftable.tolist()):
        partners.setdefault(int(a), []).append((int(b), f))
        partners.setdefault(int(b), []).append((int(a), f))
    lifted = np.unique(np.concatenate([np.asarray(cannot_left)[liftable], np.asarray(cannot_right)[liftable]]))
    return partners, lifted.astype(np.int64)


def _merge_rounds(con: duckdb.DuckDBPyConnection, uid: np.ndarray, labels: np.ndarray, threshold: float,
                  partners: dict[int, list[tuple[int, bool]]], key_lists: list[list], edges: dict[str, list],
                  comparisons: list[str], prior: float, *, margin: float, rounds: int,
                  identifier_threshold: float | None, names: clustering.NodeNames | None = None,
                  lifted: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """merge_histories' rounds, over the scored pairs' nodes in the temp table `_hist_pairs`.
    `lifted` are the nodes of the cannot-link pairs that `names` may lift."""
    for _ in range(rounds):
        if names is not None and lifted is not None and len(lifted):
            # The names of every record of a cluster holding one of them, read at once a round (a
            # merge may bring in a cluster that held none).
            names.ensure(np.flatnonzero(np.isin(labels, np.unique(labels[lifted]))).tolist())
        scores = cluster_scores(con, uid, labels, comparisons, prior, pairs="_hist_pairs")
        score = np.asarray(scores["score"], dtype=np.float64)
        ok = score >= threshold + margin
        if identifier_threshold is not None:
            ok |= np.asarray(scores["shared_id"], dtype=bool) & (score >= identifier_threshold)
        if not ok.any():
            break
        c1, c2 = scores["c1"][ok].astype(np.int64), scores["c2"][ok].astype(np.int64)
        nl, nr, score = scores["node_l"][ok].astype(np.int64), scores["node_r"][ok].astype(np.int64), score[ok]
        order = np.lexsort((c2, c1, -np.round(score, 9)))
        members: dict[int, np.ndarray] = {}
        wanted = np.unique(np.concatenate([c1, c2]))
        sort = np.argsort(labels, kind="stable")
        starts = np.searchsorted(labels[sort], wanted)
        ends = np.searchsorted(labels[sort], wanted, side="right")
        for c, s, e in zip(wanted.tolist(), starts.tolist(), ends.tolist()):
            members[c] = sort[s:e]
        merged_now: set[int] = set()
        merges = 0
        for i in order.tolist():
            a, b = int(c1[i]), int(c2[i])
            if a in merged_now or b in merged_now:
                continue
            ma, mb = members[a], members[b]
            if breaks_constraints(a, b, ma, mb, labels, partners, key_lists, names):
                continue
            labels[mb] = a
            merged_now.update((a, b))
            merges += 1
            edges["l"].append(int(nl[i]))
            edges["r"].append(int(nr[i]))
            # A merge on a shared identifier below the threshold is weighed as the first pass
            # weighs an identifier link: at the threshold.
            edges["weight"].append(max(float(score[i]), float(threshold)))
        if merges == 0:
            break
    # Labels 0..k-1 again, in order of first node, as the first pass leaves them.
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse], _arrays(edges)


def breaks_constraints(a: int, b: int, ma: np.ndarray, mb: np.ndarray, labels: np.ndarray,
                        partners: dict[int, list[tuple[int, bool]]], key_lists: list[list],
                        names: clustering.NodeNames | None = None) -> bool:
    """Whether putting clusters a and b (members `ma`, `mb`) together would break a constraint:
    a cannot-link pair across them (unless it is one that a group holding both forenames lifts,
    and one of the two groups holds the other record's forename on another record:
    cluster.NodeNames), or two different values of a `never_link` identifier that no other
    vouches for (cluster.groups_conflict)."""
    small, other = (ma, b) if len(ma) <= len(mb) else (mb, a)
    across = [(node, p, f) for node in small.tolist() for p, f in partners.get(node, ()) if labels[p] == other]
    if across:
        if names is None or not all(f for _, _, f in across):
            return True
        theirs = (mb if other == b else ma).tolist()
        if not all(names.lifts(x, y, small.tolist(), theirs) for x, y, _ in across):
            return True
    va = [{key[n] for n in ma.tolist()} - {None} for key in key_lists]
    vb = [{key[n] for n in mb.tolist()} - {None} for key in key_lists]
    return clustering.groups_conflict(va, vb, vouch=False)


def _arrays(edges: dict[str, list]) -> dict[str, np.ndarray]:
    return {"l": np.asarray(edges["l"], dtype=np.int64), "r": np.asarray(edges["r"], dtype=np.int64),
            "weight": np.asarray(edges["weight"], dtype=np.float64)}
