"""A deterministic baseline for the person index: what exact-match rules alone would link.

Two records are linked when they hold the same identifier (standardised PNC ID, CRO number or
prison number) or the same standardised first forename, surname and date of birth (all three
present); people are the connected components of those links (closed transitively, as the
model's clusters are). No weights, no training, no constraints: it is the yardstick the Splink
model has to beat, shown beside it in `justice link report` on the same records.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np

from justice.link.cluster import components

# Each rule is a list of standardised columns that must all be present and equal.
RULES: dict[str, tuple[str, ...]] = {
    "same PNC ID": ("pnc",),
    "same CRO number": ("cro",),
    "same prison number": ("prison_number",),
    "same forename, surname and date of birth": ("forename", "surname", "dob"),
}


@dataclass
class BaselineLinkage:
    """The baseline's people: `labels[i]` is the person of record `unique_id[i]`."""

    unique_id: np.ndarray
    labels: np.ndarray
    rule_links: dict[str, int]

    @property
    def persons(self) -> int:
        """Distinct people the baseline finds."""
        return len(np.unique(self.labels))

    @property
    def linked_pairs(self) -> int:
        """Pairs of records the baseline puts in one person (after transitive closure)."""
        _, counts = np.unique(self.labels, return_counts=True)
        counts = counts.astype(np.int64)
        return int((counts * (counts - 1) // 2).sum())

    @property
    def linked_records(self) -> int:
        """Records that share their person with at least one other record."""
        _, inverse, counts = np.unique(self.labels, return_inverse=True, return_counts=True)
        return int((counts[inverse] > 1).sum())


def baseline(con: duckdb.DuckDBPyConnection, table: str = "linkage.records") -> BaselineLinkage:
    """Link the records of `table` (standardised, with `unique_id`) by the exact-match rules."""
    nodes = con.execute(f"select unique_id from {table} order by unique_id").fetchnumpy()["unique_id"]
    uid = np.asarray(nodes, dtype=object)
    lefts, rights = [], []
    rule_links = {}
    for name, cols in RULES.items():
        present = " and ".join(f"{c} is not null" for c in cols)
        # Each group of equal keys is joined as a star on its first record: the components are
        # the same as with every pair, at one edge per record rather than n^2 / 2.
        edges = con.execute(f"""
            with n as (select row_number() over (order by unique_id) - 1 as node,
                              {", ".join(cols)} from {table}),
            k as (select node, min(node) over (partition by {", ".join(cols)}) as root,
                         count(*) over (partition by {", ".join(cols)}) as size
                  from n where {present})
            select node, root, size from k where node <> root
        """).fetchnumpy()
        left = np.asarray(edges["node"], dtype=np.int64)
        lefts.append(left)
        rights.append(np.asarray(edges["root"], dtype=np.int64))
        # Pairs the rule matches directly (every pair within each key group).
        sizes = con.execute(f"""
            select coalesce(sum(c * (c - 1) // 2), 0)::bigint from (
                select count(*)::bigint as c from {table} where {present}
                group by {", ".join(cols)})""").fetchall()[0][0]
        rule_links[name] = int(sizes)
    left = np.concatenate(lefts) if lefts else np.zeros(0, np.int64)
    right = np.concatenate(rights) if rights else np.zeros(0, np.int64)
    labels = components(len(uid), left, right)
    return BaselineLinkage(uid, labels, rule_links)
