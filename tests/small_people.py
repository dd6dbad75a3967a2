"""Helpers for tests that cluster a handful of hand-written records (tests/link): the people a
clustering made, and a set of records with some changed, added or taken out."""

from __future__ import annotations


def people(c: dict) -> set[frozenset[str]]:
    """The people of `cluster_labels`'s result `c`, each as the set of its records' ids (the part
    of `system:id` after the colon)."""
    out: dict[int, set[str]] = {}
    for u, lab in zip(c["unique_id"].tolist(), c["labels"].tolist()):
        out.setdefault(lab, set()).add(u.split(":")[1])
    return {frozenset(v) for v in out.values()}


def changed(records: dict[str, dict], change: dict[str, dict | None]) -> dict[str, dict]:
    """`records` (keyed `system:id`) with each `system_id` of `change` set to its new fields, or
    taken out where they are None."""
    records = dict(records)
    for k, v in change.items():
        if v is None:
            del records[k.replace("_", ":", 1)]
        else:
            records[k.replace("_", ":", 1)] = v
    return records
