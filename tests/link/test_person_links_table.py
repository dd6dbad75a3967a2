"""`linkage.person_links` is built in Arrow from the clusters and their edges
(`persons.person_links_table`): each column checked against the rules written out plainly, record
by record, on random clusterings."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from justice.link.persons import person_links_table

SYSTEMS = ["probation", "crown", "prison", "magistrates", "interventions"]
BASES = ["model", "system alias", "clerical", "same pnc_core", "same cro_core", "person history"]


def _by_the_rules(systems, labels, ids, left, right, weight, basis):
    """Each record's row, as the old SQL computed it (one record at a time)."""
    rows = []
    for node, c in enumerate(labels.tolist()):
        members = [i for i, x in enumerate(labels.tolist()) if x == c]
        ends = [(w, BASES[b]) for a, b_, w, b in zip(left, right, weight, basis) for e in (a, b_) if e == node]
        finite = [w for w, _ in ends if math.isfinite(w)]
        cluster_w = [w for a, b_, w in zip(left, right, weight) for e in (a, b_)
                     if labels[e] == c and math.isfinite(w)]
        rows.append({
            "system": systems[node], "record_id": f"r{node}", "unique_id": f"u{node:04d}",
            "person_id": ids[node], "cluster_size": len(members),
            "cluster_systems": sorted({systems[i] for i in members}),
            "links": len(ends),
            "best_match_weight": max(finite) if finite else None,
            "weakest_link_weight": min(cluster_w) if cluster_w else None,
            "linked_by": ", ".join(sorted({b for _, b in ends})) or "unlinked",
        })
    return rows


@pytest.mark.parametrize("seed", range(40))
def test_person_links_follow_their_rules_on_random_clusterings(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    labels = rng.integers(0, max(1, n // 2), n).astype(np.int64) * 3  # labels need not be dense
    systems = [SYSTEMS[i] for i in rng.integers(0, len(SYSTEMS), n)]
    ids = np.array([f"MPI{c:09d}" for c in labels.tolist()], dtype=object)
    # Edges only inside clusters, as write_person_links passes them; some repeated, some asserted
    # (infinite weight), some with the same weight.
    left, right = [], []
    for _ in range(int(rng.integers(0, 3 * n + 1))):
        a = int(rng.integers(0, n))
        same = np.flatnonzero(labels == labels[a])
        b = int(rng.choice(same))
        if a != b:
            left.append(min(a, b))
            right.append(max(a, b))
    k = len(left)
    weight = np.round(rng.normal(8, 4, k), 1)
    weight[rng.random(k) < 0.2] = np.inf
    basis = rng.integers(0, len(BASES), k)
    table = person_links_table(
        pa.table({"unique_id": pa.array([f"u{i:04d}" for i in range(n)]), "system": pa.array(systems),
                  "record_id": pa.array([f"r{i}" for i in range(n)])}),
        labels, ids, np.array(left, np.int64),
        np.array(right, np.int64), weight, basis, list(BASES))
    assert table.to_pylist() == _by_the_rules(systems, labels, ids, left, right, weight.tolist(),
                                               basis.tolist())
    assert table.schema.field("cluster_systems").type == pa.list_(pa.string())
    assert table.schema.field("links").type == pa.int64()



def test_more_systems_or_bases_than_a_record_can_hold_is_a_clear_error():
    from justice.errors import ConfigError
    from justice.link.persons import _bits

    assert _bits(np.array([2, 0]), ["c", "a", "b"])[1] == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="64 distinct link bases or systems"):
        _bits(np.zeros(1, np.int64), [f"system {i}" for i in range(64)])
