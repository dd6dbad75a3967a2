"""A group holding one value of an identifier on most of its records, and another (keyed against
the wrong person) on one, is no conflict for a group holding only the commonest value: the merged
group holds nothing new (justice.link.cluster.cluster, `_majority_within`)."""

from __future__ import annotations

import numpy as np

from justice.link.cluster import cluster

P = "2012/7900005"
A, W = "960172/12", "019136/21"  # David Moss's CRO number, and another man's keyed against him


def _labels(cro: list[str | None]) -> np.ndarray:
    # Records 0-2 hold his PNC ID; 0 and 1 his CRO number, 2 the CRO number keyed against him,
    # joined along an edge the PNC ID vouches for (weight 25, above 10). Record 3 ("david moss",
    # no PNC ID) scores 20 against record 0.
    pnc = np.array([P, P, P, None], dtype=object)
    left, right, weight = np.array([0, 1, 0]), np.array([1, 2, 3]), np.array([30.0, 25.0, 20.0])
    return cluster(4, left, right, weight, np.zeros(0, np.int64), np.zeros(0, np.int64),
                   [pnc, np.array(cro, dtype=object)], vouch_above=10.0)


def test_a_group_holding_the_commonest_value_joins():
    labels = _labels([A, A, W, A])
    assert len(set(labels.tolist())) == 1


def test_a_group_holding_the_value_on_one_record_stays_apart():
    # Record 3 holds the other man's number: it is not his.
    labels = _labels([A, A, W, W])
    assert labels[3] != labels[0] and len(set(labels[:3].tolist())) == 1


def test_no_commonest_value_no_join():
    # One record each: neither is the group's.
    labels = _labels([A, None, W, A])
    assert labels[3] != labels[0]
