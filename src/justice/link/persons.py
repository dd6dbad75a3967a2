"""Records into persons in the warehouse: the model spec's clustering rules (`constraints`), the
edges and cannot-links read from `linkage.pairs`, `linkage.records` and the clerical decisions,
and the stable person ids written to `linkage.person_links` and `linkage.person_id_changes`.

The graph work itself (components, constrained clustering, stable ids) is in cluster.py."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from justice.errors import ConfigError
from justice.link import cluster as clustering
from justice.link.blocking import conjuncts
from justice.link.store import table_exists

if TYPE_CHECKING:
    from justice.link.corroborate import Corroborator


def constraints(spec: dict) -> dict:
    """The model spec's clustering rules: `never_link` identifiers, `hard_negatives`,
    `identifier_links` (identifiers whose valid exact agreement is an edge of its own),
    `histories` (the second pass, histories.py), `identifier_corroboration` (corroborate.py) and
    `strangers` (strangers.py)."""
    return {"never_link": list(spec.get("never_link", []) or []),
            "hard_negatives": list(spec.get("hard_negatives", []) or []),
            "identifier_links": list(spec.get("identifier_links", []) or []),
            "identifier_holders": dict(spec.get("identifier_holders") or {}),
            "histories": dict(spec.get("histories") or {}),
            "identifier_corroboration": dict(spec.get("identifier_corroboration") or {}),
            "strangers": dict(spec.get("strangers") or {})}


def strings_setting(value: object, name: str, what: str) -> list[str]:
    """`value` as a list of at least one non-empty string (`what` they are, for the message), or a
    ConfigError naming the setting `name` of link/model.yaml."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"linkage model: {name} must be a list of {what}, at least one, not {value!r} "
                          "(link/model.yaml)")
    return value


def bind_pair_conditions(con: duckdb.DuckDBPyConnection, conditions: list[str], name: str) -> None:
    """A ConfigError naming the setting `name` and the condition, unless each of `conditions` (SQL
    on two records, `l` and `r`) binds on linkage.records: checked once, before any record is
    read, so a wrong column is a clear error whether or not a record would meet it."""
    for cond in conditions:
        try:
            con.execute(f"select 1 from linkage.records l, linkage.records r where ({cond}) limit 0").fetchall()
        except duckdb.Error as exc:
            raise ConfigError(f"linkage model: {name} does not run on linkage.records: {cond!r}: "
                              f"{str(exc).splitlines()[0]} (link/model.yaml)") from exc


# What holds an edge (`basis`), as codes in the queries: the model's links, the systems' own
# alias links, clerical matches, then one code per `identifier_links` rule, then histories.py's.
BASES = ("model", "system alias", "clerical")


def identifier_bases(rules: list[dict]) -> list[str]:
    """The bases of the `identifier_links` rules' edges (`same <column>`), once each, in order."""
    return list(dict.fromkeys(f"same {r['column']}" for r in rules))


def identifier_codes(rules: list[dict]) -> list[int]:
    """Each `identifier_links` rule's basis code: len(BASES) + its place in `identifier_bases`."""
    names = identifier_bases(rules)
    return [len(BASES) + names.index(f"same {rule['column']}") for rule in rules]


def _identifier_edges_sql(rules: list[dict], weight: float) -> str:
    """Pairs of records holding the same valid value of an `identifier_links` column, as edges of
    `weight` (the link threshold: the weakest edge, so in a component that breaks a constraint
    every model link is placed first and an identifier link only where it conflicts with none);
    `basis` is the code of the rule's name (len(BASES) + its place in `identifier_bases`); `value`
    the 64-bit hash of the column and the shared value, so two rules on one column share values
    (two values share a hash once in ~2^64, as block keys do; hashes cost a sort of integers where
    the values as strings cost a million Python strings)."""
    codes = identifier_codes(rules)
    parts = [f"""select l.unique_id as unique_id_l, r.unique_id as unique_id_r,
                        {float(weight)}::double as weight, {code} as basis,
                        hash('{rule["column"]}', l.{rule["column"]}) as value
                 from linkage.records l join linkage.records r
                 on l.{rule["column"]} = r.{rule["column"]} and l.unique_id < r.unique_id
                 where l.{rule["valid"]} and r.{rule["valid"]}""" for rule, code in zip(rules, codes)]
    return " union all ".join(parts) if parts else (
        "select null::varchar as unique_id_l, null::varchar as unique_id_r, null::double as weight, "
        "null::integer as basis, null::ubigint as value where false")


def _identifier_values(con: duckdb.DuckDBPyConnection, rules: list[dict], never_link: list[dict],
                       keys: list[np.ndarray]) -> list[np.ndarray]:
    """Each `identifier_links` column's valid value per node (None where none), in unique_id order:
    a `never_link` key's values where the rule is the same column and validity (they usually
    are), else read from linkage.records."""
    out = []
    for rule in rules:
        same = [i for i, r in enumerate(never_link) if r["column"] == rule["column"] and r.get("valid") == rule["valid"]]
        if same:
            out.append(np.asarray(keys[same[0]], dtype=object))
            continue
        rows = con.execute(f"select case when {rule['valid']} then {rule['column']} end from linkage.records "
                           "order by unique_id").fetchall()
        out.append(np.array([r[0] for r in rows], dtype=object))
    return out


def _supported(n: int, left: np.ndarray, right: np.ndarray, id_left: np.ndarray, id_right: np.ndarray,
               id_value: np.ndarray) -> np.ndarray:
    """Which identifier edges to keep: those joining two groups of records (the components of the
    other edges) where each group is one record or holds the shared value on two records or more.
    A value keyed once by mistake (another person's PNC ID) or given with a borrowed identity sits
    on one record of a group that the names hold together; joining on it would merge two people.
    An alias record alone, or two groups of one person that both carry the id, join."""
    if not len(id_left):
        return np.zeros(0, bool)
    comp = clustering.components(n, left, right)
    size = np.bincount(comp, minlength=comp.max() + 1 if n else 0)
    # Per (group, value): how many records of the group hold the value among the identifier
    # edges' ends. Values as codes, so (group, value) is one integer.
    codes, uniques = pd.factorize(np.asarray(id_value))
    ca, cb = comp[id_left], comp[id_right]
    ka, kb = ca * len(uniques) + codes, cb * len(uniques) + codes
    ends = pd.DataFrame({"k": np.concatenate([ka, kb]), "node": np.concatenate([id_left, id_right])})
    holders = ends.drop_duplicates()["k"].value_counts()
    ha = holders.reindex(ka).to_numpy()
    hb = holders.reindex(kb).to_numpy()
    return (ca == cb) | (((size[ca] == 1) | (ha >= 2)) & ((size[cb] == 1) | (hb >= 2)))


_PAIR_REF = re.compile(r"\b([lr])\.([A-Za-z_][A-Za-z0-9_]*)")
_ODD_REF = re.compile(r"\b[LR]\s*\.|\b[lr]\s+\.|\b[lr]\.(?![A-Za-z_])")


def scalar_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    """linkage.records' columns that hold one value (not a list): cheap to fetch for every pair."""
    rows = con.execute("select column_name, data_type from information_schema.columns "
                       "where table_catalog = current_database() and table_schema = 'linkage' "
                       "and table_name = 'records'").fetchall()
    return {c for c, t in rows if not t.endswith("]") and not t.upper().startswith(("STRUCT", "MAP", "UNION"))}


def _hard_candidates_sql(rules: list[dict], scalar: set[str]) -> str | None:
    """The scored pairs for which some rule's conjuncts over `scalar` columns all hold, read with
    those columns only; None when a rule has no such conjunct (any pair could satisfy it). A pair
    a rule holds for satisfies all its conjuncts, so it is among these."""
    tests, cols = [], set()
    for r in rules:
        if _ODD_REF.search(r["sql"]):
            return None  # a reference the narrowing cannot read (L.x, l."x"): no narrowing
        refs = [(p, {c for _, c in _PAIR_REF.findall(p)}) for p in conjuncts(r["sql"]) or []]
        cheap = [p for p, used in refs if used and used <= scalar]
        if not cheap:
            return None
        tests.append(" and ".join(f"({p})" for p in cheap))
        cols.update(c for p, used in refs if used and used <= scalar for c in used)
    narrow = ", ".join(["unique_id", *sorted(cols - {"unique_id"})])
    return f"""select p.* from linkage.pairs p
               join (select {narrow} from linkage.records) l on l.unique_id = p.unique_id_l
               join (select {narrow} from linkage.records) r on r.unique_id = p.unique_id_r
               where {" or ".join(f"({t})" for t in tests)}"""


def hard_negative_sql(rules: list[dict], scalar: set[str] | None = None) -> str:
    """Scored pairs that a hard-negative rule says are different people, with the rule's name.
    A rule's `unless_bridged` (SQL over the pair `l`, `r` and a third record `m`) spares a pair
    when some third record satisfies it: a record whose name is one of both records' (a mistyped
    nickname and its formal name are one person's, as the nickname written right shows).

    With `scalar` (linkage.records' columns that are not lists: `scalar_columns`), the pairs are
    first narrowed by the rules' conjuncts over those columns alone (`_hard_candidates_sql`), and
    only those are joined to whole records: at a million records 36,639 of 2 million scored pairs,
    where fetching every pair's lists of names was most of the query."""
    if not rules:
        return "select null::varchar as unique_id_l, null::varchar as unique_id_r, null::varchar as rule where false"
    # The scored pairs are joined to their two records once, and every rule tested on each
    # (`k`: the numbers of the rules that hold): a join per rule fetched the records of all two
    # million pairs three times at a million records.
    tags = ", ".join(f"case when ({r['sql']}) then {i} end" for i, r in enumerate(rules))
    candidates = _hard_candidates_sql(rules, scalar) if scalar is not None else None
    found = f"""select p.unique_id_l, p.unique_id_r, unnest(list_filter([{tags}], lambda x: x is not null)) as k
                from {"_hard_cand" if candidates else "linkage.pairs"} p
                join linkage.records l on l.unique_id = p.unique_id_l
                join linkage.records r on r.unique_id = p.unique_id_r"""

    def part(i: int, r: dict) -> str:
        name = r["name"].replace("'", "''")
        if not r.get("unless_bridged"):
            return f"select unique_id_l, unique_id_r, '{name}' as rule from _hard_found where k = {i}"
        # The third record is looked for only for the pairs the rule holds for (a few thousand
        # of 1.6 million at a million records): as one WHERE, DuckDB's anti-join for `not
        # exists` ran over every scored pair, before the rule's own conditions.
        return f"""select h.unique_id_l, h.unique_id_r, '{name}' as rule from _hard_found h
                   join linkage.records l on l.unique_id = h.unique_id_l
                   join linkage.records r on r.unique_id = h.unique_id_r
                   where h.k = {i} and not exists (
                       select 1 from linkage.records m where m.unique_id <> l.unique_id
                       and m.unique_id <> r.unique_id and ({r["unless_bridged"]}))"""

    return (f"with {f'_hard_cand as materialized ({candidates}), ' if candidates else ''}"
            f"_hard_found as materialized ({found})\n"
            + "\nunion all\n".join(part(i, r) for i, r in enumerate(rules)))


def _names_of(con: duckdb.DuckDBPyConnection, uid: np.ndarray, nodes: np.ndarray) -> list[tuple]:
    """(node, forename, forename_aliases, sex, first middle name) of the records numbered `nodes`
    (positions in `uid`)."""
    con.register("_names_wanted", pa.table({"node": pa.array(nodes, pa.int64()),
                                            "unique_id": pa.array(uid[nodes].tolist(), pa.string())}))
    try:
        return con.execute("select w.node, r.forename, r.forename_aliases, r.sex, "
                           "nullif(split_part(r.middle_names, ' ', 1), '') from _names_wanted w "
                           "join linkage.records r using (unique_id)").fetchall()
    finally:
        con.unregister("_names_wanted")


def cluster_labels(con: duckdb.DuckDBPyConnection, threshold: float, rules: dict, hard: str | None = None) -> dict:
    """Cluster linkage.records by linkage.pairs at `threshold` (plus system aliases and clerical
    decisions), under the constraints of `rules` (see `constraints`), without writing anything.
    Returns the nodes' unique ids (sorted), their cluster labels and the edges used.

    A pair a hard-negative rule matches is not an edge and may not share a cluster, unless a
    reviewer decided it is a match. `hard` names a table already holding the hard-negative pairs
    (`hard_negative_sql`), when the caller needs them again (run.py: the review queue)."""
    never_link = rules.get("never_link", [])
    # The nodes (with their system and record id, for person_links) and each `never_link`
    # identifier's valid values, in one read sorted once.
    conds = [f"case when {r['valid']} then {r['column']} end" if r.get("valid") else r["column"]
             for r in never_link]
    # Whether the records hold the names that lift a hard negative resting on the forenames
    # (cluster.NodeNames reads them, for the few records that need them).
    cols = {r[0] for r in con.execute("describe linkage.records").fetchall()}
    has_names = {"forename", "forename_aliases", "sex", "middle_names"} <= cols
    nodes = con.sql("select unique_id, system, record_id" + "".join(f", {c} as k{i}" for i, c in enumerate(conds))
                    + " from linkage.records order by unique_id").to_arrow_table()
    uid = nodes.column("unique_id").to_numpy(zero_copy_only=False).astype(object)
    n = len(uid)
    con.register("_nodes", pa.table({"unique_id": nodes.column("unique_id"), "node": pa.array(np.arange(n))}))
    # The hard negatives once (both queries below read them).
    if hard is None:
        con.execute("create or replace temp table _link_hard as "
                    + hard_negative_sql(rules.get("hard_negatives", []), scalar_columns(con)))
    try:
        edges = con.sql(f"""
            with decided as (select * from linkage.clerical_decisions),
            hard as (select * from {hard or "_link_hard"}),
            model as (
                select unique_id_l, unique_id_r, match_weight as weight, 0 as basis from linkage.pairs p
                where match_weight >= {float(threshold)}
                  and not exists (select 1 from decided d where d.decision = 'non_match'
                                  and d.unique_id_l = p.unique_id_l and d.unique_id_r = p.unique_id_r)
                  and not exists (select 1 from hard h
                                  where h.unique_id_l = p.unique_id_l and h.unique_id_r = p.unique_id_r)),
            alias as (
                select least(unique_id, same_as) as unique_id_l, greatest(unique_id, same_as) as unique_id_r,
                       'Infinity'::double as weight, 1 as basis
                from linkage.records where same_as is not null),
            clerical as (
                select unique_id_l, unique_id_r, 'Infinity'::double, 2 from decided where decision = 'match')
            select a.node as l, b.node as r, e.weight, e.basis
            from (select * from model union all select * from alias union all select * from clerical) e
            join _nodes a on a.unique_id = e.unique_id_l join _nodes b on b.unique_id = e.unique_id_r
        """).fetchnumpy()
        # A hard-negative pair is `by_forename` when every rule that holds for it rests on the two
        # forenames being different names (`lifted_by_forename` in the spec: cluster.cluster).
        lifted = ["'" + r["name"].replace("'", "''") + "'" for r in rules.get("hard_negatives", [])
                  if r.get("lifted_by_forename")]
        named_sql = f"rule in ({', '.join(lifted)})" if lifted else "false"
        cannot = con.sql(f"""
            with pairs as (
                select unique_id_l, unique_id_r, false as soft, false as by_forename
                from linkage.clerical_decisions where decision = 'non_match'
                union
                select unique_id_l, unique_id_r, true, bool_and({named_sql}) from {hard or "_link_hard"} h
                where not exists (select 1 from linkage.clerical_decisions d where d.decision = 'match'
                                  and d.unique_id_l = h.unique_id_l and d.unique_id_r = h.unique_id_r)
                group by all)
            select a.node, b.node, d.soft, d.by_forename from pairs d
            join _nodes a on a.unique_id = d.unique_id_l join _nodes b on b.unique_id = d.unique_id_r""").fetchnumpy()
    finally:
        con.unregister("_nodes")
        if hard is None:
            con.execute("drop table if exists _link_hard")
    left, right = edges["l"].astype(np.int64), edges["r"].astype(np.int64)
    weight = np.asarray(edges["weight"], dtype=np.float64)
    basis = np.asarray(edges["basis"], dtype=np.int64)
    names = [*BASES, *identifier_bases(rules.get("identifier_links") or [])]
    if rules.get("identifier_links"):
        con.register("_nodes", pa.table({"unique_id": nodes.column("unique_id"), "node": pa.array(np.arange(n))}))
        try:
            ident = con.sql(f"""
                with i as ({_identifier_edges_sql(rules["identifier_links"], threshold)})
                select a.node as l, b.node as r, i.weight, i.basis, i.value from i
                join _nodes a on a.unique_id = i.unique_id_l join _nodes b on b.unique_id = i.unique_id_r
                where not exists (select 1 from linkage.clerical_decisions d where d.decision = 'non_match'
                                  and d.unique_id_l = least(i.unique_id_l, i.unique_id_r)
                                  and d.unique_id_r = greatest(i.unique_id_l, i.unique_id_r))""").fetchnumpy()
        finally:
            con.unregister("_nodes")
        il, ir = ident["l"].astype(np.int64), ident["r"].astype(np.int64)
        keep = _supported(n, left, right, il, ir, np.asarray(ident["value"]))
        left, right = np.concatenate([left, il[keep]]), np.concatenate([right, ir[keep]])
        weight = np.concatenate([weight, np.asarray(ident["weight"], dtype=np.float64)[keep]])
        basis = np.concatenate([basis, np.asarray(ident["basis"], dtype=np.int64)[keep]])
    cann = list(cannot.values())
    keys = [np.array(nodes.column(f"k{i}").to_pylist(), dtype=object) for i in range(len(conds))]
    # Edges in one order whatever order the engine returned the pairs in: strongest first, ties
    # by record. The weights are compared to 1e-9, since two engines may add a pair's weights in
    # another order and differ in the last bits; otherwise a tie between two edges of a cluster
    # that breaks a constraint was decided by row order, and the same pairs made other people.
    ranked = np.round(weight, 9)
    order = np.lexsort((right, left, -ranked))
    left, right, weight, basis, ranked = left[order], right[order], weight[order], basis[order], ranked[order]
    # Hard negatives are soft: a shared valid PNC or CRO lifts them. Along an edge above the
    # threshold (a model link, names alike, or a link the system or a clerk asserts), another
    # identifier the same on both sides vouches for two values of one (a CRO number keyed against
    # the wrong person); not along an identifier link, which weighs the threshold itself: on the
    # tuning worlds (seeds 31-32, 10,000 people) recall +0.0009 to +0.0025 at no precision cost,
    # where vouching along identifier links too cost up to 0.0010 (docs/linkage.md, section 4).
    # The threshold is rounded as the edges are, or an identifier link could weigh more than it.
    # A hard negative (twins by their names and dates) is lifted when the group of one of its
    # records holds the other's forename on another record (cluster.NodeNames).
    forenames = clustering.NodeNames(lambda wanted: _names_of(con, uid, wanted)) if has_names else None
    labels = clustering.cluster(n, left, right, ranked, cann[0].astype(np.int64), cann[1].astype(np.int64), keys,
                                soft=cann[2].astype(bool), vouch_above=float(np.round(threshold, 9)), names=forenames,
                                by_forename=cann[3].astype(bool))
    hist = rules.get("histories") or {}
    if hist.get("enabled"):
        # The second pass: people matched against people by their histories (histories.py).
        from justice.link.histories import BASIS, merge_histories

        labels, extra = merge_histories(con, uid, labels, threshold, cann[0].astype(np.int64),
                                        cann[1].astype(np.int64), keys, margin=float(hist.get("margin", 0.0)),
                                        rounds=int(hist.get("rounds", 3)),
                                        identifiers=rules.get("identifier_links", []),
                                        identifier_threshold=hist.get("identifier_threshold"),
                                        names=forenames, by_forename=cann[3].astype(bool))
        left, right = np.concatenate([left, extra["l"]]), np.concatenate([right, extra["r"]])
        weight = np.concatenate([weight, extra["weight"]])
        basis = np.concatenate([basis, np.full(len(extra["l"]), len(names), dtype=np.int64)])
        names.append(BASIS)
    ids = None  # each `identifier_links` column's valid value per node, read once when needed
    corr = rules.get("identifier_corroboration") or {}
    corroborate = bool(corr.get("enabled") and rules.get("identifier_links"))
    if corroborate:
        # People sharing an identifier, where every record of the smaller one meets the other at
        # an address or on a day (corroborate.py): an alias group and its person.
        from justice.link.corroborate import BASIS as CORROBORATED

        ids = _identifier_values(con, rules["identifier_links"], never_link, keys)
        corroborator = _corroborator(con, uid, ids, keys, cann, corr, forenames)
        corroborated_code = len(names)
        names.append(CORROBORATED)
        labels, extra = corroborator.merge(labels)
        left, right, weight, basis = _with_edges(left, right, weight, basis, extra, threshold, corroborated_code)
    holders_rule = rules.get("identifier_holders") or {}
    if holders_rule.get("enabled") and rules.get("identifier_links"):
        # A record goes to the person who holds its identifier on several records, when only
        # names put it elsewhere (cluster.rejoin_holders).
        least = holders_rule.get("min_holders", 2)
        if isinstance(least, bool) or not isinstance(least, int) or least < 2:
            raise ConfigError(f"linkage model: identifier_holders.min_holders must be a whole number of 2 or "
                              f"more, not {least!r} (link/model.yaml)")
        if ids is None:
            ids = _identifier_values(con, rules["identifier_links"], never_link, keys)
        reviewed = ~cann[2].astype(bool)
        labels, moved, holder, kind = clustering.rejoin_holders(
            labels, left, right, weight, ids, keys, cann[0].astype(np.int64)[reviewed],
            cann[1].astype(np.int64)[reviewed], min_holders=least)
        left, right = np.concatenate([left, moved]), np.concatenate([right, holder])
        weight = np.concatenate([weight, np.full(len(moved), float(threshold))])
        basis = np.concatenate([basis, np.asarray(identifier_codes(rules["identifier_links"]), np.int64)[kind]])
        if corroborate:
            # Again, now that records have gone to their identifiers' holders: an alias group
            # whose PNC ID record went to the person may now meet him on every record left.
            labels, extra = corroborator.merge(labels)
            left, right, weight, basis = _with_edges(left, right, weight, basis, extra, threshold, corroborated_code)
    apart = rules.get("strangers") or {}
    if apart.get("enabled"):
        # A record only its name and date of birth hold in a person whose identifiers give another
        # date of birth goes out on its own (strangers.py): a lender's record among a borrower's.
        from justice.link.strangers import strangers

        tied = np.zeros(n, dtype=bool)
        asserted = np.isin(basis, (BASES.index("system alias"), BASES.index("clerical")))
        inside = labels[left] == labels[right]
        tied[left[asserted & inside]] = True
        tied[right[asserted & inside]] = True
        out = strangers(con, uid, labels, apart, tied)
        if len(out):
            # Its edges stay in the list, now between two people (as those a constraint refused).
            labels = labels.copy()
            labels[out] = labels.max() + 1 + np.arange(len(out))
    # `basis` as names for readers; `basis_code` into `basis_names` and the nodes' `records`
    # (unique_id, system, record_id as Arrow) for person_links_table.
    return {"unique_id": uid, "labels": labels, "left": left, "right": right, "weight": weight,
            "basis": np.asarray(names, dtype=object)[basis], "basis_code": basis, "basis_names": names,
            "records": nodes.select(["unique_id", "system", "record_id"])}


def _with_edges(left: np.ndarray, right: np.ndarray, weight: np.ndarray, basis: np.ndarray,
                extra: dict[str, np.ndarray], threshold: float, code: int) -> tuple[np.ndarray, ...]:
    """The edges with `extra`'s (l, r) added, each weighed at the threshold with basis `code`."""
    n = len(extra["l"])
    return (np.concatenate([left, extra["l"]]), np.concatenate([right, extra["r"]]),
            np.concatenate([weight, np.full(n, float(threshold))]),
            np.concatenate([basis, np.full(n, code, dtype=np.int64)]))


def _corroborator(con: duckdb.DuckDBPyConnection, uid: np.ndarray, ids: list[np.ndarray], keys: list[np.ndarray],
                  cann: list[np.ndarray], corr: dict, names: clustering.NodeNames | None) -> Corroborator:
    """A corroborate.Corroborator under `identifier_corroboration` (`corr`, checked here); `cann`
    the cannot-link node pairs (left, right, soft, by_forename)."""
    from justice.link.corroborate import Corroborator

    evidence = strings_setting(corr.get("evidence"), "identifier_corroboration.evidence", "SQL conditions on l and r")
    rounds = corr.get("rounds", 3)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ConfigError(f"linkage model: identifier_corroboration.rounds must be a whole number of 1 or more, "
                          f"not {rounds!r} (link/model.yaml)")
    return Corroborator(con, uid, ids, keys, cann[0].astype(np.int64), cann[1].astype(np.int64), evidence,
                        rounds=rounds, names=names, by_forename=cann[3].astype(bool))


def _labels_of_sets(mask: np.ndarray, names: list[str], join: str | None) -> pa.Array:
    """Per row, the names whose bits are set in `mask` (names in the order given, which is
    sorted): joined by `join` into one string, or as a list when `join` is None; a row with no
    bit set is null. Each distinct set is made once."""
    inverse, sets = pd.factorize(mask)
    made = [[nm for b, nm in enumerate(names) if int(m) >> b & 1] or None for m in sets.tolist()]
    if join is None:
        values = pa.array(made, pa.list_(pa.string()))
    else:
        values = pa.array([join.join(x) if x else None for x in made], pa.string())
    return values.take(pa.array(inverse, pa.int64()))


def _bits(codes: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Each code's bit (as uint64), numbered so that bit order is the names' sorted order; and
    the names sorted."""
    if len(names) > 63:
        raise ConfigError(f"linkage: {len(names)} distinct link bases or systems in one index; person_links "
                          "records each record's as a set of at most 63 (link/sources.yaml, identifier_links)")
    order = sorted(range(len(names)), key=lambda i: names[i])
    rank = np.empty(len(names), np.uint64)
    rank[order] = np.arange(len(names), dtype=np.uint64)
    return np.left_shift(np.uint64(1), rank[np.asarray(codes, np.int64)]), [names[i] for i in order]


def person_links_table(records: pa.Table, labels: np.ndarray, person_id: np.ndarray,
                       left: np.ndarray, right: np.ndarray, weight: np.ndarray, basis: np.ndarray,
                       basis_names: list[str]) -> pa.Table:
    """`linkage.person_links`, one row per record in unique-id order: its person, its cluster's
    size and systems, and the evidence that holds it there. `records` (unique_id, system,
    record_id) are in node order (the records by unique id); `left`, `right`, `weight` and
    `basis` (codes into `basis_names`) are the edges inside clusters. A record with no such edge is `unlinked`; weights are
    over the scored links only (a link the systems or a clerk assert weighs infinity)."""
    n = len(labels)
    n_clusters = int(labels.max()) + 1 if n else 0
    ev_node = np.concatenate([left, right]).astype(np.int64)
    ev_w = np.concatenate([weight, weight]).astype(np.float64)
    links = np.bincount(ev_node, minlength=n)
    finite = np.isfinite(ev_w)
    best = np.full(n, -np.inf)
    np.maximum.at(best, ev_node[finite], ev_w[finite])
    weakest = np.full(n_clusters, np.inf)
    np.minimum.at(weakest, labels[ev_node[finite]], ev_w[finite])
    basis_bit, basis_names = _bits(basis, basis_names)
    bases = np.zeros(n, np.uint64)
    np.bitwise_or.at(bases, ev_node, np.concatenate([basis_bit, basis_bit]))
    system = pc.dictionary_encode(records.column("system")).combine_chunks()
    codes = pc.fill_null(system.indices, -1).to_numpy(zero_copy_only=False)
    system_bit, system_names = _bits(np.maximum(codes, 0), system.dictionary.to_pylist())
    system_bit[codes < 0] = 0  # a record without a system adds none to its cluster's list
    systems = np.zeros(n_clusters, np.uint64)
    np.bitwise_or.at(systems, labels, system_bit)
    weakest = weakest[labels]
    linked_by = pc.fill_null(_labels_of_sets(bases, basis_names, ", "), "unlinked")
    return pa.table({
        "system": records.column("system"),
        "record_id": records.column("record_id"),
        "unique_id": records.column("unique_id"),
        "person_id": pa.array(person_id.tolist(), pa.string()),
        "cluster_size": pa.array(np.bincount(labels, minlength=n_clusters)[labels].astype(np.int64)),
        "cluster_systems": _labels_of_sets(systems[labels], system_names, None),
        "links": pa.array(links.astype(np.int64)),
        "best_match_weight": pa.array(best, mask=best == -np.inf),
        "weakest_link_weight": pa.array(weakest, mask=weakest == np.inf),
        "linked_by": linked_by,
    })


def write_person_links(con: duckdb.DuckDBPyConnection, threshold: float, run_id: str,
                       rules: dict, hard: str | None = None) -> tuple[int, int]:
    """Cluster the records at `threshold` and write `linkage.person_links` with stable person ids and this run's `linkage.person_id_changes`; returns (links, persons)."""
    c = cluster_labels(con, threshold, rules, hard)
    uid, labels, left, right, weight = c["unique_id"], c["labels"], c["left"], c["right"], c["weight"]
    n = len(uid)
    records = c["records"]
    con.register("_nodes", pa.table({"unique_id": records.column("unique_id"), "node": pa.array(np.arange(n))}))
    previous = np.full(n, None, dtype=object)
    next_serial = 1
    if table_exists(con, "linkage", "person_links"):
        prev = con.sql("select n.node, p.person_id from linkage.person_links p "
                           "join _nodes n using (unique_id)").fetchnumpy()
        previous[prev["node"].astype(np.int64)] = prev["person_id"].astype(object)
        top = con.execute(f"select max(try_cast(substr(person_id, {len(clustering.PERSON_PREFIX) + 1}) as bigint)) "
                          "from linkage.person_links").fetchall()[0][0]
        if table_exists(con, "linkage", "person_id_changes"):
            top_c = con.execute(f"select max(try_cast(substr(old_person_id, {len(clustering.PERSON_PREFIX) + 1}) "
                                "as bigint)) from linkage.person_id_changes").fetchall()[0][0]
            top = max(top or 0, top_c or 0)
        next_serial = (top or 0) + 1
    ids, changes, _ = clustering.stable_ids(labels, previous, next_serial)

    # Evidence per record: the links that hold it in its cluster.
    kept = labels[left] == labels[right]
    table = person_links_table(records, labels, ids, left[kept], right[kept], weight[kept],
                               c["basis_code"][kept], c["basis_names"])
    con.register("_person_links_new", table)
    con.execute("create or replace table linkage.person_links as select * from _person_links_new")
    con.unregister("_person_links_new")
    con.execute("""create table if not exists linkage.person_id_changes (
        run_id varchar, old_person_id varchar, new_person_id varchar, reason varchar)""")
    if changes:
        con.executemany("insert into linkage.person_id_changes values (?, ?, ?, ?)",
                        [[run_id, o, nw, r] for o, nw, r in changes])
    con.unregister("_nodes")
    return int(kept.sum()), len(np.unique(labels))
