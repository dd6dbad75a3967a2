"""Two people who share an identifier, and everything about the smaller of them says so too.

The first pass joins two groups of records on a shared valid identifier (`identifier_links`)
only where each group is one record or holds the value on two records or more: a PNC ID keyed
once against the wrong person, or a borrower's own PNC ID on a record given in a lender's name,
sits on one record of a group that names hold together. That leaves apart an alias group (an
invented name and date of birth used on a few records, one of them carrying the person's PNC ID)
and its person, whose names and dates of birth have nothing in common.

What tells them apart is where and when the records were made. An alias is given by the person
himself: his records under it carry his address at the time, and the days of his events (the
court hearing under the alias is the day of the reception into prison under his own name). A
PNC ID keyed against the wrong person, or a lender's own records, share neither with the other
person except by chance. So two people (clusters) that share a valid value of an
`identifier_links` column join here when every record of the one with fewer records meets some
record of the other by `evidence` (the same postcode, two systems' records of one day, the same
prison number or case reference: SQL conditions on `l` and `r` in model.yaml), and the
constraints hold for the merged person: no two different valid values of a `never_link`
identifier (keying errors aside), no hard-negative or clerical "not a match" pair across them
(a hard negative resting on the forenames is lifted as in clustering).

A borrowed record carries the borrower's own id, address and days, so it meets the borrower's
records; but names have joined it to the lender's, which meet the borrower only by chance. So the
record of the other person that meets one must not be the other's only holder of the shared
value: where one record alone holds it, the rest of its cluster must corroborate.

Merges go in rounds, each person in at most one merge a round, the best corroborated first (the
most records met), and the evidence is read again after each round, so a merged person must
corroborate the next merge as a whole.

Everything here reads linkage.records and the clusters; nothing reads the answer key.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from justice.link import cluster as clustering
from justice.link.histories import breaks_constraints, cannot_partners
from justice.link.persons import bind_pair_conditions

BASIS = "identifier corroborated"


def value_codes(ids: list[np.ndarray]) -> list[np.ndarray]:
    """Per identifier of `ids` (each node's valid value or None), each node's value as an integer
    code (-1 where none): what `candidate_pairs` reads, made once (a million strings cost a
    tenth of a second to code)."""
    return [pd.factorize(np.asarray(values, dtype=object))[0].astype(np.int64) for values in ids]


def candidate_pairs(labels: np.ndarray, codes: list[np.ndarray]) -> pd.DataFrame:
    """Pairs of clusters (c1 < c2) holding one valid value of an identifier between them, with a
    holder of it in each (node_l in c1, node_r in c2, the lowest such nodes), whether that is the
    cluster's only holder of the value (single_l, single_r) and the identifier's place in `codes`
    (per identifier, each node's value code, -1 where none: `value_codes`). One row per cluster
    pair: the first identifier they share, its lowest holders."""
    labels = np.asarray(labels, dtype=np.int64)
    frames = []
    for k, code in enumerate(codes):
        node = np.flatnonzero(np.asarray(code) >= 0)
        if not len(node):
            continue
        value, cluster = np.asarray(code)[node], labels[node]
        order = np.lexsort((node, cluster, value))
        value, cluster, node = value[order], cluster[order], node[order]
        # One holder per (value, cluster): its lowest node, and whether it is the only one.
        start = np.flatnonzero(np.r_[True, (value[1:] != value[:-1]) | (cluster[1:] != cluster[:-1])])
        single = np.diff(np.r_[start, len(value)]) == 1
        value, cluster, node = value[start], cluster[start], node[start]
        # Values held in two clusters or more.
        vstart = np.flatnonzero(np.r_[True, value[1:] != value[:-1]])
        counts = np.diff(np.r_[vstart, len(value)])
        many = np.repeat(counts > 1, counts)
        if not many.any():
            continue
        df = pd.DataFrame({"value": value[many], "cluster": cluster[many], "node": node[many], "single": single[many]})
        pairs = df.merge(df, on="value", suffixes=("_l", "_r"))
        pairs = pairs[pairs["cluster_l"] < pairs["cluster_r"]]
        frames.append(pd.DataFrame({"c1": pairs["cluster_l"].to_numpy(), "c2": pairs["cluster_r"].to_numpy(),
                                    "node_l": pairs["node_l"].to_numpy(), "node_r": pairs["node_r"].to_numpy(),
                                    "single_l": pairs["single_l"].to_numpy(), "single_r": pairs["single_r"].to_numpy(),
                                    "rule": k}))
    if not frames:
        return pd.DataFrame({"c1": [], "c2": [], "node_l": [], "node_r": [], "single_l": [], "single_r": [],
                             "rule": []}, dtype=np.int64)
    out = pd.concat(frames, ignore_index=True).sort_values(["c1", "c2", "rule", "node_l", "node_r"])
    return out.drop_duplicates(["c1", "c2"]).reset_index(drop=True)


def corroborated(con: duckdb.DuckDBPyConnection, uid: np.ndarray, labels: np.ndarray, pairs: pd.DataFrame,
                 evidence: list[str]) -> np.ndarray:
    """Per row of `pairs` (clusters c1 and c2, from `candidate_pairs`): how many records
    corroborate the pair (0 when it is not corroborated): every record of the cluster with fewer
    records (either, when they have as many) must meet a record of the other
    by one of `evidence` (SQL conditions on `l`, a record of one cluster, and `r`, one of the
    other, over linkage.records). The other's record must not be its only holder of the shared
    value: that record alone may be a borrowed identity's, and the rest of its cluster the
    lender's."""
    if pairs.empty:
        return np.zeros(0, np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    wanted = np.unique(np.concatenate([pairs["c1"].to_numpy(), pairs["c2"].to_numpy()]))
    members = np.flatnonzero(np.isin(labels, wanted))
    con.register("_corr_members", pa.table({"unique_id": pa.array(np.asarray(uid, dtype=object)[members].tolist(),
                                                                  pa.string()),
                                            "node": pa.array(members.astype(np.int64)),
                                            "cluster": pa.array(labels[members])}))
    # A side's only holder of the shared value does not corroborate: it may be a record given
    # under a borrowed identity, carrying the borrower's own id, whose cluster is the lender's.
    none = np.int64(-1)
    con.register("_corr_pairs", pa.table({
        "pair": pa.array(np.arange(len(pairs))),
        "c1": pa.array(pairs["c1"].to_numpy(np.int64)), "c2": pa.array(pairs["c2"].to_numpy(np.int64)),
        "skip1": pa.array(np.where(pairs["single_l"].to_numpy(bool), pairs["node_l"].to_numpy(np.int64), none)),
        "skip2": pa.array(np.where(pairs["single_r"].to_numpy(bool), pairs["node_r"].to_numpy(np.int64), none))}))
    cond = " or ".join(f"({e})" for e in evidence)
    try:
        rows = con.execute(f"""
            with m as (select m.cluster, m.node, x.* from _corr_members m join linkage.records x using (unique_id)),
            sides as (select pair, c1 as side, c2 as other, skip2 as skip from _corr_pairs
                      union all select pair, c2, c1, skip1 from _corr_pairs),
            met as (
                select s.pair, s.side, l.unique_id,
                       coalesce(bool_or(r.node <> s.skip and coalesce({cond}, false)), false) as met
                from sides s join m l on l.cluster = s.side join m r on r.cluster = s.other
                group by all)
            select pair, side, count(*) as n, count(*) filter (where met) as met
            from met group by all""").fetchnumpy()
    finally:
        con.unregister("_corr_members")
        con.unregister("_corr_pairs")
    n = {(int(p), int(s)): (int(a), int(b)) for p, s, a, b in
         zip(rows["pair"].tolist(), rows["side"].tolist(), rows["n"].tolist(), rows["met"].tolist())}
    out = np.zeros(len(pairs), np.int64)
    for i, (c1, c2) in enumerate(zip(pairs["c1"].tolist(), pairs["c2"].tolist())):
        n1, m1 = n[(i, c1)]
        n2, m2 = n[(i, c2)]
        out[i] = max(m1 if n1 <= n2 and m1 == n1 else 0, m2 if n2 <= n1 and m2 == n2 else 0)
    return out


class Corroborator:
    """Merges clusters that share a valid identifier where the smaller one's records corroborate
    it (module docstring), over one index: what every call reads is made once (the cannot-link
    partners, the `never_link` values, the identifier values' codes), so the merges can be run
    again on new labels (persons.cluster_labels runs them before and after records go to their
    identifiers' holders).

    `uid` are the nodes (sorted unique ids); `ids` per `identifier_links` rule each node's valid
    value (None where none); `keys` the `never_link` identifiers' values; `cannot_*` the node
    pairs that may not share a cluster, and `by_forename` those of them a group holding both
    forenames lifts (cluster.NodeNames); `evidence` the SQL conditions; `rounds` how many rounds."""

    def __init__(self, con: duckdb.DuckDBPyConnection, uid: np.ndarray, ids: list[np.ndarray], keys: list[np.ndarray],
                 cannot_left: np.ndarray, cannot_right: np.ndarray, evidence: list[str], *, rounds: int = 3,
                 names: clustering.NodeNames | None = None, by_forename: np.ndarray | None = None) -> None:
        # The conditions are bound once here, so one that does not run (a column the records do
        # not have) is a clear error whether or not any people share an identifier.
        bind_pair_conditions(con, evidence, "identifier_corroboration.evidence")
        self.con, self.uid, self.evidence, self.rounds, self.names = con, uid, evidence, rounds, names
        self.partners, self.lifted = cannot_partners(cannot_left, cannot_right, by_forename, names)
        self.key_lists = [np.asarray(k, dtype=object).tolist() for k in keys]
        self.codes = value_codes(ids)

    def merge(self, labels: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The new labels (0..k-1 in order of first node) and each merge's edge (l, r: the two
        holders of the shared value; rule: its place in `ids`)."""
        con, uid, evidence, rounds, names = self.con, self.uid, self.evidence, self.rounds, self.names
        partners, lifted, key_lists, codes = self.partners, self.lifted, self.key_lists, self.codes
        labels = np.asarray(labels, dtype=np.int64).copy()
        edges: dict[str, list] = {"l": [], "r": [], "rule": []}
        for _ in range(rounds):
            pairs = candidate_pairs(labels, codes)
            if pairs.empty:
                break
            support = corroborated(con, uid, labels, pairs, evidence)
            # The best corroborated first (more records met), so a person with two candidates takes
            # the better; then by cluster, for the same result every run.
            pairs = pairs.assign(support=support)[support > 0].sort_values(["support", "c1", "c2"],
                                                                           ascending=[False, True, True])
            if pairs.empty:
                break
            if names is not None and len(lifted):
                names.ensure(np.flatnonzero(np.isin(labels, np.unique(labels[lifted]))).tolist())
            sort = np.argsort(labels, kind="stable")
            ordered = labels[sort]
            merged_now: set[int] = set()
            remap = np.arange(int(labels.max()) + 1, dtype=np.int64)
            for a, b, nl, nr, rule in pairs[["c1", "c2", "node_l", "node_r", "rule"]].itertuples(index=False):
                a, b = int(a), int(b)
                if a in merged_now or b in merged_now:
                    continue
                ma = sort[np.searchsorted(ordered, a):np.searchsorted(ordered, a, side="right")]
                mb = sort[np.searchsorted(ordered, b):np.searchsorted(ordered, b, side="right")]
                if breaks_constraints(a, b, ma, mb, labels, partners, key_lists, names if len(lifted) else None):
                    continue
                merged_now.update((a, b))
                remap[b] = a
                edges["l"].append(int(nl))
                edges["r"].append(int(nr))
                edges["rule"].append(int(rule))
            if not merged_now:
                break
            # The round's merges together: each cluster was in one at most, so one step of the map.
            labels = remap[labels]
        _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
        rank = np.empty(len(first), np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        return rank[inverse], {k: np.asarray(v, dtype=np.int64) for k, v in edges.items()}

