"""Hard negatives (possible twins) are soft cannot-links: two groups sharing a valid PNC ID join
despite one; a reviewer's "not a match" is never lifted (justice.link.cluster.cluster)."""

from __future__ import annotations

import numpy as np

from justice.link.cluster import cluster


def _chain():
    # 0 - 1 - 2: record 0 ("dunk walker", no PNC) and record 2 ("unk walker", PNC X) look like
    # twins by their forenames; record 1 ("duncan walker", PNC X) links to both, to 0 first: when
    # 2 comes to join {0, 1}, the group holds X as 2 does.
    left, right = np.array([0, 1]), np.array([1, 2])
    weight = np.array([30.0, 20.0])
    pnc = np.array([None, "2018/6899044", "2018/6899044"], dtype=object)
    return left, right, weight, pnc


def test_a_soft_cannot_link_is_lifted_by_a_shared_identifier():
    left, right, weight, pnc = _chain()
    labels = cluster(3, left, right, weight, np.array([0]), np.array([2]), [pnc], soft=np.array([True]))
    assert len(set(labels.tolist())) == 1


def test_without_a_shared_identifier_a_soft_cannot_link_holds():
    left, right, weight, _ = _chain()
    pnc = np.array([None, "2018/6899044", None], dtype=object)
    labels = cluster(3, left, right, weight, np.array([0]), np.array([2]), [pnc], soft=np.array([True]))
    assert labels[0] != labels[2]


def test_a_decided_cannot_link_is_never_lifted():
    left, right, weight, pnc = _chain()
    # The same pair as a reviewer's decision (not soft), and the default (no `soft`): apart.
    for soft in (np.array([False]), None):
        labels = cluster(3, left, right, weight, np.array([0]), np.array([2]), [pnc], soft=soft)
        assert labels[0] != labels[2]
    # Soft and decided both on one pair: the decision wins.
    labels = cluster(3, left, right, weight, np.array([0, 0]), np.array([2, 2]), [pnc],
                     soft=np.array([True, False]))
    assert labels[0] != labels[2]
