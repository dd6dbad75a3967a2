"""A record that only its name and date of birth hold in a person whose identifiers say otherwise.

Someone who gives a relative's or associate's name and date of birth leaves records under that
identity that carry his own PNC ID, address and days. Names join them to the lender's own
records; his PNC ID joins them to his own. The lender's record then sits in the borrower's
person, held there by nothing but the name and date of birth it shares with the borrowed ones.

Such a record looks like this, and each part is read from the records alone:

* it carries none of the person's identifiers (`identifiers`: no PNC ID, CRO number or prison
  number of any value), so nothing but its fields put it there;
* it has a date of birth and an address (`needs`), and meets no other record of its person by
  any of `evidence` (the same postcode, two systems' records of one day, the same case
  reference: the conditions `identifier_corroboration` reads), so its address is none of the
  person's and no event of the person's was on its days;
* most of the person's records that carry an identifier and a date of birth (more than `share`
  of them) give a date of birth far from its own (`far`, the "dates of birth far apart" test),
  so the person the identifiers vouch for was born another year;
* no system alias link or clerical "match" decision ties it to the person.

Such a record goes out on its own: a person of one record, whose links to the others are left
out of person_links. Its pairs with its old person stay in linkage.pairs, scored, for clerical
review. A person's own record that names alone hold (a new address, no event shared) stays: his
identifiers vouch for his own date of birth. An alias record with an invented date of birth
stays too: it is one of the person's, holding his identifier or meeting his records on an
address or a day, or it is of the person whose identifiers give its date of birth.

Everything here reads linkage.records and the clusters; nothing reads the answer key.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from justice.errors import ConfigError
from justice.link.persons import bind_pair_conditions, strings_setting


def _settings(con: duckdb.DuckDBPyConnection, spec: dict) -> tuple[list[str], list[str], str, list[str], float]:
    """The step's settings from `spec` (model.yaml's `strangers`), checked against linkage.records:
    a ConfigError if one is wrong or its SQL does not run, whether or not any record qualifies."""
    identifiers = strings_setting(spec.get("identifiers"), "strangers.identifiers", "column names")
    needs = strings_setting(spec.get("needs"), "strangers.needs", "column names")
    evidence = strings_setting(spec.get("evidence"), "strangers.evidence", "SQL conditions on l and r")
    far = spec.get("far")
    if not isinstance(far, str) or not far.strip():
        raise ConfigError(f"linkage model: strangers.far must be an SQL condition on l and r, not {far!r} "
                          "(link/model.yaml)")
    share = spec.get("share", 0.5)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1:
        raise ConfigError(f"linkage model: strangers.share must be a number from 0 up to (not including) 1, "
                          f"not {share!r} (link/model.yaml)")
    cols = {r[0] for r in con.execute("describe linkage.records").fetchall()}
    missing = [c for c in identifiers + needs if c not in cols]
    if missing:
        raise ConfigError(f"linkage model: strangers names columns linkage.records does not have: {missing} "
                          "(link/model.yaml)")
    bind_pair_conditions(con, [far], "strangers.far")
    bind_pair_conditions(con, evidence, "strangers.evidence")
    return identifiers, needs, far, evidence, float(share)


def strangers(con: duckdb.DuckDBPyConnection, uid: np.ndarray, labels: np.ndarray, spec: dict,
              tied: np.ndarray) -> np.ndarray:
    """The nodes (positions in `uid`, the records in unique-id order) that go out on their own
    under `spec` (see the module's docstring), given each node's cluster `labels` and `tied`, a
    boolean per node: a system alias link or clerical match holds it in its cluster. The settings
    are checked first, whether or not any record qualifies."""
    identifiers, needs, far, evidence, share = _settings(con, spec)
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(labels)
    candidates = sizes[labels] > 1
    if not candidates.any():
        return np.empty(0, dtype=np.int64)
    con.register("_stranger_nodes", pa.table({"unique_id": pa.array(uid.tolist(), pa.string()),
                                              "node": pa.array(np.arange(len(uid))),
                                              "label": pa.array(labels), "open": pa.array(candidates & ~tied)}))
    try:
        no_id = " and ".join(f"l.{c} is null" for c in identifiers)
        has = " and ".join(f"l.{c} is not null" for c in needs)
        other_id = " or ".join(f"r.{c} is not null" for c in identifiers)
        met = " or ".join(f"coalesce(({e}), false)" for e in evidence)
        rows = con.execute(f"""
            with n as (select r.*, s.node, s.label, s.open from linkage.records r
                       join _stranger_nodes s using (unique_id)),
            x as (select * from n l where l.open and {no_id} and {has}),
            -- Each candidate against every other record of its person: whether they meet, whether
            -- the other holds an identifier and a date of birth to compare, and whether it is far.
            other as (select l.node, coalesce(({met}), false) as met,
                             coalesce(({other_id}) and ({far}) is not null, false) as holder,
                             coalesce(({far}), false) as far
                      from x l join n r on r.label = l.label and r.node <> l.node)
            select node from other group by node
            having not bool_or(met) and count(*) filter (where holder) > 0
               and count(*) filter (where holder and far) > {share} * count(*) filter (where holder)
            order by node
        """).fetchnumpy()
    finally:
        con.unregister("_stranger_nodes")
    return np.asarray(rows["node"], dtype=np.int64)
